"""How good a clustering is: spectral spread, chemical homogeneity, coordination agreement.

The definitions are in :mod:`optabs.interpret`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from optabs.chemistry import UNKNOWN_ENV, element_matrix
from optabs.errors import InputError


def compare_clusterings(
    spectra: ArrayLike,
    element_sets: Sequence[Sequence[str] | frozenset[str]],
    dominant_env: Sequence[str | None],
    labels_a: ArrayLike,
    labels_b: ArrayLike,
    *,
    names: tuple[str, str] = ("a", "b"),
) -> dict:
    """Spectral spread, chemical homogeneity and coordination agreement of two clusterings, on the same materials.

    ``spectra``: (M, N) log10 alpha; ``element_sets``: M collections of element symbols;
    ``dominant_env``: M labels (``tetrahedral``/``octahedral``/``other``; ``unknown``, None or
    NaN for materials without one, which are left out of the agreement); ``labels_a``,
    ``labels_b``: (M,) cluster labels (any integers).

    Both clusterings are scored on one set of materials, the common set of
    :func:`common_members`: the materials in clusters of two or more in both clusterings
    (counting only members of the set, so every scored material shares its cluster with at
    least one other scored material in each clustering). Of each clustering, the three metrics
    are then those of the module docstring computed as if the common set were the whole
    dataset: a material's spectral spread is measured from the mean spectrum of its cluster's
    common members, the Jaccard pairs are the pairs of a cluster's common members (weighted by
    the number of its common members), and a cluster's most common environment is counted over
    its common members with a known environment. Materials outside the common set enter none
    of the three numbers.

    Returns ``{names[0]: stats, names[1]: stats, "adjusted_rand_index": float,
    "dataset_jaccard": float, "n_materials": M, "n_common": int}``. ``stats`` (from
    :func:`clustering_stats`) has ``spectral_spread``, ``chemical_homogeneity``,
    ``coordination_agreement`` (NaN when the common set is empty), ``n_scored`` (= ``n_common``),
    and, of the whole clustering of all M materials, ``n_clusters``, ``n_singletons``,
    ``n_in_clusters`` (materials in its clusters of >= 2) and ``size_min/median/mean/max``.
    ``adjusted_rand_index`` compares the two partitions of all M materials; ``dataset_jaccard``
    is the mean pairwise Jaccard similarity over all M materials (the chance level).
    """
    x = np.asarray(spectra, dtype=float)
    m = x.shape[0]
    if x.ndim != 2 or len(element_sets) != m or len(dominant_env) != m:
        raise InputError(
            f"compare_clusterings: spectra {x.shape}, {len(element_sets)} element sets and "
            f"{len(dominant_env)} environments must all describe the same M materials"
        )
    labelings = []
    for name, labels in zip(names, (labels_a, labels_b)):
        lab = np.asarray(labels)
        if lab.shape != (m,):
            raise InputError(f"labels {name!r} has shape {lab.shape}, expected ({m},)")
        labelings.append(lab)
    membership = element_matrix(element_sets)[0]
    env = environment_codes(dominant_env)
    common = common_members(labelings)
    out: dict = {name: clustering_stats(x, membership, env, lab, scored=common) for name, lab in zip(names, labelings)}
    out["adjusted_rand_index"] = adjusted_rand_index(labels_a, labels_b)
    out["dataset_jaccard"] = mean_pairwise_jaccard(membership)
    out["n_materials"] = int(m)
    out["n_common"] = int(common.sum())
    return out


def common_members(labelings: Sequence[ArrayLike], within: ArrayLike | None = None) -> NDArray[np.bool_]:
    """(M,) bool: the materials that share their cluster with another such material in every labeling.

    ``labelings``: (M,) cluster labels each; ``within``: (M,) bool, the materials to start from
    (default all). The first pass keeps the materials in clusters of two or more (counting
    members of ``within`` only) in every labeling: the issue's "in clusters of two or more in
    both". A material whose only cluster-mates were dropped by that pass would be a singleton of
    the kept set, trivially tight, pure and in agreement with itself, so passes repeat until
    none is dropped. The result is the largest subset of ``within`` in which no material is
    alone in its cluster in any labeling. One labeling gives its own non-singletons.
    """
    if not len(labelings):
        raise InputError("common_members needs at least one labeling")
    indices = [_cluster_index(lab) for lab in labelings]
    m = indices[0][0].size
    if any(idx.size != m for idx, _ in indices):
        raise InputError(f"labelings of different lengths {[idx.size for idx, _ in indices]}")
    keep = np.ones(m, dtype=bool) if within is None else np.asarray(within, dtype=bool).copy()
    if keep.shape != (m,):
        raise InputError(f"within has shape {keep.shape}, expected ({m},)")
    while True:  # each pass drops at least one material or stops: at most M passes, usually one or two
        before = int(keep.sum())
        for idx, sizes in indices:
            keep &= np.bincount(idx, weights=keep, minlength=sizes.size)[idx] >= 2
        if int(keep.sum()) == before:
            return keep


def clustering_stats(
    spectra: NDArray[np.float64],
    membership: NDArray[np.bool_],
    env_codes: NDArray[np.int64],
    labels: ArrayLike,
    *,
    scored: ArrayLike | None = None,
) -> dict:
    """The per-clustering numbers of :func:`compare_clusterings` (see the module docstring).

    ``spectra``: (M, N); ``membership``: (M, E) bool element matrix; ``env_codes``: (M,) int,
    -1 for unknown; ``labels``: (M,). The three metrics are computed over the materials of
    ``common_members([labels], within=scored)`` (default: the clustering's own non-singletons)
    with every cluster reduced to its members among them (its mean spectrum, its Jaccard pairs,
    its most common environment); ``n_scored`` counts them. The size statistics describe the
    whole clustering of all M materials.
    """
    idx_all, sizes_all = _cluster_index(labels)
    m = len(idx_all)
    use = common_members([idx_all], within=scored)
    n_scored = int(use.sum())
    spread = homogeneity = agreement = float("nan")
    if n_scored:
        idx, sizes = _cluster_index(idx_all[use])  # every cluster cut to its scored members; all sizes >= 2
        x = spectra[use]
        means = (cluster_indicator(idx, len(sizes)) @ x) / sizes[:, None]
        spread = float(np.abs(x - means[idx]).mean())

        sub = membership[use]
        by_cluster = np.argsort(idx, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        pair_means = np.array([mean_pairwise_jaccard(sub[by_cluster[bounds[c]:bounds[c + 1]]]) for c in range(len(sizes))])
        homogeneity = float(np.average(pair_means, weights=sizes))

        env = env_codes[use]
        known = env >= 0
        if known.any():
            n_env = int(env.max()) + 1
            counts = cluster_indicator(idx[known], len(sizes)) @ np.eye(n_env)[env[known]]  # (C, n_env)
            agreement = float(counts.max(axis=1).sum() / known.sum())

    return {
        "spectral_spread": spread,
        "chemical_homogeneity": homogeneity,
        "coordination_agreement": agreement,
        "n_scored": n_scored,
        "n_clusters": int(len(sizes_all)),
        "n_singletons": int((sizes_all == 1).sum()),
        "n_in_clusters": int((sizes_all[idx_all] >= 2).sum()),
        "n_materials": int(m),
        "size_min": int(sizes_all.min()),
        "size_median": float(np.median(sizes_all)),
        "size_mean": float(sizes_all.mean()),
        "size_max": int(sizes_all.max()),
    }


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


def cluster_indicator(idx: NDArray[np.int64], n_clusters: int) -> sparse.csr_matrix:
    """(C, M) sparse indicator: row c sums the members of cluster c."""
    return sparse.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n_clusters, idx.size))


def environment_codes(dominant_env: Sequence[str | None]) -> NDArray[np.int64]:
    """(M,) integer codes of environment labels (in sorted label order); -1 for unknown / missing."""
    values = pd.Series(list(dominant_env), dtype=object)
    missing = values.isna() | (values == UNKNOWN_ENV) | (values == "")
    codes = np.full(len(values), -1, dtype=np.int64)
    if (~missing).any():
        codes[~missing.to_numpy()] = pd.factorize(values[~missing], sort=True)[0]
    return codes
