"""One material's gap-corrected absorption spectrum from its DFT eps_imag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from optabs.errors import InputError
from optabs.grid import LOG10_ALPHA_FLOOR, ONSET_THRESHOLD
from optabs.spectra._checks import FloatArray, _as_energy, _as_values, _check_nonnegative
from optabs.spectra.absorption import absorption_coefficient, isotropic_average, log10_alpha, onset_energy, to_grid
from optabs.spectra.transforms import kramers_kronig, scissor


@dataclass(frozen=True)
class CorrectedSpectrum:
    """One material's gap-corrected spectrum on the common grid; every array has shape (M,)."""

    energy_ev: FloatArray  #: the grid, eV
    eps_real: FloatArray  #: isotropic eps_real rebuilt by Kramers-Kronig from the shifted eps_imag
    eps_imag: FloatArray  #: isotropic eps_imag after the scissor
    alpha_per_cm: FloatArray  #: absorption coefficient, cm^-1
    log10_alpha: FloatArray  #: log10(alpha / cm^-1) clipped below at the floor
    onset_ev: float | None  #: lowest energy with log10 alpha > the onset threshold; None if never


def corrected_spectrum(
    energy_ev: ArrayLike,
    eps_imag_tensor: ArrayLike,
    dft_gap_ev: float,
    corrected_gap_ev: float,
    grid: ArrayLike,
    floor: float = LOG10_ALPHA_FLOOR,
    *,
    onset_threshold: float = ONSET_THRESHOLD,
    zero_below_gap: bool = True,
) -> CorrectedSpectrum:
    """Gap-corrected absorption spectrum of one material from its DFT eps_imag.

    Steps: isotropic average of eps_imag; scissor by corrected - DFT gap; interpolation onto a
    uniform work grid that contains the output grid (with ``zero_below_gap``, eps_imag is then set
    to 0 below the corrected gap, as vise does on its grid: on the work grid, so that no
    interpolation ramp from a coarse DFT grid reaches into the gap); eps_real rebuilt by
    Kramers-Kronig from the shifted eps_imag; alpha; log10 alpha with ``floor``; onset.

    Args:
        energy_ev: the DFT energies in eV, shape (N,), strictly increasing (need not be uniform).
            They must cover ``grid``; data beyond the grid's top are used for Kramers-Kronig.
        eps_imag_tensor: (N, 6) xx yy zz xy yz xz, (N, 3) diagonal, (N, 3, 3), or (N,) already isotropic.
        dft_gap_ev, corrected_gap_ev: band gaps in eV, >= 0.
        grid: the common uniform output grid in eV, shape (M,), e.g. :func:`energy_grid`.
        floor: lower clip of log10(alpha / cm^-1).
        onset_threshold: log10 alpha the onset must exceed.
        zero_below_gap: set eps_imag to 0 below the corrected gap after the shift.
    """
    energy = _as_energy(energy_ev)
    target = _as_energy(grid, "grid", uniform=True)
    tensor = np.asarray(eps_imag_tensor, dtype=float)
    if tensor.ndim == 1:
        eps_iso = _as_values(tensor, energy.size, "eps_imag_tensor", max_ndim=1)
    else:
        if tensor.shape[:1] != (energy.size,):
            raise InputError(
                f"eps_imag_tensor has shape {tensor.shape} but energy_ev has {energy.size} points:"
                " the first axis must be the energy axis"
            )
        eps_iso = isotropic_average(tensor)
    _check_nonnegative(eps_iso[:, None], np.array([True]), "isotropic eps_imag")
    for name, gap in (("dft_gap_ev", dft_gap_ev), ("corrected_gap_ev", corrected_gap_ev)):
        if not (np.isfinite(gap) and gap >= 0.0):
            raise InputError(f"{name} must be a finite band gap >= 0 in eV, got {gap}")
    shift = float(corrected_gap_ev) - float(dft_gap_ev)

    # The shifted data must cover the grid (a negative shift loses the top |shift| of the data).
    slack = 1e-9 * max(1.0, float(energy[-1]))
    covered_top = energy[-1] + min(shift, 0.0)
    if target[0] < energy[0] - slack or target[-1] > covered_top + slack:
        raise InputError(
            f"the DFT spectrum [{energy[0]:g}, {energy[-1]:g}] eV shifted by {shift:+.3f} eV covers only up to"
            f" {covered_top:g} eV, but the grid spans [{target[0]:g}, {target[-1]:g}] eV: compute eps to higher"
            " energies or shorten the grid"
        )

    shifted = scissor(energy, eps_iso, shift)
    # Kramers-Kronig on a uniform work grid that contains the output grid, runs down towards 0 and up to
    # the end of the data: eps_imag above the output grid still shapes eps_real on it.
    step = (target[-1] - target[0]) / (target.size - 1)
    n_below = int(np.floor(target[0] / step + 1e-9))
    n_above = max(0, int(np.floor((covered_top - target[-1]) / step + 1e-9)))
    work = np.maximum(target[0] + step * np.arange(-n_below, target.size + n_above), 0.0)
    eps_imag_work = to_grid(energy, shifted, work, extrapolate="zero")
    if zero_below_gap:
        # After the interpolation, not before: zeroing on a coarse DFT grid would leave the linear
        # ramp up to the first DFT point above the gap, i.e. absorption inside the gap.
        eps_imag_work[work < float(corrected_gap_ev)] = 0.0
    eps_real_work = kramers_kronig(work, eps_imag_work)

    on_grid = slice(n_below, n_below + target.size)
    eps_real = eps_real_work[on_grid]
    eps_imag = eps_imag_work[on_grid]
    alpha = absorption_coefficient(target, eps_real, eps_imag)
    log_alpha = log10_alpha(alpha, floor)
    return CorrectedSpectrum(
        energy_ev=target,
        eps_real=eps_real,
        eps_imag=eps_imag,
        alpha_per_cm=alpha,
        log10_alpha=log_alpha,
        onset_ev=onset_energy(target, log_alpha, onset_threshold),
    )
