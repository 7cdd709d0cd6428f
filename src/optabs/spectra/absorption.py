"""Absorption coefficient, log10 alpha, onsets and edge integrals; grids, averages and sums."""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import constants

from optabs.errors import InputError
from optabs.grid import LOG10_ALPHA_FLOOR, ONSET_THRESHOLD
from optabs.spectra._checks import FloatArray, _as_energy, _as_values, _first_bad, _interp_rows

#: Planck constant times speed of light in eV*cm (1.23984198e-4).
HC_EV_CM: float = constants.h * constants.c / constants.e * 100.0


def absorption_coefficient(energy_ev: ArrayLike, eps_real: ArrayLike, eps_imag: ArrayLike) -> FloatArray:
    """Absorption coefficient alpha in cm^-1 from the complex dielectric function.

    ``alpha = 2 omega kappa / c = 4 pi kappa E / (h c)``, ``kappa = sqrt((|eps| - eps_real) / 2)``.

    Args:
        energy_ev: photon energies in eV, shape (N,), >= 0, strictly increasing.
        eps_real, eps_imag: shape (N,) or (N, k), the same shape.

    Returns:
        alpha in cm^-1, shape of eps_imag, >= 0. kappa is computed as |eps_imag| / sqrt(2(|eps| + eps_real))
        where eps_real > 0, which avoids the cancellation in |eps| - eps_real for weak absorption
        (the sub-gap tail, where log10 alpha crosses the onset threshold).
    """
    energy = _as_energy(energy_ev)
    real = _as_values(eps_real, energy.size, "eps_real")
    imag = _as_values(eps_imag, energy.size, "eps_imag")
    if real.shape != imag.shape:
        raise InputError(f"eps_real has shape {real.shape} but eps_imag has shape {imag.shape}: they must match")
    modulus = np.hypot(real, imag)
    plus = modulus + real  # (|eps| + eps1)(|eps| - eps1) = eps2^2
    kappa_stable = np.abs(imag) / np.sqrt(2.0 * np.where(plus > 0.0, plus, 1.0))
    kappa_direct = np.sqrt(np.maximum(modulus - real, 0.0) / 2.0)
    kappa = np.where(real > 0.0, kappa_stable, kappa_direct)
    e = energy[:, None] if imag.ndim == 2 else energy
    return 4.0 * np.pi * kappa * e / HC_EV_CM


def log10_alpha(alpha_per_cm: ArrayLike, floor: float = LOG10_ALPHA_FLOOR) -> FloatArray:
    """log10 of alpha (cm^-1), clipped below at ``floor``; alpha <= 0 gives ``floor``. Any shape."""
    alpha = np.asarray(alpha_per_cm, dtype=float)
    if alpha.size == 0:
        raise InputError("alpha_per_cm is empty: there is no spectrum to take the log of")
    if not np.isfinite(alpha).all():
        raise InputError("alpha_per_cm holds NaN or inf: check the dielectric function it came from")
    if not np.isfinite(floor):
        raise InputError(f"floor must be a finite log10(alpha / cm^-1), got {floor}")
    return np.log10(np.maximum(alpha, 10.0**floor))


def onset_energy(energy_ev: ArrayLike, log10_alpha: ArrayLike, threshold: float = ONSET_THRESHOLD) -> float | None:
    """Lowest energy (eV) where log10 alpha is strictly greater than ``threshold``; None if never.

    Args:
        energy_ev: shape (N,), eV, strictly increasing.
        log10_alpha: shape (N,), log10(alpha / cm^-1).
    """
    energy = _as_energy(energy_ev)
    values = _as_values(log10_alpha, energy.size, "log10_alpha", max_ndim=1)
    above = values > threshold
    if not above.any():
        return None
    return float(energy[np.argmax(above)])


def onset_energies(
    energy_ev: ArrayLike, log10_alpha_2d: ArrayLike, threshold: float = ONSET_THRESHOLD
) -> FloatArray:
    """Batched :func:`onset_energy` for many spectra on one energy axis.

    Args:
        energy_ev: shape (N,), eV, strictly increasing.
        log10_alpha_2d: shape (M, N): one spectrum per row (as a model predicts a batch).

    Returns:
        shape (M,), the onset of each spectrum in eV, NaN where the threshold is never exceeded.
    """
    energy = _as_energy(energy_ev)
    values = np.asarray(log10_alpha_2d, dtype=float)
    if values.ndim != 2 or values.shape[1] != energy.size:
        raise InputError(
            f"log10_alpha_2d must have shape (M, {energy.size}) with one spectrum per row, got {values.shape}"
        )
    if values.size == 0:
        raise InputError("log10_alpha_2d holds no spectra")
    if not np.isfinite(values).all():
        raise InputError(f"log10_alpha_2d holds NaN or inf (first in row {_first_bad(~np.isfinite(values))})")
    above = values > threshold
    return np.where(above.any(axis=1), energy[np.argmax(above, axis=1)], np.nan)


def edge_integral(
    energy_ev: ArrayLike, log10_alpha: ArrayLike, onset_ev: ArrayLike, *, window_ev: float = 2.0, floor: float = LOG10_ALPHA_FLOOR
) -> NDArray[np.float64]:
    """Absorption-edge integral (decade * eV) of (M, N) spectra: how fast absorption rises.

    The integral of ``log10_alpha - floor`` over ``onset_ev <= E < onset_ev + window_ev`` (the
    first 2 eV above the onset by default), as a rectangle sum on the grid (whose step, 0.01 eV,
    makes the rule's error negligible). A steep, strong edge gives a large value, a slow tail a
    small one. NaN where the onset is NaN (never above threshold).
    """
    energy = np.asarray(energy_ev, dtype=float)
    spectra = np.atleast_2d(np.asarray(log10_alpha, dtype=float))
    onset = np.atleast_1d(np.asarray(onset_ev, dtype=float))
    if spectra.shape[1] != energy.size or onset.size != spectra.shape[0]:
        raise InputError(f"edge_integral: spectra {spectra.shape}, energy {energy.shape}, onsets {onset.shape} do not match")
    step = np.gradient(energy) if energy.size > 1 else np.ones(1)
    with np.errstate(invalid="ignore"):
        inside = (energy[None, :] >= onset[:, None] - 1e-9) & (energy[None, :] < onset[:, None] + window_ev - 1e-9)
    value = (np.clip(spectra - floor, 0.0, None) * inside) @ step
    return np.where(np.isfinite(onset), value, np.nan)


def edge_offset(
    onset_ev: ArrayLike, dft_gap_ev: ArrayLike, dft_direct_gap_ev: ArrayLike, corrected_gap_ev: ArrayLike
) -> FloatArray:
    """How far (eV) a corrected spectrum's onset lies above its gap-corrected *direct* gap; shape of the inputs.

    ``onset - (dft_direct_gap + corrected_gap - dft_gap)``: the scissor moves the direct gap by
    the same shift as the fundamental one, and an allowed direct transition absorbs right there,
    so for such a material the offset is ~0. A large positive offset means the spectrum starts
    late (issue 16: CdSe +1.32 eV on a Γ-free optics grid); a forbidden direct transition (rutile
    SnO2, GeO2) or an indirect gap can make a smaller one physically. NaN where the onset is NaN.
    """
    onset = np.asarray(onset_ev, dtype=float)
    return onset - (np.asarray(dft_direct_gap_ev, float) + np.asarray(corrected_gap_ev, float) - np.asarray(dft_gap_ev, float))


def isotropic_average(eps_tensor: ArrayLike) -> FloatArray:
    """Mean of the diagonal (xx, yy, zz) of a dielectric tensor, shape (N,).

    Accepts (N, 6) in the order xx yy zz xy yz xz, (N, 3) holding the diagonal only, or (N, 3, 3).
    """
    tensor = np.asarray(eps_tensor, dtype=float)
    if tensor.size == 0:
        raise InputError(f"eps_tensor is empty (shape {tensor.shape})")
    if tensor.ndim == 2 and tensor.shape[1] in (3, 6):
        diagonal = tensor[:, :3]
    elif tensor.ndim == 3 and tensor.shape[1:] == (3, 3):
        diagonal = np.diagonal(tensor, axis1=1, axis2=2)
    else:
        raise InputError(
            f"eps_tensor must have shape (N, 6) (xx yy zz xy yz xz), (N, 3) (xx yy zz) or (N, 3, 3), got {tensor.shape}"
        )
    if not np.isfinite(diagonal).all():
        raise InputError(f"eps_tensor holds NaN or inf (first at energy index {_first_bad(~np.isfinite(diagonal))})")
    return diagonal.mean(axis=1)


def energy_grid(e_min: float = 0.0, e_max: float = 15.0, n_points: int = 1501) -> FloatArray:
    """The common uniform photon-energy grid in eV, shape (n_points,); default 0-15 eV in 0.01 eV steps."""
    if not (np.isfinite(e_min) and np.isfinite(e_max) and 0.0 <= e_min < e_max):
        raise InputError(f"energy grid needs 0 <= e_min < e_max (eV), got e_min={e_min}, e_max={e_max}")
    if int(n_points) != n_points or n_points < 2:
        raise InputError(f"energy grid needs an integer n_points >= 2, got {n_points}")
    return np.linspace(float(e_min), float(e_max), int(n_points))


def to_grid(
    energy_ev: ArrayLike,
    values: ArrayLike,
    grid: ArrayLike,
    *,
    extrapolate: Literal["raise", "zero"] = "raise",
) -> FloatArray:
    """Linearly interpolate ``values`` (N,) or (N, k) from ``energy_ev`` (N,) onto ``grid`` (M,).

    A grid reaching beyond the data's energy range (more than round-off) raises, unless
    ``extrapolate="zero"``, which sets the values there to 0. Returns shape (M,) or (M, k).
    """
    energy = _as_energy(energy_ev)
    data = _as_values(values, energy.size, "values")
    target = _as_energy(grid, "grid")
    if extrapolate not in ("raise", "zero"):
        raise InputError(f"extrapolate must be 'raise' or 'zero', got {extrapolate!r}")
    slack = 1e-9 * max(1.0, float(energy[-1]))
    outside = (target < energy[0] - slack) | (target > energy[-1] + slack)
    if outside.any() and extrapolate == "raise":
        raise InputError(
            f"grid [{target[0]:g}, {target[-1]:g}] eV reaches beyond the data [{energy[0]:g}, {energy[-1]:g}] eV:"
            " compute the spectrum over the whole grid, or pass extrapolate='zero'"
        )
    result = _interp_rows(energy, data, np.clip(target, energy[0], energy[-1]))
    if outside.any():
        result[outside] = 0.0
    return result


def f_sum(energy_ev: ArrayLike, eps_imag: ArrayLike) -> float | FloatArray:
    """Oscillator-strength integral int E eps_imag dE in eV^2 (trapezoid); float for (N,), (k,) for (N, k)."""
    energy = _as_energy(energy_ev)
    eps = _as_values(eps_imag, energy.size, "eps_imag")
    e = energy[:, None] if eps.ndim == 2 else energy
    integral = np.trapezoid(e * eps, energy, axis=0)
    return float(integral) if eps.ndim == 1 else integral
