"""optabs.interpret.sweep and the common-materials rule of compare_clusterings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optabs.errors import InputError
from optabs.interpret import compare_clusterings, ward_clusters
from optabs.interpret.compare import common_members
from optabs.interpret.sweep import (
    SPECTRA_SPACE,
    SWEEP_COLUMNS,
    best_space,
    clustering_sweep,
    cut_tree,
    embedding_spaces,
    sweep_figure,
    sweep_ks,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the same materials for both clusterings


def test_both_clusterings_are_scored_on_the_same_materials():
    # A = {0,1,2} {3,4,5} {6}; B = {0} {1,3} {2,4} {5,6}. The old rule scored A on 0-5 and B on 1-6.
    # First pass: 1-5. Cut to them, B's {5,6} is {5} alone, so 5 goes too: the common set is {1,2,3,4},
    # where A = {1,2} {3,4} and B = {1,3} {2,4}.
    labels_a = np.array([1, 1, 1, 2, 2, 2, 3])
    labels_b = np.array([9, 1, 2, 1, 2, 3, 3])
    # materials 0, 5, 6 carry extreme values: any of them scored would change every number below
    spectra = np.array([100.0, 0.0, 2.0, 10.0, 16.0, 50.0, -40.0])[:, None]
    elements = [{"Xe"}, {"Zn", "O"}, {"Zn", "O", "S"}, {"Mg", "O"}, {"Mg", "O", "Se"}, {"Xe"}, {"Kr"}]
    envs = ["other", "tetrahedral", "tetrahedral", "octahedral", "octahedral", "other", "other"]

    out = compare_clusterings(spectra, elements, envs, labels_a, labels_b)
    a, b = out["a"], out["b"]
    assert out["n_common"] == a["n_scored"] == b["n_scored"] == 4

    # A: {1,2} mean 1 -> |0-1|, |2-1| = 1, 1; {3,4} mean 13 -> 3, 3: spread 8/4 = 2.
    assert a["spectral_spread"] == pytest.approx(2.0)
    # B: {1,3} mean 5 -> 5, 5; {2,4} mean 9 -> 7, 7: spread 24/4 = 6.
    assert b["spectral_spread"] == pytest.approx(6.0)
    # A: J({Zn,O},{Zn,O,S}) = 2/3, J({Mg,O},{Mg,O,Se}) = 2/3 -> 2/3.
    assert a["chemical_homogeneity"] == pytest.approx(2 / 3)
    # B: J({Zn,O},{Mg,O}) = 1/3, J({Zn,O,S},{Mg,O,Se}) = 1/5 -> (1/3 + 1/5)/2 = 4/15.
    assert b["chemical_homogeneity"] == pytest.approx(4 / 15)
    # A: tet,tet and oct,oct -> 4/4; B: tet,oct and tet,oct -> 2/4.
    assert a["coordination_agreement"] == pytest.approx(1.0)
    assert b["coordination_agreement"] == pytest.approx(0.5)
    # the whole clusterings are still described in full
    assert (a["n_singletons"], a["n_in_clusters"]) == (1, 6)
    assert (b["n_singletons"], b["n_in_clusters"]) == (1, 6)


def test_common_members_is_the_issue_rule_then_drops_the_stranded():
    # one pass is enough: the plain "in clusters of >= 2 in both"
    assert common_members([[1, 1, 2, 2, 3], [1, 2, 1, 2, 2]]).tolist() == [True, True, True, True, False]
    # B = {0,1} {2,3}; A = {0} {1,2,3}: 0 goes (A-singleton), which strands 1 in B's {0,1}
    assert common_members([[0, 1, 1, 1], [5, 5, 6, 6]]).tolist() == [False, False, True, True]
    # a cascade over two passes: A = {0,1,2} {3,4} {5}, B = {0,2} {1,3} {4,5}. Pass 1 keeps 0-3
    # (5 is an A-singleton, which strands 4 in B); then 3 is alone in A's {3,4}, which strands 1 in B's {1,3}
    assert common_members([[1, 1, 1, 2, 2, 3], [1, 2, 1, 2, 3, 3]]).tolist() == [True, False, True, False, False, False]
    # one labeling: its own non-singletons; within= restricts the start
    assert common_members([[1, 1, 2]]).tolist() == [True, True, False]
    assert common_members([[1, 1, 1, 2, 2]], within=[True, True, False, True, False]).tolist() == [
        True, True, False, False, False]
    with pytest.raises(InputError, match="different lengths"):
        common_members([[1, 1], [1, 1, 1]])


# ---------------------------------------------------------------- the sweep on a toy with a known answer


GROUPS = 4
PER_GROUP = 6
GROUP_ELEMENTS = [{"Na", "V", "O"}, {"Mg", "Al", "O"}, {"Zn", "S"}, {"Ca", "Ti", "O"}]
GROUP_ENVS = ["tetrahedral", "octahedral", "tetrahedral", "octahedral"]


def planted_toy(seed: int = 0):
    """24 materials in 4 chemical groups; a space that separates the groups, a noise space, noisy spectra."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(GROUPS), PER_GROUP)
    m = group.size
    centres = rng.normal(0.0, 30.0, (GROUPS, 5))
    planted = centres[group] + rng.normal(0.0, 0.3, (m, 5))
    noise = rng.normal(0.0, 1.0, (m, 5))
    spectra = rng.normal(0.0, 1.0, (m, 40))
    elements = [GROUP_ELEMENTS[g] for g in group]
    envs = [GROUP_ENVS[g] for g in group]
    return spectra, {"planted": planted, "noise": noise}, elements, envs, group


def test_planted_space_recovers_the_groups_and_noise_does_not():
    spectra, spaces, elements, envs, _ = planted_toy()
    table = clustering_sweep(spectra, spaces, elements, envs, [2, 4, 8])
    assert list(table.columns) == SWEEP_COLUMNS
    assert table["space"].tolist() == ["planted"] * 3 + ["noise"] * 3 + [SPECTRA_SPACE] * 3
    at4 = table[table["k"] == 4].set_index("space")
    # four clusters of a space that separates four pure groups: every pair shares its elements and environment
    assert at4.loc["planted", "chemical_homogeneity"] == pytest.approx(1.0)
    assert at4.loc["planted", "coordination_agreement"] == pytest.approx(1.0)
    assert (at4.loc["planted", "n_clusters"], at4.loc["planted", "n_singletons"]) == (4, 0)
    # random features mix the groups (chance level here is about 0.5)
    assert at4.loc["noise", "chemical_homogeneity"] < 0.8
    # rule "all": every space at one K is scored on the same materials
    for _, rows in table.groupby("k"):
        assert rows["n_common"].nunique() == 1
    best = best_space(table, 4)
    assert best["space"] == "planted" and best["k"] == 4
    assert best["chemical_homogeneity"] == pytest.approx(1.0)
    assert set(best) == set(SWEEP_COLUMNS)


def test_k_above_m_is_capped_and_duplicates_dropped():
    spectra, spaces, elements, envs, _ = planted_toy()
    m = len(spectra)
    assert sweep_ks([96, 4, 4, 48, 12], m) == [4, 12, m]
    with pytest.raises(InputError, match="at least 1"):
        sweep_ks([0, 4], m)
    table = clustering_sweep(spectra, spaces, elements, envs, [4, 100, 200])
    assert table["k"].tolist() == [4, m] * 3
    at_m = table[table["k"] == m]
    # K = M: every material is alone, so nothing is scored
    assert (at_m["n_clusters"] == m).all() and (at_m["n_singletons"] == m).all() and (at_m["n_common"] == 0).all()
    assert at_m["chemical_homogeneity"].isna().all()


def test_pair_rule_scores_each_space_with_the_spectra_only():
    spectra, spaces, elements, envs, _ = planted_toy(seed=3)
    table = clustering_sweep(spectra, spaces, elements, envs, [6], common="pair")
    rows = table.set_index("space")
    # the spectra row: its own non-singletons, counted from an independent Ward run
    own = ward_clusters(spectra, 6)
    sizes = np.bincount(own.labels)
    assert rows.loc[SPECTRA_SPACE, "n_common"] == int((sizes[own.labels] >= 2).sum())
    # an embedding row equals compare_clusterings of the two Ward clusterings at K = 6
    pair = compare_clusterings(spectra, elements, envs, ward_clusters(spaces["noise"], 6).labels, own.labels)
    assert rows.loc["noise", "n_common"] == pair["n_common"]
    for metric in SWEEP_COLUMNS[2:5]:
        assert rows.loc["noise", metric] == pytest.approx(pair["a"][metric], nan_ok=True)


def test_cut_tree_gives_ward_partitions_at_every_k():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3))
    tree = ward_clusters(x, 1).linkage
    cuts = cut_tree(tree, [3, 7])
    for k, labels in cuts.items():
        direct = ward_clusters(x, k).labels
        assert len(set(zip(labels.tolist(), direct.tolist()))) == k == len(set(direct.tolist()))
    assert cut_tree(np.zeros((0, 4)), [1])[1].tolist() == [1]


def test_sweep_checks_its_inputs_and_places_the_spectra():
    spectra, spaces, elements, envs, _ = planted_toy()
    table = clustering_sweep(spectra, {SPECTRA_SPACE: spectra, **spaces}, elements, envs, [4])
    assert table["space"].tolist() == [SPECTRA_SPACE, "planted", "noise"]
    with pytest.raises(InputError, match="must be the spectra"):
        clustering_sweep(spectra, {SPECTRA_SPACE: spectra + 1}, elements, envs, [4])
    with pytest.raises(InputError, match="'noise' has shape"):
        clustering_sweep(spectra, {"noise": spaces["noise"][:5]}, elements, envs, [4])
    bad = spaces["noise"].copy()
    bad[3, 0] = np.nan
    with pytest.raises(InputError, match="'noise'.*NaN"):
        clustering_sweep(spectra, {"noise": bad}, elements, envs, [4])
    with pytest.raises(InputError, match="same M materials"):
        clustering_sweep(spectra, spaces, elements[:3], envs, [4])


def test_best_space_breaks_ties_by_agreement_and_names_missing_k():
    table = pd.DataFrame({
        "space": ["a", "b", "c", "spectra"], "k": [8, 8, 8, 8],
        "spectral_spread": [0.1, 0.2, 0.3, 0.05], "chemical_homogeneity": [0.5, 0.5, np.nan, 0.4],
        "coordination_agreement": [0.6, 0.7, 0.9, 0.99], "n_common": [10] * 4, "n_clusters": [8] * 4,
        "n_singletons": [0] * 4,
    })
    assert best_space(table, 8)["space"] == "b"
    with pytest.raises(InputError, match=r"no K=12; it has K = \[8\]"):
        best_space(table, 12)


def test_embedding_spaces_in_natural_layer_order():
    emb = pd.DataFrame({
        "material_id": ["a", "b"] * 4,
        "layer": ["readout"] * 2 + ["alignn_10"] * 2 + ["alignn_2"] * 2 + ["gcn_0"] * 2,
        "vector": [[1.0], [2.0]] * 4,
    })
    spaces = embedding_spaces(emb, ["b", "a"])
    assert list(spaces) == ["alignn_2", "alignn_10", "gcn_0", "readout"]
    np.testing.assert_array_equal(spaces["gcn_0"], [[2.0], [1.0]])


# ---------------------------------------------------------------- the figure


def test_sweep_figure_writes_one_png(tmp_path):
    spectra, spaces, elements, envs, _ = planted_toy()
    layers = {f"alignn_{i}": spaces["planted"] for i in range(2)} | {"readout": spaces["noise"]}
    table = clustering_sweep(spectra, layers, elements, envs, [2, 4, 8, 12])
    out = sweep_figure(table, tmp_path / "figs" / "sweep.png")
    assert out == tmp_path / "figs" / "sweep.png"
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["sweep.png"]  # no temporary file left behind
    with pytest.raises(InputError, match="lacks columns"):
        sweep_figure(table.drop(columns="spectral_spread"), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
