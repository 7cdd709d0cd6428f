"""Kramers-Kronig transform and the f-sum-preserving scissor (see :mod:`optabs.spectra` for conventions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optabs.errors import InputError
from optabs.spectra._checks import (
    FloatArray,
    _as_energy,
    _as_values,
    _check_nonnegative,
    _diagonal_mask,
    _interp_rows,
)


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
    # Imported here, not at the top: scipy.signal costs ~0.4 s to import, and the Snakefile's
    # settings check imports this module (through optabs.dataset) on every snakemake start.
    from scipy.signal import fftconvolve

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
