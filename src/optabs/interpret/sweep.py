"""The comparison swept over K and feature space, so that no conclusion rests on one K or one layer.

Every feature space (each model layer's embeddings, and the raw spectra) gets one Ward tree
(:func:`optabs.interpret.ward_clusters`), cut at every K. Each cut is scored by the three
numbers of :func:`optabs.interpret.compare_clusterings`, always with the raw spectra's spectral
spread and the materials' element sets and environments.

The rule for which materials are scored (``common="all"``, the default): at each K, every space
is scored on the same materials, those that share their cluster with another such material in
every clustering at that K, the spectra's included (:func:`~optabs.interpret.compare.common_members`
over all the spaces). Every row at one K, the spectra's too, is then a number about the same
materials, so rows can be compared with each other and :func:`best_space` compares like with
like; the price is that the set depends on which spaces are swept (``n_common`` says how many
materials it holds). With ``common="pair"``, each space is scored on the materials in clusters
of two or more both in that space and in the spectra clustering at the same K (the spectra row
on its own non-singletons): each embedding row is then comparable with the spectra clustering
restricted to the same materials, but not with the spectra row of the table, nor rows with each
other, unless their ``n_common`` happen to agree.

Shapes: M materials, N energy points, F feature dimensions of a space, K clusters.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from numpy.typing import ArrayLike, NDArray
from scipy.cluster.hierarchy import fcluster

from optabs.chemistry import element_matrix
from optabs.errors import InputError
from optabs.interpret.clustering import feature_matrix, ward_clusters
from optabs.interpret.compare import clustering_stats, common_members, environment_codes
from optabs.io import atomic_path
from optabs.plots import DPI

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_KS",
    "SPECTRA_SPACE",
    "SWEEP_COLUMNS",
    "best_space",
    "clustering_sweep",
    "cut_tree",
    "embedding_spaces",
    "sweep_figure",
    "sweep_ks",
]

#: The name of the raw-spectra feature space, the reference every space is compared with.
SPECTRA_SPACE = "spectra"
#: The K of the sweep when the config names none (the study: 96).
DEFAULT_KS = (12, 24, 48, 96)
#: The columns of :func:`clustering_sweep`'s table, in order.
SWEEP_COLUMNS = [
    "space", "k", "spectral_spread", "chemical_homogeneity", "coordination_agreement",
    "n_common", "n_clusters", "n_singletons",
]
METRICS = {
    "chemical_homogeneity": "Chemical homogeneity\n(mean pairwise Jaccard, higher is purer)",
    "coordination_agreement": "Coordination agreement\n(share in the cluster's dominant environment)",
    "spectral_spread": "Spectral spread\n(mean |log10 α − cluster mean|, lower is tighter)",
}


def sweep_ks(ks: Iterable[int], m: int) -> list[int]:
    """The K of a sweep over ``m`` materials: each capped at ``m``, duplicates dropped, ascending.

    Raises :class:`InputError` for a K below 1 or no K at all.
    """
    requested = [int(k) for k in ks]
    if not requested:
        raise InputError("the clustering sweep needs at least one K")
    if min(requested) < 1:
        raise InputError(f"K={min(requested)}: the number of clusters must be at least 1")
    capped = sorted({min(k, m) for k in requested})
    if max(requested) > m:
        log.info("sweep K %s capped at the number of materials (M=%d): %s", requested, m, capped)
    return capped


def cut_tree(linkage_matrix: NDArray[np.float64], ks: Sequence[int]) -> dict[int, NDArray[np.int32]]:
    """Flat clusters (``maxclust``) of one Ward tree at every K of ``ks``: ``{k: (M,) labels}``.

    ``linkage_matrix``: (M-1, 4) scipy linkage. The same partitions as
    :func:`~optabs.interpret.ward_clusters` at each K (which re-runs Ward per call), numbered
    arbitrarily; fewer than K clusters where merge heights tie.
    """
    m = len(linkage_matrix) + 1
    if m == 1:  # scipy cannot cut a tree without merges
        return {int(k): np.ones(1, dtype=np.int32) for k in ks}
    return {int(k): fcluster(linkage_matrix, t=int(k), criterion="maxclust") for k in ks}


def clustering_sweep(
    spectra: ArrayLike,
    features_by_space: Mapping[str, ArrayLike],
    element_sets: Sequence[Sequence[str] | frozenset[str]],
    dominant_env: Sequence[str | None],
    ks: Iterable[int],
    *,
    standardize: bool = False,
    common: Literal["all", "pair"] = "all",
) -> pd.DataFrame:
    """Ward clusters of every feature space at every K, each scored against the raw spectra's.

    ``spectra``: (M, N) log10 alpha, clustered as the space ``"spectra"`` and used for the
    spectral spread of every space; ``features_by_space``: ordered ``{name: (M, F) features}``
    (e.g. ``alignn_0`` .. ``gcn_3``, ``readout``). An entry named ``"spectra"`` must hold the same
    array as ``spectra`` and only places the spectra row in that order; without one, the spectra
    row comes last. ``element_sets``, ``dominant_env``: as for
    :func:`~optabs.interpret.compare_clusterings`. ``ks``: capped at M, duplicates dropped
    (:func:`sweep_ks`). ``standardize``: scale every embedding column to unit variance before
    Ward (never the spectra, as in the interpret stage). ``common``: which materials are scored,
    ``"all"`` or ``"pair"`` (the rules are in the module docstring).

    One Ward tree per space, cut at every K (:func:`cut_tree`). Returns one row per (space, K),
    spaces in order and K ascending within each, with the columns :data:`SWEEP_COLUMNS`:
    ``spectral_spread`` (log10 alpha), ``chemical_homogeneity`` and ``coordination_agreement``
    (0..1) computed over the scored materials with each cluster cut to its scored members
    (:func:`~optabs.interpret.compare.clustering_stats`; NaN when none is scored), ``n_common``
    the number of scored materials, ``n_clusters`` and ``n_singletons`` of the space's whole
    clustering at that K.
    """
    x = np.asarray(spectra, dtype=float)
    if x.ndim != 2:
        raise InputError(f"spectra must be a 2-D array (materials x energies), got shape {x.shape}")
    m = x.shape[0]
    if len(element_sets) != m or len(dominant_env) != m:
        raise InputError(
            f"clustering_sweep: {m} spectra, {len(element_sets)} element sets and {len(dominant_env)} "
            "environments must all describe the same M materials"
        )
    if common not in ("all", "pair"):
        raise InputError(f"common={common!r}: choose 'all' or 'pair'")
    spaces = _spaces(x, features_by_space)
    ks = sweep_ks(ks, m)

    trees = {}
    for name, features in spaces.items():
        try:
            trees[name] = ward_clusters(features, 1, standardize=standardize and name != SPECTRA_SPACE).linkage
        except InputError as err:
            raise InputError(f"feature space {name!r}: {err}") from err
    cuts = {name: cut_tree(tree, ks) for name, tree in trees.items()}

    membership = element_matrix(element_sets)[0]
    env = environment_codes(dominant_env)
    rows = []
    for k in ks:
        shared = common_members([cuts[name][k] for name in spaces]) if common == "all" else None
        for name in spaces:
            labels = cuts[name][k]
            scored = shared if shared is not None else common_members([labels, cuts[SPECTRA_SPACE][k]])
            stats = clustering_stats(x, membership, env, labels, scored=scored)
            rows.append({"space": name, "k": k, **{col: stats[col] for col in SWEEP_COLUMNS[2:5]},
                         "n_common": stats["n_scored"], "n_clusters": stats["n_clusters"],
                         "n_singletons": stats["n_singletons"]})
            if stats["n_clusters"] < k:
                log.info("space %r: Ward/maxclust gave %d clusters at K=%d (tied merge heights)", name, stats["n_clusters"], k)
    order = {name: i for i, name in enumerate(spaces)}
    rows.sort(key=lambda row: (order[row["space"]], row["k"]))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def best_space(table: pd.DataFrame, k: int) -> dict:
    """The row of ``table`` (:func:`clustering_sweep`) at ``k`` with the highest chemical homogeneity.

    Ties go to the higher coordination agreement, then to the earlier row. Every space competes,
    the spectra included. Returns the row as a dict of :data:`SWEEP_COLUMNS`. Raises
    :class:`InputError` when the table has no K = ``k`` or no finite homogeneity there.
    """
    at_k = table[table["k"] == k]
    if at_k.empty:
        raise InputError(f"the sweep has no K={k}; it has K = {sorted(table['k'].unique().tolist())}")
    finite = at_k[np.isfinite(at_k["chemical_homogeneity"].to_numpy(dtype=float))]
    if finite.empty:
        raise InputError(f"at K={k} no feature space has a chemical homogeneity (no material is in a cluster of two)")
    ranked = finite.sort_values(["chemical_homogeneity", "coordination_agreement"], ascending=False,
                                na_position="last", kind="stable")
    return {key: value.item() if isinstance(value, np.generic) else value for key, value in ranked.iloc[0].items()}


def sweep_figure(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Homogeneity, coordination agreement and spectral spread against K (log2 axis), one line per space.

    ``table``: :func:`clustering_sweep`'s. The spectra are the dashed black line; the layers of
    one model (``alignn_0``, ``alignn_1``, ...) share a colour map, darker with depth. One PNG
    (drawn on a bare matplotlib ``Figure``, Agg canvas), written atomically to ``path``.
    """
    missing = [c for c in ("space", "k", *METRICS) if c not in table.columns]
    if missing:
        raise InputError(f"sweep table lacks columns {missing}; it has {list(table.columns)}")
    spaces = list(dict.fromkeys(table["space"]))
    colors = _space_colors(spaces)
    ks = sorted(int(k) for k in table["k"].unique())
    fig = Figure(figsize=(14.0, 4.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(METRICS))
    handles = []
    for space in spaces:
        rows = table[table["space"] == space].sort_values("k")
        reference = space == SPECTRA_SPACE
        style: dict[str, Any] = {"color": "black", "linestyle": "--", "linewidth": 1.8, "zorder": 3} if reference \
            else {"color": colors[space], "linestyle": "-", "linewidth": 1.2, "zorder": 2}
        for ax, metric in zip(axes, METRICS):
            ax.plot(rows["k"], rows[metric], marker="o", markersize=3.5, **style)
        handles.append(Line2D([], [], marker="o", markersize=3.5, label=space, **style))
    for ax, label in zip(axes, METRICS.values()):
        ax.set_xscale("log", base=2)
        if len(ks) > 1:
            ax.set_xlim(ks[0] / 2 ** 0.25, ks[-1] * 2 ** 0.25)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("Number of clusters K")
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="feature space", title_fontsize=8)
    scored = ""
    if "n_common" in table.columns and len(table):
        lo, hi = int(table["n_common"].min()), int(table["n_common"].max())
        scored = f"; scored on {lo if lo == hi else f'{lo}–{hi}'} materials in clusters of two or more"
    fig.suptitle(f"Ward clusters of every feature space against the raw spectra{scored}", fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def embedding_spaces(embeddings: pd.DataFrame, material_ids: Sequence[str]) -> dict[str, NDArray[np.float64]]:
    """``{layer: (M, F) features}`` of every layer of the model stage's embeddings table, for ``material_ids``.

    Layers in natural order (``alignn_0`` .. ``alignn_3``, ``gcn_0`` .. ``gcn_3``, ``readout``);
    errors as :func:`~optabs.interpret.feature_matrix`.
    """
    if "layer" not in embeddings.columns:
        raise InputError(f"embeddings table needs a layer column; has {list(embeddings.columns)}")
    layers = sorted(embeddings["layer"].unique(), key=_natural_key)
    return {layer: feature_matrix(embeddings, layer, material_ids) for layer in layers}


def _spaces(spectra: NDArray[np.float64], features_by_space: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    """The spaces to sweep in order, the spectra among them (last unless placed), each (M, F)."""
    m = spectra.shape[0]
    spaces: dict[str, NDArray[np.float64]] = {}
    for name, features in features_by_space.items():
        f = spectra if name == SPECTRA_SPACE else np.asarray(features, dtype=float)
        if name == SPECTRA_SPACE and not np.array_equal(np.asarray(features, dtype=float), spectra):
            raise InputError(f"feature space {SPECTRA_SPACE!r} must be the spectra passed as spectra (rename it otherwise)")
        if f.ndim != 2 or f.shape[0] != m:
            raise InputError(f"feature space {name!r} has shape {f.shape}; expected ({m}, F) for the {m} materials")
        spaces[str(name)] = f
    spaces.setdefault(SPECTRA_SPACE, spectra)
    return spaces


def _space_colors(spaces: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A colour per space: layers ``<model>_<n>`` of one model shade one colour map, the rest tab10 colours."""
    families: dict[str, list[str]] = {}
    for space in spaces:
        match = re.fullmatch(r"(.+)_(\d+)", space)
        if match and space != SPECTRA_SPACE:
            families.setdefault(match.group(1), []).append(space)
    maps = ["Blues", "Oranges", "Greens", "Purples"]
    colors: dict[str, tuple[float, ...]] = {}
    for cmap_name, members in zip(maps, families.values()):
        shades = np.linspace(0.45, 0.95, len(members)) if len(members) > 1 else [0.75]
        members = sorted(members, key=_natural_key)
        colors.update({s: tuple(matplotlib.colormaps[cmap_name](shade)) for s, shade in zip(members, shades)})
    rest = [s for s in spaces if s not in colors and s != SPECTRA_SPACE]
    tab10 = matplotlib.colormaps["tab10"]
    others = [3, 4, 5, 6, 8, 9, 0, 1, 2, 7]  # red, purple, brown, ... before the blue/orange/green the layers use
    colors.update({s: tuple(tab10(others[i % len(others)])) for i, s in enumerate(rest)})
    return colors


def _natural_key(name: str) -> tuple:
    """Sort key reading digit runs as numbers: ``alignn_2`` before ``alignn_10``."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", str(name)) if part)

