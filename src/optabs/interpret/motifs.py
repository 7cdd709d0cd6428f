"""Motifs per cluster: which cation environments (and anions) a cluster has more often than chance.

A *motif* is a cation element in a site environment, written ``"<element> <environment>"``
(``"V tetrahedral"``, ``"Al octahedral"``; environment tetrahedral | octahedral | other), as in
the ``motifs`` column of :func:`optabs.chemistry.material_environments`. A material *carries* a
motif when at least one of its cation sites is that element in that environment. Elements
without a site environment (anions: O, S, Se, ...) are tested as element-only features: every
element of ``element_sets`` that is never the element of any motif in the dataset.

Statistics, per cluster c and feature f (counts of materials, not of sites):

- ``N`` materials in the dataset, ``K`` of them carry f; cluster c has ``n`` members, ``k`` of
  which carry f. ``fold_enrichment`` = (k/n) / (K/N) (dimensionless; 1 = as common as in the
  dataset).
- ``p_value``: one-sided hypergeometric test for enrichment. Under the null the cluster is a draw
  of n materials from the N without replacement, so k follows Hypergeom(N, K, n) and
  p = P(X >= k) = sum_{i >= k} C(K, i) C(N - K, n - i) / C(N, n)
  (``scipy.stats.hypergeom.sf(k - 1, N, K, n)``). Depletion is not tested.
- ``q_value``: Benjamini-Hochberg adjusted p-value (``scipy.stats.false_discovery_control``)
  over all cluster x feature tests in the table, i.e. every pair with k >= 1 (a pair with k = 0
  has p = 1 and is not listed). Calling everything with q <= alpha significant keeps the
  expected fraction of false discoveries among them at or below alpha.

Shapes: M materials, C clusters, F features. Counts come from one sparse (C, M) x (M, F)
indicator product; Python loops run only over materials' sets when the indicators are built.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import sparse

from optabs.errors import InputError

MOTIF_COLUMNS = [
    "cluster", "feature", "kind", "k", "n", "K", "N", "fraction_cluster", "fraction_dataset",
    "fold_enrichment", "p_value", "q_value",
]
"""Columns of :func:`motif_enrichment`, in order."""


def _as_sets(values: Sequence, what: str) -> list[frozenset[str]]:
    """Each material's features as a set; None / NaN (a material without any) is the empty set."""
    out: list[frozenset[str]] = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(frozenset())
        elif isinstance(v, str):
            raise InputError(f"{what}[{i}] is the string {v!r}; expected a list of strings per material")
        else:
            out.append(frozenset(str(x) for x in v))
    return out


def _indicator(sets: Sequence[frozenset[str]], names: Sequence[str]) -> sparse.csr_matrix:
    """(M, len(names)) sparse 0/1 matrix: material i carries feature j; set members not in names are ignored."""
    column = {name: j for j, name in enumerate(names)}
    pairs = [(i, column[x]) for i, s in enumerate(sets) for x in s if x in column]
    rows, cols = (np.array(a, dtype=np.int64) for a in zip(*pairs)) if pairs else (np.zeros(0, np.int64),) * 2
    return sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(len(sets), len(names)))


def motif_enrichment(
    labels: ArrayLike,
    motif_sets: Sequence[Iterable[str] | None],
    *,
    element_sets: Sequence[Iterable[str] | None] | None = None,
) -> pd.DataFrame:
    """Per-cluster enrichment of every motif (and anion element) against the dataset.

    ``labels``: (M,) integer cluster label of each material. ``motif_sets``: (M,) each material's
    distinct motifs, ``"<element> <environment>"`` strings (the ``motifs`` column of
    :func:`optabs.chemistry.material_environments`). ``element_sets``: optional (M,) element
    symbols of each material (:func:`optabs.chemistry.element_sets`); the elements that are no
    motif's element anywhere in the dataset become element-only features.

    Returns one row per cluster x feature with at least one member carrying it, columns
    :data:`MOTIF_COLUMNS`: ``cluster``, ``feature``, ``kind`` (motif | element), ``k`` (members
    of the cluster with the feature), ``n`` (cluster size), ``K`` (materials with it), ``N``
    (materials), ``fraction_cluster`` (k/n), ``fraction_dataset`` (K/N), ``fold_enrichment``,
    ``p_value`` (one-sided hypergeometric), ``q_value`` (Benjamini-Hochberg over all rows); see
    the module docstring. Sorted by cluster, then q, p, feature.

    Raises :class:`InputError` when the inputs are not one entry per material, or a motif is not
    ``"<element> <environment>"``.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise InputError(f"labels must be one cluster label per material (1-D), got shape {lab.shape}")
    m = lab.size
    if len(motif_sets) != m:
        raise InputError(f"motif_sets has {len(motif_sets)} entries for {m} cluster labels; need one per material")
    if element_sets is not None and len(element_sets) != m:
        raise InputError(f"element_sets has {len(element_sets)} entries for {m} cluster labels; need one per material")
    motifs = _as_sets(motif_sets, "motif_sets")
    motif_names = sorted(set().union(*motifs))
    malformed = [name for name in motif_names if len(name.split()) != 2]
    if malformed:
        raise InputError(f"motifs must be '<element> <environment>' (e.g. 'V tetrahedral'); got {malformed[:5]}")
    motif_elements = {name.split()[0] for name in motif_names}

    element_names: list[str] = []
    feature_sets = motifs
    if element_sets is not None:
        elements = _as_sets(element_sets, "element_sets")
        element_names = sorted(set().union(*elements) - motif_elements)
        feature_sets = [a | b for a, b in zip(motifs, elements)]
    names = np.array(motif_names + element_names, dtype=object)
    kinds = np.array(["motif"] * len(motif_names) + ["element"] * len(element_names), dtype=object)
    if m == 0 or names.size == 0:
        return pd.DataFrame({col: pd.Series(dtype=float) for col in MOTIF_COLUMNS})

    carries = _indicator(feature_sets, list(names))  # (M, F)
    clusters, idx = np.unique(lab, return_inverse=True)
    idx = idx.ravel()
    members = sparse.csr_matrix((np.ones(m), (idx, np.arange(m))), shape=(clusters.size, m))  # (C, M)
    counts = np.rint((members @ carries).toarray()).astype(np.int64)  # (C, F)
    sizes = np.bincount(idx, minlength=clusters.size)
    total = np.rint(np.asarray(carries.sum(axis=0))).astype(np.int64).ravel()  # (F,)

    # Imported here, not at the top: scipy.stats costs ~0.5 s to import, and the Snakefile's
    # settings check imports this module (through optabs.interpret) on every snakemake start.
    from scipy.stats import false_discovery_control, hypergeom

    ci, fi = np.nonzero(counts > 0)
    k, n, big_k = counts[ci, fi], sizes[ci], total[fi]
    fraction_cluster, fraction_dataset = k / n, big_k / m
    p = hypergeom.sf(k - 1, m, big_k, n)
    table = pd.DataFrame({
        "cluster": clusters[ci], "feature": names[fi], "kind": kinds[fi], "k": k, "n": n, "K": big_k,
        "N": np.full(k.size, m, dtype=np.int64), "fraction_cluster": fraction_cluster,
        "fraction_dataset": fraction_dataset, "fold_enrichment": fraction_cluster / fraction_dataset,
        "p_value": p, "q_value": false_discovery_control(p, method="bh"),
    })
    return table.sort_values(["cluster", "q_value", "p_value", "feature"], kind="stable").reset_index(drop=True)


def significant_motifs(table: pd.DataFrame, q_max: float = 0.01, min_fold: float = 1.0) -> pd.DataFrame:
    """The rows of :func:`motif_enrichment` with ``q_value`` <= ``q_max`` and ``fold_enrichment`` > ``min_fold``."""
    keep = (table["q_value"] <= q_max) & (table["fold_enrichment"] > min_fold)
    return table[keep].reset_index(drop=True)


def _percent(fraction: float) -> str:
    """A dataset fraction as percent: integer, one decimal below 1 %."""
    pct = 100.0 * fraction
    if pct >= 0.95:
        return f"{pct:.0f}"
    return f"{pct:.1f}" if pct >= 0.05 else f"{pct:.1g}"


def cluster_summaries(
    table: pd.DataFrame, q_max: float = 0.01, *, clusters: Iterable[int] | None = None
) -> dict[int, str]:
    """One line per cluster from its most significant feature (a motif before an element).

    ``table``: :func:`motif_enrichment`. "cluster 7: V tetrahedral in 9 of 11 members vs 3 % of
    the dataset, q = 2e-09", or "cluster 7: no motif enriched at q ≤ 0.01" when no feature has
    q <= ``q_max`` and fold > 1. ``clusters``: the clusters to summarise (default: those in the
    table; pass all labels so that a cluster whose members carry no feature gets a line too).
    """
    hits = significant_motifs(table, q_max=q_max)
    hits = hits.assign(_element=(hits["kind"] != "motif").astype(int), _fold=-hits["fold_enrichment"])
    best = hits.sort_values(["cluster", "_element", "q_value", "p_value", "_fold", "feature"], kind="stable")
    best = best.groupby("cluster", sort=True).head(1).set_index("cluster")
    wanted = sorted({int(c) for c in (table["cluster"] if clusters is None else clusters)})
    out: dict[int, str] = {}
    for c in wanted:  # over clusters (C), to format one line each
        if c not in best.index:
            out[c] = f"cluster {c}: no motif enriched at q ≤ {q_max:g}"
            continue
        row = best.loc[c]
        q = float(row["q_value"])
        q_text = f"q = {q:.0e}" if q > 0 else "q < 1e-300"  # q = 0 only when p underflows
        out[c] = (f"cluster {c}: {row['feature']} in {int(row['k'])} of {int(row['n'])} members "
                  f"vs {_percent(float(row['fraction_dataset']))} % of the dataset, {q_text}")
    return out
