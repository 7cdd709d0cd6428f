"""Comparison of an uncorrected spectrum with an external reference (Materials Project VASP spectra).

The reference folder (``../shared/data/mp-absorption-reference`` beside the project) holds, per
material, a POSCAR, one row of ``id_prop.csv`` (log10 α in cm⁻¹ on 0-15 eV, 1,501 points, floored
at 2) and one row of ``materials.csv`` (mp id, formula, the reference's gap, E4, E5). Its README
says how to compare fairly, and this module does exactly that:

- an **uncorrected** spectrum (the engine's own gap, no scissor, nothing zeroed below the gap);
- the edge ``E5``: the first energy where log10 α > 5 (above the reference's Lorentzian tails),
  and ``E4`` (log10 α > 4) beside it;
- the mean absolute difference of log10 α on the grid, both spectra floored at 3.

Source of the reference: Materials Project (CC BY 4.0); method Yang et al., arXiv:2209.02918.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from optabs.errors import InputError
from optabs.spectra._checks import FloatArray, _as_energy
from optabs.spectra.absorption import energy_grid, onset_energy
from optabs.spectra.corrected import corrected_spectrum

#: The README's comparison: edges at these log10 α (cm⁻¹), MAE with both spectra floored here.
EDGE_THRESHOLDS = {"E4": 4.0, "E5": 5.0}
MAE_FLOOR = 3.0


@dataclass(frozen=True)
class ReferenceSpectrum:
    """One reference material: its POSCAR, its spectrum (log10 α, shape (1501,) on 0-15 eV) and edges (eV)."""

    file: str
    mp_id: str
    formula: str
    gap_ev: float
    e4_ev: float
    e5_ev: float
    log10_alpha: FloatArray
    structure_path: Path


def read_reference(folder: str | Path) -> list[ReferenceSpectrum]:
    """The reference materials of ``folder`` (``materials.csv`` + ``id_prop.csv`` + POSCARs), in file order."""
    folder = Path(folder)
    materials, spectra = folder / "materials.csv", folder / "id_prop.csv"
    for path in (materials, spectra):
        if not path.is_file():
            raise InputError(f"{path}: missing; a reference folder needs materials.csv and id_prop.csv")
    rows: dict[str, FloatArray] = {}
    with spectra.open() as fh:
        for line_no, fields in enumerate(csv.reader(fh), start=1):
            values = np.asarray(fields[1:], dtype=float)
            if values.shape != (1501,):
                raise InputError(f"{spectra}, line {line_no}: {len(values)} values, expected 1501 (0-15 eV)")
            rows[fields[0]] = values
    out = []
    with materials.open() as fh:
        for row in csv.DictReader(fh):
            if row["file"] not in rows:
                raise InputError(f"{spectra}: no spectrum for {row['file']} listed in {materials}")
            out.append(
                ReferenceSpectrum(
                    file=row["file"], mp_id=row["mp_id"], formula=row["formula"], gap_ev=float(row["mp_gap_ev"]),
                    e4_ev=float(row["e4_ev"]), e5_ev=float(row["e5_ev"]), log10_alpha=rows[row["file"]],
                    structure_path=folder / row["file"],
                )
            )
    return out


def floored_mae(a: ArrayLike, b: ArrayLike, floor: float = MAE_FLOOR) -> float:
    """Mean |a - b| of two log10 α spectra on one grid, both clipped below at ``floor``."""
    return float(np.mean(np.abs(np.maximum(np.asarray(a, float), floor) - np.maximum(np.asarray(b, float), floor))))


def lorentzian_broadening(energy_ev: ArrayLike, eps_imag: ArrayLike, eta_ev: float) -> FloatArray:
    """ε2 convolved with a Lorentzian of half width ``eta_ev`` (eV), as VASP's CSHIFT broadens.

    ``energy_ev`` (N,) increasing from 0 (any spacing), ``eps_imag`` (N,) or (N, k). Uses the odd
    extension ε2(-ω) = -ε2(ω): ε2_η(ω) = ∫₀^∞ ε2(ω') [L(ω - ω') - L(ω + ω')] dω', trapezoidal
    weights on the given grid, L(x) = (η/π) / (x² + η²). ε1 follows from Kramers-Kronig downstream.
    """
    energy = _as_energy(energy_ev)
    values = np.asarray(eps_imag, dtype=float)
    weights = np.zeros_like(energy)
    steps = np.diff(energy)
    weights[:-1] += steps / 2
    weights[1:] += steps / 2
    w, wp = energy[:, None], energy[None, :]
    kernel = (eta_ev / np.pi) * (1.0 / ((w - wp) ** 2 + eta_ev**2) - 1.0 / ((w + wp) ** 2 + eta_ev**2))
    broadened = (kernel * weights[None, :]) @ values.reshape(len(energy), -1)
    return broadened.reshape(values.shape)


def uncorrected_log10_alpha(energy_ev: ArrayLike, eps_imag_tensor: ArrayLike, dft_gap_ev: float) -> FloatArray:
    """log10 α (cm⁻¹) on the reference grid (0-15 eV, 1,501 points) with no scissor and no mask.

    ``energy_ev`` (N,) eV and ``eps_imag_tensor`` (N, 6) as a DFT result stores them.
    """
    gap = max(float(dft_gap_ev), 0.0)
    return corrected_spectrum(energy_ev, eps_imag_tensor, gap, gap, energy_grid(), zero_below_gap=False).log10_alpha


def compare(log10_alpha: ArrayLike, reference: ReferenceSpectrum) -> dict[str, float | None]:
    """Edges and MAE of an uncorrected spectrum (shape (1501,), 0-15 eV) against ``reference``.

    ``dE4``/``dE5`` are ours − reference (eV; None where ours never reaches the threshold).
    """
    grid = energy_grid()
    ours = np.asarray(log10_alpha, dtype=float)
    out: dict[str, float | None] = {}
    for name, threshold in EDGE_THRESHOLDS.items():
        mine = onset_energy(grid, ours, threshold)
        ref = onset_energy(grid, reference.log10_alpha, threshold)
        out[name] = mine
        out[f"{name}_reference"] = ref
        out[f"d{name}"] = None if mine is None or ref is None else round(mine - ref, 3)
    out["mae"] = floored_mae(ours, reference.log10_alpha)
    return out
