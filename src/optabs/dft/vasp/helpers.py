"""Pure helpers of the VASP method: band counts, the +U map, the hybrid mixing, gaps, eps_inf, handlers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from custodian.vasp.handlers import (
    FrozenJobErrorHandler,
    IncorrectSmearingHandler,
    LargeSigmaHandler,
    MeshSymmetryErrorHandler,
    NonConvergingErrorHandler,
    PositiveEnergyErrorHandler,
    PotimErrorHandler,
    StdErrHandler,
    UnconvergedErrorHandler,
    VaspErrorHandler,
)
from pymatgen.core import Element, Structure

from optabs.dft.result import CalculationError
from optabs.errors import InputError


def _step_error(message: str, step: str, log_path: str | Path) -> CalculationError:
    """A :class:`CalculationError` that also names the step (read into ``FailureRecord.stage``)."""
    exc = CalculationError(message, log_path=log_path)
    exc.stage = step
    return exc


def vasp_default_nbands(nelect: float, n_ions: int, total_magmom: float = 0.0, spin_polarized: bool = False) -> int:
    """The NBANDS VASP picks when none is given (main.F; the same formula as custodian's
    ``VaspErrorHandler._default_nbands``): max(NINT(NELECT+2)/2 + max(NIONS/2, 3), INT(0.6 NELECT)),
    plus floor((sum(MAGMOM)+1)/2) when spin-polarized (VASP's default MAGMOM is 1 per ion)."""
    nbands = max(int(nelect + 2.5) // 2 + max(n_ions // 2, 3), int(0.6 * nelect))
    if spin_polarized:
        nbands += max(int((total_magmom + 1) // 2), 0)
    return nbands


def optics_nbands(nelect: float, n_ions: int, nbands_factor: float, spin_polarized: bool = False) -> int:
    """NBANDS of the optics run: ``nbands_factor`` times VASP's default, rounded up.

    The optics run writes no MAGMOM (the density comes from CHGCAR), so the default VASP would use
    counts 1 muB per ion when spin-polarized.
    """
    default = vasp_default_nbands(nelect, n_ions, total_magmom=float(n_ions), spin_polarized=spin_polarized)
    return int(math.ceil(nbands_factor * default))


def hubbard_u_anion(structure: Structure) -> str:
    """The element whose U table applies: the most electronegative one present (pymatgen's rule)."""
    elements = sorted(structure.composition.elements, key=lambda el: el.X)
    return elements[-1].symbol


def hubbard_u_incar(structure: Structure, u_values: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """INCAR tags of the +U map for the elements present (Dudarev, LDAUTYPE = 2).

    ``u_values`` is the Materials Project's nested form ``{anion: {element: U in eV}}``: the table
    of the structure's most electronegative element applies (``"O"`` for oxides, ``"F"`` for
    fluorides, as in pymatgen's MPRelaxSet), so a sulfide or selenide of the same metal gets no U.
    Element-keyed dicts, which pymatgen's input sets turn into per-species lists in POSCAR order
    (0 for species without U). No table for the anion, or no element with U > 0 present:
    ``{"LDAU": False}``.
    """
    present = {el.symbol for el in structure.composition.elements}
    table = u_values.get(hubbard_u_anion(structure), {})
    u = {el: float(v) for el, v in table.items() if el in present and v > 0}
    if not u:
        return {"LDAU": False}
    return {
        "LDAU": True,
        "LDAUTYPE": 2,
        "LDAUU": u,
        "LDAUL": {el: 3 if Element(el).block == "f" else 2 for el in u},
        "LDAUJ": {el: 0.0 for el in u},
        "LDAUPRINT": 1,
    }


def nsc_dd_mixing(eps_inf: float) -> float:
    """Exact-exchange fraction AEXX = 1/eps_inf of the dielectric-dependent hybrid."""
    if not (math.isfinite(eps_inf) and eps_inf > 1.0):
        raise InputError(f"eps_inf must be a finite number > 1 for AEXX = 1/eps_inf, got {eps_inf}")
    return 1.0 / eps_inf


def electronic_dielectric_constant(energy_ev: np.ndarray, eps_real: np.ndarray) -> tuple[float, np.ndarray]:
    """eps_inf = trace/3 of Re eps(omega = 0), and the diagonal (xx, yy, zz).

    ``energy_ev`` (N,) increasing from 0, ``eps_real`` (N, 6) in the order xx yy zz xy yz xz.
    """
    energy_ev = np.asarray(energy_ev, dtype=float)
    eps_real = np.asarray(eps_real, dtype=float)
    diagonal = np.array([np.interp(0.0, energy_ev, eps_real[:, axis]) for axis in range(3)])
    return float(diagonal.mean()), diagonal


def dfpt_dielectric_constant(tensor: Any) -> tuple[float, np.ndarray]:
    """eps_inf = trace/3 of the DFPT electronic dielectric tensor (3, 3), and the tensor as an array.

    Raises ValueError when ``tensor`` is not a finite 3x3 array (e.g. the run wrote none).
    """
    arr = np.asarray(tensor, dtype=float)
    if arr.shape != (3, 3) or not np.all(np.isfinite(arr)):
        raise ValueError(f"expected a finite 3x3 dielectric tensor, got {tensor!r}")
    return float(np.trace(arr) / 3.0), arr


def direct_gap_ev(eigenvalues: Mapping[Any, np.ndarray], occu_tol: float = 1e-8) -> float:
    """Smallest vertical gap (same k-point, same spin) in eV; 0 for a metal.

    ``eigenvalues``: pymatgen's ``Vasprun.eigenvalues``, per spin an array (n_kpoints, n_bands, 2)
    of (energy, occupation). Returns inf when no k-point has both occupied and empty bands.
    """
    gaps = []
    for arr in eigenvalues.values():
        energy, occupation = arr[..., 0], arr[..., 1]
        vbm = np.where(occupation > occu_tol, energy, -np.inf).max(axis=1)
        cbm = np.where(occupation <= occu_tol, energy, np.inf).min(axis=1)
        gaps.append(np.min(cbm - vbm))
    gap = float(min(gaps))
    return max(gap, 0.0) if math.isfinite(gap) else gap


def standard_handlers(step: str) -> list:
    """custodian's standard VASP handler set (as atomate2 uses it) for one step.

    Every step, the DFPT one included, gets the same set, except that the hybrid step leaves out
    ``UnconvergedErrorHandler``: NELM = 1 is how it is non-self-consistent,
    and pymatgen counts a run that used all NELM electronic steps as unconverged.
    """
    handlers = [
        VaspErrorHandler(),
        MeshSymmetryErrorHandler(),
        UnconvergedErrorHandler(),
        NonConvergingErrorHandler(),
        PotimErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(),
        StdErrHandler(),
        LargeSigmaHandler(),
        IncorrectSmearingHandler(),
    ]
    if step == "hybrid":
        handlers = [h for h in handlers if not isinstance(h, UnconvergedErrorHandler)]
    return handlers
