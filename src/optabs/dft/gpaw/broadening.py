"""Broadening and the tensor: Gaussian broadening of ε, and the (N, 6) tensor from directional ε.

Why Gaussian rather than GPAW's Lorentzian: see :mod:`optabs.dft.gpaw`.
"""

from __future__ import annotations

import math

import numpy as np

#: Lorentzian η (eV) of the Hilbert transform when the Gaussian broadening is applied afterwards:
#: small enough that its tails (∝ η) are negligible, while GPAW's analytic transform of the
#: piecewise-linear spectral function stays exact.
UNBROADENED_ETA_EV = 1e-4

#: Directions whose dielectric functions make up the tensor; unit vectors along these.
TENSOR_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "x": (1.0, 0.0, 0.0),
    "y": (0.0, 1.0, 0.0),
    "z": (0.0, 0.0, 1.0),
    "x+y": (1.0, 1.0, 0.0),
    "y+z": (0.0, 1.0, 1.0),
    "x+z": (1.0, 0.0, 1.0),
}


def _gaussian_segment_weights(x: np.ndarray, w: np.ndarray, sigma: float) -> np.ndarray:
    """W (len(w), len(x)) with W @ f = ∫_x0^xN f(x') G_σ(w - x') dx' for f linear between the x."""
    from scipy.special import erf

    a, b = x[None, :-1], x[None, 1:]
    h = b - a
    W = w[:, None]
    root2s = math.sqrt(2.0) * sigma
    i0 = 0.5 * (erf((b - W) / root2s) - erf((a - W) / root2s))  # ∫ G
    gauss = lambda u: np.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))  # noqa: E731
    ix = sigma**2 * (gauss(a - W) - gauss(b - W))  # ∫ (x' - w) G
    i1 = (ix + (W - a) * i0) / h  # ∫ (x' - a)/h G
    out = np.zeros((len(w), len(x)))
    out[:, :-1] += i0 - i1
    out[:, 1:] += i1
    return out


def gaussian_broadening(energy_ev: np.ndarray, eps: np.ndarray, sigma_ev: float) -> np.ndarray:
    """Convolve a dielectric function with a normalised Gaussian of standard deviation ``sigma_ev``.

    ``energy_ev`` (N,) increasing from 0 (any spacing); ``eps`` (N,) or (N, k) complex, each
    column a diagonal (directional) dielectric function, i.e. ε → 1 at high energy. The
    convolution is exact for ε linear between grid points, over the whole real axis using the
    symmetries ε2(-ω) = -ε2(ω) and ε1(-ω) = ε1(ω); beyond the last point ε - 1 is taken as 0
    (only the last ~3σ feel that). Because convolution commutes with the Hilbert transform, a
    Kramers-Kronig-consistent input gives a consistent output.
    """
    energy = np.asarray(energy_ev, dtype=float)
    eps = np.asarray(eps, dtype=complex)
    if energy.ndim != 1 or abs(energy[0]) > 1e-12 or np.any(np.diff(energy) <= 0):
        raise ValueError("energy_ev must be 1-D, start at 0 and increase")
    plus = _gaussian_segment_weights(energy, energy, sigma_ev)
    minus = _gaussian_segment_weights(energy, -energy, sigma_ev)
    even, odd = plus + minus, plus - minus
    flat = eps.reshape(len(energy), -1)
    real = 1.0 + even @ (flat.real - 1.0)
    imag = odd @ flat.imag
    return (real + 1j * imag).reshape(eps.shape)


def tensor_from_directions(eps_d: dict[str, np.ndarray], off_diagonal: bool) -> np.ndarray:
    """(N, 6) complex tensor ``xx yy zz xy yz xz`` from directional dielectric functions.

    Without local-field effects the macroscopic ε along unit vector d is exactly d·ε·d, so
    ε_xy = ε_(x+y)/√2 - (ε_xx + ε_yy)/2, and likewise for yz and xz. Without the three mixed
    directions (``off_diagonal=False``) the off-diagonal components are set to 0.
    """
    xx, yy, zz = eps_d["x"], eps_d["y"], eps_d["z"]
    zero = np.zeros_like(xx)
    if off_diagonal:
        xy = eps_d["x+y"] - (xx + yy) / 2
        yz = eps_d["y+z"] - (yy + zz) / 2
        xz = eps_d["x+z"] - (xx + zz) / 2
    else:
        xy = yz = xz = zero
    return np.stack([xx, yy, zz, xy, yz, xz], axis=1)
