"""optabs.interpret.motifs: per-cluster motif counts, hypergeometric p, BH q, one-line summaries."""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from optabs.errors import InputError
from optabs.interpret.motifs import MOTIF_COLUMNS, cluster_summaries, motif_enrichment, significant_motifs

# 10 materials: cluster 1 = rows 0-3, cluster 2 = rows 4-9
SMALL_LABELS = np.array([1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
SMALL_MOTIFS = [
    ["V tetrahedral", "Na other"],
    ["V tetrahedral"],
    ["V tetrahedral", "Zn tetrahedral"],
    ["Zn octahedral"],
    ["V tetrahedral"],
    ["Zn tetrahedral"],
    ["Zn tetrahedral"],
    [],
    ["Zn octahedral"],
    ["Na other"],
]


def hypergeom_tail(k: int, n: int, big_k: int, big_n: int) -> float:
    """P(X >= k) for X ~ Hypergeom: k of the K carriers among n drawn without replacement from N."""
    return sum(comb(big_k, i) * comb(big_n - big_k, n - i) for i in range(k, min(n, big_k) + 1)) / comb(big_n, n)


def bh_by_hand(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg: q_(i) = min over j >= i of p_(j) m / j, capped at 1 (sorted order)."""
    order = np.argsort(p)
    m = p.size
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    q = np.empty(m)
    q[order] = q_sorted
    return q


def toy_dataset(seed: int = 7) -> tuple[np.ndarray, list[list[str]], int]:
    """300 materials in 10 clusters of 30; 8 background motifs independent of the cluster, and
    "V tetrahedral" planted in 20 of the 30 members of one cluster and 14 (5 %) of the other 270."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(1, 11), 30)
    pool = ["Al octahedral", "Mg octahedral", "Si tetrahedral", "Zn tetrahedral",
            "Ti octahedral", "Ca other", "Na other", "Fe octahedral"]
    rates = rng.uniform(0.1, 0.5, len(pool))
    carries = rng.random((labels.size, len(pool))) < rates
    motifs = [[pool[j] for j in np.flatnonzero(row)] for row in carries]
    planted = 4
    inside = np.flatnonzero(labels == planted)
    outside = np.flatnonzero(labels != planted)
    for i in np.concatenate([rng.choice(inside, 20, replace=False), rng.choice(outside, 14, replace=False)]):
        motifs[i].append("V tetrahedral")
    return labels, motifs, planted


# ---------------------------------------------------------------- counts and p-values


def test_counts_fractions_and_fold_are_the_hand_counted_ones():
    table = motif_enrichment(SMALL_LABELS, SMALL_MOTIFS)
    assert list(table.columns) == MOTIF_COLUMNS
    assert len(table) == 8  # 4 motifs, each carried in both clusters
    got = {(r.cluster, r.feature): (r.k, r.n, r.K, r.N) for r in table.itertuples()}
    assert got == {
        (1, "V tetrahedral"): (3, 4, 4, 10), (2, "V tetrahedral"): (1, 6, 4, 10),
        (1, "Zn tetrahedral"): (1, 4, 3, 10), (2, "Zn tetrahedral"): (2, 6, 3, 10),
        (1, "Zn octahedral"): (1, 4, 2, 10), (2, "Zn octahedral"): (1, 6, 2, 10),
        (1, "Na other"): (1, 4, 2, 10), (2, "Na other"): (1, 6, 2, 10),
    }
    assert set(table["kind"]) == {"motif"}
    v1 = table[(table["cluster"] == 1) & (table["feature"] == "V tetrahedral")].iloc[0]
    assert v1["fraction_cluster"] == pytest.approx(0.75)
    assert v1["fraction_dataset"] == pytest.approx(0.4)
    assert v1["fold_enrichment"] == pytest.approx(1.875)


def test_p_value_is_the_hypergeometric_upper_tail():
    table = motif_enrichment(SMALL_LABELS, SMALL_MOTIFS)
    v1 = table[(table["cluster"] == 1) & (table["feature"] == "V tetrahedral")].iloc[0]
    # P(X >= 3), N = 10, K = 4, n = 4: (C(4,3) C(6,1) + C(4,4) C(6,0)) / C(10,4) = 25 / 210
    assert hypergeom_tail(3, 4, 4, 10) == pytest.approx(25 / 210)
    assert v1["p_value"] == pytest.approx(25 / 210, rel=1e-12)
    for r in table.itertuples():
        assert r.p_value == pytest.approx(hypergeom_tail(r.k, r.n, r.K, r.N), rel=1e-10)


def test_table_is_sorted_by_cluster_then_q():
    table = motif_enrichment(SMALL_LABELS, SMALL_MOTIFS)
    assert table["cluster"].is_monotonic_increasing
    for _, group in table.groupby("cluster"):
        assert group["q_value"].is_monotonic_increasing
    assert table.iloc[0]["feature"] == "V tetrahedral"  # cluster 1's smallest p


# ---------------------------------------------------------------- Benjamini-Hochberg


def test_q_values_are_benjamini_hochberg_over_all_tests():
    labels, motifs, _ = toy_dataset()
    table = motif_enrichment(labels, motifs)
    p, q = table["p_value"].to_numpy(), table["q_value"].to_numpy()
    np.testing.assert_allclose(q, bh_by_hand(p), rtol=1e-12)
    np.testing.assert_allclose(q, false_discovery_control(p), rtol=1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= 0)  # monotone with p
    assert np.all(q >= p)


# ---------------------------------------------------------------- the toy dataset with a known answer


def test_planted_motif_is_found_and_is_the_clusters_summary():
    labels, motifs, planted = toy_dataset()
    table = motif_enrichment(labels, motifs)
    hits = significant_motifs(table, q_max=0.01)
    # only the planted motif in the planted cluster: 20 of 30 vs 34 of 300
    assert hits[["cluster", "feature"]].values.tolist() == [[planted, "V tetrahedral"]]
    row = hits.iloc[0]
    assert (row["k"], row["n"], row["K"], row["N"]) == (20, 30, 34, 300)
    assert row["p_value"] == pytest.approx(hypergeom_tail(20, 30, 34, 300), rel=1e-9)
    assert row["q_value"] < 1e-10
    summaries = cluster_summaries(table)
    assert sorted(summaries) == list(range(1, 11))
    expected = f"cluster {planted}: V tetrahedral in 20 of 30 members vs 11 % of the dataset, q = {row['q_value']:.0e}"
    assert summaries[planted] == expected
    for c in set(range(1, 11)) - {planted}:
        assert summaries[c] == f"cluster {c}: no motif enriched at q ≤ 0.01"


def test_nothing_is_significant_when_labels_are_shuffled():
    labels, motifs, _ = toy_dataset()
    shuffled = np.random.default_rng(2024).permutation(labels)
    table = motif_enrichment(shuffled, motifs)
    assert len(table) > 0
    assert table["q_value"].min() >= 0.01
    assert significant_motifs(table, q_max=0.01).empty
    assert all(line.endswith("no motif enriched at q ≤ 0.01") for line in cluster_summaries(table).values())


# ---------------------------------------------------------------- element-only features


def test_anions_get_element_only_rows_and_motif_elements_do_not():
    elements = [{"V", "Na", "O"}, {"V", "O"}, {"V", "Zn", "O"}, {"Zn", "O"}, {"V", "O", "Se"},
                {"Zn", "O"}, {"Zn", "O", "Se"}, {"O"}, {"Zn", "O"}, {"Na", "O"}]
    table = motif_enrichment(SMALL_LABELS, SMALL_MOTIFS, element_sets=elements)
    element_rows = table[table["kind"] == "element"]
    assert sorted(set(element_rows["feature"])) == ["O", "Se"]
    assert not set(table["feature"]) & {"V", "Zn", "Na"}
    got = {(r.cluster, r.feature): (r.k, r.n, r.K) for r in element_rows.itertuples()}
    # Se only in cluster 2 (rows 4 and 6): no cluster-1 row
    assert got == {(1, "O"): (4, 4, 10), (2, "O"): (6, 6, 10), (2, "Se"): (2, 6, 2)}
    o1 = element_rows[(element_rows["cluster"] == 1) & (element_rows["feature"] == "O")].iloc[0]
    assert o1["p_value"] == pytest.approx(1.0) and o1["fold_enrichment"] == pytest.approx(1.0)
    assert len(table) == 8 + 3  # BH counted over motif and element tests together
    np.testing.assert_allclose(table["q_value"], bh_by_hand(table["p_value"].to_numpy()), rtol=1e-12)


def test_summary_prefers_a_motif_over_a_more_significant_element():
    table = pd.DataFrame({
        "cluster": [7, 7, 8, 9], "feature": ["Se", "V tetrahedral", "Se", "Cr tetrahedral"],
        "kind": ["element", "motif", "element", "motif"], "k": [11, 9, 5, 3], "n": [11, 11, 20, 40],
        "K": [20, 33, 40, 5], "N": [1100] * 4,
        "fraction_cluster": [1.0, 9 / 11, 0.25, 0.075], "fraction_dataset": [20 / 1100, 0.03, 40 / 1100, 5 / 1100],
        "fold_enrichment": [55.0, 27.3, 6.9, 16.5], "p_value": [1e-20, 1e-10, 1e-3, 1e-4],
        "q_value": [1e-18, 2e-9, 0.004, 0.02],
    })
    assert cluster_summaries(table) == {
        7: "cluster 7: V tetrahedral in 9 of 11 members vs 3 % of the dataset, q = 2e-09",
        8: "cluster 8: Se in 5 of 20 members vs 4 % of the dataset, q = 4e-03",
        9: "cluster 9: no motif enriched at q ≤ 0.01",
    }
    # below 1 % of the dataset: one decimal (5 of 1100 = 0.45 %)
    assert cluster_summaries(table, q_max=0.05)[9] == (
        "cluster 9: Cr tetrahedral in 3 of 40 members vs 0.5 % of the dataset, q = 2e-02"
    )
    # a cluster with no row at all still gets a line when asked for
    assert cluster_summaries(table, clusters=[7, 10])[10] == "cluster 10: no motif enriched at q ≤ 0.01"


def test_significant_motifs_filters_on_q_and_fold():
    table = pd.DataFrame({"cluster": [1, 1, 1, 2], "feature": ["a x", "b x", "c x", "a x"],
                          "q_value": [0.001, 0.001, 0.5, 0.01], "fold_enrichment": [3.0, 1.0, 4.0, 2.0]})
    assert significant_motifs(table)[["cluster", "feature"]].values.tolist() == [[1, "a x"], [2, "a x"]]
    assert significant_motifs(table, min_fold=2.5)["feature"].tolist() == ["a x"]


# ---------------------------------------------------------------- input checks


def test_length_mismatch_raises_input_error_naming_it():
    with pytest.raises(InputError, match="motif_sets has 9 entries for 10"):
        motif_enrichment(SMALL_LABELS, SMALL_MOTIFS[:9])
    with pytest.raises(InputError, match="element_sets has 3 entries for 10"):
        motif_enrichment(SMALL_LABELS, SMALL_MOTIFS, element_sets=[{"O"}] * 3)
    with pytest.raises(InputError, match="labels"):
        motif_enrichment(SMALL_LABELS.reshape(2, 5), SMALL_MOTIFS)


def test_malformed_motif_raises_input_error():
    with pytest.raises(InputError, match="'V'"):
        motif_enrichment([1, 2], [["V"], ["Zn tetrahedral"]])
    with pytest.raises(InputError, match=r"motif_sets\[0\]"):
        motif_enrichment([1, 2], ["V tetrahedral", ["Zn tetrahedral"]])


def test_missing_motif_lists_count_as_none_and_arrays_are_accepted():
    # parquet gives numpy arrays; a material whose environments failed may have None
    table = motif_enrichment(np.array([1, 1, 2]), [np.array(["V tetrahedral"]), None, np.array(["V tetrahedral"])])
    assert table[["cluster", "k", "n", "K", "N"]].values.tolist() == [[1, 1, 2, 2, 3], [2, 1, 1, 2, 3]]
