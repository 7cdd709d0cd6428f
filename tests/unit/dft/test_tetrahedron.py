"""Linear tetrahedra (optabs.dft.tetrahedron) and the symmetry/refinement helpers of optabs.dft.gpaw.momentum.

Expected values never come from the code under test:

- Blöchl's integration weights against Monte Carlo sampling of the tetrahedron (uniform barycentric
  coordinates, Dirichlet(1, 1, 1, 1)) and, for degenerate corner energies, against closed forms
  (the energy is then a Beta-distributed sum of barycentric coordinates);
- the bin integrals against the total weight (the corner mean) and Monte Carlo per bin;
- the tetrahedra of a grid against their volumes, a Monte Carlo cover of each sub-cube and the
  diagonal lengths computed here;
- ε2 of a parabolic two-band model against the analytic result 4 M μ k(ω) / ω² (atomic units);
- the cubic refinement against the exact response of the 4-point midpoint stencil to a cosine,
  (9 cos(πm/n) − cos(3πm/n)) / 8, and against a smooth function;
- invariant tensors and rotations against the point groups built here (signed permutations, the
  hexagonal 6-fold axis worked out from the reciprocal basis by hand);
- the degenerate average against basis independence (two unitary mixes of one level).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optabs.dft.gpaw.momentum import (
    cartesian_rotations,
    cubic_refine,
    degenerate_average,
    invariant_basis,
    refine,
    symmetrize,
)
from optabs.dft.tetrahedron import (
    HARTREE_EV,
    bin_integrals,
    cube_tetrahedra,
    distinct_tetrahedra,
    grid_order,
    integration_weights,
    interband_eps_imag,
)


def _grid_points(size):
    return np.stack(np.meshgrid(*(np.arange(m) for m in size), indexing="ij"), axis=-1).reshape(-1, 3)


def _signed_permutations(keep_z=False):
    mats = []
    for perm in itertools.permutations(range(3)):
        if keep_z and perm[2] != 2:
            continue
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[np.arange(3), perm] = signs
            mats.append(m)
    return np.array(mats)


# --- integration_weights -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_integration_weights_match_monte_carlo_in_all_three_cases(seed):
    rng = np.random.default_rng(seed)
    e = np.sort(rng.uniform(-1.0, 2.0, 4))
    f_corner = rng.uniform(0.0, 1.0, 4)
    lam = rng.dirichlet(np.ones(4), size=1_000_000)  # uniform points of the tetrahedron
    eps = lam @ e
    f = lam @ f_corner
    # two x in each case: e1 < x <= e2, e2 < x <= e3, e3 < x < e4
    x = np.concatenate([e[k] + np.array([0.3, 0.8]) * (e[k + 1] - e[k]) for k in range(3)])
    w = integration_weights(np.tile(e, (len(x), 1)), x)
    for wx, xx in zip(w, x):
        below = eps < xx
        # Σ w_i f_i = ∫ f θ(x − ε) / V; MC standard error ≲ 5e-4 (f in [0, 1]); measured ≤ 2.7e-4
        assert wx @ f_corner == pytest.approx(np.mean(f * below), abs=3e-3)
        # the weights themselves are ∫ λ_i θ(x − ε) / V (λ_i in [0, 1]); measured ≤ 4.7e-4
        np.testing.assert_allclose(wx, (lam * below[:, None]).mean(axis=0), atol=1.5e-3)


def test_integration_weights_go_from_zero_to_the_corner_mean_and_are_continuous_between_cases():
    e = np.array([[-0.7, 0.1, 0.4, 1.3]])
    np.testing.assert_allclose(integration_weights(e, np.array([-0.7 + 1e-9]))[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(integration_weights(e, np.array([1.3 - 1e-9]))[0], 0.25, atol=1e-12)
    for boundary in (0.1, 0.4):  # the weights are continuous in x: O(δ) steps across e2 and e3
        below, above = integration_weights(np.repeat(e, 2, axis=0), np.array([boundary - 1e-7, boundary + 1e-7]))
        np.testing.assert_allclose(below, above, atol=1e-6)


def _beta_weights(pattern, x):
    """Exact weights E[λ_i θ(x − ε)] for unit energy patterns (λ uniform in the tetrahedron)."""
    if pattern == (0, 0, 1, 1):  # ε = λ3 + λ4 ~ Beta(2, 2), E[λ1 | ε] = (1 − ε)/2
        low = 3 * (x**2 / 2 - 2 * x**3 / 3 + x**4 / 4)
        high = 3 * (x**3 / 3 - x**4 / 4)
        return np.array([low, low, high, high]), 3 * x**2 - 2 * x**3
    if pattern == (0, 1, 1, 1):  # ε = 1 − λ1, λ1 ~ Beta(1, 3)
        first = x**3 - 3 * x**4 / 4
        return np.array([first, x**4 / 4, x**4 / 4, x**4 / 4]), x**3
    if pattern == (0, 0, 0, 1):  # ε = λ4 ~ Beta(1, 3)
        volume = 1 - (1 - x) ** 3
        last = 3 * (x**2 / 2 - 2 * x**3 / 3 + x**4 / 4)
        rest = (volume - last) / 3
        return np.array([rest, rest, rest, last]), volume
    raise AssertionError(pattern)


@pytest.mark.parametrize("pattern", [(0, 0, 1, 1), (0, 1, 1, 1), (0, 0, 0, 1)])
@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.77, 0.98])
def test_integration_weights_with_degenerate_corners_match_the_closed_form(pattern, x):
    offset, scale = -0.4, 2.5  # e = offset + scale·pattern, x likewise
    e = offset + scale * np.array([pattern], dtype=float)
    w = integration_weights(e, np.array([offset + scale * x]))[0]
    expected, volume = _beta_weights(pattern, x)
    assert np.all(np.isfinite(w))
    assert w.sum() == pytest.approx(volume, abs=1e-12)
    np.testing.assert_allclose(w, expected, atol=1e-12)


def test_integration_weights_at_a_doubly_degenerate_middle_energy_give_half_the_volume():
    # e = [0, 1, 1, 2] and x = 1: the map λ1 <-> λ4 sends ε to 2 − ε, so half the tetrahedron lies below
    w = integration_weights(np.array([[0.0, 1.0, 1.0, 2.0]]), np.array([1.0]))[0]
    assert np.all(np.isfinite(w))
    assert w.sum() == pytest.approx(0.5, abs=1e-12)
    assert w[1] == pytest.approx(w[2], abs=1e-12)


# --- bin_integrals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_comp", [1, 3])
def test_bin_integrals_conserve_the_total_weight(n_comp):
    rng = np.random.default_rng(7)
    e = rng.uniform(0.0, 5.0, (500, 4))  # corners in any order
    f = rng.normal(size=(500, 4, n_comp))
    edges = np.linspace(-0.1, 5.1, 37)
    total = bin_integrals(e, f, edges).sum(axis=0)
    np.testing.assert_allclose(total, f.mean(axis=1).sum(axis=0), rtol=0, atol=1e-10)
    # the same in small chunks of (tetrahedron, edge) pairs
    np.testing.assert_allclose(bin_integrals(e, f, edges, chunk=50).sum(axis=0), total, atol=1e-10)


def test_bin_integrals_ignore_tetrahedra_outside_the_edges():
    e = np.array([[-3.0, -2.5, -2.2, -2.0], [7.0, 7.5, 8.0, 9.0]])
    f = np.ones((2, 4, 2))
    np.testing.assert_array_equal(bin_integrals(e, f, np.linspace(0.0, 5.0, 11)), 0.0)


def test_bin_integrals_of_one_unsorted_tetrahedron_match_monte_carlo_per_bin():
    rng = np.random.default_rng(11)
    e = np.array([1.7, 0.2, 2.9, 1.1])  # not sorted: the corner values travel with their energies
    f = rng.uniform(0.0, 1.0, (4, 2))
    edges = np.linspace(0.0, 3.0, 7)
    lam = rng.dirichlet(np.ones(4), size=1_000_000)
    eps, values = lam @ e, lam @ f
    which = np.digitize(eps, edges) - 1
    expected = np.array([(values * (which == b)[:, None]).mean(axis=0) for b in range(len(edges) - 1)])
    # measured 3.0e-4 (MC standard error ≲ 5e-4)
    np.testing.assert_allclose(bin_integrals(e[None], f[None], edges), expected, atol=2e-3)


# --- cube_tetrahedra -----------------------------------------------------------------------------------------------


def _unwrapped_corners(tets, size):
    """(T, 4, 3) integer corners of each tetrahedron relative to the origin of its sub-cube (row // 6)."""
    n = np.array(size)
    corner = np.stack([tets // (n[1] * n[2]), (tets // n[2]) % n[1], tets % n[2]], axis=-1)
    origin = _grid_points(size)[np.arange(len(tets)) // 6]
    return (corner - origin[:, None, :]) % n


def _metric_shortening(sign):
    """Step vectors (rows) with the diagonal Σ s_i b_i of ``sign`` clearly the shortest: S = I − ŝŝᵀ/2."""
    s = np.array(sign, dtype=float) / np.sqrt(3.0)
    return np.eye(3) - 0.5 * np.outer(s, s)


DIAGONALS = [(1, 1, 1), (-1, 1, 1), (1, -1, 1), (1, 1, -1)]


@pytest.mark.parametrize("size", [(3, 4, 5), (4, 4, 4)])
@pytest.mark.parametrize("diagonal", [None, *DIAGONALS])
def test_cube_tetrahedra_tile_every_sub_cube_with_six_equal_tetrahedra(size, diagonal):
    n = np.array(size)
    recip = None if diagonal is None else n[:, None] * _metric_shortening(diagonal)
    tets = cube_tetrahedra(size, recip)
    n_points = int(n.prod())
    assert tets.shape == (6 * n_points, 4)
    # every grid point is a corner of 24 tetrahedra (2 sub-cubes on their diagonal x 6, 6 others x 2)
    np.testing.assert_array_equal(np.bincount(tets.ravel(), minlength=n_points), 24)
    rel = _unwrapped_corners(tets, size)
    assert set(np.unique(rel)) <= {0, 1}  # the corners lie in their own sub-cube
    edges = (rel[:, 1:] - rel[:, :1]).astype(float)  # (T, 3, 3) in grid steps
    # each has 1/6 of its sub-cube's volume, in grid steps and in Cartesian coordinates
    np.testing.assert_allclose(np.abs(np.linalg.det(edges)), 1.0, atol=1e-12)
    if recip is not None:
        step = recip / n[:, None]
        volume = np.abs(np.linalg.det(edges @ step)) / 6
        np.testing.assert_allclose(volume, abs(np.linalg.det(recip)) / (6 * n_points), rtol=1e-12)
    # the six tetrahedra of a sub-cube cover it once: random points lie in exactly one
    rng = np.random.default_rng(0)
    points = rng.uniform(0.0, 1.0, (2000, 3))
    for cube in (0, n_points - 1):
        inside = np.zeros(len(points), dtype=int)
        for t in rel[6 * cube : 6 * cube + 6]:
            bary = np.linalg.solve((t[1:] - t[0]).T.astype(float), (points - t[0]).T).T
            inside += (bary >= 0).all(axis=1) & (bary.sum(axis=1) <= 1)
        np.testing.assert_array_equal(inside, 1)


# grid steps (rows) with a clearly shortest main diagonal, and sizes with which the whole reciprocal
# vectors n_i·step_i would have another one shortest (found by a random search)
SKEWED_STEPS = [
    ((1, 1, 1), [[1.0, -0.4, -0.4], [-0.2, 0.7, 0.2], [0.0, 0.1, 1.1]], (2, 2, 6)),
    ((-1, 1, 1), [[1.2, 0.3, 0.3], [0.3, 0.8, -0.1], [0.0, 0.4, 0.8]], (2, 3, 6)),
    ((1, -1, 1), [[0.7, 0.4, 0.1], [0.3, 0.9, 0.2], [0.0, 0.2, 0.7]], (8, 3, 6)),
    ((1, 1, -1), [[0.9, 0.1, 0.1], [0.1, 0.7, 0.1], [0.2, 0.2, 1.1]], (4, 7, 2)),
]


def _shortest(step):
    lengths = [np.linalg.norm(np.array(s) @ step) for s in DIAGONALS]
    assert sorted(lengths)[1] > 1.05 * min(lengths)  # a clear winner
    return DIAGONALS[int(np.argmin(lengths))]


@pytest.mark.parametrize("diagonal, step, size", SKEWED_STEPS)
def test_cube_tetrahedra_share_the_shortest_main_diagonal_measured_in_grid_steps(diagonal, step, size):
    recip = np.array(size)[:, None] * np.array(step)  # rows b_i = n_i · step_i
    assert _shortest(np.array(step)) == diagonal
    assert _shortest(recip) != diagonal  # the whole reciprocal vectors would pick another one
    tets = cube_tetrahedra(size, recip)
    rel = _unwrapped_corners(tets, size)
    pair_diffs = rel[:, :, None, :] - rel[:, None, :, :]  # (T, 4, 4, 3)
    has_diagonal = (pair_diffs == np.array(diagonal)).all(-1) | (pair_diffs == -np.array(diagonal)).all(-1)
    assert has_diagonal.any(axis=(1, 2)).all()
    # and the 6 tetrahedra of each sub-cube tile it (each 1/6 of its volume; every grid point in 24)
    np.testing.assert_allclose(np.abs(np.linalg.det((rel[:, 1:] - rel[:, :1]).astype(float))), 1.0, atol=1e-12)
    np.testing.assert_array_equal(np.bincount(tets.ravel(), minlength=int(np.prod(size))), 24)


def test_cube_tetrahedra_refuse_a_bad_size():
    with pytest.raises(ValueError):
        cube_tetrahedra((4, 0, 4))
    with pytest.raises(ValueError):
        cube_tetrahedra((4, 4))


# --- grid_order ----------------------------------------------------------------------------------------------------


def test_grid_order_maps_a_shuffled_grid_with_periodic_images_to_flat_indices():
    size = (3, 4, 5)
    rng = np.random.default_rng(3)
    ijk = _grid_points(size)
    order = rng.permutation(len(ijk))
    scaled = ijk[order] / np.array(size)
    scaled[::3] += rng.integers(-2, 3, (len(scaled[::3]), 3))  # other periodic images of some points
    flat = grid_order(scaled, size)
    expected = (ijk[order, 0] * size[1] + ijk[order, 1]) * size[2] + ijk[order, 2]
    np.testing.assert_array_equal(flat, expected)
    np.testing.assert_array_equal(np.sort(flat), np.arange(len(ijk)))


def test_grid_order_refuses_shifted_repeated_or_incomplete_grids():
    size = (4, 4, 4)
    ijk = _grid_points(size).astype(float)
    with pytest.raises(ValueError):
        grid_order((ijk + 0.5) / 4, size)  # Monkhorst-Pack without Γ
    repeated = ijk / 4
    repeated[5] = repeated[6] + np.array([1.0, 0.0, -1.0])  # the same point twice, as another image
    with pytest.raises(ValueError):
        grid_order(repeated, size)
    with pytest.raises(ValueError):
        grid_order(ijk[:-1] / 4, size)


# --- interband_eps_imag: parabolic two-band model ------------------------------------------------------------------


def test_interband_eps_imag_of_a_parabolic_band_matches_the_analytic_result():
    # simple cubic, a = 10 bohr: zone |k_i| <= π/a; Δε = Eg + k²/(2μ) (hartree, k the minimal image);
    # component 0: M constant; component 1: M = M1·k² (the matrix element is interpolated too).
    # ε2 = 8π²/(Ω ω²) · Ω/(2π)³ ∫ d³k M δ(ω − Δε) = 4 μ k(ω) M(k(ω)) / ω², k(ω) = sqrt(2μ(ω − Eg)).
    a, mu, eg_ev, m0, m1, n = 10.0, 0.5, 1.0, 0.7, 30.0, 24
    k = 2 * np.pi / a * (_grid_points((n, n, n)) / n - np.rint(_grid_points((n, n, n)) / n))
    k2 = (k**2).sum(axis=1)
    delta = eg_ev + k2 / (2 * mu) * HARTREE_EV
    matrix = np.stack([np.full_like(k2, m0), m1 * k2], axis=-1)[:, None, :]  # (K, 1 pair, 2)
    window_ev = (np.pi / a) ** 2 / (2 * mu) * HARTREE_EV  # the sphere stays inside the zone below Eg + this
    h = 0.01
    energy = np.arange(0.0, eg_ev + window_ev + 0.3, h)
    eps2 = interband_eps_imag(delta[:, None], matrix, (n, n, n), a**3, energy, reciprocal_cell=np.eye(3) * 2 * np.pi / a)
    assert eps2.shape == (len(energy), 2)

    omega, gap = energy / HARTREE_EV, eg_ev / HARTREE_EV
    kw = np.sqrt(2 * mu * np.clip(omega - gap, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        analytic = np.stack([4 * mu * kw * m0 / omega**2, 4 * mu * kw * m1 * kw**2 / omega**2], axis=-1)
    inside = (energy > eg_ev + 0.3 * window_ev) & (energy < eg_ev + 0.8 * window_ev)
    # measured: both components within 0.86 %, always below (the tetrahedra's linear Δε lies above the parabola)
    np.testing.assert_allclose(eps2[inside], analytic[inside], rtol=0.02)
    np.testing.assert_array_equal(eps2[energy < eg_ev - h], 0.0)
    assert eps2[0].tolist() == [0.0, 0.0]


def _cubic_group_classes(n):
    """(K,) class of each point of an n³ grid under the 48 operations of a simple cubic lattice."""
    points = _grid_points((n, n, n))
    flats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            image = (points[:, perm] * np.array(signs)) % n
            flats.append((image[:, 0] * n + image[:, 1]) * n + image[:, 2])
    return np.min(flats, axis=0)


def test_tetrahedra_related_by_symmetry_are_integrated_once_with_the_same_result():
    # a cubic-symmetric band pair (values depend on the sorted |k_i|) on a 6³ grid: the cubic
    # group's 48 operations make most tetrahedra copies of a few; the reduction must be exact
    n = 6
    k = _grid_points((n, n, n))
    k = np.minimum(k, n - k)  # |k_i| in grid steps
    rng = np.random.default_rng(3)
    table = rng.uniform(1.0, 3.0, size=(n, n, n))
    invariant = table[tuple(np.sort(k, axis=1).T)]  # f(sorted |k|): invariant under the cubic group
    delta = np.stack([invariant, 1.5 * invariant + 0.2], axis=1)  # (K, 2 pairs), eV
    matrix = np.stack([invariant**2, np.sqrt(invariant)], axis=1)[:, :, None] * [1.0, 0.3]  # (K, 2, 2)
    energy = np.arange(0.0, 6.5, 0.02)
    classes = _cubic_group_classes(n)
    tets = cube_tetrahedra((n, n, n))
    reduced, counts = distinct_tetrahedra(tets, classes)
    assert counts.sum() == len(tets) and len(reduced) < len(tets) / 8
    full = interband_eps_imag(delta, matrix, (n, n, n), 200.0, energy)
    fast = interband_eps_imag(delta, matrix, (n, n, n), 200.0, energy, point_class=classes)
    assert full.max() > 0.1
    np.testing.assert_allclose(fast, full, rtol=1e-10, atol=1e-12 * full.max())
    # labels that merge points with different values are not a symmetry: the result changes
    wrong = interband_eps_imag(delta, matrix, (n, n, n), 200.0, energy, point_class=classes // 2)
    assert np.abs(wrong - full).max() > 1e-3 * full.max()


def test_interband_eps_imag_refuses_a_non_uniform_energy_grid():
    size = (2, 2, 2)
    delta, matrix = np.ones((8, 1)), np.ones((8, 1, 1))
    with pytest.raises(ValueError):
        interband_eps_imag(delta, matrix, size, 100.0, np.array([0.0, 0.1, 0.3]))
    with pytest.raises(ValueError):
        interband_eps_imag(delta, matrix, size, 100.0, np.array([0.1, 0.2, 0.3]))


# --- cubic_refine / refine -----------------------------------------------------------------------------------------


def _gain(m, n):
    """Exact factor the stencil (−f[i−1] + 9 f[i] + 9 f[i+1] − f[i+2]) / 16 puts on cos/sin(2π m x) at a midpoint."""
    return (9 * np.cos(np.pi * m / n) - np.cos(3 * np.pi * m / n)) / 8


def test_cubic_refine_keeps_the_grid_points_and_damps_a_harmonic_by_the_stencils_exact_factor():
    size = (8, 6, 4)
    freq = (1, 2, 1)

    def harmonic(x):
        return (
            np.cos(2 * np.pi * freq[0] * x[:, 0])
            * np.sin(2 * np.pi * freq[1] * x[:, 1] + 0.3)
            * np.cos(2 * np.pi * freq[2] * x[:, 2] - 0.5)
        )

    coarse = harmonic(_grid_points(size) / np.array(size))
    fine = cubic_refine(coarse, size)
    fine_size = tuple(2 * m for m in size)
    ijk = _grid_points(fine_size)
    assert fine.shape == (8 * len(coarse),)
    even = (ijk % 2 == 0).all(axis=1)
    np.testing.assert_array_equal(fine[even], coarse)  # flat order of the coarse grid is kept too
    factor = np.prod([np.where(ijk[:, a] % 2 == 1, _gain(freq[a], size[a]), 1.0) for a in range(3)], axis=0)
    np.testing.assert_allclose(fine, factor * harmonic(ijk / np.array(fine_size)), atol=1e-12)


def test_cubic_refine_interpolates_a_smooth_periodic_function_and_keeps_trailing_dimensions():
    size = (8, 8, 8)

    def smooth(x):
        return np.cos(2 * np.pi * x[:, 0]) * np.sin(2 * np.pi * x[:, 1]) + np.cos(2 * np.pi * x[:, 2])

    coarse = smooth(_grid_points(size) / 8)
    values = np.stack([coarse, 2 * coarse, -coarse, coarse + 1], axis=-1).reshape(-1, 2, 2)
    fine = cubic_refine(values, size)
    assert fine.shape == (8 * 512, 2, 2)
    exact = smooth(_grid_points((16, 16, 16)) / 16)
    # measured max error 0.022 (the stencil's factor on cos(2πx) at 8 points per period is 0.9915)
    np.testing.assert_allclose(fine[:, 0, 0], exact, atol=0.03)
    assert np.abs(fine[:, 0, 0] - exact).max() > 1e-3  # not trivially exact: the 8x8x8 grid is coarse
    np.testing.assert_allclose(fine[:, 0, 1], 2 * fine[:, 0, 0], atol=1e-12)
    np.testing.assert_allclose(fine[:, 1, 1], fine[:, 0, 0] + 1, atol=1e-12)


def test_cubic_refine_repeats_an_axis_of_one_point():
    size = (4, 4, 1)
    coarse = np.cos(2 * np.pi * _grid_points(size)[:, 0] / 4)
    fine = cubic_refine(coarse, size).reshape(8, 8, 2)
    np.testing.assert_array_equal(fine[..., 0], fine[..., 1])


def test_refine_by_four_is_cubic_refine_twice():
    size = (3, 4, 5)
    values = np.random.default_rng(5).normal(size=(60, 2))
    refined, new_size = refine(values, size, 4)
    assert new_size == (12, 16, 20)
    np.testing.assert_array_equal(refined, cubic_refine(cubic_refine(values, size), (6, 8, 10)))
    same, same_size = refine(values, size, 1)
    assert same_size == size
    np.testing.assert_array_equal(same, values)


# --- invariant_basis / symmetrize ----------------------------------------------------------------------------------


def _projector(basis):
    return basis @ basis.T


def test_invariant_basis_of_the_cubic_group_is_the_identity_tensor():
    basis = invariant_basis(_signed_permutations())
    assert basis.shape == (6, 1)
    np.testing.assert_allclose(np.abs(basis[:, 0]), [3**-0.5] * 3 + [0.0] * 3, atol=1e-12)


def test_invariant_basis_of_the_tetragonal_group_has_two_components():
    rotations = _signed_permutations(keep_z=True)
    assert len(rotations) == 16
    basis = invariant_basis(rotations)
    assert basis.shape == (6, 2)
    expected = np.array([[2**-0.5, 2**-0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]]).T  # xx + yy, zz
    np.testing.assert_allclose(_projector(basis), _projector(expected), atol=1e-12)


@pytest.mark.parametrize(
    "rotations, dimension",
    [
        (np.eye(3)[None], 6),
        (np.array([np.eye(3), -np.eye(3)]), 6),  # inversion leaves every tensor unchanged
        (np.array([np.diag(s) for s in itertools.product((1, -1), repeat=3)]), 3),  # orthorhombic: diagonal
        (np.array([np.eye(3), np.diag([-1.0, 1.0, -1.0])]), 4),  # monoclinic, 2-fold axis y: xx yy zz xz
    ],
)
def test_invariant_basis_is_orthonormal_with_the_groups_dimension(rotations, dimension):
    basis = invariant_basis(rotations)
    assert basis.shape == (6, dimension)
    np.testing.assert_allclose(basis.T @ basis, np.eye(dimension), atol=1e-12)


def test_symmetrize_by_the_cubic_group_leaves_the_isotropic_part():
    rng = np.random.default_rng(2)
    tensors = rng.normal(size=(5, 6))  # xx yy zz xy yz xz
    sym = symmetrize(tensors, _signed_permutations())
    trace = tensors[:, :3].sum(axis=1)
    np.testing.assert_allclose(sym[:, :3], np.repeat(trace[:, None] / 3, 3, axis=1), atol=1e-12)
    np.testing.assert_allclose(sym[:, 3:], 0.0, atol=1e-12)
    tetragonal = symmetrize(tensors, _signed_permutations(keep_z=True))
    np.testing.assert_allclose(tetragonal[:, 0], (tensors[:, 0] + tensors[:, 1]) / 2, atol=1e-12)
    np.testing.assert_allclose(tetragonal[:, 1], (tensors[:, 0] + tensors[:, 1]) / 2, atol=1e-12)
    np.testing.assert_allclose(tetragonal[:, 2], tensors[:, 2], atol=1e-12)
    np.testing.assert_allclose(tetragonal[:, 3:], 0.0, atol=1e-12)


# --- cartesian_rotations -------------------------------------------------------------------------------------------

A_HEX, C_HEX = 3.0, 5.0
HEX_CELL = np.array([[A_HEX, 0.0, 0.0], [-A_HEX / 2, A_HEX * np.sqrt(3) / 2, 0.0], [0.0, 0.0, C_HEX]])
# b1 = (2π/a)(1, 1/√3, 0) at 30°, b2 = (2π/a)(0, 2/√3, 0) at 90°, equal lengths: a 60° turn about z takes
# b1 to b2 and b2 to b2 − b1 (at 150°), so on scaled k (columns: images of the basis vectors):
U_SIXFOLD = np.array([[0, -1, 0], [1, 1, 0], [0, 0, 1]])


def _rotation_z(degrees):
    t = np.radians(degrees)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0.0, 0.0, 1.0]])


def test_cartesian_rotations_turn_the_hexagonal_six_fold_axis_into_a_60_degree_rotation():
    recip = 2 * np.pi * np.linalg.inv(HEX_CELL).T  # rows b_i; k_cart = Bᵀ k_scaled
    # the hand-derived U is the convention's U = B⁻ᵀ R Bᵀ
    np.testing.assert_allclose(np.linalg.inv(recip.T) @ _rotation_z(60) @ recip.T, U_SIXFOLD, atol=1e-12)
    powers = np.array([np.linalg.matrix_power(U_SIXFOLD, p) for p in range(6)])
    rot = cartesian_rotations(powers, HEX_CELL)
    assert rot.shape == (6, 3, 3)
    for p in range(6):
        np.testing.assert_allclose(rot[p], _rotation_z(60 * p), atol=1e-12)
    np.testing.assert_allclose(cartesian_rotations(-np.eye(3, dtype=int)[None], HEX_CELL)[0], -np.eye(3), atol=1e-12)


def test_cartesian_rotations_of_the_hexagonal_group_give_two_invariant_components():
    mirror_z = np.diag([1, 1, -1])
    group = [np.linalg.matrix_power(U_SIXFOLD, p) @ m for p in range(6) for m in (np.eye(3, dtype=int), mirror_z)]
    rot = cartesian_rotations(np.array(group), HEX_CELL)
    basis = invariant_basis(rot)
    expected = np.array([[2**-0.5, 2**-0.5, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]]).T  # xx + yy, zz
    np.testing.assert_allclose(_projector(basis), _projector(expected), atol=1e-12)


def test_cartesian_rotations_refuse_an_operation_the_cell_does_not_have():
    shear = np.array([[[1, 1, 0], [0, 1, 0], [0, 0, 1]]])
    with pytest.raises(ValueError):
        cartesian_rotations(shear, HEX_CELL)
    # a 90° turn is a symmetry of a square lattice but not of the hexagonal one
    with pytest.raises(ValueError):
        cartesian_rotations(np.array([[[0, -1, 0], [1, 0, 0], [0, 0, 1]]]), HEX_CELL)


# --- degenerate_average --------------------------------------------------------------------------------------------


def _components(p_vc):
    """(v, c, 6) Re[p^α p^β*] of momentum vectors p (v, c, 3), order xx yy zz xy yz xz."""
    pairs = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2))
    return np.stack([(p_vc[..., a] * p_vc[..., b].conj()).real for a, b in pairs], axis=-1)


def _unitary(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return q * (np.diag(r) / np.abs(np.diag(r)))


def test_degenerate_average_removes_the_arbitrary_split_within_a_level():
    rng = np.random.default_rng(4)
    valence = np.array([-2.0, -1.0, -1.0 + 2e-4])  # levels: {0}, {1, 2} (within the default 1e-3 eV)
    conduction = np.array([1.0, 1.5, 1.5, 1.5])  # levels: {0}, {1, 2, 3}
    p = rng.normal(size=(3, 4, 3)) + 1j * rng.normal(size=(3, 4, 3))  # p_vc, vector index last
    mixed = []
    for _ in range(2):  # two arbitrary bases of each degenerate level
        uv, uc = np.eye(3, dtype=complex), np.eye(4, dtype=complex)
        uv[1:, 1:] = _unitary(rng, 2)
        uc[1:, 1:] = _unitary(rng, 3)
        mixed.append(_components(np.einsum("vw,wdx,cd->vcx", uv, p, uc.conj())))
    a, b = mixed
    assert np.abs(a[1:, 0] - b[1:, 0]).max() > 1e-2  # the per-state split depends on the basis
    matrix = np.stack([a, b])  # (k = 2, v, c, 6): the two bases as two k-points with the same levels
    out = degenerate_average(matrix, np.stack([valence, valence]), np.stack([conduction, conduction]))
    assert out.shape == matrix.shape
    np.testing.assert_allclose(out[0], out[1], atol=1e-12)  # basis independent
    for m, avg in zip(matrix, out):
        # every (valence level, conduction level) block keeps its sum, spread evenly over its pairs
        for lv, lc in itertools.product(([0], [1, 2]), ([0], [1, 2, 3])):
            block = m[np.ix_(lv, lc)].reshape(-1, 6)
            np.testing.assert_allclose(
                avg[np.ix_(lv, lc)].reshape(-1, 6), np.broadcast_to(block.mean(axis=0), block.shape), atol=1e-12
            )
        np.testing.assert_allclose(avg[0, 0], m[0, 0], rtol=1e-14, atol=0)  # the non-degenerate pair untouched


def test_degenerate_average_keeps_levels_further_apart_than_the_tolerance():
    rng = np.random.default_rng(6)
    matrix = rng.uniform(size=(1, 2, 2, 6))
    valence, conduction = np.array([[-1.0, -0.99]]), np.array([[1.0, 1.02]])
    np.testing.assert_allclose(degenerate_average(matrix, valence, conduction, tolerance_ev=1e-3), matrix, atol=1e-14)
    wide = degenerate_average(matrix, valence, conduction, tolerance_ev=0.05)
    np.testing.assert_allclose(wide[0], np.broadcast_to(matrix[0].mean(axis=(0, 1)), (2, 2, 6)), atol=1e-12)
