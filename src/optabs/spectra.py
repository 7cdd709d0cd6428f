"""Pure array physics of the ``spectra`` stage: dielectric function -> absorption spectrum.

Conventions used throughout:

- Energies are photon energies in eV, a 1-D array of shape ``(N,)``, non-negative and strictly
  increasing. Functions that need a uniform grid say so (the points may deviate from the ideal
  uniform positions by up to ``UNIFORM_TOLERANCE`` of a step, to accept grids read back from
  rounded text files).
- Dielectric data are energy-first: shape ``(N,)`` for one component or ``(N, k)`` for k components.
  A full tensor is ``(N, 6)`` in the order ``TENSOR_COMPONENTS`` = xx yy zz xy yz xz (or ``(N, 3, 3)``).
- The absorption coefficient is in cm^-1; spectra are stored as log10 of it, clipped below at a floor.

Every function validates its input and raises :class:`optabs.errors.InputError` naming the argument;
no function loops in Python over energy points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import constants
from scipy.signal import fftconvolve

from optabs.errors import InputError

__all__ = [
    "HC_EV_CM",
    "LOG10_ALPHA_FLOOR",
    "ONSET_THRESHOLD",
    "TENSOR_COMPONENTS",
    "TENSOR_DIAGONAL",
    "UNIFORM_TOLERANCE",
    "NEGATIVE_TOLERANCE",
    "CorrectedSpectrum",
    "absorption_coefficient",
    "corrected_spectrum",
    "energy_grid",
    "f_sum",
    "isotropic_average",
    "kramers_kronig",
    "log10_alpha",
    "onset_energies",
    "onset_energy",
    "scissor",
    "to_grid",
]

#: Planck constant times speed of light in eV*cm (1.23984198e-4).
HC_EV_CM: float = constants.h * constants.c / constants.e * 100.0
#: Order of the six independent components of a symmetric dielectric tensor.
TENSOR_COMPONENTS: tuple[str, ...] = ("xx", "yy", "zz", "xy", "yz", "xz")
#: Which of ``TENSOR_COMPONENTS`` are diagonal (pass as ``diagonal=`` to :func:`kramers_kronig`).
TENSOR_DIAGONAL: tuple[bool, ...] = (True, True, True, False, False, False)
#: The study's spectra are log10(alpha / cm^-1) clipped below at 2.0 ...
LOG10_ALPHA_FLOOR: float = 2.0
#: ... and the onset is the lowest energy where log10 alpha first exceeds 2.5.
ONSET_THRESHOLD: float = 2.5
#: Largest deviation of a point from the ideal uniform grid, as a fraction of the step.
UNIFORM_TOLERANCE: float = 1e-2
#: Diagonal eps_imag below -NEGATIVE_TOLERANCE * max|eps_imag| is an error, not round-off.
NEGATIVE_TOLERANCE: float = 1e-6

FloatArray = NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _first_bad(mask: NDArray[np.bool_]) -> int:
    """Row (energy index) of the first True in ``mask`` (any trailing axes collapsed)."""
    rows = mask.reshape(mask.shape[0], -1).any(axis=1) if mask.ndim > 1 else mask
    return int(np.argmax(rows))


def _as_energy(energy_ev: ArrayLike, name: str = "energy_ev", *, uniform: bool = False) -> FloatArray:
    """Validate a photon-energy axis: 1-D, >= 2 points, finite, >= 0, strictly increasing."""
    energy = np.asarray(energy_ev, dtype=float)
    if energy.ndim != 1:
        raise InputError(f"{name} must be a 1-D array of energies in eV, got shape {energy.shape}")
    if energy.size == 0:
        raise InputError(f"{name} is empty: pass at least two energies in eV")
    if energy.size < 2:
        raise InputError(f"{name} has a single point ({energy[0]} eV): an energy axis needs at least two")
    bad = ~np.isfinite(energy)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{name} holds NaN or inf (first at index {i}): clean the energy axis first")
    if energy[0] < 0.0:
        i = _first_bad(energy < 0.0)
        raise InputError(
            f"{name} holds negative energies (first at index {i}: {energy[i]} eV): photon energies are >= 0"
        )
    steps = np.diff(energy)
    if (steps <= 0.0).any():
        i = int(np.argmax(steps <= 0.0))
        raise InputError(
            f"{name} is not strictly increasing (index {i}: {energy[i]} eV, index {i + 1}: {energy[i + 1]} eV):"
            " sort it and drop duplicate energies"
        )
    if uniform:
        step = (energy[-1] - energy[0]) / (energy.size - 1)
        ideal = energy[0] + step * np.arange(energy.size)
        deviation = np.abs(energy - ideal).max()
        if deviation > UNIFORM_TOLERANCE * step:
            raise InputError(
                f"{name} is not a uniform grid (a point lies {deviation:.3g} eV off the uniform positions of"
                f" step {step:.6g} eV): interpolate onto a uniform grid first, e.g. with to_grid(..., energy_grid())"
            )
    return energy


def _as_values(values: ArrayLike, n_energies: int, name: str, *, max_ndim: int = 2) -> FloatArray:
    """Validate data on an energy axis: shape (N,) or (N, k), finite, matching the axis length."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0 or array.ndim > max_ndim:
        allowed = "(N,)" if max_ndim == 1 else "(N,) or (N, k)"
        raise InputError(f"{name} must have shape {allowed} with N energies first, got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name} is empty (shape {array.shape}): there is nothing to transform")
    if array.shape[0] != n_energies:
        raise InputError(
            f"{name} has {array.shape[0]} rows but the energy axis has {n_energies} points:"
            " the first axis of the data must be the energy axis"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(f"{name} holds NaN or inf (first at energy index {_first_bad(bad)}): clean the data first")
    return array


def _diagonal_mask(diagonal: bool | Sequence[bool] | NDArray[np.bool_], n_components: int) -> NDArray[np.bool_]:
    mask = np.asarray(diagonal, dtype=bool)
    if mask.ndim == 0:
        return np.full(n_components, bool(mask))
    if mask.shape != (n_components,):
        raise InputError(
            f"diagonal must be one bool or one bool per component ({n_components}), got shape {mask.shape}"
        )
    return mask


def _check_nonnegative(eps_imag: FloatArray, mask: NDArray[np.bool_], name: str) -> None:
    """Diagonal eps_imag must be >= 0 (absorption), up to round-off relative to its peak."""
    columns = eps_imag.reshape(eps_imag.shape[0], -1)[:, mask]
    if columns.size == 0:
        return
    tolerance = NEGATIVE_TOLERANCE * max(float(np.abs(columns).max()), np.finfo(float).tiny)
    negative = columns < -tolerance
    if negative.any():
        i = _first_bad(negative)
        raise InputError(
            f"{name} is negative beyond round-off (first at energy index {i}: {columns[i].min():.4g}):"
            " a diagonal eps_imag is an absorption and must be >= 0; pass diagonal=False for"
            " off-diagonal tensor components"
        )


def _interp_rows(x: FloatArray, y: FloatArray, xq: FloatArray) -> FloatArray:
    """Linear interpolation of ``y`` (N,) or (N, k) from ``x`` to ``xq`` (must lie within x's range)."""
    index = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, x.size - 2)
    x0 = np.take(x, index)
    t = (xq - x0) / (np.take(x, index + 1) - x0)
    if y.ndim == 2:
        t = t[:, None]
    # np.take is several times faster than fancy indexing of rows here
    lower = np.take(y, index, axis=0)
    result = np.take(y, index + 1, axis=0)
    result -= lower
    result *= t
    result += lower
    return result


# --------------------------------------------------------------------------------------------
# Kramers-Kronig
# --------------------------------------------------------------------------------------------


def _xlogx(x: FloatArray) -> FloatArray:
    """x * ln|x|, continued by 0 at x = 0."""
    ax = np.abs(x)
    return x * np.log(np.where(ax > 0.0, ax, 1.0))


def _log_abs_finite(x: FloatArray) -> FloatArray:
    """ln|x| with its divergence at x = 0 replaced by 0 (the finite part, see _half_hat_integrals)."""
    ax = np.abs(x)
    return np.log(np.where(ax > 0.0, ax, 1.0))


def _half_hat_integrals(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Principal values of the two halves of a unit hat function against a Cauchy kernel.

    ``left(x)  = PV int_{-1}^{0} (1 + s) / (x + s) ds = 1 + (1 - x) ln|x / (x - 1)|``
    ``right(x) = PV int_{0}^{1}  (1 - s) / (x + s) ds = -1 + (1 + x) ln|(1 + x) / x|``

    A whole hat is ``left + right = (x+1) ln|x+1| - 2x ln|x| + (x-1) ln|x-1|``, finite everywhere.
    Each half alone diverges logarithmically at x = 0 (a grid end where eps_imag jumps to 0);
    there the divergent ln|x| is dropped, i.e. the symmetric principal value on the scale of one
    grid step (left(0) = 1, right(0) = -1, which still sum to the whole hat's 0).
    For |x| >= 2 the log1p forms avoid the cancellation between the two large x ln x terms.
    """
    x = np.asarray(x, dtype=float)
    far = np.abs(x) >= 2.0
    x_far = np.where(far, x, 4.0)
    x_near = np.where(far, 0.5, x)
    left_far = 1.0 - (1.0 - x_far) * np.log1p(-1.0 / x_far)
    right_far = -1.0 + (1.0 + x_far) * np.log1p(1.0 / x_far)
    left_near = 1.0 + (1.0 - x_near) * _log_abs_finite(x_near) + _xlogx(x_near - 1.0)
    right_near = -1.0 + _xlogx(1.0 + x_near) - (1.0 + x_near) * _log_abs_finite(x_near)
    return np.where(far, left_far, left_near), np.where(far, right_far, right_near)


def kramers_kronig(
    energy_ev: ArrayLike,
    eps_imag: ArrayLike,
    *,
    diagonal: bool | Sequence[bool] | NDArray[np.bool_] = True,
) -> FloatArray:
    """Real part of the dielectric function from its imaginary part (Kramers-Kronig).

    ``eps_real(E) = [1 +] (2/pi) PV int_0^inf E' eps_imag(E') / (E'^2 - E^2) dE'``

    Args:
        energy_ev: photon energies in eV, shape (N,), uniform grid (see module docstring), >= 0.
            A grid need not start at 0; eps_imag is taken as 0 outside [energy_ev[0], energy_ev[-1]].
        eps_imag: imaginary part, shape (N,) or (N, k) for k components (e.g. the (N, 6) tensor in
            the order xx yy zz xy yz xz).
        diagonal: one bool, or one per component. For a diagonal component the vacuum term 1 is
            added and eps_imag must be >= 0 (up to round-off); an off-diagonal component gets no 1
            and may be negative. For the (N, 6) tensor pass ``diagonal=TENSOR_DIAGONAL``.

    Returns:
        eps_real with the shape of eps_imag (dimensionless).

    Method: eps_imag is taken piecewise linear between the grid points and the integral of every
    linear piece against the kernel is done analytically, so the principal value is exact for
    that interpolant (error O(h^2) from the interpolation only; no broadening parameter). With
    E'/(E'^2 - E^2) = [1/(E' - E) + 1/(E' + E)] / 2 the weights of a uniform grid depend only on
    i - j (Toeplitz) and i + j (Hankel), so both sums are convolutions, done by FFT for all
    components at once: O(N log N), no N x N matrix.

    At a grid end where eps_imag is not 0, the truncated integral diverges logarithmically (the
    data jump to 0 there); the first/last point then carries the finite part (see
    :func:`_half_hat_integrals`), finite but only indicative. Physically eps_imag(0) = 0, and a
    spectrum should be computed on a grid reaching well above the energies of interest.
    """
    energy = _as_energy(energy_ev, uniform=True)
    eps = _as_values(eps_imag, energy.size, "eps_imag")
    was_1d = eps.ndim == 1
    eps2 = eps[:, None] if was_1d else eps
    n, k = eps2.shape
    mask = _diagonal_mask(diagonal, k)
    _check_nonnegative(eps2, mask, "eps_imag")

    step = (energy[-1] - energy[0]) / (n - 1)
    offset = 2.0 * energy[0] / step  # (E_i + E_j) / step = i + j + offset
    # Toeplitz part: weight of node i for output j is hat(i - j), m = i - j in [-(n-1), n-1].
    t_left, t_right = _half_hat_integrals(np.arange(-(n - 1), n, dtype=float))
    t_full = t_left + t_right
    # Hankel part: weight hat(i + j + offset), p = i + j in [0, 2n-2].
    h_left, h_right = _half_hat_integrals(np.arange(0, 2 * n - 1, dtype=float) + offset)
    h_full = h_left + h_right

    # sum_i a_i t_full[i - j] = (a conv reversed t_full)[j + n - 1]
    # sum_i a_i h_full[i + j] = (reversed a conv h_full)[j + n - 1]
    window = slice(n - 1, 2 * n - 1)
    toeplitz = fftconvolve(eps2, t_full[::-1, None], mode="full", axes=0)[window]
    hankel = fftconvolve(eps2[::-1], h_full[:, None], mode="full", axes=0)[window]
    total = toeplitz + hankel
    # The end nodes carry half hats: node 0 only its right half, node n-1 only its left half.
    j = np.arange(n)
    total -= eps2[0] * (t_left[n - 1 - j] + h_left[j])[:, None]
    total -= eps2[-1] * (t_right[2 * (n - 1) - j] + h_right[n - 1 + j])[:, None]

    eps_real = total / np.pi + mask.astype(float)
    return eps_real[:, 0] if was_1d else eps_real


# --------------------------------------------------------------------------------------------
# Scissor, absorption, onset
# --------------------------------------------------------------------------------------------


def scissor(
    energy_ev: ArrayLike,
    eps_imag: ArrayLike,
    shift_ev: float,
    *,
    gap_ev: float | None = None,
) -> FloatArray:
    """Rigidly shift the absorption by ``shift_ev`` (scissor operator), conserving the f-sum.

    ``eps_imag'(E) = eps_imag(E - shift) * (E - shift) / E``, so that int E eps_imag dE is unchanged
    (the factor keeps the oscillator strengths: E eps_imag is shifted rigidly).

    Args:
        energy_ev: photon energies in eV, shape (N,), strictly increasing, >= 0 (need not be uniform).
        eps_imag: shape (N,) or (N, k); eps_imag(E - shift) is linearly interpolated on the grid.
            Not checked for sign, so off-diagonal tensor components may be shifted too.
        shift_ev: the shift in eV, normally corrected gap - DFT gap > 0. Output below the shift is 0.
            A negative shift (DFT gap above the corrected one) is allowed and moves the spectrum
            down: the output at E = 0 is 0 (eps_imag is odd in E), and the top |shift| of the grid,
            whose source lies beyond the data, is 0; keep the data grid that much wider than the
            energies you need.
        gap_ev: if given, the output is also set to 0 below this energy. vise (and the study) pass
            the corrected gap here, which removes the sub-gap broadening tail of the DFT spectrum
            that the shift would otherwise carry into the corrected gap.

    Returns:
        the shifted eps_imag, same shape as eps_imag. A shift of 0 returns the input values.
    """
    energy = _as_energy(energy_ev)
    eps = _as_values(eps_imag, energy.size, "eps_imag")
    if not np.isfinite(shift_ev):
        raise InputError(f"shift_ev must be a finite number of eV, got {shift_ev}")
    if gap_ev is not None and not (np.isfinite(gap_ev) and gap_ev >= 0.0):
        raise InputError(f"gap_ev must be a finite energy >= 0 in eV or None, got {gap_ev}")
    shift = float(shift_ev)
    source = energy - shift
    inside = (source >= energy[0]) & (source <= energy[-1])
    # (E - shift) / E: with no shift it is 1 (also at E = 0); otherwise 0 at E = 0 (eps_imag(0) = 0).
    ratio = np.divide(source, energy, out=np.full_like(energy, 1.0 if shift == 0.0 else 0.0), where=energy > 0.0)
    weight = np.where(inside & (energy >= shift), ratio, 0.0)
    if gap_ev is not None:
        weight = np.where(energy >= gap_ev, weight, 0.0)
    shifted = _interp_rows(energy, eps, np.clip(source, energy[0], energy[-1]))
    return shifted * (weight[:, None] if eps.ndim == 2 else weight)


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


# --------------------------------------------------------------------------------------------
# Grids, averages, sums
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The stage's pipeline for one material
# --------------------------------------------------------------------------------------------


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

    Steps: isotropic average of eps_imag; scissor by corrected - DFT gap (and, with
    ``zero_below_gap``, eps_imag set to 0 below the corrected gap, as vise does); eps_real rebuilt by
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

    shifted = scissor(energy, eps_iso, shift, gap_ev=float(corrected_gap_ev) if zero_below_gap else None)
    # Kramers-Kronig on a uniform work grid that contains the output grid, runs down towards 0 and up to
    # the end of the data: eps_imag above the output grid still shapes eps_real on it.
    step = (target[-1] - target[0]) / (target.size - 1)
    n_below = int(np.floor(target[0] / step + 1e-9))
    n_above = max(0, int(np.floor((covered_top - target[-1]) / step + 1e-9)))
    work = np.maximum(target[0] + step * np.arange(-n_below, target.size + n_above), 0.0)
    eps_imag_work = to_grid(energy, shifted, work, extrapolate="zero")
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
