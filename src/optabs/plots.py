"""Every figure of the package, drawn once: the model's, the clusters' and the screening's.

Every figure is drawn on a bare matplotlib ``Figure`` and saved as PNG, which renders it with the
Agg canvas whatever the process's backend: no pyplot, no global state, no display needed, and
importing this module changes nothing for the caller. Spectra axes read "Energy (eV)" and
"log10 α (cm⁻¹)".
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike, NDArray

from optabs.errors import InputError

__all__ = [
    "ALPHA_LABEL",
    "ENERGY_LABEL",
    "ClusterSpectraPlot",
    "ScoreHistogramPlot",
    "band_spectra_figure",
    "cluster_grid_figure",
    "cluster_spectra_figure",
    "dendrogram_figure",
    "merit_sigma_figure",
    "onset_edge_figure",
    "onset_parity_figure",
    "rounds_figure",
    "worst_by_quartile_figure",
]

ENERGY_LABEL = "Energy (eV)"
ALPHA_LABEL = "log10 α (cm⁻¹)"
ONSET_LABEL = "Onset energy (eV)"
EDGE_LABEL = "Edge integral, first 2 eV above onset (decade·eV)"
DPI = 100
#: Member spectra drawn per cluster panel at most (a deterministic subsample beyond).
MAX_LINES = 60
#: Spectra are drawn with every ``PLOT_STRIDE``-th grid point (0.02 eV): identical at these sizes.
PLOT_STRIDE = 2


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _subsample(n: int, limit: int) -> NDArray[np.int64]:
    """At most ``limit`` evenly spaced indices of ``n`` (deterministic)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _spectra_lines(ax, energy: NDArray, spectra: NDArray, color: str = "0.6", lw: float = 0.5, alpha: float = 0.5) -> None:
    """All rows of (m, N) ``spectra`` as one LineCollection (fast for many lines)."""
    if len(spectra) == 0:
        return
    e = energy[::PLOT_STRIDE]
    segments = np.stack([np.broadcast_to(e, spectra[:, ::PLOT_STRIDE].shape), spectra[:, ::PLOT_STRIDE]], axis=-1)
    ax.add_collection(LineCollection(cast(Sequence[NDArray], segments), colors=color, linewidths=lw, alpha=alpha), autolim=False)


def onset_parity_figure(true_onset: ArrayLike, pred_onset: ArrayLike, path: str | os.PathLike) -> Path:
    """Predicted vs reference onset energy (eV), with the y = x line and the MAE over finite pairs."""
    t = np.asarray(true_onset, dtype=float)
    p = np.asarray(pred_onset, dtype=float)
    ok = np.isfinite(t) & np.isfinite(p)
    fig = _figure(4.8, 4.5)
    ax = fig.add_subplot()
    ax.scatter(t[ok], p[ok], s=10, alpha=0.6, color="tab:blue", edgecolors="none")
    if ok.any():
        lo, hi = float(min(t[ok].min(), p[ok].min())), float(max(t[ok].max(), p[ok].max()))
        pad = 0.05 * max(hi - lo, 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.3", lw=1, ls="--", label="y = x")
        mae = float(np.abs(t[ok] - p[ok]).mean())
        ax.set_title(f"Onset: MAE {mae:.2f} eV over {ok.sum()} materials", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.set_title("Onset: no material with both onsets", fontsize=10)
    if (~ok).any():
        ax.text(0.98, 0.02, f"{(~ok).sum()} without an onset", transform=ax.transAxes, ha="right", fontsize=8, color="0.4")
    ax.set_xlabel(f"Reference {ONSET_LABEL.lower()}")
    ax.set_ylabel(f"Predicted {ONSET_LABEL.lower()}")
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


def worst_by_quartile_figure(
    energy: ArrayLike, y_true: ArrayLike, y_pred: ArrayLike, mae: ArrayLike, ids: Sequence[str], path: str | os.PathLike
) -> Path:
    """Predicted vs reference spectra of the worst material (highest MAE) of each MAE quartile.

    ``y_true``, ``y_pred``: (M, N) log10 alpha; ``mae``: (M,) per-material MAE; ``ids``: M labels.
    """
    energy = np.asarray(energy, dtype=float)
    yt, yp = np.atleast_2d(np.asarray(y_true, dtype=float)), np.atleast_2d(np.asarray(y_pred, dtype=float))
    err = np.asarray(mae, dtype=float)
    if yt.shape != yp.shape or yt.shape[0] != err.size or err.size != len(ids) or yt.shape[1] != energy.size:
        raise InputError(f"worst_by_quartile_figure: shapes {yt.shape}, {yp.shape}, {err.shape}, {len(ids)} ids, {energy.shape}")
    ranks = np.argsort(np.argsort(err, kind="stable"), kind="stable")
    quartile = np.minimum(4 * ranks // max(err.size, 1), 3)
    fig = _figure(10, 6.5)
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for q, ax in enumerate(axes):
        members = np.flatnonzero(quartile == q)
        if members.size == 0:
            ax.set_visible(False)
            continue
        i = members[np.argmax(err[members])]
        ax.plot(energy, yt[i], color="k", lw=1.2, label="reference")
        ax.plot(energy, yp[i], color="tab:red", lw=1.2, ls="--", label="predicted")
        ax.set_title(f"Q{q + 1} worst: {ids[i]} (MAE {err[i]:.3f})", fontsize=9)
        ax.set_xlabel(ENERGY_LABEL)
        ax.set_ylabel(ALPHA_LABEL)
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def _representative_leaf(linkage_matrix: NDArray) -> NDArray[np.int64]:
    """For every node of the tree (leaves 0..M-1, merges M..2M-2), one leaf below it."""
    m = len(linkage_matrix) + 1
    rep = np.empty(2 * m - 1, dtype=np.int64)
    rep[:m] = np.arange(m)
    for i, left in enumerate(linkage_matrix[:, 0].astype(np.int64)):  # over merges, O(1) each
        rep[m + i] = rep[left]
    return rep


def dendrogram_figure(
    linkage_matrix: ArrayLike, labels: ArrayLike, path: str | os.PathLike, *, max_leaves: int = 120
) -> Path:
    """The Ward tree, cut where the flat clusters ``labels`` (1..C) were formed.

    With C <= ``max_leaves`` the tree is truncated to its last C merges, one leaf per cluster,
    labelled "cluster (members)"; otherwise to its last ``max_leaves`` merges. Branches below the
    cut are coloured. ``labels`` must index the rows the linkage was built from.
    """
    from scipy.cluster.hierarchy import dendrogram

    z = np.asarray(linkage_matrix, dtype=float)
    lab = np.asarray(labels)
    m = len(z) + 1
    if lab.size != m:
        raise InputError(f"dendrogram_figure: {lab.size} labels for a tree of {m} leaves")
    n_clusters = int(np.unique(lab).size)
    p = min(n_clusters if n_clusters <= max_leaves else max_leaves, m)
    rep = _representative_leaf(z)
    heights = np.sort(z[:, 2])
    cut = 0.5 * (heights[m - n_clusters - 1] + heights[m - n_clusters]) if 1 < n_clusters < m else heights[-1] + 1

    def leaf_label(node: int) -> str:
        count = 1 if node < m else int(z[node - m, 3])
        return f"{lab[rep[node]]} ({count})" if p == n_clusters else f"({count})"

    fig = _figure(max(6.0, min(18.0, 0.16 * p + 3)), 4.8)
    ax = fig.add_subplot()
    dendrogram(z, ax=ax, truncate_mode="lastp" if p < m else None, p=p, leaf_label_func=leaf_label,
               color_threshold=cut, above_threshold_color="0.5", leaf_font_size=7 if p > 40 else 9)
    ax.axhline(cut, color="tab:red", lw=0.8, ls=":")
    ax.set_xlabel("Cluster (members), numbered left to right" if p == n_clusters else "Subtree (members)")
    ax.set_ylabel("Ward merge distance (feature units)")
    ax.set_title(f"Ward dendrogram of {m} materials, cut into {n_clusters} clusters", fontsize=10)
    return _save(fig, path)


def cluster_grid_figure(
    energy: ArrayLike, spectra: ArrayLike, labels: ArrayLike, path: str | os.PathLike, *, max_lines: int = MAX_LINES
) -> Path:
    """Small multiples: one panel per cluster with its members' spectra (grey) and their mean (blue).

    All panels have the same axes (not matplotlib-shared: sharing 96 axes makes every limit
    update quadratic); tick labels only on the outer panels.
    """
    energy = np.asarray(energy, dtype=float)
    s = np.asarray(spectra, dtype=float)
    lab = np.asarray(labels)
    clusters = np.unique(lab)
    ncols = int(min(12, clusters.size))
    nrows = int(math.ceil(clusters.size / ncols))
    fig = Figure(figsize=(1.6 * ncols + 1.0, 1.35 * nrows + 0.8), dpi=DPI)
    fig.subplots_adjust(left=0.8 / (1.6 * ncols + 1.0), right=0.99, bottom=0.55 / (1.35 * nrows + 0.8),
                        top=1 - 0.25 / (1.35 * nrows + 0.8), wspace=0.08, hspace=0.35)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    ylim = (float(np.nanmin(s)) - 0.1, float(np.nanmax(s)) + 0.1)
    for k, ax in enumerate(axes.ravel()):
        if k >= clusters.size:
            ax.set_visible(False)
            continue
        members = np.flatnonzero(lab == clusters[k])
        _spectra_lines(ax, energy, s[members[_subsample(members.size, max_lines)]], lw=0.3, alpha=0.4)
        ax.plot(energy[::PLOT_STRIDE], s[members].mean(axis=0)[::PLOT_STRIDE], color="tab:blue", lw=1.0,
                scalex=False, scaley=False)
        ax.set_xlim(energy[0], energy[-1])
        ax.set_ylim(*ylim)
        ax.set_title(f"{clusters[k]} ({members.size})", fontsize=7, pad=2)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=6, length=2, labelbottom=k + ncols >= clusters.size, labelleft=k % ncols == 0)
    fig.supxlabel(ENERGY_LABEL, fontsize=9)
    fig.supylabel(ALPHA_LABEL, fontsize=9)
    return _save(fig, path)


class ClusterSpectraPlot:
    """One figure redrawn for cluster after cluster: building axes and ticks once saves most of the time."""

    def __init__(self, energy: ArrayLike, dataset_mean: ArrayLike, max_lines: int = 200):
        self.energy = np.asarray(energy, dtype=float)
        self.mean_all = np.asarray(dataset_mean, dtype=float)
        self.max_lines = max_lines
        self.fig = Figure(figsize=(6.4, 3.6), dpi=DPI)
        self.fig.subplots_adjust(left=0.11, right=0.98, bottom=0.14, top=0.91)
        ax = self.ax = self.fig.add_subplot()
        self.lines = LineCollection([], colors="0.6", linewidths=0.5, alpha=0.5)
        ax.add_collection(self.lines, autolim=False)
        self.legend_members = ax.plot([], [], color="0.6", lw=0.8, label="members")[0]
        e = self.energy[::PLOT_STRIDE]
        self.mean = ax.plot(e, np.zeros_like(e), color="tab:blue", lw=1.6, label="cluster mean", scalex=False, scaley=False)[0]
        ax.plot(e, self.mean_all[::PLOT_STRIDE], color="k", lw=1.0, ls="--", label="dataset mean", scalex=False, scaley=False)
        ax.set_xlim(self.energy[0], self.energy[-1])
        ax.set_xlabel(ENERGY_LABEL)
        ax.set_ylabel(ALPHA_LABEL)

    def draw(self, spectra: ArrayLike, path: str | os.PathLike, title: str = "") -> Path:
        """Draw ``spectra`` (one cluster's members, one per row) with their mean and save the PNG at ``path``."""
        s = np.atleast_2d(np.asarray(spectra, dtype=float))
        shown = s[_subsample(len(s), self.max_lines), ::PLOT_STRIDE]
        e = self.energy[::PLOT_STRIDE]
        self.lines.set_segments(cast(Sequence[NDArray], np.stack([np.broadcast_to(e, shown.shape), shown], axis=-1)))
        self.mean.set_ydata(s.mean(axis=0)[::PLOT_STRIDE])
        self.legend_members.set_label(f"members ({len(s)})")
        lo, hi = float(min(s.min(), self.mean_all.min())), float(max(s.max(), self.mean_all.max()))
        self.ax.set_ylim(lo - 0.05 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))
        self.ax.legend(fontsize=8, loc="lower right")
        self.ax.set_title(title, fontsize=10)
        return _save(self.fig, path)


class ScoreHistogramPlot:
    """The study's Figure b, cluster after cluster: the distribution of each material's highest
    CrystalNN tetrahedral score (0..1) in one cluster against the whole dataset, as fractions of
    the materials with a score, on fixed bins. One figure redrawn per cluster (as
    :class:`ClusterSpectraPlot`)."""

    def __init__(self, bin_lo: ArrayLike, bin_hi: ArrayLike, dataset_fraction: ArrayLike, score: str = "tetrahedral"):
        lo, hi = np.asarray(bin_lo, dtype=float), np.asarray(bin_hi, dtype=float)
        self.fig = Figure(figsize=(4.2, 3.0), dpi=DPI)
        self.fig.subplots_adjust(left=0.15, right=0.97, bottom=0.17, top=0.89)
        ax = self.ax = self.fig.add_subplot()
        width = hi - lo
        self.bars = ax.bar(lo, np.zeros_like(lo), width=width, align="edge", color="tab:blue", alpha=0.7, label="cluster")
        ax.step(np.append(lo, hi[-1]), np.append(dataset_fraction, np.asarray(dataset_fraction)[-1]), where="post",
                color="k", lw=1.2, ls="--", label="dataset")
        ax.set_xlim(float(lo[0]), float(hi[-1]))
        ax.set_xlabel(f"highest {score} score per material")
        ax.set_ylabel("fraction of materials")
        ax.legend(fontsize=8, loc="upper left")
        self.dataset_max = float(np.max(dataset_fraction)) if len(lo) else 1.0

    def draw(self, cluster_fraction: ArrayLike, path: str | os.PathLike, title: str = "") -> Path:
        """Draw one cluster's fractions (one per bin) and save the PNG at ``path``."""
        frac = np.asarray(cluster_fraction, dtype=float)
        for bar, value in zip(self.bars, frac):
            bar.set_height(float(value))
        self.ax.set_ylim(0.0, 1.05 * max(float(frac.max(initial=0.0)), self.dataset_max, 0.05))
        self.ax.set_title(title, fontsize=10)
        return _save(self.fig, path)


def cluster_spectra_figure(
    energy: ArrayLike, spectra: ArrayLike, dataset_mean: ArrayLike, path: str | os.PathLike, *,
    title: str = "", max_lines: int = 200,
) -> Path:
    """One cluster's member spectra (grey, at most ``max_lines``), their mean (blue) and the whole
    dataset's mean (dashed)."""
    return ClusterSpectraPlot(energy, dataset_mean, max_lines).draw(spectra, path, title)


def _cluster_palette(n: int) -> NDArray[np.float64]:
    """RGBA colours for n clusters: tab10, or tab20 with its paired light/dark shades set apart."""
    if n <= 10:
        return matplotlib.colormaps["tab10"](np.arange(10))
    return matplotlib.colormaps["tab20"](np.r_[0:20:2, 1:20:2])


def onset_edge_figure(onset: ArrayLike, edge: ArrayLike, labels: ArrayLike, path: str | os.PathLike) -> Path:
    """Onset energy vs absorption-edge integral, one colour per cluster, cluster numbers at their medians."""
    x, y, lab = np.asarray(onset, dtype=float), np.asarray(edge, dtype=float), np.asarray(labels)
    clusters, idx = np.unique(lab, return_inverse=True)
    ok = np.isfinite(x) & np.isfinite(y)
    palette = _cluster_palette(clusters.size)
    colors = palette[idx.ravel() % len(palette)]
    fig = _figure(7.5, 5.2)
    ax = fig.add_subplot()
    ax.scatter(x[ok], y[ok], c=colors[ok], s=9, alpha=0.75, edgecolors="none")
    frame = pd.DataFrame({"c": idx.ravel(), "x": x, "y": y})[ok]
    med = frame.groupby("c")[["x", "y"]].median()
    for c, row in med.iterrows():
        ax.annotate(str(clusters[c]), (row.x, row.y), fontsize=7, ha="center", va="center", weight="bold",
                    color=palette[c % len(palette)],
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.set_xlabel(ONSET_LABEL)
    ax.set_ylabel(EDGE_LABEL)
    ax.set_title(f"Onset vs edge of {ok.sum()} materials, coloured by cluster (labels at cluster medians)", fontsize=9)
    return _save(fig, path)


def merit_sigma_figure(
    mean: ArrayLike, std: ArrayLike, shortlisted: ArrayLike, ood: ArrayLike, merit: str, path: str | os.PathLike
) -> Path:
    """Screening: each candidate's figure of merit (mean over the ensemble) against its sigma;
    the shortlist ringed, out-of-distribution candidates as crosses."""
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    picked, ood = np.asarray(shortlisted, bool), np.asarray(ood, bool)
    fig = _figure(5.0, 4.0)
    ax = fig.add_subplot()
    ax.scatter(mean[~ood], std[~ood], s=10, c="0.5", label="candidates")
    if ood.any():
        ax.scatter(mean[ood], std[ood], s=18, c="tab:red", marker="x", label="out of distribution")
    ax.scatter(mean[picked], std[picked], s=60, facecolors="none", edgecolors="tab:blue", lw=1.5, label="shortlist")
    ax.set_xlabel(f"{merit} (ensemble mean)")
    ax.set_ylabel(f"{merit} σ (ensemble)")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def band_spectra_figure(
    energy: ArrayLike, mean: ArrayLike, std: ArrayLike, labels: Sequence[str], path: str | os.PathLike
) -> Path:
    """Screening: the shortlisted candidates' predicted spectra (ensemble mean) with their ±σ band,
    one panel each (at most 12), log10 α (cm⁻¹) against energy (eV)."""
    energy, mean, std = np.asarray(energy, float), np.atleast_2d(np.asarray(mean, float)), np.atleast_2d(np.asarray(std, float))
    n = max(1, min(len(labels), 12))
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = _figure(3.2 * cols, 2.4 * rows)
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        if i < len(labels):
            ax.fill_between(energy, mean[i] - std[i], mean[i] + std[i], color="tab:blue", alpha=0.3, lw=0)
            ax.plot(energy, mean[i], color="tab:blue", lw=1.0)
            ax.set_title(labels[i], fontsize=8)
        ax.set_xlabel(ENERGY_LABEL, fontsize=7)
        ax.set_ylabel(ALPHA_LABEL, fontsize=7)
        ax.tick_params(labelsize=7)
    return _save(fig, path)


def rounds_figure(
    rounds: Sequence[int], mae_median: Sequence[float | None], within_2sigma: Sequence[float | None],
    joined: Sequence[int], path: str | os.PathLike,
) -> Path:
    """Active learning, per round: the ensemble's median test MAE (log10 α) and the share of test
    points inside its ±2σ band (round 0's test set throughout), and how many picks joined the dataset."""
    x = np.asarray(rounds, int)
    mae = np.array([np.nan if v is None else float(v) for v in mae_median])
    cover = np.array([np.nan if v is None else float(v) for v in within_2sigma])
    fig = _figure(7.5, 2.6)
    panels: list[tuple[NDArray[np.float64], str]] = [
        (mae, "median test MAE (log10 α)"), (cover, "test points within ±2σ"),
        (np.asarray(joined, dtype=float), "picks that joined the dataset")]
    for i, (values, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(x, values, "o-", color="tab:blue")
        ax.set_xlabel("round")
        ax.set_title(label, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
    return _save(fig, path)
