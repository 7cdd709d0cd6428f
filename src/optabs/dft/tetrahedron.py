"""Linear tetrahedron integration of interband spectra that interpolates the matrix elements, not their ratio to Δε.

The independent-particle dielectric function of a spin-paired crystal (atomic units, e = ħ = m = 1)::

    ε2_αβ(ω) = 8π² / (Ω ω²) · ⟨ Σ_vc Re[p^α_vc p^β_cv] δ(ε_c(k) − ε_v(k) − ω) ⟩_BZ

with Ω the cell volume and ⟨⟩_BZ the Brillouin-zone average. The linear tetrahedron method
(Lehmann & Taut, phys. stat. sol. (b) 54, 469 (1972); Blöchl, Jepsen & Andersen, PRB 49, 16223
(1994)) splits the zone into tetrahedra, interpolates the transition energy Δε = ε_c − ε_v and the
matrix element |p|² linearly inside each, and integrates the δ-function exactly. The factor 1/ω²
stays outside the integral: at the photon energy it *is* 1/Δε², so nothing singular is
interpolated. GPAW's response code instead interpolates the optical pair density, ∝ p/Δε, whose
square grows steeply towards a small direct gap at Γ; on coarse grids that overweights the
corners next to the edge and puts the absorption edge (log10 α = 5) too early (issue 16: ZnSe
2.17 eV on 8x8x8 against 2.70 eV on 24x24x24).

The energy integral is done bin by bin: with I_T(x) = ∫_T f θ(x − Δε) d³k / V_T (Blöchl's
integration weights, exact for linear Δε and f), the average of ∫ f δ(ω − Δε) over the bin
[a, b] is (I_T(b) − I_T(a)) / (b − a), so the spectral weight is conserved exactly whatever the
bin width.

Grids: Γ-centred Monkhorst-Pack grids of size (n1, n2, n3), points k = (i/n1, j/n2, l/n3) in
scaled coordinates; each sub-cube of the grid is split into 6 tetrahedra around its shortest main
diagonal (Blöchl et al.), which keeps the interpolation error smallest.
"""

from __future__ import annotations

import numpy as np

#: Hartree energy in eV (CODATA 2018, as in ASE's ``units.Hartree``).
HARTREE_EV = 27.211386245988

# The 6 tetrahedra of a cube around the diagonal 0-7; corner c has offset (c & 1, c >> 1 & 1, c >> 2 & 1).
_TETS_DIAGONAL_07 = np.array([(0, 1, 3, 7), (0, 1, 5, 7), (0, 2, 3, 7), (0, 2, 6, 7), (0, 4, 5, 7), (0, 4, 6, 7)])
_CORNER_OFFSETS = np.array([(c & 1, (c >> 1) & 1, (c >> 2) & 1) for c in range(8)])


def cube_tetrahedra(size: tuple[int, int, int], reciprocal_cell: np.ndarray | None = None) -> np.ndarray:
    """The tetrahedra of a periodic (n1, n2, n3) grid: (6·n1·n2·n3, 4) flat grid indices.

    A point (i, j, l) has flat index (i·n2 + j)·n3 + l (see :func:`grid_order`). Each sub-cube is
    split into 6 tetrahedra of equal volume sharing the cube's shortest main diagonal, measured
    with ``reciprocal_cell`` (rows b1, b2, b3; any units); without it, the 0-7 diagonal.
    """
    n = np.asarray(size, dtype=int)
    if n.shape != (3,) or np.any(n < 1):
        raise ValueError(f"grid size must be three positive integers, got {size!r}")
    flip = 0
    if reciprocal_cell is not None:
        step = np.asarray(reciprocal_cell, dtype=float) / n[:, None]
        # the four main diagonals: from corner f to corner 7 ^ f, for f in 0, 1, 2, 4
        lengths = [np.linalg.norm((_CORNER_OFFSETS[7 ^ f] - _CORNER_OFFSETS[f]) @ step) for f in (0, 1, 2, 4)]
        flip = (0, 1, 2, 4)[int(np.argmin(lengths))]
    tets = _TETS_DIAGONAL_07 ^ flip  # (6, 4) corners of the cube
    origin = np.stack(np.meshgrid(*(np.arange(m) for m in n), indexing="ij"), axis=-1).reshape(-1, 1, 1, 3)
    corner = (origin + _CORNER_OFFSETS[tets][None]) % n  # (cubes, 6, 4, 3)
    flat = (corner[..., 0] * n[1] + corner[..., 1]) * n[2] + corner[..., 2]
    return flat.reshape(-1, 4)


def grid_order(kpts_scaled: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Flat grid index of each point of a Γ-centred (n1, n2, n3) grid given in scaled coordinates.

    ``kpts_scaled`` (K, 3), any order, any periodic image. Raises ValueError unless the points are
    exactly the grid (each once): a shifted grid has no Γ and no tetrahedra of this kind.
    """
    n = np.asarray(size, dtype=int)
    k = np.asarray(kpts_scaled, dtype=float)
    scaled = k * n
    ijk = np.rint(scaled)
    if k.shape != (int(n.prod()), 3) or np.abs(scaled - ijk).max() > 1e-6:
        raise ValueError(f"the k-points are not the full Γ-centred {tuple(int(m) for m in n)} grid")
    ijk = ijk.astype(int) % n
    flat = (ijk[:, 0] * n[1] + ijk[:, 1]) * n[2] + ijk[:, 2]
    if len(np.unique(flat)) != len(flat):
        raise ValueError(f"the k-points repeat grid points of the Γ-centred {tuple(int(m) for m in n)} grid")
    return flat


def integration_weights(e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Blöchl's weights w (M, 4): ∫_T f θ(x − ε) d³k / V_T = Σ_i w_i f_i for ε and f linear in T.

    ``e`` (M, 4) corner energies sorted ascending in each row; ``x`` (M,) with e1 < x < e4
    (outside that range the integral is 0 or the corner mean, and callers handle it).
    Blöchl, Jepsen & Andersen, PRB 49, 16223 (1994), appendix (without the correction term).
    Each of the three cases is evaluated on its own rows only, so no denominator is 0.
    """
    w = np.empty((len(x), 4))
    low = x <= e[:, 1]
    high = x > e[:, 2]
    mid = ~(low | high)
    w[low] = _weights_low(e[low], x[low])
    w[mid] = _weights_mid(e[mid], x[mid])
    w[high] = _weights_low(-e[high][:, ::-1], -x[high])[:, ::-1] * -1.0 + 0.25
    return w


def _weights_low(e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Case e1 < x <= e2 of :func:`integration_weights`."""
    u = x - e[:, 0]
    inv = 1.0 / (e[:, 1:] - e[:, :1])  # 1/(e2 − e1), 1/(e3 − e1), 1/(e4 − e1)
    c = 0.25 * u**3 * inv.prod(axis=1)
    first = c * (4.0 - u * inv.sum(axis=1))
    return np.concatenate([first[:, None], (c * u)[:, None] * inv], axis=1)


def _weights_mid(e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Case e2 < x <= e3 of :func:`integration_weights`."""
    e1, e2, e3, e4 = e.T
    d31, d41, d32, d42 = e3 - e1, e4 - e1, e3 - e2, e4 - e2
    u, t = x - e1, x - e2
    c1 = 0.25 * u**2 / (d41 * d31)
    c2 = 0.25 * u * t * (e3 - x) / (d41 * d32 * d31)
    c3 = 0.25 * t**2 * (e4 - x) / (d42 * d32 * d41)
    return np.stack(
        [
            c1 + (c1 + c2) * (e3 - x) / d31 + (c1 + c2 + c3) * (e4 - x) / d41,
            c1 + c2 + c3 + (c2 + c3) * (e3 - x) / d32 + c3 * (e4 - x) / d42,
            (c1 + c2) * u / d31 + (c2 + c3) * t / d32,
            (c1 + c2 + c3) * u / d41 + c3 * t / d42,
        ],
        axis=1,
    )


def bin_integrals(e: np.ndarray, f: np.ndarray, edges: np.ndarray, chunk: int | None = None) -> np.ndarray:
    """Σ_T ∫_bin dω ∫_T f δ(ω − ε) d³k / V_T for each bin of ``edges``: shape (len(edges) − 1, C).

    ``e`` (S, 4) corner energies of S tetrahedra (any order), ``f`` (S, 4, C) corner values of C
    functions, ``edges`` (B + 1,) increasing. Divide by the bin widths for the bin-averaged
    spectral density. Vectorised; the tetrahedra are expanded over the edges they straddle,
    ``chunk`` such (tetrahedron, edge) pairs at a time (default: ~130 MB of float64 work arrays).
    """
    edges = np.asarray(edges, dtype=float)
    order = np.argsort(e, axis=1)
    e = np.take_along_axis(np.asarray(e, dtype=float), order, axis=1)
    f = np.take_along_axis(np.asarray(f, dtype=float), order[:, :, None], axis=1)
    n_comp = f.shape[2]
    if chunk is None:
        chunk = 16_000_000 // (4 + 4 * n_comp)
    cumulative = np.zeros((len(edges), n_comp))
    # edges at or above a tetrahedron's top corner see its whole weight: the corner mean
    top = np.searchsorted(edges, e[:, 3], side="left")
    inside = top < len(edges)
    full = np.zeros((len(edges) + 1, n_comp))
    np.add.at(full, top[inside], f[inside].mean(axis=1))
    cumulative += np.cumsum(full, axis=0)[:-1]
    # edges strictly inside (e1, e4) see part of it
    lo = np.searchsorted(edges, e[:, 0], side="right")
    count = np.maximum(top - lo, 0)
    starts = np.concatenate([[0], np.cumsum(count)])
    first = 0
    while first < len(e):
        # tetrahedra [first, last) with at most `chunk` (tetrahedron, edge) pairs (at least one tetrahedron)
        last = max(int(np.searchsorted(starts, starts[first] + chunk, side="right")) - 1, first + 1)
        last = min(last, len(e))
        n_pairs = int(starts[last] - starts[first])
        if n_pairs:
            which = np.repeat(np.arange(first, last), count[first:last])
            edge = lo[which] + np.arange(n_pairs) - (starts[which] - starts[first])
            w = integration_weights(e[which], edges[edge])
            values = np.einsum("mi,mic->mc", w, f[which])
            for comp in range(n_comp):
                cumulative[:, comp] += np.bincount(edge, weights=values[:, comp], minlength=len(edges))
        first = last
    return np.diff(cumulative, axis=0)


def distinct_tetrahedra(tets: np.ndarray, point_class: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedra (T, 4) reduced to one per set of corner classes: (T', 4) indices and (T',) counts.

    ``point_class`` (K,) labels the grid points; two tetrahedra whose corners carry the same
    labels (in any order) are the same integral when equal labels mean equal values.
    """
    classes = np.sort(np.asarray(point_class)[tets], axis=1)
    _, first, counts = np.unique(classes, axis=0, return_index=True, return_counts=True)
    return tets[first], counts.astype(float)


def interband_eps_imag(
    transition_ev: np.ndarray,
    matrix: np.ndarray,
    size: tuple[int, int, int],
    volume_bohr3: float,
    energy_ev: np.ndarray,
    reciprocal_cell: np.ndarray | None = None,
    point_class: np.ndarray | None = None,
) -> np.ndarray:
    """ε2 (E, C) of interband transitions by linear tetrahedra, on the uniform grid ``energy_ev``.

    Args:
        transition_ev: (K, P) transition energies ε_c − ε_v in eV of P (valence, conduction)
            pairs at the K points of the full Γ-centred ``size`` grid, in flat grid order
            (:func:`grid_order`).
        matrix: (K, P, C) Re[p^α_vc p^β_cv] in atomic units (ħ/a0)² for C tensor components.
        size: the grid (n1, n2, n3).
        volume_bohr3: the cell volume Ω in bohr³.
        energy_ev: (E,) uniform photon energies in eV from 0; ε2 at ω_j is the average of the
            spectral density over [ω_j − h/2, ω_j + h/2], divided by ω_j² (ε2(0) = 0).
        reciprocal_cell: rows b1, b2, b3 (any units) to choose each cube's shortest diagonal.
        point_class: optional (K,) integers, equal for grid points whose ``transition_ev`` and
            ``matrix`` rows are equal (the irreducible point each one unfolds from). All
            tetrahedra have the same volume, so a tetrahedron's contribution depends only on the
            set of its corner values: tetrahedra whose corners have the same classes are
            integrated once, weighted by their number (:func:`distinct_tetrahedra`). Exact, and
            the cost falls by up to the order of the point group.

    Returns:
        (E, C) ε2, dimensionless, spin-paired (factor 2 for spin included).
    """
    energy = np.asarray(energy_ev, dtype=float)
    h = energy[1] - energy[0]
    if abs(energy[0]) > 1e-12 or np.abs(np.diff(energy) - h).max() > 1e-9 * max(h, 1.0):
        raise ValueError("energy_ev must be uniform and start at 0")
    delta = np.asarray(transition_ev, dtype=float)
    mat = np.asarray(matrix, dtype=float)
    tets = cube_tetrahedra(size, reciprocal_cell)
    n_tets = len(tets)
    multiplicity = np.ones(n_tets)
    if point_class is not None:
        tets, multiplicity = distinct_tetrahedra(tets, point_class)
    edges = np.concatenate([energy - h / 2, [energy[-1] + h / 2]])
    n_pairs = delta.shape[1]
    density = np.zeros((len(energy), mat.shape[2]))
    per_block = max(1, 200_000 // len(tets))
    for p0 in range(0, n_pairs, per_block):
        pairs = slice(p0, min(p0 + per_block, n_pairs))
        e = delta[:, pairs][tets].transpose(0, 2, 1).reshape(-1, 4)  # (T·p, 4)
        f = mat[:, pairs][tets].transpose(0, 2, 1, 3)  # (T, p, 4, C)
        f = (f * multiplicity[:, None, None, None]).reshape(e.shape[0], 4, -1)  # (T·p, 4, C)
        keep = e.min(axis=1) < edges[-1]
        density += bin_integrals(e[keep], f[keep], edges)
    density /= n_tets * h  # zone average (each tetrahedron 1/T of the zone) per eV
    omega = np.where(energy > 0, energy, 1.0)
    eps2 = 8.0 * np.pi**2 * HARTREE_EV**3 * density / (volume_bohr3 * omega[:, None] ** 2)
    eps2[energy <= 0] = 0.0
    return eps2
