"""Ward clustering of feature vectors (the study's method), numbered reproducibly."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from optabs.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterResult:
    """Flat Ward clusters and the tree they were cut from.

    ``labels``: (M,) int cluster numbers 1..``n_clusters``, numbered along the dendrogram's leaf
    order (cluster 1 is leftmost). ``linkage``: the (M-1, 4) scipy linkage matrix, with each
    merge's children put in the canonical order (see :func:`ward_clusters`) so that
    ``scipy.cluster.hierarchy.dendrogram(linkage)`` draws the leaves in ``order``.
    ``order``: (M,) row indices of the input in dendrogram leaf order. ``n_clusters`` can be less
    than ``k_requested`` when merge heights tie (identical or equidistant materials).
    """

    labels: NDArray[np.int64]
    linkage: NDArray[np.float64]
    order: NDArray[np.int64]
    k_requested: int
    n_clusters: int
    standardized: bool = False

    @property
    def sizes(self) -> NDArray[np.int64]:
        """(n_clusters,) members per cluster, cluster 1 first."""
        return np.bincount(self.labels, minlength=self.n_clusters + 1)[1:]

    def table(self, material_ids: Sequence[str], column: str = "cluster") -> pd.DataFrame:
        """``material_id``, ``column`` for the input rows in their original order."""
        if len(material_ids) != len(self.labels):
            raise InputError(f"{len(material_ids)} material ids for {len(self.labels)} clustered rows")
        return pd.DataFrame({"material_id": list(material_ids), column: self.labels})


def ward_clusters(features: ArrayLike, k: int, *, standardize: bool = False) -> ClusterResult:
    """Ward clusters of (M, d) ``features`` cut into at most ``k`` groups (the study's method).

    ``scipy.cluster.hierarchy.linkage(method="ward")`` on Euclidean distances, then
    ``fcluster(criterion="maxclust", t=k)``. The study clustered the raw features, so
    ``standardize`` is off by default; with it on, every column is scaled to zero mean and unit
    variance first (constant columns become zero), which gives low-variance, noisy feature
    dimensions the same weight as informative ones.

    Numbering is deterministic and independent of the row order of the input: the children of
    every merge are ordered by the smallest lexicographic rank of their members' feature rows,
    the leaves are read off left to right, and clusters are numbered in the order they first
    appear (1 = leftmost). The partition itself is Ward's, which is unique when merge heights
    do not tie.

    Raises :class:`InputError` when ``k`` is not in 1..M or the features are not a finite 2-D
    array. When tied merge heights make ``maxclust`` return fewer than ``k`` clusters, that is
    logged and recorded in ``n_clusters``.
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2:
        raise InputError(f"features must be a 2-D array (materials x dimensions), got shape {x.shape}")
    m = x.shape[0]
    if m == 0:
        raise InputError("no materials to cluster (features has 0 rows)")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(f"features of {rows.size} materials are NaN or inf (rows {rows[:10].tolist()}...); drop them first")
    k = int(k)
    if k < 1:
        raise InputError(f"K={k}: the number of clusters must be at least 1")
    if k > m:
        raise InputError(f"K={k} is larger than the number of materials (M={m}); choose K <= {m} (interpret.n_clusters)")
    if standardize:
        std = x.std(axis=0)
        x = np.divide(x - x.mean(axis=0), std, out=np.zeros_like(x), where=std > 0)
    if m == 1:
        return ClusterResult(np.ones(1, dtype=np.int64), np.zeros((0, 4)), np.zeros(1, dtype=np.int64), k, 1, standardize)

    # Imported here, not at the top: scipy.cluster costs ~0.2 s to import, and the Snakefile's
    # settings check imports this module (through optabs.interpret) on every snakemake start.
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage

    z = _canonical_children(linkage(x, method="ward", metric="euclidean"), _row_ranks(x))
    raw = fcluster(z, t=k, criterion="maxclust")
    order = leaves_list(z).astype(np.int64)
    labels = _number_along(order, raw)
    n_clusters = int(labels.max())
    if n_clusters < k:
        log.warning(
            "Ward/maxclust gave %d clusters, not the %d asked for: merge heights tie (identical or "
            "equidistant materials), so no cut of the tree gives exactly %d", n_clusters, k, k,
        )
    return ClusterResult(labels, z, order, k, n_clusters, standardize)


def _row_ranks(x: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rank of every row in lexicographic order of its values: a label independent of row order."""
    order = np.lexsort(x.T[::-1])
    ranks = np.empty(len(x), dtype=np.int64)
    ranks[order] = np.arange(len(x))
    return ranks


def _canonical_children(z: NDArray[np.float64], leaf_key: NDArray[np.int64]) -> NDArray[np.float64]:
    """Swap the two children of each merge so that the one holding the lowest ``leaf_key`` is left.

    scipy orders a merge's children by their node ids, which depend on the input row order;
    this makes the leaf order (and hence the cluster numbering) a property of the data.
    """
    m = len(z) + 1
    z = z.copy()
    key = np.empty(2 * m - 1, dtype=np.int64)
    key[:m] = leaf_key
    for i in range(m - 1):  # over merges (M - 1), each O(1)
        a, b = int(z[i, 0]), int(z[i, 1])
        if key[b] < key[a]:
            z[i, 0], z[i, 1] = b, a
        key[m + i] = min(key[a], key[b])
    return z


def _number_along(order: NDArray[np.int64], raw: NDArray[np.int32]) -> NDArray[np.int64]:
    """Renumber flat cluster ids 1.. in order of first appearance along ``order``."""
    seen = raw[order]
    _, first = np.unique(seen, return_index=True)
    ids_in_order = seen[np.sort(first)]
    mapping = np.zeros(raw.max() + 1, dtype=np.int64)
    mapping[ids_in_order] = np.arange(1, ids_in_order.size + 1)
    return mapping[raw]


def feature_matrix(embeddings: pd.DataFrame, layer: str, material_ids: Sequence[str]) -> NDArray[np.float64]:
    """(M, d) features of ``layer`` for ``material_ids``, in that order.

    ``embeddings``: the model stage's table (``material_id``, ``layer``, ``vector``). Raises
    :class:`InputError` naming the layer or the materials that are missing, or vectors of
    unequal length.
    """
    if not {"material_id", "layer", "vector"} <= set(embeddings.columns):
        raise InputError(f"embeddings table needs columns material_id, layer, vector; has {list(embeddings.columns)}")
    rows = embeddings[embeddings["layer"] == layer]
    if rows.empty:
        layers = sorted(embeddings["layer"].unique())
        raise InputError(f"no embeddings of layer {layer!r}; the table has {layers}")
    if rows["material_id"].duplicated().any():
        dup = rows.loc[rows["material_id"].duplicated(), "material_id"].tolist()[:5]
        raise InputError(f"layer {layer!r}: duplicate embeddings for {dup}")
    by_id = pd.Series(range(len(rows)), index=rows["material_id"].to_numpy())
    missing = [mid for mid in material_ids if mid not in by_id.index]
    if missing:
        raise InputError(f"layer {layer!r}: no embedding for {len(missing)} materials, e.g. {missing[:5]}")
    vectors = rows["vector"].to_numpy()
    lengths = {len(v) for v in vectors}
    if len(lengths) != 1:
        raise InputError(f"layer {layer!r}: vectors of different lengths {sorted(lengths)}")
    return np.stack([np.asarray(v, dtype=float) for v in vectors])[by_id.loc[list(material_ids)].to_numpy()]
