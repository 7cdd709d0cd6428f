"""Screening: acquisition rules, the nearest learned cluster and its out-of-distribution flag, the
ranking and shortlist of candidates by an ensemble, and ``optabs screen``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optabs.errors import ConfigError
from optabs.screen.acquisition import acquisition_scores, rank_order, ranked
from optabs.screen.ood import learned_clusters, nearest_cluster


# ---------------------------------------------------------------- acquisition


@pytest.mark.parametrize("direction", ["max", "min"])
def test_ucb_with_kappa_zero_is_greedy(direction):
    rng = np.random.default_rng(3)
    mean, std = rng.normal(size=40), rng.uniform(0, 2, size=40)
    ids = [f"m{i:02d}" for i in range(40)]
    greedy = acquisition_scores("greedy", mean, std, direction)
    ucb0 = acquisition_scores("ucb", mean, std, direction, kappa=0.0)
    assert np.array_equal(greedy, ucb0)
    assert list(rank_order(ids, greedy)) == list(rank_order(ids, ucb0))
    # and with kappa > 0 the ranking changes towards uncertain candidates
    ucb = acquisition_scores("ucb", mean, std, direction, kappa=3.0)
    assert list(rank_order(ids, ucb)) != list(rank_order(ids, greedy))


def test_directions_and_rules_rank_as_their_definitions_say():
    ids = ["a", "b", "c"]
    mean, std = np.array([1.0, 3.0, 2.0]), np.array([0.5, 0.1, 2.0])
    assert list(ranked(ids, acquisition_scores("greedy", mean, std, "max")).material_id) == ["b", "c", "a"]
    assert list(ranked(ids, acquisition_scores("greedy", mean, std, "min")).material_id) == ["a", "c", "b"]
    # ucb, kappa 1: 1.5, 3.1, 4.0
    assert list(ranked(ids, acquisition_scores("ucb", mean, std, "max", 1.0)).material_id) == ["c", "b", "a"]
    # minimising: -mean + sigma = -0.5, -2.9, 0.0
    assert list(ranked(ids, acquisition_scores("ucb", mean, std, "min", 1.0)).material_id) == ["c", "a", "b"]
    assert list(ranked(ids, acquisition_scores("uncertainty", mean, std)).material_id) == ["c", "a", "b"]


def test_random_is_seeded_and_bad_rules_name_their_key():
    mean = np.zeros(50)
    a, b = acquisition_scores("random", mean, mean, seed=1), acquisition_scores("random", mean, mean, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, acquisition_scores("random", mean, mean, seed=2))
    with pytest.raises(ConfigError, match="'screen.acquisition'.*thompson"):
        acquisition_scores("thompson", mean, mean)
    with pytest.raises(ConfigError, match="'screen.kappa'"):
        acquisition_scores("ucb", mean, mean, kappa=-1.0)


def test_rank_order_puts_missing_scores_last_and_breaks_ties_by_id():
    ids = ["z", "y", "x", "w"]
    order = rank_order(ids, np.array([1.0, np.nan, 1.0, 5.0]))
    assert [ids[i] for i in order] == ["w", "x", "z", "y"]


# ---------------------------------------------------------------- nearest cluster, out of distribution


def _two_blobs(rng):
    a = rng.normal(0.0, 0.1, size=(20, 3))
    b = rng.normal(5.0, 0.1, size=(20, 3))
    return np.vstack([a, b]), np.array([1] * 20 + [2] * 20)


def test_candidates_inside_a_cluster_are_in_distribution_and_far_ones_are_not():
    x, labels = _two_blobs(np.random.default_rng(0))
    c = learned_clusters(x, labels)
    assert np.allclose(c.centres, [x[:20].mean(0), x[20:].mean(0)])
    cand = np.array([[0.02, -0.01, 0.0], [5.0, 5.05, 4.98], [2.5, 2.5, 2.5], [40.0, 0.0, 0.0]])
    cluster, distance, ood = nearest_cluster(c, cand)
    assert (cluster[0], cluster[1], cluster[3]) == (1, 2, 2)
    assert list(ood) == [False, False, True, True]
    # distances are Euclidean to the nearest centre
    assert distance[3] == pytest.approx(np.linalg.norm(cand[3] - x[20:].mean(0)))
    # a training material itself is never out of distribution
    _, _, own = nearest_cluster(c, x)
    assert not own.any()


def test_standardised_clusters_ignore_the_units_of_a_feature():
    x, labels = _two_blobs(np.random.default_rng(1))
    scaled = x * np.array([1.0, 1000.0, 1.0])
    cand = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [2.5, 2.5, 2.5]])
    a = nearest_cluster(learned_clusters(x, labels, standardize=True), cand)
    b = nearest_cluster(learned_clusters(scaled, labels, standardize=True), cand * np.array([1.0, 1000.0, 1.0]))
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_a_single_material_cluster_takes_the_median_radius_of_the_others():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [12.0, 0.0], [50.0, 50.0]])
    c = learned_clusters(x, np.array([1, 1, 2, 2, 3]))
    assert list(c.radii) == pytest.approx([0.5, 1.0, 0.75])
