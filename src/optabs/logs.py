"""Logging for workflow scripts: everything goes to the rule's log file, secrets scrubbed."""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

#: Environment variables whose values must never reach a log or an output file.
SECRET_ENV_VARS = ("MP_API_KEY",)


class _ScrubSecrets(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets = [os.environ[v] for v in SECRET_ENV_VARS if os.environ.get(v)]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            for secret in self.secrets:
                msg = msg.replace(secret, "***")
            record.msg, record.args = msg, None
        return True


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the root logger to ``log_path`` (the rule's ``log:``) or stderr, with secrets scrubbed."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler = logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_ScrubSecrets())
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter (urllib3 debug lines can carry request headers) stays at WARNING.
    for name in ("urllib3", "requests", "mp_api", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return logging.getLogger("optabs")


class logged:  # noqa: N801 (used as a context manager in scripts)
    """Set up logging to ``log_path`` and record any exception there before it propagates.

    Errors optabs raises on purpose (:class:`optabs.errors.OptabsError`) are logged as one clear
    line; anything else with its traceback. The exception is re-raised so the job fails.
    """

    def __init__(self, log_path: str | None = None):
        self.log_path = log_path
        self.log = setup_logging(log_path)

    def __enter__(self) -> logging.Logger:
        return self.log

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        from optabs.errors import OptabsError

        if exc is None:
            return False
        if isinstance(exc, OptabsError):
            self.log.error("%s", exc)
        else:
            self.log.error("%s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))
        return False
