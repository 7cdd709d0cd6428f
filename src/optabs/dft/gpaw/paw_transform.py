"""The PAW transform workaround: GPAW's response code transforms PAW pair densities by direct quadrature.

GPAW's fast Fourier-Bessel transform fails its own self-test for La's f channels (La2O3, "FFBT
mismatch"); :func:`direct_paw_transforms` replaces it with :func:`rescaled_bessel_transform`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np


def rescaled_bessel_transform(
    k: np.ndarray, l: int, r_g: np.ndarray, f_g: np.ndarray, chunk: int = 256  # noqa: E741 (l: angular momentum)
) -> np.ndarray:
    """4π/k^l ∫ r² j_l(kr) f(r) dr by trapezoidal quadrature on a (non-uniform) radial grid.

    ``k`` any shape, in 1/length of ``r_g`` (GPAW: 1/bohr); ``r_g`` (G,) increasing from 0; ``f_g``
    (G,) the radial function on it. Returns an array of ``k``'s shape. Evaluated as
    4π ∫ r^(2+l) [j_l(kr)/(kr)^l] f(r) dr, whose bracket is finite at k = 0 (2^l l!/(2l+1)!), so
    small k and high l lose no precision. ``chunk`` distinct k values are integrated at a time
    (memory: chunk × G floats).
    """
    from scipy.special import spherical_jn

    k = np.asarray(k, dtype=float)
    k_unique, inverse = np.unique(k.ravel(), return_inverse=True)
    limit = 2.0**l * math.factorial(l) / math.factorial(2 * l + 1)
    weight_g = r_g ** (2 + l) * f_g
    out = np.empty(len(k_unique))
    for start in range(0, len(k_unique), chunk):
        x = k_unique[start : start + chunk, None] * r_g[None, :]
        positive = x > 0
        bracket = np.full(x.shape, limit)
        bracket[positive] = spherical_jn(l, x[positive]) / x[positive] ** l
        out[start : start + chunk] = 4.0 * np.pi * np.trapezoid(bracket * weight_g, r_g, axis=1)
    return out[inverse].reshape(k.shape)


class _RadialTransform:
    """Stand-in for GPAW's reciprocal-space spline of one Δn_jj'l: ``map(k)`` integrates directly."""

    def __init__(self, r_g: np.ndarray, f_g: np.ndarray, l: int):  # noqa: E741
        self.r_g, self.f_g, self.l = np.asarray(r_g, dtype=float), np.asarray(f_g, dtype=float), l

    def map(self, k_G: np.ndarray) -> np.ndarray:
        """The transform at the wave vectors ``k_G`` (1/bohr)."""
        return rescaled_bessel_transform(k_G, self.l, self.r_g, self.f_g)


@contextlib.contextmanager
def direct_paw_transforms() -> Iterator[None]:
    """Within the block, GPAW's response code transforms PAW pair densities by direct quadrature.

    GPAW (``gpaw.response.paw.LeanPAWDataset``) Fourier-Bessel transforms the pair-density
    corrections Δn_jj'(r) with a fast transform on hard-coded grids and checks each result against
    direct quadrature at two k values. For La (4f partial waves, l up to 6) that check fails
    ("FFBT mismatch", off by orders of magnitude), so La2O3 had no spectrum. Here the transform is
    the direct quadrature itself (:func:`rescaled_bessel_transform`, the same integral the check
    uses). These terms enter only the G ≠ 0 elements of χ0; the independent-particle ε without
    local-field effects uses the optical-limit head, so the spectra are unchanged: MgO and CeO2
    gave bit-identical ε with either transform. The original method is restored on exit.
    """
    from gpaw.response import paw

    original = paw.LeanPAWDataset.rescaled_fourier_bessel_transform

    def direct(self: Any, f_g: np.ndarray, l: int) -> _RadialTransform:  # noqa: E741
        return _RadialTransform(self.rgd.r_g[: len(f_g)], f_g, l)

    paw.LeanPAWDataset.rescaled_fourier_bessel_transform = direct  # type: ignore[method-assign]
    try:
        yield
    finally:
        paw.LeanPAWDataset.rescaled_fourier_bessel_transform = original  # type: ignore[method-assign]
