"""Config checks with messages that name the key (the Snakefile calls these before any job)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from optabs.errors import ConfigError


def reject_unknown_keys(settings_cls: type, keys: Iterable[str], section: str) -> None:
    """Raise :class:`ConfigError` naming each of ``keys`` that is not a field of the dataclass ``settings_cls``.

    ``section`` names the config section in the message (``model``, ``dft.vasp``, ...).
    """
    known = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ConfigError(f"unknown {section} setting(s) {unknown}; known: {sorted(known)}")


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


_SCALAR_TYPES = {"integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),)}


def coerce_cli_strings(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Give nested ``--config`` values the number or boolean type the schema asks for, in place.

    Snakemake parses ``--config interpret='{n_clusters: 3}'`` with YAML's BaseLoader, so every
    nested scalar arrives as a string ('3', '-1', 'true'); without this, the schema would reject
    a correct override and call a negative number "not of type 'number'". A string that does not
    read as the wanted type is left as it is, for validation to name.
    """
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, value in config.items():
        sub = properties.get(key, extra if isinstance(extra, dict) else None)
        if not sub:
            continue
        if isinstance(value, dict):
            coerce_cli_strings(value, sub)
            continue
        if not isinstance(value, str):
            continue
        types = sub.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" in types or not set(types) & set(_SCALAR_TYPES):
            continue
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            continue
        wanted = tuple(t for name in types for t in _SCALAR_TYPES.get(name, ()))
        if isinstance(parsed, wanted) and not (isinstance(parsed, bool) and bool not in wanted):
            config[key] = parsed


def check_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` listing every violation; the run stops before any job."""
    errors = config_errors(config, load_schema(schema_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors) + f"\n(schema: {schema_path})")
