"""Settings and config checks, with messages that name the key (the Snakefile calls these before any job).

:class:`Settings` is the base of every settings class in the package; :func:`check_config`
validates a whole workflow config against its JSON schema.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import jsonschema
import yaml

from optabs.errors import ConfigError


def reject_unknown_keys(settings_cls: type, keys: Iterable[str], name: str = "") -> None:
    """Raise :class:`ConfigError` naming each of ``keys`` that is not a field of the dataclass ``settings_cls``.

    ``name`` says whose settings they are in the message (``unknown mp setting(s) [...]``).
    """
    known = {f.name for f in dataclasses.fields(settings_cls) if f.init}
    unknown = sorted(set(keys) - known)
    if unknown:
        whose = f"{name} " if name else ""
        raise ConfigError(f"unknown {whose}setting(s) {unknown}; known: {sorted(known)}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every settings class: a frozen dataclass read from one config section.

    Subclasses declare their fields with defaults that follow the published method and check
    values in ``__post_init__`` (raising :class:`ConfigError` that names the field). A subclass
    with named presets lists them in ``PRESETS`` (name -> field overrides); a config section
    may then name one under ``preset`` (default ``DEFAULT_PRESET``), and its other keys
    override single fields. :meth:`from_config` is the one way a config section becomes
    settings: it rejects unknown keys and prefixes every error with the config key.
    """

    #: name -> overrides of the field defaults; empty when the class has no presets.
    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    #: the preset a config section gets when it names none.
    DEFAULT_PRESET: ClassVar[str | None] = None
    #: the field that records which preset made the settings, if the class keeps one.
    PRESET_FIELD: ClassVar[str | None] = None
    #: whose settings these are, in messages ("model", "GPAW", "mp").
    NAME: ClassVar[str] = ""

    @classmethod
    def preset(cls, name: str | None = None, **overrides: Any) -> Self:
        """Settings of the preset ``name`` (default :attr:`DEFAULT_PRESET`) with ``overrides`` on top.

        Raises :class:`ConfigError` naming an unknown preset or an unknown setting.
        """
        name = cls.DEFAULT_PRESET if name is None else name
        if name is None:
            base: Mapping[str, Any] = {}
        elif name not in cls.PRESETS:
            raise ConfigError(f"unknown {cls.NAME or cls.__name__} preset {name!r}; known: {', '.join(cls.PRESETS)}")
        else:
            base = cls.PRESETS[name]
        reject_unknown_keys(cls, overrides, cls.NAME)
        values = {**base, **overrides}
        if cls.PRESET_FIELD and name is not None:
            values[cls.PRESET_FIELD] = name
        return cls(**values)

    @classmethod
    def from_config(cls, section: str, mapping: Mapping[str, Any] | None = None) -> Self:
        """Settings from the config section ``section`` (e.g. ``model``, ``dft.gpaw``).

        ``mapping`` holds field values (missing ones take the defaults) and, for a class with
        presets, an optional ``preset`` name. Every error is a :class:`ConfigError` whose
        message starts with ``config key '<section>'``.
        """
        values = dict(mapping or {})
        try:
            if cls.PRESETS:
                return cls.preset(values.pop("preset", None), **values)
            if "preset" in values:
                raise ConfigError(f"{cls.__name__} has no presets; remove the key 'preset'")
            reject_unknown_keys(cls, values, cls.NAME)
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"config key '{section}': {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config key '{section}': {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (what a result or checkpoint records)."""
        return dataclasses.asdict(self)

    # One dialect for value checks in ``__post_init__``: every message reads
    # "<NAME> setting '<field>': expected <what>, got <value>".

    def invalid(self, name: str, expected: str) -> ConfigError:
        """The error for field ``name`` whose value is not ``expected`` (raise it)."""
        whose = self.NAME or type(self).__name__
        return ConfigError(f"{whose} setting '{name}': expected {expected}, got {getattr(self, name)!r}")

    def check_numbers(
        self,
        *names: str,
        integer: bool = False,
        minimum: float | None = 0.0,
        inclusive: bool = False,
        optional: bool = False,
    ) -> None:
        """Raise :meth:`invalid` for the first of ``names`` that is not a finite number above ``minimum``.

        ``integer``: only integers; ``minimum`` None: any finite number; ``inclusive``:
        ``>= minimum`` instead of ``> minimum``; ``optional``: None is allowed too. Booleans are
        never numbers here.
        """
        kind = "an integer" if integer else "a finite number"
        relation = "" if minimum is None else (f" >= {minimum:g}" if inclusive else f" > {minimum:g}")
        expected = f"{kind}{relation}" + (" or null" if optional else "")
        for name in names:
            value = getattr(self, name)
            if optional and value is None:
                continue
            number = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not number or not math.isfinite(value):
                raise self.invalid(name, expected)
            if minimum is not None and not (value >= minimum if inclusive else value > minimum):
                raise self.invalid(name, expected)

    def check_choice(self, name: str, choices: Iterable[Any]) -> None:
        """Raise :meth:`invalid` if field ``name`` is not one of ``choices``."""
        options = tuple(choices)
        if getattr(self, name) not in options:
            raise self.invalid(name, "one of " + ", ".join(map(str, options)))


def load_schema(path: str | Path) -> dict[str, Any]:
    """The JSON schema (written as YAML) at ``path``."""
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
