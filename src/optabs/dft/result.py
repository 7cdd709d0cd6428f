"""The engine-neutral result of the DFT stage: one material's dielectric function, or why it has none.

The stage writes, per material, ``results/dft/{material_id}/result.json``: either
``{"status": "ok", ...}`` (a :class:`DielectricResult`) or ``{"status": "failed", ...}`` (a
:class:`FailureRecord`), so one failing material never stops the others and later stages read
only successes.

Tensor components are stored as (N, 6) arrays in the order ``xx yy zz xy yz xz``
(:data:`optabs.grid.TENSOR_COMPONENTS`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from optabs.errors import InputError, OptabsError
from optabs.grid import TENSOR_COMPONENTS
from optabs.io import write_json

RESULT_SCHEMA_VERSION = 1


class CalculationError(OptabsError, RuntimeError):
    """A calculation that failed for a reason worth recording (no convergence, engine error, bad output).

    ``log_path`` points at the engine's log so the failure record can name it; ``stage`` is the
    step that failed (e.g. "ground_state", "optics").
    """

    def __init__(self, message: str, log_path: str | Path | None = None, stage: str = ""):
        super().__init__(message)
        self.log_path = str(log_path) if log_path else ""
        self.stage = stage


@dataclass
class DielectricResult:
    """Engine-neutral outcome of one material's DFT optics calculation.

    Arrays: ``energy_ev`` (N,) in eV, increasing from 0; ``eps_real`` and ``eps_imag`` (N, 6),
    dimensionless, components ``xx yy zz xy yz xz``.
    Energies: ``total_energy_ev`` is the total energy of ``structure`` (eV per cell), on the scale
    named by ``energy_scale`` (only energies with the same scale may share a phase diagram).
    """

    material_id: str
    engine: str
    engine_version: str
    structure: dict  # pymatgen Structure.as_dict() of the cell that was computed
    energy_ev: np.ndarray
    eps_real: np.ndarray
    eps_imag: np.ndarray
    dft_gap_ev: float
    dft_direct_gap_ev: float
    corrected_gap_ev: float
    gap_method: str  # e.g. "GLLB-SC", "nsc-dd-hybrid", "none"
    total_energy_ev: float
    n_atoms: int
    energy_scale: str  # e.g. "gpaw-PBEsol-pw400", "vasp-PBEsol+U"
    settings: dict[str, Any] = field(default_factory=dict)  # every setting that produced the result
    gap_details: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.energy_ev = np.asarray(self.energy_ev, dtype=float)
        self.eps_real = np.asarray(self.eps_real, dtype=float)
        self.eps_imag = np.asarray(self.eps_imag, dtype=float)
        n = self.energy_ev.shape[0] if self.energy_ev.ndim == 1 else -1
        for name in ("eps_real", "eps_imag"):
            arr = getattr(self, name)
            if n < 2 or arr.shape != (n, 6):
                raise InputError(
                    f"{self.material_id}: {name} must have shape (N, 6) matching energy_ev (N,), got "
                    f"{arr.shape} for N={n}"
                )
        if not np.all(np.isfinite(self.eps_imag)) or not np.all(np.isfinite(self.eps_real)):
            raise InputError(f"{self.material_id}: dielectric function contains NaN or inf")

    @property
    def energy_per_atom_ev(self) -> float:
        """Total energy per atom (eV)."""
        return self.total_energy_ev / self.n_atoms

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data, with ``status`` "ok" and the schema version."""
        d = asdict(self)
        for key in ("energy_ev", "eps_real", "eps_imag"):
            d[key] = getattr(self, key).tolist()
        d["energy_per_atom_ev"] = self.energy_per_atom_ev
        d["components"] = list(TENSOR_COMPONENTS)
        d["status"] = "ok"
        d["schema_version"] = RESULT_SCHEMA_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DielectricResult:
        """The result stored by :meth:`to_dict` (extra keys are ignored)."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: d[k] for k in names if k in d})


@dataclass
class FailureRecord:
    """Why one material has no result. ``stage`` is the step that failed (e.g. "ground_state")."""

    material_id: str
    engine: str
    reason: str
    stage: str = ""
    log_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, with ``status`` "failed" and the schema version."""
        return {**asdict(self), "status": "failed", "schema_version": RESULT_SCHEMA_VERSION}


class Engine(Protocol):
    """What every DFT engine offers."""

    name: str

    def run(self, material_id: str, structure: Any, workdir: Path) -> DielectricResult:
        """Compute one material in ``workdir``; raise :class:`CalculationError` on a recordable failure."""
        ...


def write_result(path: str | Path, outcome: DielectricResult | FailureRecord) -> None:
    """Write a result or failure record atomically."""
    write_json(path, outcome.to_dict())


def read_result(path: str | Path) -> DielectricResult | FailureRecord:
    """Read ``result.json``; a corrupt file raises :class:`InputError` naming it."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read DFT result {path}: {exc}. Delete it and rerun the dft stage.") from exc
    status = d.get("status")
    if status == "ok":
        return DielectricResult.from_dict(d)
    if status == "failed":
        return FailureRecord(**{k: d.get(k, "") for k in ("material_id", "engine", "reason", "stage", "log_path")})
    raise InputError(f"DFT result {path} has no valid 'status' (got {status!r}); delete it and rerun the dft stage")
