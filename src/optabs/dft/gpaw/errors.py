"""The GPAW engine's errors, and the one place that imports gpaw on demand (:func:`_require_gpaw`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optabs.dft.result import CalculationError
from optabs.errors import OptabsError


class GpawCalculationError(CalculationError):
    """A :class:`CalculationError` that also names the step that failed (``stage``)."""

    def __init__(self, message: str, log_path: str | Path | None = None, stage: str = ""):
        super().__init__(message, log_path)
        self.stage = stage


class SetupGenerationError(OptabsError, RuntimeError):
    """A PAW dataset could not be generated (the engine then falls back to PBE)."""


def _require_gpaw() -> Any:
    try:
        import gpaw
    except ImportError as exc:  # pragma: no cover - exercised only without gpaw
        raise OptabsError(
            "the GPAW engine needs gpaw: apt-get install -y libxc-dev libopenblas-dev, then "
            "GPAW_CONFIG=resources/gpaw-siteconfig.py pip install gpaw==26.7.0"
        ) from exc
    return gpaw


def gpaw_version() -> str:
    """The installed gpaw version (raises :class:`OptabsError` without gpaw)."""
    return _require_gpaw().__version__
