"""Config checks with messages that name the key (the Snakefile calls these before any job)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from optabs.errors import ConfigError


def load_schema(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def config_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """One line per schema violation, each naming the dotted config key, e.g.
    ``config key 'filter.max_sites': 'forty' is not of type 'integer'``."""
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            for key in extra:
                full = f"{where}.{key}" if where else key
                lines.append(f"config key '{full}' is not a known key (allowed here: {', '.join(allowed)})")
            continue
        if err.validator == "required":
            missing = [k for k in err.validator_value if k not in err.instance]
            for key in missing:
                full = f"{where}.{key}" if where else key
                lines.append(f"config key '{full}' is required but missing")
            continue
        lines.append(f"config key '{where or '<top>'}': {err.message}")
    return lines


def check_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` listing every violation; the run stops before any job."""
    errors = config_errors(config, load_schema(schema_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors) + f"\n(schema: {schema_path})")
