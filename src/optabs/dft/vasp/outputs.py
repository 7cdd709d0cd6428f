"""Reading VASP's outputs: vasprun.xml (with errors that name the file), eps(omega), OSZICAR, KPOINTS."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.io.vasp.inputs import Kpoints
from pymatgen.io.vasp.outputs import Oszicar, UnconvergedVASPWarning, Vasprun

from optabs.dft.vasp.helpers import _step_error


def read_vasprun(path: str | Path, *, material_id: str = "", step: str = "") -> Vasprun:
    """Parse ``vasprun.xml``; a missing, truncated or corrupt file raises :class:`CalculationError` naming it."""
    path = Path(path)
    log = path.parent / "vasp.out"
    where = f"{material_id}: VASP step '{step}'" if step else (material_id or "VASP")
    if not path.is_file():
        raise _step_error(f"{where} wrote no {path}; see {log}", step, log)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnconvergedVASPWarning)  # the hybrid step has NELM = 1 by design
            return Vasprun(str(path), parse_dos=False, parse_potcar_file=False)
    except Exception as exc:  # lxml, ValueError, KeyError, ...: every parse failure means an unusable file
        raise _step_error(
            f"{where}: cannot parse {path} ({type(exc).__name__}: {exc}); the file is truncated or corrupt. "
            f"See {log}; delete the work directory to rerun.",
            step,
            log,
        ) from exc


def dielectric_arrays(vasprun: Vasprun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy (N,) in eV and Re, Im eps (N, 6) in our order xx yy zz xy yz xz.

    VASP writes xx yy zz xy yz zx; the tensor is symmetric, so zx is xz and the columns map 1:1.
    Raises KeyError when the run wrote no dielectric function.
    """
    energy, real, imag = vasprun.dielectric
    return np.asarray(energy, dtype=float), np.asarray(real, dtype=float), np.asarray(imag, dtype=float)


def _total_magnetization(directory: Path) -> float:
    """|total magnetization| (muB per cell) of the last ionic step in OSZICAR; 0 for ISPIN = 1."""
    try:
        steps = Oszicar(str(directory / "OSZICAR")).ionic_steps
    except (OSError, ValueError, IndexError, KeyError):
        return 0.0
    return abs(float(steps[-1].get("mag", 0.0))) if steps else 0.0


def _kpoints_record(path: Path) -> dict[str, Any]:
    """The mesh of a KPOINTS file as plain data (for the result's settings)."""
    kpoints = Kpoints.from_file(str(path))
    return {
        "style": kpoints.style.name,
        "kpts": [list(map(float, k)) for k in kpoints.kpts],
        "shift": list(map(float, kpoints.kpts_shift)),
        "comment": kpoints.comment,
    }
