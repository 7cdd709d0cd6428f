"""Speed and agreement of optabs.spectra against vise, the implementation the study used.

Run: ``python benchmarks/bench_spectra.py`` (prints JSON). Needs ``pip install vise==0.9.6``, a
benchmark-only dependency (not in pyproject).

Input: a realistic 1,501-point x 6-component eps_imag on 0-15 eV (0.01 eV), a sum of
Tauc-Lorentz oscillators per diagonal component (zero below a 3 eV gap, as a scissored DFT
spectrum) and small signed off-diagonal components.

What is compared:

- Kramers-Kronig: ``optabs.spectra.kramers_kronig(E, eps2 (N, 6), diagonal=TENSOR_DIAGONAL)`` vs
  ``vise.analyzer.dielectric_function.kramers_kronig_trans(eps2.T (6, N), E)``. vise takes
  (components, energies), adds 1 to the first three rows (our ``diagonal`` mask) and evaluates
  ``1 + (2/pi) h sum_i E_i eps2_i (E_i^2 - E^2) / ((E_i^2 - E^2)^2 + ita^2)`` with ita = 0.01 eV^2:
  the same sign and definition, discretised as a rectangle sum that skips the singular point
  (first order in h) with a small Lorentzian regularisation, whereas optabs integrates the linear
  interpolant exactly (second order). Both truncate eps2 at 15 eV, where it is not zero; the
  exact integral then has a logarithmic singularity at the last point that vise's discrete sum
  cuts off differently, so the last ``EDGE_POINTS`` points (0.1 eV) are excluded from the
  agreement; so are the first ones for symmetry (eps2 = 0 there, nothing differs).
  The relative difference is |optabs - vise| / |vise| where |vise| >= 0.1 max|vise| of that
  component (diagonal and off-diagonal alike), so that zero crossings of eps_real, where any
  relative measure blows up, are not counted; ``max_abs_diff`` is reported too.
  Who is right where they differ: both are compared with an adaptive quadrature of the analytic
  input (scipy ``quad`` with a Cauchy weight for the principal value) at sample energies, and the
  difference is recomputed after adding to vise's result its two leading first-order error terms
  (the skipped singular point, h F'(E) with F(E') = (2/pi) E' eps2(E') / (E' + E), and the full
  rather than half weight of the last point): what is left is second order.
- Scissor: ``optabs.spectra.scissor(E, eps2, shift, gap_ev=gap)`` vs
  ``vise.analyzer.dielectric_function.imag_shift(eps2.T, E, gap, shift)`` (vise's own scissor,
  which also zeroes eps2 below the corrected gap ``gap``).

Timings are best of several runs with time.perf_counter in one process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import numpy as np
from scipy.integrate import quad

os.environ.setdefault("TQDM_DISABLE", "1")  # vise wraps its loop in a tqdm progress bar

from optabs import spectra  # noqa: E402

EDGE_POINTS = 10
SHIFT_EV = 1.2
DFT_GAP_EV = 3.0


def tauc_lorentz(energy: np.ndarray, amplitude: float, e0: float, width: float, gap: float) -> np.ndarray:
    """Jellison-Modine Tauc-Lorentz eps2: A E0 C (E - Eg)^2 / ((E^2 - E0^2)^2 + C^2 E^2) / E above Eg, else 0."""
    e = np.where(energy > gap, energy, 1.0)
    value = amplitude * e0 * width * (e - gap) ** 2 / (((e**2 - e0**2) ** 2 + width**2 * e**2) * e)
    return np.where(energy > gap, value, 0.0)


def realistic_eps_imag(energy: np.ndarray, gap: float = DFT_GAP_EV) -> np.ndarray:
    """(N, 6) eps_imag, xx yy zz xy yz xz, of a slightly anisotropic oxide-like insulator."""
    oscillators = [(60.0, 5.0, 2.0), (40.0, 8.5, 3.0), (25.0, 12.0, 4.0)]
    diagonal = []
    for scale, stretch in ((1.0, 1.0), (1.1, 1.03), (0.9, 0.97)):
        diagonal.append(sum(tauc_lorentz(energy, a * scale, e0 * stretch, c, gap) for a, e0, c in oscillators))
    xx, yy, zz = diagonal
    off = [0.08 * (xx - yy), 0.05 * (yy - zz), -0.03 * (xx - zz)]
    return np.column_stack([xx, yy, zz, *off])


def xx_oscillators(energy: np.ndarray, gap: float = DFT_GAP_EV) -> np.ndarray:
    return realistic_eps_imag(np.atleast_1d(energy), gap)[:, 0]


def quadrature_eps_real_xx(energy_ev: float, e_max: float, gap: float = DFT_GAP_EV) -> float:
    """eps_real of the xx component at one energy by adaptive quadrature of the analytic eps2 on [gap, e_max].

    (2/pi) PV int E' eps2 / (E'^2 - E^2) dE' = (1/pi) [PV int eps2 / (E' - E) dE' + int eps2 / (E' + E) dE'].
    """

    def eps2(e: float) -> float:
        return float(xx_oscillators(np.array([e]), gap)[0])

    if gap < energy_ev < e_max:
        cauchy = quad(eps2, gap, e_max, weight="cauchy", wvar=energy_ev, limit=400)[0]
    else:
        cauchy = quad(lambda e: eps2(e) / (e - energy_ev), gap, e_max, limit=400)[0]
    plain = quad(lambda e: eps2(e) / (e + energy_ev), gap, e_max, limit=400)[0]
    return 1.0 + (cauchy + plain) / np.pi


def vise_first_order_terms(energy: np.ndarray, eps_imag: np.ndarray) -> np.ndarray:
    """The two leading O(h) error terms of vise's sum (to be added to it), shape of eps_imag."""
    step = energy[1] - energy[0]
    e = energy[:, None]
    positive = np.where(e > 0.0, e, 1.0)
    # F(E') = (2/pi) E' eps2(E') / (E' + E); the skipped i = j term of a trapezoid sum is h F'(E)
    derivative = eps_imag / (2.0 * positive) + np.gradient(eps_imag, energy, axis=0)  # pi F'(E') at E' = E
    skipped = np.where(e > 0.0, step * derivative / np.pi, 0.0)
    e_max = energy[-1]
    distance = np.where(e < e_max, e_max - e, 1.0)
    end_node = (2.0 / np.pi) * e_max * eps_imag[-1] / (e_max + e)
    last_weight = np.where(e < e_max, 0.5 * step * end_node / distance, 0.0)
    return skipped - last_weight


def best_time(func: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def relative_difference(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max relative difference where |reference| >= 10 % of its component's peak, max absolute difference)."""
    ours, reference = ours[EDGE_POINTS:-EDGE_POINTS], reference[EDGE_POINTS:-EDGE_POINTS]
    scale = np.abs(reference).max(axis=0)
    defined = np.abs(reference) >= 0.1 * scale
    relative = np.abs(ours - reference)[defined] / np.abs(reference)[defined]
    return float(relative.max()), float(np.abs(ours - reference).max())


def run(repeats: int = 50, reference_repeats: int = 3) -> dict:
    """Time and compare optabs vs vise on 1,501 points x 6 components; returns the numbers."""
    from vise.analyzer.dielectric_function import imag_shift, kramers_kronig_trans

    energy = spectra.energy_grid(0.0, 15.0, 1501)
    eps_imag = realistic_eps_imag(energy)
    n_points, n_components = eps_imag.shape

    def ours_kk() -> np.ndarray:
        return spectra.kramers_kronig(energy, eps_imag, diagonal=spectra.TENSOR_DIAGONAL)

    def vise_kk() -> np.ndarray:
        return kramers_kronig_trans(eps_imag.T, energy).T

    kk_ours, kk_vise = ours_kk(), vise_kk()
    kk_rel, kk_abs = relative_difference(kk_ours, kk_vise)
    kk_rel_diagonal, _ = relative_difference(kk_ours[:, :3], kk_vise[:, :3])
    kk_rel_first_order, _ = relative_difference(kk_ours, kk_vise + vise_first_order_terms(energy, eps_imag))
    samples = np.arange(50, 1451, 50)  # 0.5 ... 14.5 eV
    truth = np.array([quadrature_eps_real_xx(float(energy[i]), float(energy[-1])) for i in samples])
    kk_time_ours = best_time(ours_kk, repeats)
    kk_time_vise = best_time(vise_kk, reference_repeats)

    gap = DFT_GAP_EV + SHIFT_EV

    def ours_scissor() -> np.ndarray:
        return spectra.scissor(energy, eps_imag, SHIFT_EV, gap_ev=gap)

    def vise_scissor() -> np.ndarray:
        return imag_shift(eps_imag.T.tolist(), energy.tolist(), gap, SHIFT_EV).T

    sc_ours, sc_vise = ours_scissor(), vise_scissor()
    sc_abs = float(np.abs(sc_ours - sc_vise).max())
    sc_time_ours = best_time(ours_scissor, repeats)
    sc_time_vise = best_time(vise_scissor, reference_repeats)

    return {
        "n_points": n_points,
        "n_components": n_components,
        "kramers_kronig": {
            "time_optabs_s": kk_time_ours,
            "time_vise_s": kk_time_vise,
            "ratio": kk_time_vise / kk_time_ours,
            "max_rel_diff": kk_rel,
            "max_rel_diff_diagonal": kk_rel_diagonal,
            "max_abs_diff": kk_abs,
            "max_rel_diff_vise_first_order_removed": kk_rel_first_order,
            "max_abs_error_vs_quadrature_xx": {
                "optabs": float(np.abs(kk_ours[samples, 0] - truth).max()),
                "vise": float(np.abs(kk_vise[samples, 0] - truth).max()),
                "n_energies": int(samples.size),
            },
            "edge_points_excluded": EDGE_POINTS,
        },
        "scissor": {
            "reference": "vise.analyzer.dielectric_function.imag_shift",
            "shift_ev": SHIFT_EV,
            "time_optabs_s": sc_time_ours,
            "time_vise_s": sc_time_vise,
            "ratio": sc_time_vise / sc_time_ours,
            "max_abs_diff": sc_abs,
            "max_eps_imag": float(np.abs(sc_vise).max()),
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
