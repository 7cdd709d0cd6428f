"""Exceptions raised by optabs. Every message names the file, key or material and what to do."""


class OptabsError(Exception):
    """Base class of all errors optabs raises on purpose."""


class InputError(OptabsError, ValueError):
    """Bad user input: a malformed structure file, a duplicate id, an empty catalog, ..."""


class ConfigError(OptabsError, ValueError):
    """A configuration value that is wrong or inconsistent (names the key)."""


class SourceError(OptabsError, RuntimeError):
    """A structure source (Materials Project, a folder) could not deliver."""
