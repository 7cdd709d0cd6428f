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

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from optabs.errors import InputError
from optabs.plots import (
    MAX_LINES,
    ClusterSpectraPlot,
    cluster_grid_figure,
    dendrogram_figure,
    onset_edge_figure,
    onset_parity_figure,
    worst_by_quartile_figure,
)

__all__ = ["build_report", "collect_failures", "report_stage"]

log = logging.getLogger(__name__)



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
        plot = ClusterSpectraPlot(energy, dataset_mean)
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
