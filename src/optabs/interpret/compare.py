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

    onehot = cluster_indicator(idx, len(sizes))
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
        counts = cluster_indicator(idx[use], len(sizes)) @ np.eye(n_env)[env_codes[use]]  # (C, n_env)
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


def _env_codes(dominant_env: Sequence[str | None]) -> NDArray[np.int64]:
    """Integer codes of environment labels; -1 for unknown / missing."""
    values = pd.Series(list(dominant_env), dtype=object)
    missing = values.isna() | (values == UNKNOWN_ENV) | (values == "")
    codes = np.full(len(values), -1, dtype=np.int64)
    if (~missing).any():
        codes[~missing.to_numpy()] = pd.factorize(values[~missing], sort=True)[0]
    return codes
