"""optabs.interpret: Ward clusters (deterministic, K checks, ties) and the clustering comparison."""

from __future__ import annotations

import logging
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy.cluster.hierarchy import dendrogram

from optabs.chemistry import element_matrix
from optabs.errors import InputError
from optabs.interpret import (
    ClusterResult,
    adjusted_rand_index,
    compare_clusterings,
    feature_matrix,
    mean_pairwise_jaccard,
    ward_clusters,
)
from optabs.spectra import edge_integral


def blobs(n_blobs: int = 5, per_blob: int = 8, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs (centres 20 apart, noise 0.5) and their true group."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 20.0, (n_blobs, dim))
    group = np.repeat(np.arange(n_blobs), per_blob)
    return centres[group] + rng.normal(0.0, 0.5, (group.size, dim)), group


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labelings group the items identically (labels may differ)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


# ---------------------------------------------------------------- ward_clusters


def test_ward_finds_exactly_k_well_separated_blobs():
    x, group = blobs()
    result = ward_clusters(x, 5)
    assert isinstance(result, ClusterResult)
    assert result.n_clusters == result.k_requested == 5
    assert sorted(np.unique(result.labels)) == [1, 2, 3, 4, 5]
    assert same_partition(result.labels, group)
    assert result.linkage.shape == (len(x) - 1, 4)
    assert sorted(result.order) == list(range(len(x)))
    assert result.sizes.tolist() == np.bincount(result.labels)[1:].tolist()


def test_ward_is_deterministic_and_independent_of_row_order():
    x, _ = blobs(n_blobs=6, per_blob=7, seed=3)
    first, second = ward_clusters(x, 6), ward_clusters(x, 6)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.linkage, second.linkage)

    rng = np.random.default_rng(11)
    for _ in range(3):
        perm = rng.permutation(len(x))
        permuted = ward_clusters(x[perm], 6)
        # the same partition, and even the same numbers: numbering is a property of the data
        assert same_partition(permuted.labels, first.labels[perm])
        np.testing.assert_array_equal(permuted.labels, first.labels[perm])


def test_ward_numbers_clusters_left_to_right_along_the_dendrogram():
    x, _ = blobs(n_blobs=7, per_blob=5, seed=5)
    result = ward_clusters(x, 7)
    along = result.labels[result.order]
    assert np.all(np.diff(along) >= 0), "cluster 1 must be leftmost, then 2, ..."
    assert along[0] == 1 and along[-1] == 7
    # scipy draws the canonical linkage with the leaves in `order`
    drawn = dendrogram(result.linkage, no_plot=True)["leaves"]
    assert drawn == result.order.tolist()


def test_ward_on_random_data_is_stable_under_permutation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 16))
    base = ward_clusters(x, 10)
    perm = rng.permutation(120)
    np.testing.assert_array_equal(ward_clusters(x[perm], 10).labels, base.labels[perm])


def test_ward_k_larger_than_m_raises_a_clear_error():
    x, _ = blobs(n_blobs=2, per_blob=3)
    with pytest.raises(InputError, match=r"K=7 is larger than the number of materials \(M=6\)"):
        ward_clusters(x, 7)
    with pytest.raises(InputError, match="at least 1"):
        ward_clusters(x, 0)


def test_ward_rejects_bad_features():
    with pytest.raises(InputError, match="2-D"):
        ward_clusters(np.zeros(5), 2)
    x = np.ones((4, 3))
    x[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN or inf"):
        ward_clusters(x, 2)


def test_ward_ties_give_fewer_clusters_and_say_so(caplog):
    # three identical materials merge at height 0 in two tied merges: K = 4 cannot be cut, maxclust gives 3
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [0.0, 9.0]])
    with caplog.at_level(logging.WARNING, logger="optabs.interpret"):
        result = ward_clusters(x, 4)
    assert result.k_requested == 4
    assert result.n_clusters == 3
    assert sorted(np.unique(result.labels)) == [1, 2, 3]
    assert len(set(result.labels[:3])) == 1
    assert "gave 3 clusters, not the 4 asked for" in caplog.text
    # equidistant (not identical) materials: the unit square's two sides tie at the same height
    square = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [10.0, 10.0]])
    tied = ward_clusters(square, 4)
    assert (tied.k_requested, tied.n_clusters) == (4, 3)


def test_ward_k_equals_m_and_single_material():
    x, _ = blobs(n_blobs=2, per_blob=3)
    assert sorted(ward_clusters(x, 6).labels) == [1, 2, 3, 4, 5, 6]
    one = ward_clusters(np.ones((1, 4)), 1)
    assert one.labels.tolist() == [1] and one.n_clusters == 1


def test_standardize_removes_the_scale_of_columns():
    x, _ = blobs(n_blobs=4, per_blob=6, dim=3, seed=8)
    scaled = x * np.array([1.0, 1000.0, 0.001])
    a = ward_clusters(x, 4, standardize=True)
    b = ward_clusters(scaled, 4, standardize=True)
    assert a.standardized and b.standardized
    assert same_partition(a.labels, b.labels)
    # raw: the 1000x column dominates the distances (the study's choice: no standardisation)
    assert not ward_clusters(scaled, 4).standardized


def test_cluster_table_and_feature_matrix():
    emb = pd.DataFrame({
        "material_id": ["b", "a", "c", "a", "b", "c"],
        "layer": ["alignn_0"] * 3 + ["readout"] * 3,
        "vector": [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0], [9.0], [8.0], [7.0]],
    })
    x = feature_matrix(emb, "alignn_0", ["a", "b", "c"])
    np.testing.assert_array_equal(x, [[1, 1], [2, 2], [3, 3]])
    with pytest.raises(InputError, match="no embedding for 1 materials"):
        feature_matrix(emb, "alignn_0", ["a", "z"])
    with pytest.raises(InputError, match="gcn_0"):
        feature_matrix(emb, "gcn_0", ["a"])
    table = ward_clusters(x, 2).table(["a", "b", "c"])
    assert list(table.columns) == ["material_id", "cluster"]


# ---------------------------------------------------------------- statistics


def test_edge_integral_of_a_step():
    energy = np.round(np.arange(0, 301) * 0.01, 10)
    spectrum = np.where(energy >= 1.0, 3.0, 2.0)  # one decade above the floor from 1 eV on
    out = edge_integral(energy, np.stack([spectrum, spectrum]), [1.0, np.nan], window_ev=2.0, floor=2.0)
    assert out[0] == pytest.approx(2.0, abs=1e-9)  # 200 points x 0.01 eV x 1 decade
    assert np.isnan(out[1])
    half = edge_integral(energy, spectrum[None], [2.5], window_ev=2.0)
    assert half[0] == pytest.approx(0.51, abs=1e-9)  # only 2.50..3.00 lies on the grid


# ---------------------------------------------------------------- compare_clusterings on a toy set

SPECTRA = np.array([[0, 0], [2, 2], [1, 3], [5, 5], [7, 9], [0, 1]], dtype=float)
ELEMENTS = [{"Na", "V", "O"}, {"Na", "Cr", "O"}, {"K", "V", "O"}, {"Mg", "O"}, {"Mg", "Si", "O"}, {"Zn", "O"}]
ENVS = ["tetrahedral", "tetrahedral", "octahedral", "octahedral", "unknown", "tetrahedral"]
LABELS_A = np.array([1, 1, 1, 2, 2, 3])  # {0,1,2} {3,4} {5}: material 5 is a singleton
LABELS_B = np.array([0, 1, 2, 1, 2, 1])  # {0} {1,3,5} {2,4}: material 0 is a singleton


def test_compare_clusterings_matches_hand_computed_values():
    out = compare_clusterings(SPECTRA, ELEMENTS, ENVS, LABELS_A, LABELS_B, names=("features", "spectra"))
    a, b = out["features"], out["spectra"]
    # Common materials: in clusters of >= 2 in A (0-4) and in B (1-5): {1,2,3,4}; cut to them,
    # A = {1,2} {3,4} and B = {1,3} {2,4}, neither has a singleton, so one pass is final.
    assert out["n_common"] == a["n_scored"] == b["n_scored"] == 4

    # A: {1,2} mean (1.5, 2.5), MAEs 0.5, 0.5; {3,4} mean (6, 7), MAEs 1.5, 1.5 -> 4/4 = 1.
    # (The old rule scored A on 0-4 as well: 17/15.)
    assert a["spectral_spread"] == pytest.approx(1.0)
    # J(1,2) = |{O}| / |{Na,Cr,O,K,V}| = 1/5, J(3,4) = 2/3; two pairs of size-2 clusters: (1/5 + 2/3)/2 = 13/30.
    assert a["chemical_homogeneity"] == pytest.approx(13 / 30)
    # {1,2} tet, oct -> 1 of 2; {3,4} oct + unknown (left out) -> 1 of 1: 2/3.
    assert a["coordination_agreement"] == pytest.approx(2 / 3)
    # The sizes describe the whole clustering of all six materials.
    assert (a["n_clusters"], a["n_singletons"], a["n_in_clusters"]) == (3, 1, 5)
    assert (a["size_min"], a["size_median"], a["size_max"]) == (1, 2.0, 3)
    assert a["size_mean"] == pytest.approx(2.0)

    # B: {1,3} mean (3.5, 3.5), MAEs 1.5, 1.5; {2,4} mean (4, 6), MAEs 3, 3 -> 9/4 (not its own 1-5's numbers).
    assert b["spectral_spread"] == pytest.approx(9 / 4)
    # J(1,3) = |{O}| / |{Na,Cr,O,Mg}| = 1/4, J(2,4) = |{O}| / |{K,V,O,Mg,Si}| = 1/5 -> 9/40.
    assert b["chemical_homogeneity"] == pytest.approx(9 / 40)
    # {1,3} tet, oct -> 1 of 2; {2,4} oct + unknown -> 1 of 1: 2/3.
    assert b["coordination_agreement"] == pytest.approx(2 / 3)
    assert (b["n_clusters"], b["n_singletons"], b["n_in_clusters"]) == (3, 1, 5)

    # dataset-wide chance level against a plain double loop over pairs of all six materials
    pairs = [len(p & q) / len(p | q) for p, q in combinations(ELEMENTS, 2)]
    assert out["dataset_jaccard"] == pytest.approx(np.mean(pairs))
    assert out["n_materials"] == 6


def test_adjusted_rand_index_matches_sklearn():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = rng.integers(0, 5, 50), rng.integers(0, 7, 50)
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a, b))
    assert adjusted_rand_index(LABELS_A, LABELS_A + 10) == pytest.approx(1.0)
    assert adjusted_rand_index(LABELS_A, LABELS_B) == pytest.approx(adjusted_rand_score(LABELS_A, LABELS_B))


def test_pairwise_jaccard_matches_a_loop_and_handles_empty_sets():
    rng = np.random.default_rng(6)
    sets = [set(rng.choice(list("ABCDEFGH"), rng.integers(0, 4), replace=False)) for _ in range(40)]
    membership, elements = element_matrix(sets)
    assert elements == sorted(set().union(*sets))

    def jac(p, q):
        return 1.0 if not (p | q) else len(p & q) / len(p | q)

    expected = np.mean([jac(p, q) for p, q in combinations(sets, 2)])
    assert mean_pairwise_jaccard(membership, chunk=7) == pytest.approx(expected)
    assert np.isnan(mean_pairwise_jaccard(membership[:1]))


def test_compare_clusterings_checks_shapes():
    with pytest.raises(InputError, match="same M materials"):
        compare_clusterings(SPECTRA, ELEMENTS[:5], ENVS, LABELS_A, LABELS_B)
    with pytest.raises(InputError, match="labels 'b'"):
        compare_clusterings(SPECTRA, ELEMENTS, ENVS, LABELS_A, LABELS_B[:5])


def test_compare_clusterings_all_singletons_is_nan_not_perfect():
    out = compare_clusterings(SPECTRA, ELEMENTS, ENVS, np.arange(6), np.zeros(6, dtype=int))
    # no material is in a cluster of two in both: nothing is scored, in either clustering
    assert out["n_common"] == 0
    for name in ("a", "b"):
        assert np.isnan(out[name]["spectral_spread"]) and np.isnan(out[name]["chemical_homogeneity"])
        assert np.isnan(out[name]["coordination_agreement"])
    assert out["a"]["n_singletons"] == 6 and out["b"]["n_singletons"] == 0
    # one cluster of everything, against itself: its homogeneity is the chance level
    whole = compare_clusterings(SPECTRA, ELEMENTS, ENVS, np.zeros(6, dtype=int), np.zeros(6, dtype=int))
    assert whole["n_common"] == 6
    assert whole["a"]["chemical_homogeneity"] == pytest.approx(whole["dataset_jaccard"])
