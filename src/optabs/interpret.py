"""The interpret stage: Ward clusters of model features, and how good a clustering is.

The study (first-layer ALIGNN atom features averaged per material, Ward linkage on Euclidean
distances, cut with ``maxclust`` into 96 groups) is reproduced by :func:`ward_clusters`; the
same function clusters raw spectra for the comparison. :func:`compare_clusterings` measures a
clustering by three numbers, so "features group chemistry better than spectra" is a number:

- ``spectral_spread`` (log10 alpha units): mean over materials of the mean absolute difference
  between a material's spectrum and its cluster's mean spectrum (lower = tighter spectral shape);
- ``chemical_homogeneity`` (0..1): per cluster, the mean Jaccard similarity of the element sets
  over all pairs of members; averaged over clusters weighted by size (higher = more alike);
- ``coordination_agreement`` (0..1): fraction of members whose dominant cation environment
  (tetrahedral / octahedral / other, :mod:`optabs.chemistry`) is their cluster's most common one.

All three are computed over the members of clusters of two or more materials: a singleton is
trivially tight, pure and in agreement with itself, so counting singletons would reward a
clustering for isolating materials. The number of singletons is reported beside them. The
dataset-wide mean pairwise Jaccard similarity (``dataset_jaccard``) is reported as the chance
level of chemical homogeneity.

Shapes: M materials, d feature dimensions, N energy points, C clusters. Nothing loops in Python
over materials or energy points; loops run over clusters (C, at most M) or linkage rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, leaves_list, linkage

from optabs.errors import InputError

__all__ = [
    "ClusterResult",
    "UNKNOWN_ENV",
    "compare_clusterings",
    "edge_integral",
    "feature_matrix",
    "ward_clusters",
]

log = logging.getLogger(__name__)

#: The dominant-environment label of a material whose environment could not be computed;
#: such materials are left out of ``coordination_agreement``.
UNKNOWN_ENV = "unknown"


# ---------------------------------------------------------------- clustering


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


# ---------------------------------------------------------------- statistics of spectra


def edge_integral(
    energy_ev: ArrayLike, log10_alpha: ArrayLike, onset_ev: ArrayLike, *, window_ev: float = 2.0, floor: float = 2.0
) -> NDArray[np.float64]:
    """Absorption-edge integral (decade * eV) of (M, N) spectra: how fast absorption rises.

    The integral of ``log10_alpha - floor`` over ``onset_ev <= E < onset_ev + window_ev`` (the
    first 2 eV above the onset by default), as a rectangle sum on the grid (whose step, 0.01 eV,
    makes the rule's error negligible). A steep, strong edge gives a large value, a slow tail a
    small one. NaN where the onset is NaN (never above threshold).
    """
    energy = np.asarray(energy_ev, dtype=float)
    spectra = np.atleast_2d(np.asarray(log10_alpha, dtype=float))
    onset = np.atleast_1d(np.asarray(onset_ev, dtype=float))
    if spectra.shape[1] != energy.size or onset.size != spectra.shape[0]:
        raise InputError(f"edge_integral: spectra {spectra.shape}, energy {energy.shape}, onsets {onset.shape} do not match")
    step = np.gradient(energy) if energy.size > 1 else np.ones(1)
    with np.errstate(invalid="ignore"):
        inside = (energy[None, :] >= onset[:, None] - 1e-9) & (energy[None, :] < onset[:, None] + window_ev - 1e-9)
    value = (np.clip(spectra - floor, 0.0, None) * inside) @ step
    return np.where(np.isfinite(onset), value, np.nan)


# ---------------------------------------------------------------- comparing clusterings


def compare_clusterings(
    spectra: ArrayLike,
    element_sets: Sequence[Sequence[str] | frozenset[str]],
    dominant_env: Sequence[str | None],
    labels_a: ArrayLike,
    labels_b: ArrayLike,
    *,
    names: tuple[str, str] = ("a", "b"),
) -> dict:
    """Spectral spread, chemical homogeneity and coordination agreement of two clusterings.

    ``spectra``: (M, N) log10 alpha; ``element_sets``: M collections of element symbols;
    ``dominant_env``: M labels (``tetrahedral``/``octahedral``/``other``; ``unknown``, None or
    NaN for materials without one, which are left out of the agreement); ``labels_a``,
    ``labels_b``: (M,) cluster labels (any integers). Returns ``{names[0]: stats, names[1]:
    stats, "adjusted_rand_index": float, "dataset_jaccard": float, "n_materials": M}`` where
    stats has ``spectral_spread``, ``chemical_homogeneity``, ``coordination_agreement``,
    ``n_clusters``, ``n_singletons``, ``n_in_clusters`` (materials in clusters of >= 2) and
    ``size_min/median/mean/max``. The metric definitions are in the module docstring.
    """
    x = np.asarray(spectra, dtype=float)
    m = x.shape[0]
    if x.ndim != 2 or len(element_sets) != m or len(dominant_env) != m:
        raise InputError(
            f"compare_clusterings: spectra {x.shape}, {len(element_sets)} element sets and "
            f"{len(dominant_env)} environments must all describe the same M materials"
        )
    membership = element_matrix(element_sets)[0]
    env = _env_codes(dominant_env)
    out: dict = {}
    for name, labels in zip(names, (labels_a, labels_b)):
        lab = np.asarray(labels)
        if lab.shape != (m,):
            raise InputError(f"labels {name!r} has shape {lab.shape}, expected ({m},)")
        out[name] = clustering_stats(x, membership, env, lab)
    out["adjusted_rand_index"] = adjusted_rand_index(labels_a, labels_b)
    out["dataset_jaccard"] = mean_pairwise_jaccard(membership)
    out["n_materials"] = int(m)
    return out


def clustering_stats(
    spectra: NDArray[np.float64], membership: NDArray[np.bool_], env_codes: NDArray[np.int64], labels: ArrayLike
) -> dict:
    """The per-clustering numbers of :func:`compare_clusterings` (see the module docstring).

    ``membership``: (M, E) bool element matrix; ``env_codes``: (M,) int, -1 for unknown.
    """
    idx, sizes = _cluster_index(labels)
    m = len(idx)
    in_big = sizes[idx] >= 2
    n_in = int(in_big.sum())

    onehot = _onehot(idx, len(sizes))
    means = (onehot @ spectra) / sizes[:, None]
    mae = np.abs(spectra - means[idx]).mean(axis=1)
    spread = float(mae[in_big].mean()) if n_in else float("nan")

    big = np.flatnonzero(sizes >= 2)
    by_cluster = np.argsort(idx, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    pair_means = np.array([mean_pairwise_jaccard(membership[by_cluster[bounds[c]:bounds[c + 1]]]) for c in big])
    homogeneity = float(np.average(pair_means, weights=sizes[big])) if big.size else float("nan")

    known = env_codes >= 0
    agreement = float("nan")
    use = in_big & known
    if use.any():
        n_env = int(env_codes.max()) + 1
        counts = _onehot(idx[use], len(sizes)) @ np.eye(n_env)[env_codes[use]]  # (C, n_env)
        agreement = float(counts.max(axis=1).sum() / use.sum())

    return {
        "spectral_spread": spread,
        "chemical_homogeneity": homogeneity,
        "coordination_agreement": agreement,
        "n_clusters": int(len(sizes)),
        "n_singletons": int((sizes == 1).sum()),
        "n_in_clusters": n_in,
        "n_materials": int(m),
        "size_min": int(sizes.min()),
        "size_median": float(np.median(sizes)),
        "size_mean": float(sizes.mean()),
        "size_max": int(sizes.max()),
    }


def element_matrix(element_sets: Sequence[Sequence[str] | frozenset[str]]) -> tuple[NDArray[np.bool_], list[str]]:
    """(M, E) bool matrix, True where material i contains element j; and the E element symbols (sorted)."""
    sets = [frozenset(s) for s in element_sets]
    elements = sorted(set().union(*sets)) if sets else []
    column = {el: j for j, el in enumerate(elements)}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter((column[el] for s in sets for el in s), dtype=np.int64, count=rows.size)
    out = np.zeros((len(sets), len(elements)), dtype=bool)
    out[rows, cols] = True
    return out, elements


def mean_pairwise_jaccard(membership: NDArray[np.bool_], chunk: int = 2048) -> float:
    """Mean Jaccard similarity over all unordered pairs of rows of a (m, E) bool matrix.

    Intersections come from one matrix product (in row chunks to bound memory); two empty sets
    count as identical (similarity 1). NaN for fewer than two rows.
    """
    m = membership.shape[0]
    if m < 2:
        return float("nan")
    b = membership.astype(np.float32)
    size = b.sum(axis=1)
    total = 0.0
    for start in range(0, m, chunk):  # over row chunks, not materials
        inter = b[start:start + chunk] @ b.T
        union = size[start:start + chunk, None] + size[None, :] - inter
        jac = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
        total += float(jac.sum(dtype=np.float64))
    total -= m  # the diagonal: each set with itself
    return total / (m * (m - 1))


def adjusted_rand_index(labels_a: ArrayLike, labels_b: ArrayLike) -> float:
    """Hubert-Arabie adjusted Rand index of two labelings (1 = same partition, ~0 = chance)."""
    a, _ = _cluster_index(labels_a)
    b, _ = _cluster_index(labels_b)
    n = a.size
    table = sparse.coo_matrix((np.ones(n), (a, b))).tocsr()
    comb = lambda v: v * (v - 1) / 2.0  # noqa: E731
    sum_ij = comb(table.data).sum()
    sum_a = comb(np.asarray(table.sum(axis=1)).ravel()).sum()
    sum_b = comb(np.asarray(table.sum(axis=0)).ravel()).sum()
    expected = sum_a * sum_b / comb(n) if n > 1 else 0.0
    maximum = (sum_a + sum_b) / 2.0
    if maximum == expected:
        return 1.0
    return float((sum_ij - expected) / (maximum - expected))


def _cluster_index(labels: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(M,) 0-based cluster index of every material and (C,) cluster sizes, in sorted label order."""
    uniq, idx = np.unique(np.asarray(labels), return_inverse=True)
    return idx.astype(np.int64).ravel(), np.bincount(idx.ravel(), minlength=uniq.size)


def _onehot(idx: NDArray[np.int64], n_clusters: int) -> sparse.csr_matrix:
    """(C, M) sparse indicator: row c sums the members of cluster c."""
    return sparse.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n_clusters, idx.size))


def _env_codes(dominant_env: Sequence[str | None]) -> NDArray[np.int64]:
    """Integer codes of environment labels; -1 for unknown / missing."""
    values = pd.Series(list(dominant_env), dtype=object)
    missing = values.isna() | (values == UNKNOWN_ENV) | (values == "")
    codes = np.full(len(values), -1, dtype=np.int64)
    if (~missing).any():
        codes[~missing.to_numpy()] = pd.factorize(values[~missing], sort=True)[0]
    return codes


# ---------------------------------------------------------------- workflow stage entry point


def interpret_stage(
    dataset_path: str | Path,
    embeddings_path: str | Path,
    environments_path: str | Path,
    *,
    layer: str,
    k: int,
    standardize: bool,
    grid,
    clusters_path: str | Path,
    linkage_path: str | Path,
    comparison_path: str | Path,
    chemistry_dir: str | Path,
) -> dict:
    """Ward clusters of the chosen layer's embeddings and of the raw spectra, their comparison
    and the per-cluster chemistry. Writes ``clusters.parquet`` (material_id, cluster,
    cluster_spectra), the linkage (``.npy``), ``comparison.json`` and one parquet per chemistry
    table in ``chemistry_dir``. K larger than the number of materials is an :class:`InputError`."""
    from optabs.chemistry import cluster_chemistry, element_sets
    from optabs.dataset import read_dataset, spectra_matrix
    from optabs.io import atomic_path, write_json, write_parquet

    dataset = read_dataset(dataset_path)
    emb = pd.read_parquet(embeddings_path)
    layers = sorted(set(emb.layer))
    if layer not in layers:
        raise InputError(f"config key 'interpret.layer': {layer!r} is not in {embeddings_path} (layers: {', '.join(layers)})")
    dataset = dataset[dataset.material_id.isin(set(emb.material_id))].reset_index(drop=True)
    ids = list(dataset.material_id)
    if k > len(ids):
        raise InputError(
            f"config key 'interpret.n_clusters': K={k} is larger than the number of materials ({len(ids)}); lower it"
        )
    envs = pd.read_parquet(environments_path)
    spectra = spectra_matrix(dataset)
    by_features = ward_clusters(feature_matrix(emb, layer, ids), k, standardize=standardize)
    by_spectra = ward_clusters(spectra, k)
    env_of = dict(zip(envs.material_id, envs.dominant_env))
    comparison = compare_clusterings(
        spectra, element_sets(list(dataset.formula)), [env_of.get(m) for m in ids],
        by_features.labels, by_spectra.labels, names=(f"embeddings:{layer}", "spectra"),
    )
    comparison.update({"layer": layer, "k": k, "standardized": standardize})
    clusters = by_features.table(ids)
    clusters["cluster_spectra"] = by_spectra.labels
    chem = cluster_chemistry(dataset, clusters[["material_id", "cluster"]], envs, energy_ev=grid.energy_ev, floor=grid.log10_alpha_floor)
    chemistry_dir = Path(chemistry_dir)
    chemistry_dir.mkdir(parents=True, exist_ok=True)
    for name, table in chem.tables().items():
        write_parquet(chemistry_dir / f"{name}.parquet", table)
    with atomic_path(linkage_path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, by_features.linkage)
    write_json(comparison_path, comparison)
    write_parquet(clusters_path, clusters)
    return comparison
