"""The report's HTML: escaping and formatting helpers, tables, cards, and every section and page.

Pages are self-contained: the stylesheet (``style.css`` beside this module) is inlined in each,
figures are linked relatively from ``img/``. The sections that show figures draw them into the
``img`` folder they are given (see :mod:`optabs.plots`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from optabs.errors import InputError
from optabs.failures import FAILURE_COLUMNS
from optabs.plots import (
    MAX_LINES,
    cluster_grid_figure,
    dendrogram_figure,
    onset_edge_figure,
    onset_parity_figure,
    worst_by_quartile_figure,
)

#: The stylesheet, inlined in every page (no request, so the site opens from ``file://``).
CSS = files("optabs.report").joinpath("style.css").read_text(encoding="utf-8")


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
        x = float(value)
        if not math.isfinite(x):
            return "–"
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.{digits}g}"
        return f"{x:.{digits}f}" if abs(x) < 10 else f"{x:.{max(digits - 1, 1)}f}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _table(frame: pd.DataFrame, *, headers: Mapping[str, str] | None = None,
           links: Mapping[str, Callable[[object], str]] | None = None,
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
    cards = "".join(f'<div class="card"><b>{_esc(v)}</b><span>{_esc(k)}</span></div>' for k, v in items)
    return f'<div class="cards">{cards}</div>'


def _page(title: str, body: str, nav: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_esc(title)}</title><style>\n{CSS}</style></head>"
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
    """The file name of ``cluster``'s page, relative to ``index.html``."""
    return f"cluster_{cluster}.html"


def _comparison_html(comparison: Mapping | None) -> str:
    if not comparison:
        return '<p class="meta">No clustering comparison.</p>'
    clusterings = {k: v for k, v in comparison.items() if isinstance(v, Mapping) and "spectral_spread" in v}
    rows = [
        ("spectral_spread", "Spectral spread (mean |log10 α − cluster mean|, lower is tighter)"),
        ("chemical_homogeneity", "Chemical homogeneity (mean pairwise Jaccard of element sets, higher is purer)"),
        ("coordination_agreement", "Coordination agreement (share with the cluster's dominant environment)"),
        ("n_clusters", "Clusters"),
        ("n_singletons", "Singleton clusters"),
        ("n_scored", "Materials scored (in clusters of two or more in both clusterings)"),
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


SWEEP_METRICS = (("chemical_homogeneity", "chemical homogeneity"), ("coordination_agreement", "coordination agreement"),
                 ("spectral_spread", "spectral spread"))


def _sweep_html(sweep: pd.DataFrame | None, img: Path) -> str:
    """The K-and-layer sweep: one figure and one table per metric (feature spaces x K)."""
    if sweep is None or sweep.empty:
        return '<p class="meta">No K-and-layer sweep (give the interpret stage a sweep output).</p>'
    from optabs.interpret.sweep import sweep_figure

    sweep_figure(sweep, img / "sweep.png")
    parts = [_figure_html("img/sweep.png", "clustering quality against K for every feature space",
                          "Chemical homogeneity, coordination agreement and spectral spread against K, one line per "
                          "feature space (model layers; the raw spectra dashed). At each K every space is scored on "
                          "the same materials: those in clusters of two or more in every space.")]
    spaces = list(dict.fromkeys(sweep["space"]))
    for key, label in SWEEP_METRICS:
        table = sweep.pivot(index="space", columns="k", values=key).loc[spaces]
        table.columns = [f"K = {k}" for k in table.columns]
        parts.append(f"<h3>{_esc(label.capitalize())}</h3>" + _table(table.reset_index(), headers={"space": "feature space"}))
    n_common = sweep.groupby("k")["n_common"].first()
    parts.append('<p class="meta">Materials scored at each K: '
                 + ", ".join(f"K = {k}: {int(n)}" for k, n in n_common.items()) + ".</p>")
    return "".join(parts)


def _motifs_html(motifs: pd.DataFrame, c, q_max: float, limit: int = 12) -> str:
    """A cluster's motif statistics: the significant ones, else its best few, with the threshold."""
    rows = motifs[motifs["cluster"] == c]
    significant = rows[(rows["q_value"] <= q_max) & (rows["fold_enrichment"] > 1)]
    shown = significant if not significant.empty else rows.head(5)
    table = pd.DataFrame({
        "motif": shown["feature"], "kind": shown["kind"],
        "members": [f"{k} of {n} ({100 * k / n:.0f}%)" for k, n in zip(shown["k"], shown["n"])],
        "dataset": [f"{K} ({100 * K / N:.1f}%)" for K, N in zip(shown["K"], shown["N"])],
        "fold enrichment": shown["fold_enrichment"].to_numpy(), "p": shown["p_value"].to_numpy(),
        "q (BH)": shown["q_value"].to_numpy(),
    }).head(limit)
    lead = (f"{len(significant)} significant at q ≤ {q_max:g}." if not significant.empty
            else f"None significant at q ≤ {q_max:g}; the five with the lowest q are shown.")
    return (f'<p class="meta">{_esc(lead)} A motif is a cation element in a CrystalNN site environment; anions are '
            "tested as elements. p: one-sided hypergeometric test of the cluster against the dataset; q: "
            "Benjamini–Hochberg over every cluster × motif test.</p>" + _table(table, digits=2))


def _metrics_html(metrics: Mapping | None) -> tuple[str, list[tuple[str, str]]]:
    if not metrics:
        return '<p class="meta">No model metrics.</p>', []
    scalars = [(k, _fmt(v)) for k, v in metrics.items() if not isinstance(v, Mapping)]
    models = {k: _flatten(v) for k, v in metrics.items() if isinstance(v, Mapping) and k != "floor"}
    floor = metrics.get("floor")
    note = ""
    if isinstance(floor, Mapping) and floor.get("predictions_clipped"):
        note = (f'<p class="meta">Every prediction (ALIGNN and both baselines) is clipped at the floor, log10 α = '
                f'{_fmt(floor.get("log10_alpha_floor"))}, before scoring, as <code>optabs predict</code> writes it.</p>')
    if not models:
        return note, scalars
    keys = list(dict.fromkeys(key for stats in models.values() for key in stats))
    frame = pd.DataFrame({"model": list(models)})
    for k in keys:
        frame[k] = pd.Series([stats.get(k) for stats in models.values()], dtype=object)
    return _table(frame) + note, scalars


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
    from optabs.spectra import onset_energies

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
    pred_onset = onset_energies(grid.energy_ev, np.atleast_2d(y_pred), grid.onset_threshold)
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
                       "The worst-predicted material of each quartile of the per-material MAE: "
                       "how bad typical and bad predictions look.")
        + "</div></div>"
    )


_STABILITY_BASIS = {
    "mp": "the Materials Project's energy above hull",
    "local": "the hull of this run's computed phases",
    "none": "not checked",
}


def _stability_html(dataset: pd.DataFrame) -> str:
    """One line: the stability policy (``dataset.stability``) and how many materials it called what."""
    if "stability" not in dataset.columns or len(dataset) == 0:
        return ""
    policies = sorted(set(dataset["stability_policy"]))
    versions = sorted(v for v in set(dataset["mp_database_version"]) if v)
    basis = "; ".join(_STABILITY_BASIS.get(p, p) for p in policies)
    basis += f" (database {', '.join(versions)})" if versions else ""
    counts = ", ".join(f"{n} {k}" for k, n in sorted(dataset["stability"].value_counts().items()))
    note = (" A material of unknown stability is one the policy cannot judge (an element without a computed "
            "reference on the local hull, no value in its Materials Project document); it is kept, marked."
            if "unknown" in set(dataset["stability"]) else "")
    return (f'<p class="meta">Stability (dataset.stability: {_esc(", ".join(policies))}): {_esc(basis)}; '
            f"{_esc(counts)}.{_esc(note)}</p>")


def _failures_html(failures: pd.DataFrame | None, limit: int = 1000) -> str:
    if failures is None or len(failures) == 0:
        return '<p class="meta">No failures recorded.</p>'
    counts = failures["stage"].value_counts().to_dict()
    by_stage = ": " + ", ".join(f"{_esc(k)} {v}" for k, v in counts.items())
    head = f'<p class="meta">{len(failures)} failures{by_stage}.'
    if len(failures) > limit:
        head += f" The first {limit} are listed."
    return head + "</p>" + _table(failures[FAILURE_COLUMNS].head(limit).astype(str), scroll=True)


def _cluster_page(c, position: int, clusters: Sequence, chem, member_frame: pd.DataFrame, env_overall: str,
                  motif_q_max: float = 0.01) -> str:
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
    if "motif_summary" in summary.index:
        body.append(f'<p class="motif-summary">{_esc(summary["motif_summary"])}</p>')
    body.append(f'<p class="meta">Cations: {_esc(summary["top_cations"] or "–")}. Anions: {_esc(summary["top_anions"] or "–")}. '
                f"Dataset: dominant environments {_esc(env_overall)}.</p>")
    body.append(_figure_html(f"img/cluster_{c}.png", f"spectra of cluster {c}",
                             "Member spectra (grey), the cluster mean (blue) and the whole dataset's mean (dashed)."))

    stats = pd.DataFrame({
        "statistic": ["onset energy (eV)", "edge integral (decade·eV)", "minimum DFT gap (eV)", "minimum corrected gap (eV)",
                      "minimum direct gap (eV)", "max tetrahedral score (mean)", "max octahedral score (mean)"],
        "value": [f"mean {_fmt(summary['onset_ev_mean'])}, median {_fmt(summary['onset_ev_median'])}, "
                  f"sd {_fmt(summary['onset_ev_std'])}",
                  f"mean {_fmt(summary['edge_integral_mean'])}, median {_fmt(summary['edge_integral_median'])}",
                  _fmt(summary["dft_gap_ev_min"]), _fmt(summary["corrected_gap_ev_min"]), _fmt(summary["dft_direct_gap_ev_min"]),
                  _fmt(summary["tetrahedral_max_mean"]), _fmt(summary["octahedral_max_mean"])],
    })
    body.append("<h2>Spectra statistics</h2>" + _table(stats, headers={"statistic": "", "value": ""}))

    enrich = chem.enrichment[chem.enrichment["cluster"] == c].head(20)
    enrich = pd.DataFrame({
        "element": enrich["element"],
        "in cluster": [f"{n} ({100 * f:.0f}%)" for n, f in zip(enrich["n_cluster"], enrich["frac_cluster"])],
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

    env_counts = chem.env_counts
    envs = env_counts[(env_counts["cluster"] == c) & ((env_counts["n_cluster"] > 0) | (env_counts["frac_dataset"] > 0))]
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
    body.append('<h2 id="motifs">Motifs: cation environments enriched in this cluster</h2>'
                + _motifs_html(chem.motifs, c, motif_q_max)
                + _figure_html(f"img/tet_hist_{c}.png", f"tetrahedral score histogram of cluster {c}",
                               "Each member's highest CrystalNN tetrahedral score (the study's Figure b): the cluster "
                               "(bars) against the whole dataset (dashed), as fractions of the materials with a score."))

    body.append(f"<h2>Members ({size})</h2>" + _table(member_frame, scroll=size > 25))
    return _page(f"Cluster {c}", "".join(body), nav)


def _index_body(*, title, dataset, clusters, labels, spectra, energy, cluster_ids, comparison, chem, metrics,
                predictions, failures, linkage, img: Path, grid, sweep: pd.DataFrame | None = None,
                screening: str = "") -> str:
    """The overview; ``screening``: its Screening section (HTML; empty: none, and no link to it)."""
    sizes = pd.Series(labels).value_counts().to_numpy()
    n_fail = 0 if failures is None else len(failures)
    metrics_table, metric_scalars = _metrics_html(metrics)
    body = [f"<h1>{_esc(title)}</h1>",
            '<nav><a href="#clusters">Clusters</a><a href="#comparison">Feature vs spectra clustering</a>'
            '<a href="#sweep">K and layer sweep</a><a href="#model">Model</a>'
            + ('<a href="#screening">Screening</a>' if screening else "")
            + '<a href="#failures">Failures</a><a href="#list">Cluster pages</a></nav>']
    body.append(_cards([
        ("materials", f"{len(dataset):,}"), ("clusters", f"{len(cluster_ids):,}"),
        ("cluster size (min / median / max)", f"{sizes.min()} / {np.median(sizes):.0f} / {sizes.max()}"),
        *[(k.replace("_", " "), v) for k, v in metric_scalars],
        ("failures", f"{n_fail:,}"),
    ]))
    body.append('<p class="meta">Clusters: Ward linkage (Euclidean) of the model\'s layer features, cut with maxclust and '
                "numbered left to right along the dendrogram. Spectra are log10 of the absorption coefficient (cm⁻¹). "
                "The edge integral is the integral of log10 α minus its floor over the first 2 eV above the onset.</p>")
    body.append(_stability_html(dataset))

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
    body.append('<h2 id="sweep">Does the comparison hold at every K and layer?</h2>' + _sweep_html(sweep, img))

    body.append('<h2 id="model">Model</h2>' + metrics_table)
    body.append(_predictions_section(dataset, spectra, energy, predictions, img, grid))

    body.append(screening)
    body.append('<h2 id="failures">Failures</h2>' + _failures_html(failures))

    s = chem.summary
    listing = pd.DataFrame({
        "cluster": s["cluster"], "size": s["size"], "mean onset (eV)": s["onset_ev_mean"],
        "mean edge integral": s["edge_integral_mean"],
        "environment": [f"{e} ({100 * f:.0f}%)" for e, f in zip(s["dominant_env"], s["dominant_env_fraction"])],
        "top cations": s["top_cations"], "top anions": s["top_anions"], "enriched": s["enriched"],
    })
    if "motif_summary" in s.columns:
        listing["most significant motif"] = s["motif_summary"].str.replace(r"^cluster \S+: ", "", regex=True).to_numpy()
    body.append('<h2 id="list">Cluster pages</h2>' + _table(listing, links={"cluster": cluster_page_name}))
    return _page(title, "".join(body))
