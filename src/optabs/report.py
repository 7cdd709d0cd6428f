"""The one plotting module: figures of the model and the clusters, and the static HTML report.

Every figure is drawn on a bare matplotlib ``Figure`` and saved as PNG, which renders it with the
Agg canvas whatever the process's backend: no pyplot, no global state, no display needed, and
importing this module changes nothing for the caller. Spectra axes read "Energy (eV)" and
"log10 α (cm⁻¹)".

:func:`build_report` writes a self-contained static site: ``index.html``, one
``cluster_<n>.html`` per cluster, and the figures as PNG files in ``img/`` beside them, linked
relatively, so the folder opens from ``file://``, can be copied or zipped as it is, and needs no
server and no network (no scripts, no web fonts, CSS inline). It is built in a temporary folder
beside ``outdir`` and renamed into place, so a crash never leaves a half-written report.
"""

from __future__ import annotations

import html
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

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
    "build_report",
    "cluster_grid_figure",
    "cluster_spectra_figure",
    "dendrogram_figure",
    "onset_edge_figure",
    "onset_parity_figure",
    "worst_by_quartile_figure",
]

log = logging.getLogger(__name__)

ENERGY_LABEL = "Energy (eV)"
ALPHA_LABEL = "log10 α (cm⁻¹)"
ONSET_LABEL = "Onset energy (eV)"
EDGE_LABEL = "Edge integral, first 2 eV above onset (decade·eV)"
DPI = 100
#: Member spectra drawn per cluster panel at most (a deterministic subsample beyond).
MAX_LINES = 60
#: Spectra are drawn with every ``PLOT_STRIDE``-th grid point (0.02 eV): identical at these sizes.
PLOT_STRIDE = 2


# ---------------------------------------------------------------- figures


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
    ax.add_collection(LineCollection(segments, colors=color, linewidths=lw, alpha=alpha), autolim=False)


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
        ax.plot(energy[::PLOT_STRIDE], s[members].mean(axis=0)[::PLOT_STRIDE], color="tab:blue", lw=1.0, scalex=False, scaley=False)
        ax.set_xlim(energy[0], energy[-1])
        ax.set_ylim(*ylim)
        ax.set_title(f"{clusters[k]} ({members.size})", fontsize=7, pad=2)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=6, length=2, labelbottom=k + ncols >= clusters.size, labelleft=k % ncols == 0)
    fig.supxlabel(ENERGY_LABEL, fontsize=9)
    fig.supylabel(ALPHA_LABEL, fontsize=9)
    return _save(fig, path)


class _ClusterSpectraPlot:
    """One figure redrawn for cluster after cluster: building axes and ticks once saves most of the time."""

    def __init__(self, energy: NDArray, dataset_mean: NDArray, max_lines: int = 200):
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
        s = np.atleast_2d(np.asarray(spectra, dtype=float))
        shown = s[_subsample(len(s), self.max_lines), ::PLOT_STRIDE]
        e = self.energy[::PLOT_STRIDE]
        self.lines.set_segments(np.stack([np.broadcast_to(e, shown.shape), shown], axis=-1))
        self.mean.set_ydata(s.mean(axis=0)[::PLOT_STRIDE])
        self.legend_members.set_label(f"members ({len(s)})")
        lo, hi = float(min(s.min(), self.mean_all.min())), float(max(s.max(), self.mean_all.max()))
        self.ax.set_ylim(lo - 0.05 * (hi - lo + 0.1), hi + 0.05 * (hi - lo + 0.1))
        self.ax.legend(fontsize=8, loc="lower right")
        self.ax.set_title(title, fontsize=10)
        return _save(self.fig, path)


def cluster_spectra_figure(
    energy: ArrayLike, spectra: ArrayLike, dataset_mean: ArrayLike, path: str | os.PathLike, *,
    title: str = "", max_lines: int = 200,
) -> Path:
    """One cluster's member spectra (grey, at most ``max_lines``), their mean (blue) and the whole
    dataset's mean (dashed)."""
    return _ClusterSpectraPlot(energy, dataset_mean, max_lines).draw(spectra, path, title)


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
                    color=palette[c % len(palette)], bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.6})
    ax.set_xlabel(ONSET_LABEL)
    ax.set_ylabel(EDGE_LABEL)
    ax.set_title(f"Onset vs edge of {ok.sum()} materials, coloured by cluster (labels at cluster medians)", fontsize=9)
    return _save(fig, path)


# ---------------------------------------------------------------- HTML


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;background:#f6f7f9;line-height:1.45}
main{max-width:1240px;margin:0 auto;padding:18px 28px 60px;background:#fff;min-height:100vh;box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.6em;margin:.4em 0 .2em}h2{font-size:1.22em;margin:1.6em 0 .5em;padding-bottom:.25em;border-bottom:2px solid #e4e7ec}
h3{font-size:1.02em;margin:1.1em 0 .4em}
nav{font-size:.92em;margin:.4em 0 1em}nav a{margin-right:1.2em}
a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}
.meta{color:#5b6472;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:.8em 0}
.card{background:#f1f4f8;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:1.3em}.card span{color:#5b6472;font-size:.82em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.88em}
th,td{padding:4px 10px;border-bottom:1px solid #e4e7ec;text-align:left;vertical-align:top}
th{background:#f1f4f8;font-weight:600;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr:nth-child(even) td{background:#fafbfc}
figure{margin:.6em 0 1.2em}figure img{max-width:100%;height:auto;border:1px solid #e4e7ec;border-radius:4px}
figcaption{color:#5b6472;font-size:.86em;margin-top:.3em;max-width:900px}
.bar{display:inline-block;height:10px;background:#4c8bd6;border-radius:2px;vertical-align:middle}
.bar.ds{background:#b8c2cf}.bw{white-space:nowrap}
.cols{display:flex;flex-wrap:wrap;gap:28px}.cols>div{flex:1 1 340px}
.scroll{max-height:520px;overflow:auto;border:1px solid #e4e7ec;border-radius:4px;display:inline-block}
.scroll table{margin:0}
.note{background:#fff8e1;border-left:4px solid #f2b300;padding:6px 12px;font-size:.9em}
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}" if abs(value) < 10 else f"{value:.{max(digits - 1, 1)}f}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(frame: pd.DataFrame, *, headers: Mapping[str, str] | None = None, links: Mapping[str, Callable[[object], str]] | None = None,
           raw: Sequence[str] = (), digits: int = 3, scroll: bool = False) -> str:
    """An HTML table of ``frame``: numbers right-aligned and formatted, text escaped.

    ``links``: column -> function(value) giving an href; ``raw``: columns holding trusted HTML.
    """
    headers = headers or {}
    links = links or {}
    head = "".join(f"<th>{_esc(headers.get(c, c))}</th>" for c in frame.columns)
    numeric = {c for c in frame.columns if c not in raw and _is_numeric(frame[c])}
    body = []
    for values in frame.itertuples(index=False, name=None):
        cells = []
        for c, v in zip(frame.columns, values):
            text = str(v) if c in raw else _esc(_fmt(v, digits))
            if c in links and v is not None and not (isinstance(v, float) and math.isnan(v)):
                text = f'<a href="{_esc(links[c](v))}">{text}</a>'
            cells.append(f'<td class="num">{text}</td>' if c in numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers.get(c, c) for c in frame.columns) else ""
    table = f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"
    return f'<div class="scroll">{table}</div>' if scroll else table


def _is_numeric(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return False
    if pd.api.types.is_numeric_dtype(column):
        return True
    values = [v for v in column if v is not None]
    return bool(values) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)


def _figure_html(src: str, alt: str, caption: str) -> str:
    return f'<figure><img src="{_esc(src)}" alt="{_esc(alt)}"><figcaption>{_esc(caption)}</figcaption></figure>'


def _cards(items: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>' for k, v in items) + "</div>"


def _page(title: str, body: str, nav: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{nav}{body}</main></body></html>\n"
    )


def _bar(fraction: float, dataset: bool = False, width_px: int = 120) -> str:
    f = 0.0 if not np.isfinite(fraction) else float(np.clip(fraction, 0, 1))
    return (f'<span class="bw"><span class="bar{" ds" if dataset else ""}" style="width:{max(f * width_px, 1):.0f}px"></span>'
            f" {100 * f:.0f}%</span>")


ENRICHMENT_NOTE = (
    "log2 enrichment: log2 of how much more common the element is in the cluster than in the dataset "
    "(the cluster's frequency shrunk towards the dataset's by one material); 1 = twice as common. "
    "Log odds ratio: cluster vs the rest of the dataset, pseudo-count 0.5 per cell. > 0 enriched, < 0 depleted."
)


def cluster_page_name(cluster) -> str:
    return f"cluster_{cluster}.html"


# ---------------------------------------------------------------- the report


def _as_chemistry(chemistry):
    from optabs.chemistry import ClusterChemistry

    if isinstance(chemistry, ClusterChemistry):
        return chemistry
    if isinstance(chemistry, Mapping):
        return ClusterChemistry.from_tables(chemistry)
    raise InputError(f"chemistry must be a ClusterChemistry or a dict of its tables, not {type(chemistry).__name__}")


def _comparison_html(comparison: Mapping | None) -> str:
    if not comparison:
        return '<p class="meta">No clustering comparison.</p>'
    clusterings = {k: v for k, v in comparison.items() if isinstance(v, Mapping)}
    rows = [
        ("spectral_spread", "Spectral spread (mean |log10 α − cluster mean|, lower is tighter)"),
        ("chemical_homogeneity", "Chemical homogeneity (mean pairwise Jaccard of element sets, higher is purer)"),
        ("coordination_agreement", "Coordination agreement (share with the cluster's dominant environment)"),
        ("n_clusters", "Clusters"),
        ("n_singletons", "Singleton clusters (left out of the three metrics)"),
        ("size_median", "Median cluster size"),
        ("size_max", "Largest cluster"),
    ]
    frame = pd.DataFrame({"metric": [label for _, label in rows]})
    for name, stats in clusterings.items():
        frame[name] = pd.Series([stats.get(key) for key, _ in rows], dtype=object)
    extra = []
    if "dataset_jaccard" in comparison:
        extra.append(f"Chance level of homogeneity (all pairs of the dataset): {_fmt(comparison['dataset_jaccard'])}.")
    if "adjusted_rand_index" in comparison:
        ari = _fmt(comparison["adjusted_rand_index"])
        extra.append(f"Adjusted Rand index between the clusterings: {ari} (1 = same partition, 0 = chance).")
    return _table(frame, headers={"metric": ""}) + "".join(f'<p class="meta">{_esc(t)}</p>' for t in extra)


def _metrics_html(metrics: Mapping | None) -> tuple[str, list[tuple[str, str]]]:
    if not metrics:
        return '<p class="meta">No model metrics.</p>', []
    scalars = [(k, _fmt(v)) for k, v in metrics.items() if not isinstance(v, Mapping)]
    models = {k: _flatten(v) for k, v in metrics.items() if isinstance(v, Mapping)}
    if not models:
        return "", scalars
    keys = list(dict.fromkeys(key for stats in models.values() for key in stats))
    frame = pd.DataFrame({"model": list(models)})
    for k in keys:
        frame[k] = pd.Series([stats.get(k) for stats in models.values()], dtype=object)
    return _table(frame), scalars


def _flatten(d: Mapping, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, tuple, np.ndarray)):
            out[f"{prefix}{k}"] = v
    return out


def _predictions_section(dataset: pd.DataFrame, spectra: NDArray, energy: NDArray, predictions: pd.DataFrame | None,
                         img: Path, grid) -> str:
    from optabs.dataset import onsets

    if predictions is None or len(predictions) == 0:
        return '<p class="meta">No predictions.</p>'
    need = {"material_id", "log10_alpha_pred"}
    if not need <= set(predictions.columns):
        raise InputError(f"predictions need columns {sorted(need)}; have {list(predictions.columns)}")
    preds = predictions
    split_note = "all materials"
    if "split" in preds.columns and (preds["split"] == "test").any():
        preds, split_note = preds[preds["split"] == "test"], "the test split"
    row_of = pd.Series(np.arange(len(dataset)), index=dataset["material_id"].to_numpy())
    preds = preds[preds["material_id"].isin(row_of.index)]
    if preds.empty:
        return '<p class="note">No predicted material is in the dataset.</p>'
    rows = row_of.loc[preds["material_id"]].to_numpy()
    y_pred = np.stack([np.asarray(v, dtype=float) for v in preds["log10_alpha_pred"]])
    if y_pred.shape[1] != spectra.shape[1]:
        raise InputError(f"predictions have {y_pred.shape[1]} points per spectrum, the dataset {spectra.shape[1]}")
    y_true = spectra[rows]
    mae = np.abs(y_pred - y_true).mean(axis=1)
    true_onset = dataset["onset_ev"].to_numpy(dtype=float)[rows]
    pred_onset = onsets(grid, y_pred)
    onset_parity_figure(true_onset, pred_onset, img / "onset_parity.png")
    ids = [f"{mid} {f}" for mid, f in zip(preds["material_id"], dataset["formula"].to_numpy()[rows])]
    worst_by_quartile_figure(energy, y_true, y_pred, mae, ids, img / "worst_by_quartile.png")
    return (
        f'<p class="meta">{len(rows)} materials of {split_note}; spectrum MAE mean {mae.mean():.3f}, '
        f"median {np.median(mae):.3f} (log10 α).</p>"
        + '<div class="cols"><div>'
        + _figure_html("img/onset_parity.png", "onset parity",
                       "Predicted vs reference onset energy (first energy where log10 α exceeds the threshold).")
        + "</div><div>"
        + _figure_html("img/worst_by_quartile.png", "worst material per MAE quartile",
                       "The worst-predicted material of each quartile of the per-material MAE: how bad typical and bad predictions look.")
        + "</div></div>"
    )


def _failures_html(failures: pd.DataFrame | None, limit: int = 1000) -> str:
    if failures is None or len(failures) == 0:
        return '<p class="meta">No failures recorded.</p>'
    cols = [c for c in ("material_id", "stage", "reason") if c in failures.columns] or list(failures.columns)
    counts = failures["stage"].value_counts().to_dict() if "stage" in failures.columns else {}
    by_stage = ": " + ", ".join(f"{_esc(k)} {v}" for k, v in counts.items()) if counts else ""
    head = f'<p class="meta">{len(failures)} failures{by_stage}.'
    if len(failures) > limit:
        head += f" The first {limit} are listed."
    return head + "</p>" + _table(failures[cols].head(limit).astype(str), scroll=True)


def _cluster_page(c, position: int, clusters: Sequence, chem, member_frame: pd.DataFrame, env_overall: str) -> str:
    summary = chem.summary[chem.summary["cluster"] == c].iloc[0]
    prev_c = clusters[position - 1] if position > 0 else None
    next_c = clusters[position + 1] if position + 1 < len(clusters) else None
    nav = "<nav>" + '<a href="index.html">↑ Overview</a>'
    nav += f'<a href="{cluster_page_name(prev_c)}">← Cluster {_esc(prev_c)}</a>' if prev_c is not None else ""
    nav += f'<a href="{cluster_page_name(next_c)}">Cluster {_esc(next_c)} →</a>' if next_c is not None else ""
    nav += "</nav>"
    size = int(summary["size"])
    body = [f"<h1>Cluster {_esc(c)}</h1>"]
    body.append(_cards([
        ("materials", f"{size:,}"),
        ("mean onset (eV)", _fmt(summary["onset_ev_mean"], 2)),
        ("onset range (eV)", f"{_fmt(summary['onset_ev_min'], 2)} – {_fmt(summary['onset_ev_max'], 2)}"),
        ("mean edge integral", _fmt(summary["edge_integral_mean"], 2)),
        ("dominant environment", f"{summary['dominant_env']} ({100 * summary['dominant_env_fraction']:.0f}%)"),
        ("enriched elements", summary["enriched"] or "–"),
    ]))
    body.append(f'<p class="meta">Cations: {_esc(summary["top_cations"] or "–")}. Anions: {_esc(summary["top_anions"] or "–")}. '
                f"Dataset: dominant environments {_esc(env_overall)}.</p>")
    body.append(_figure_html(f"img/cluster_{c}.png", f"spectra of cluster {c}",
                             "Member spectra (grey), the cluster mean (blue) and the whole dataset's mean (dashed)."))

    stats = pd.DataFrame({
        "statistic": ["onset energy (eV)", "edge integral (decade·eV)", "minimum DFT gap (eV)", "minimum corrected gap (eV)",
                      "minimum direct gap (eV)", "max tetrahedral score (mean)", "max octahedral score (mean)"],
        "value": [f"mean {_fmt(summary['onset_ev_mean'])}, median {_fmt(summary['onset_ev_median'])}, sd {_fmt(summary['onset_ev_std'])}",
                  f"mean {_fmt(summary['edge_integral_mean'])}, median {_fmt(summary['edge_integral_median'])}",
                  _fmt(summary["dft_gap_ev_min"]), _fmt(summary["corrected_gap_ev_min"]), _fmt(summary["dft_direct_gap_ev_min"]),
                  _fmt(summary["tetrahedral_max_mean"]), _fmt(summary["octahedral_max_mean"])],
    })
    body.append("<h2>Spectra statistics</h2>" + _table(stats, headers={"statistic": "", "value": ""}))

    enrich = chem.enrichment[chem.enrichment["cluster"] == c].head(20)
    enrich = pd.DataFrame({
        "element": enrich["element"], "in cluster": [f"{n} ({100 * f:.0f}%)" for n, f in zip(enrich["n_cluster"], enrich["frac_cluster"])],
        "in dataset": [f"{n} ({100 * f:.0f}%)" for n, f in zip(enrich["n_dataset"], enrich["frac_dataset"])],
        "log2 enrichment": enrich["log2_enrichment"].to_numpy(),
        "log odds ratio": enrich["log_odds"].to_numpy(),
    })
    ions = chem.ions[chem.ions["cluster"] == c]
    ion_table = pd.DataFrame({
        "role": ions["role"], "element": ions["element"],
        "members": [f"{n} ({100 * f:.0f}%)" for n, f in zip(ions["n_cluster"], ions["frac_cluster"])],
        "dataset": [f"{100 * f:.0f}%" for f in ions["frac_dataset"]],
    })
    body.append('<h2>Chemistry</h2><div class="cols"><div><h3>Element enrichment vs the rest of the dataset</h3>'
                + _table(enrich) + f'<p class="meta">{_esc(ENRICHMENT_NOTE)}</p>'
                + "</div><div><h3>Cations and anions (by oxidation state)</h3>" + _table(ion_table) + "</div></div>")

    envs = chem.env_counts[(chem.env_counts["cluster"] == c) & ((chem.env_counts["n_cluster"] > 0) | (chem.env_counts["frac_dataset"] > 0))]
    env_table = pd.DataFrame({
        "dominant environment": envs["dominant_env"], "members": envs["n_cluster"].to_numpy(),
        "cluster": [_bar(f) for f in envs["frac_cluster"]], "dataset": [_bar(f, True) for f in envs["frac_dataset"]],
    })
    hist_tables = []
    for score in ("tetrahedral", "octahedral"):
        h = chem.score_hist[(chem.score_hist["cluster"] == c) & (chem.score_hist["score"] == score)]
        hist_tables.append(f"<div><h3>Highest {score} score per material</h3>" + _table(pd.DataFrame({
            "score": [f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(h["bin_lo"], h["bin_hi"])],
            "cluster": [_bar(f) for f in h["frac_cluster"]], "dataset": [_bar(f, True) for f in h["frac_dataset"]],
        }), raw=("cluster", "dataset")) + "</div>")
    body.append('<h2>Coordination environments (CrystalNN)</h2><div class="cols"><div><h3>Dominant cation environment</h3>'
                + _table(env_table, raw=("cluster", "dataset")) + "</div>" + "".join(hist_tables) + "</div>")

    body.append(f"<h2>Members ({size})</h2>" + _table(member_frame, scroll=size > 25))
    return _page(f"Cluster {c}", "".join(body), nav)


def build_report(
    outdir: str | os.PathLike,
    *,
    dataset: pd.DataFrame,
    clusters: pd.DataFrame,
    comparison: Mapping | None,
    chemistry,
    metrics: Mapping | None = None,
    predictions: pd.DataFrame | None = None,
    failures: pd.DataFrame | None = None,
    title: str = "optabs report",
    linkage: ArrayLike | None = None,
    grid=None,
) -> Path:
    """Write the static report into ``outdir`` (replaced atomically); returns ``outdir/index.html``.

    ``dataset``: the dataset table. ``clusters``: ``material_id``, ``cluster`` (the feature
    clusters), optionally ``cluster_spectra`` (clusters of the raw spectra). ``comparison``:
    :func:`optabs.interpret.compare_clusterings`. ``chemistry``: :class:`optabs.chemistry.ClusterChemistry`
    (or a dict of its tables). ``metrics``: the model stage's metrics (scalars and one dict per
    model), ``predictions``: ``material_id``, ``split``, ``log10_alpha_pred`` (the test split is
    shown where there is one), ``failures``: ``material_id``, ``stage``, ``reason`` -- each
    optional. ``linkage``: the Ward linkage matrix whose leaves are the rows of ``clusters`` in
    order (:attr:`optabs.interpret.ClusterResult.linkage`); without it there is no dendrogram.
    ``grid``: the energy grid (default :class:`optabs.dataset.Grid` with the spectra's length).
    """
    from optabs.dataset import Grid, spectra_matrix

    start = time.perf_counter()
    outdir = Path(outdir)
    chem = _as_chemistry(chemistry)
    if not {"material_id", "cluster"} <= set(clusters.columns):
        raise InputError(f"clusters table needs material_id and cluster columns; has {list(clusters.columns)}")
    missing = set(dataset["material_id"]) - set(clusters["material_id"])
    if missing:
        raise InputError(f"no cluster for {len(missing)} dataset materials, e.g. {sorted(missing)[:5]}")
    by_id = clusters.set_index("material_id")
    labels = by_id.loc[dataset["material_id"], "cluster"].to_numpy()
    spectra = spectra_matrix(dataset)
    grid = grid or Grid(n_points=spectra.shape[1])
    energy = grid.energy_ev
    if energy.size != spectra.shape[1]:
        raise InputError(f"grid has {energy.size} points, the spectra {spectra.shape[1]}")
    cluster_ids = np.unique(labels).tolist()
    unknown = sorted(set(cluster_ids) - set(chem.summary["cluster"].tolist()))
    if unknown:
        raise InputError(f"the chemistry tables have no cluster {unknown[:5]}: rebuild them from the same clusters table")

    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".part", dir=outdir.parent))
    try:
        os.chmod(tmp, 0o755)
        img = tmp / "img"
        img.mkdir()
        index = _index_body(
            title=title, dataset=dataset, clusters=clusters, labels=labels, spectra=spectra, energy=energy,
            cluster_ids=cluster_ids, comparison=comparison, chem=chem, metrics=metrics, predictions=predictions,
            failures=failures, linkage=linkage, img=img, grid=grid,
        )
        (tmp / "index.html").write_text(index, encoding="utf-8")

        dataset_mean = spectra.mean(axis=0)
        env_share = chem.env_counts.drop_duplicates("dominant_env").set_index("dominant_env")["frac_dataset"]
        env_overall = ", ".join(f"{k} {100 * v:.0f}%" for k, v in env_share.items() if v > 0)
        members = chem.members
        if "cluster_spectra" in clusters.columns:
            members = members.merge(clusters[["material_id", "cluster_spectra"]], on="material_id", how="left")
        member_cols = ["material_id", "formula", "onset_ev", "edge_integral", "dominant_env", "tetrahedral_max",
                       "octahedral_max", "tetrahedral_element", "octahedral_element"]
        member_cols += ["cluster_spectra"] if "cluster_spectra" in members.columns else []
        member_headers = {"onset_ev": "onset (eV)", "edge_integral": "edge integral", "dominant_env": "environment",
                          "tetrahedral_max": "max tet.", "octahedral_max": "max oct.", "tetrahedral_element": "tet. site",
                          "octahedral_element": "oct. site", "cluster_spectra": "spectra cluster"}
        grouped = dict(tuple(members.groupby("cluster", sort=True)))
        plot = _ClusterSpectraPlot(energy, dataset_mean)
        for position, c in enumerate(cluster_ids):
            rows = labels == c
            plot.draw(spectra[rows], img / f"cluster_{c}.png", title=f"Cluster {c}: {int(rows.sum())} materials")
            frame = grouped[c][member_cols].rename(columns=member_headers)
            (tmp / cluster_page_name(c)).write_text(
                _cluster_page(c, position, cluster_ids, chem, frame, env_overall), encoding="utf-8"
            )
        if outdir.exists():
            old = outdir.with_name(f".{outdir.name}.old-{uuid.uuid4().hex[:8]}")
            outdir.rename(old)
            tmp.rename(outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("report of %d materials, %d clusters written to %s in %.1f s", len(dataset), len(cluster_ids), outdir,
             time.perf_counter() - start)
    return outdir / "index.html"


def _index_body(*, title, dataset, clusters, labels, spectra, energy, cluster_ids, comparison, chem, metrics,
                predictions, failures, linkage, img: Path, grid) -> str:
    sizes = pd.Series(labels).value_counts().to_numpy()
    n_fail = 0 if failures is None else len(failures)
    metrics_table, metric_scalars = _metrics_html(metrics)
    body = [f"<h1>{_esc(title)}</h1>",
            '<nav><a href="#clusters">Clusters</a><a href="#comparison">Feature vs spectra clustering</a>'
            '<a href="#model">Model</a><a href="#failures">Failures</a><a href="#list">Cluster pages</a></nav>']
    body.append(_cards([
        ("materials", f"{len(dataset):,}"), ("clusters", f"{len(cluster_ids):,}"),
        ("cluster size (min / median / max)", f"{sizes.min()} / {np.median(sizes):.0f} / {sizes.max()}"),
        *[(k.replace("_", " "), v) for k, v in metric_scalars],
        ("failures", f"{n_fail:,}"),
    ]))
    body.append('<p class="meta">Clusters: Ward linkage (Euclidean) of the model\'s layer features, cut with maxclust and '
                "numbered left to right along the dendrogram. Spectra are log10 of the absorption coefficient (cm⁻¹). "
                "The edge integral is the integral of log10 α minus its floor over the first 2 eV above the onset.</p>")

    body.append('<h2 id="clusters">Clusters</h2>')
    if linkage is not None:
        dendrogram_figure(linkage, clusters["cluster"].to_numpy(), img / "dendrogram.png")
        body.append(_figure_html("img/dendrogram.png", "dendrogram",
                                 "Ward tree truncated at the cut; each leaf is one cluster, labelled by its number and size."))
    else:
        body.append('<p class="meta">No linkage matrix given: dendrogram not drawn.</p>')
    cluster_grid_figure(energy, spectra, labels, img / "clusters_grid.png")
    body.append(_figure_html("img/clusters_grid.png", "spectra of every cluster",
                             f"Each cluster's member spectra (grey, at most {MAX_LINES} drawn) and their mean (blue), "
                             "titled 'cluster (members)'."))
    members = chem.members.set_index("material_id").loc[dataset["material_id"]]
    onset_edge_figure(members["onset_ev"].to_numpy(), members["edge_integral"].to_numpy(), labels, img / "onset_edge.png")
    body.append(_figure_html("img/onset_edge.png", "onset vs edge scatter",
                             "Onset energy vs edge integral; colours and labels mark clusters."))

    body.append('<h2 id="comparison">Feature clusters vs spectra clusters</h2>' + _comparison_html(comparison))

    body.append('<h2 id="model">Model</h2>' + metrics_table)
    body.append(_predictions_section(dataset, spectra, energy, predictions, img, grid))

    body.append('<h2 id="failures">Failures</h2>' + _failures_html(failures))

    s = chem.summary
    listing = pd.DataFrame({
        "cluster": s["cluster"], "size": s["size"], "mean onset (eV)": s["onset_ev_mean"],
        "mean edge integral": s["edge_integral_mean"],
        "environment": [f"{e} ({100 * f:.0f}%)" for e, f in zip(s["dominant_env"], s["dominant_env_fraction"])],
        "top cations": s["top_cations"], "top anions": s["top_anions"], "enriched": s["enriched"],
    })
    body.append('<h2 id="list">Cluster pages</h2>' + _table(listing, links={"cluster": cluster_page_name}))
    return _page(title, "".join(body))


# ---------------------------------------------------------------- workflow stage entry point

FAILURE_COLUMNS = ["material_id", "stage", "reason"]


def collect_failures(
    rejected_csv: str | os.PathLike | None = None,
    dft_summary_csv: str | os.PathLike | None = None,
    dropped_csv: str | os.PathLike | None = None,
    graphs_manifest: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """One table of what earlier stages left out: ``material_id, stage, reason``."""
    import json

    frames = []
    if rejected_csv and Path(rejected_csv).is_file():
        r = pd.read_csv(rejected_csv, keep_default_na=False)
        frames.append(pd.DataFrame({"material_id": r.material_id, "stage": "structures",
                                    "reason": r.criterion + ": " + r.detail.astype(str)}))
    if dft_summary_csv and Path(dft_summary_csv).is_file():
        d = pd.read_csv(dft_summary_csv, keep_default_na=False)
        d = d[d.status != "ok"]
        frames.append(pd.DataFrame({"material_id": d.material_id, "stage": "dft (" + d.status + ")", "reason": d.reason}))
    if dropped_csv and Path(dropped_csv).is_file():
        d = pd.read_csv(dropped_csv, keep_default_na=False)
        frames.append(pd.DataFrame({"material_id": d.material_id, "stage": "dataset",
                                    "reason": d.reason + ": " + d.detail.astype(str)}))
    if graphs_manifest and Path(graphs_manifest).is_file():
        f = json.loads(Path(graphs_manifest).read_text()).get("failures", [])
        if f:
            g = pd.DataFrame(f)
            frames.append(pd.DataFrame({"material_id": g.material_id, "stage": "model (graph)", "reason": g.reason}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FAILURE_COLUMNS)


def report_stage(
    outdir: str | os.PathLike,
    *,
    dataset_path,
    clusters_path,
    linkage_path,
    comparison_path,
    chemistry_dir,
    metrics_path=None,
    predictions_path=None,
    failures: pd.DataFrame | None = None,
    grid=None,
    title: str = "optabs report",
) -> Path:
    """Read the stages' files and build the report (see :func:`build_report`)."""
    import json

    from optabs.dataset import read_dataset

    dataset = read_dataset(dataset_path)
    clusters = pd.read_parquet(clusters_path)
    dataset = dataset.set_index("material_id").loc[clusters.material_id].reset_index()
    chemistry = {p.stem: pd.read_parquet(p) for p in sorted(Path(chemistry_dir).glob("*.parquet"))}
    return build_report(
        outdir,
        dataset=dataset,
        clusters=clusters,
        comparison=json.loads(Path(comparison_path).read_text()),
        chemistry=chemistry,
        metrics=json.loads(Path(metrics_path).read_text()) if metrics_path else None,
        predictions=pd.read_parquet(predictions_path) if predictions_path else None,
        failures=failures,
        title=title,
        linkage=np.load(linkage_path),
        grid=grid,
    )
