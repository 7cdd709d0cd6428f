"""Input checks shared by the spectra functions: each names the argument and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from optabs.errors import InputError

#: Largest deviation of a point from the ideal uniform grid, as a fraction of the step.
UNIFORM_TOLERANCE: float = 1e-2
#: Diagonal eps_imag below -NEGATIVE_TOLERANCE * max|eps_imag| is an error, not round-off.
NEGATIVE_TOLERANCE: float = 1e-6

FloatArray = NDArray[np.float64]


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
