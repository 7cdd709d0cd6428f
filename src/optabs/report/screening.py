"""The report's Screening page: the screen stage's ranking, shortlist and active-learning rounds.

:func:`read_screen` reads the screen stage's folder (``results/screen``: ``rounds.json``,
``ranking.parquet``, ``shortlist.csv``, ``rounds.png`` and ``round<r>/`` with the figures of
each round) and checks it, before anything is written; :func:`screening_page` copies the figures
into the report's ``img/`` and returns ``screening.html``; :func:`screening_section` is the short
section of the overview that links to it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from optabs.errors import InputError
from optabs.report.pages import _cards, _esc, _figure_html, _fmt, _page, _table, cluster_page_name

#: The screening page's file name, relative to ``index.html``.
SCREENING_PAGE = "screening.html"
#: The outcome of a pick that DFT computed and curation kept.
JOINED = "joined the dataset"
#: At most this many candidates are listed in the table of every candidate.
MAX_CANDIDATES = 200

RANKING_COLUMNS = ["rank", "material_id", "formula", "cluster", "out_of_distribution"]
SHORTLIST_COLUMNS = ["rank", "material_id", "formula", "merit_mean", "merit_std", "cluster", "out_of_distribution", "why"]
_RERUN = "rerun the workflow's screen rule (snakemake results/screen/rounds.json)"


@dataclass(frozen=True)
class ScreenResults:
    """What the report shows of the screen stage (:func:`read_screen`).

    ``rounds``: ``rounds.json``'s entries in round order; ``ranking``: the last round's candidates,
    best first, without the spectra; ``shortlist``: the last round's shortlist; ``folder``: where
    the figures are.
    """

    folder: Path
    rounds: list[dict]
    ranking: pd.DataFrame
    shortlist: pd.DataFrame

    @property
    def last(self) -> dict:
        """The last round's entry (the one the ranking and shortlist are of)."""
        return self.rounds[-1]

    @property
    def merit(self) -> str:
        """The ranked figure of merit (the last round's, else the shortlist's)."""
        if self.last.get("merit"):
            return str(self.last["merit"])
        if "merit" in self.shortlist.columns and len(self.shortlist):
            return str(self.shortlist["merit"].iloc[0])
        return "merit"

    def merits(self) -> list[str]:
        """Every figure of merit of the ranking (``<name>_mean`` with ``<name>_std``), the ranked one first."""
        names = [c[:-5] for c in self.ranking.columns
                 if c.endswith("_mean") and c != "log10_alpha_mean" and f"{c[:-5]}_std" in self.ranking.columns]
        return sorted(names, key=lambda n: n != self.merit)


def read_screen(screen_dir: str | os.PathLike) -> ScreenResults:
    """Read and check the screen stage's folder; an :class:`InputError` names what is wrong and what to do."""
    import pyarrow.parquet as pq

    folder = Path(screen_dir)
    rounds_path, ranking_path, shortlist_path = (folder / n for n in ("rounds.json", "ranking.parquet", "shortlist.csv"))
    for path in (rounds_path, ranking_path, shortlist_path):
        if not path.is_file():
            raise InputError(f"the screening section needs {path}, which does not exist: {_RERUN}")
    try:
        rounds = json.loads(rounds_path.read_text(encoding="utf-8"))["rounds"]
        rounds = sorted(rounds, key=lambda r: int(r["round"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{rounds_path} is not the screen stage's summary ({type(exc).__name__}: {exc}): {_RERUN}") from exc
    if not rounds:
        raise InputError(f"{rounds_path} lists no round: {_RERUN}")
    try:
        names = pq.read_schema(ranking_path).names
        ranking = pd.read_parquet(ranking_path, columns=[c for c in names if not c.startswith("log10_alpha")])
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise InputError(f"{ranking_path} cannot be read ({type(exc).__name__}: {exc}): {_RERUN}") from exc
    _need(ranking, RANKING_COLUMNS, ranking_path)
    shortlist = pd.read_csv(shortlist_path, dtype=str, keep_default_na=False)  # "NaN" is a formula, not a gap
    _need(shortlist, SHORTLIST_COLUMNS, shortlist_path)
    for c in ("rank", "merit_mean", "merit_std", "score", "cluster_distance"):
        if c in shortlist.columns:
            shortlist[c] = pd.to_numeric(shortlist[c], errors="coerce")
    shortlist["out_of_distribution"] = shortlist["out_of_distribution"].str.lower().isin({"true", "1", "yes"})
    return ScreenResults(folder, rounds, ranking, shortlist.sort_values("rank", kind="stable").reset_index(drop=True))


def _need(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path} has no column {missing} (has {list(frame.columns)}): {_RERUN}")


def _joined(entry: Mapping) -> int:
    return sum(p.get("outcome") == JOINED for p in entry.get("picked") or [])


def _pm(mean, std) -> str:
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _copy_figure(src: Path, img: Path, name: str, alt: str, caption: str) -> str:
    """Copy ``src`` into ``img/name`` and return its figure, or a note where the stage did not draw it."""
    if not src.is_file():
        return f'<p class="meta">No figure {_esc(src.name)} in {_esc(src.parent)}: {_esc(alt)} not shown.</p>'
    shutil.copyfile(src, img / name)
    return _figure_html(f"img/{name}", alt, caption)


def screening_section(screen: ScreenResults) -> str:
    """The overview's Screening section: the counts and a link to the page."""
    last, short = screen.last, screen.shortlist
    n_ood = int(short["out_of_distribution"].sum())
    rounds = (f"{len(screen.rounds)} rounds of active learning ({sum(_joined(r) for r in screen.rounds)} picks joined "
              "the dataset); the last round's " if len(screen.rounds) > 1 else "")
    text = (f"{rounds}{len(screen.ranking):,} candidates (filtered structures without DFT) ranked by the ensemble's "
            f"predicted {screen.merit} and its σ (acquisition: {last.get('acquisition', '–')}); shortlist of "
            f"{len(short)} to compute next, {n_ood} of them out of distribution.")
    return (f'<h2 id="screening">Screening</h2><p>{_esc(text[0].upper() + text[1:])} '
            f'<a href="{SCREENING_PAGE}">Screening page →</a></p>')


def screening_page(screen: ScreenResults, img: Path, report_clusters: Collection) -> str:
    """``screening.html``; copies the stage's figures into ``img``. ``report_clusters``: the clusters
    with a page in this report (the shortlist links to them where the numbering is the report's)."""
    last, short, ranking, merit = screen.last, screen.shortlist, screen.ranking, screen.merit
    r = int(last["round"])
    own_clusters = r == 0
    nav = '<nav><a href="index.html">↑ Overview</a></nav>'
    body = ["<h1>Screening</h1>"]
    body.append(_cards([
        ("rounds", f"{len(screen.rounds)}"), ("candidates (last round)", f"{len(ranking):,}"),
        ("shortlist", f"{len(short)}"), ("shortlist out of distribution", f"{int(short['out_of_distribution'].sum())}"),
        ("figure of merit", merit), ("acquisition", str(last.get("acquisition", "–"))),
        ("ensemble members", _fmt(last.get("members"))),
    ]))
    body.append(f'<p class="meta">Candidates are structures that passed the filters but have no DFT spectrum. Each is '
                f"ranked by the ensemble's prediction of {_esc(merit)} (mean over the members) and its σ (their spread) "
                f"with the {_esc(last.get('acquisition', '–'))} acquisition; the shortlist is what to compute next. "
                "Out of distribution: farther from its nearest learned cluster's centre than any computed member of "
                f"that cluster, so the prediction is an extrapolation. Shown: round {r}, the last.</p>")
    if own_clusters:
        note = "Cluster: the nearest of the report's clusters (linked to its page)."
    else:
        note = (f"Cluster numbers are round {r}'s own: its model was retrained on a larger dataset and its clusters "
                "recomputed, so they are not the report's clusters and are not linked.")

    body.append('<h2 id="shortlist">Shortlist</h2>')
    if ranking.empty:
        body.append(f'<p class="note">There were no candidates in round {r}: every filtered structure is computed '
                    "or has no graph (see the screen stage's skipped.csv).</p>")
    else:
        body.append('<div class="cols"><div>' + _copy_figure(
            screen.folder / f"round{r}" / "merit_sigma.png", img, "screen_merit_sigma.png",
            f"{merit} against its sigma for every candidate",
            f"Each candidate's predicted {merit} (ensemble mean) against its σ; the shortlist ringed, out-of-distribution "
            "candidates as red crosses.") + "</div><div>" + _copy_figure(
            screen.folder / f"round{r}" / "shortlist_spectra.png", img, "screen_shortlist_spectra.png",
            "predicted spectra of the shortlist with their bands",
            "The shortlisted candidates' predicted spectra (ensemble mean) with their ±σ band.") + "</div></div>")
    if short.empty:
        body.append('<p class="meta">Nothing shortlisted.</p>')
    else:
        def cluster_cell(c) -> str:
            if own_clusters and _same_cluster(c, report_clusters) is not None:
                return f'<a href="{_esc(cluster_page_name(_same_cluster(c, report_clusters)))}">{_esc(c)}</a>'
            return _esc(c)

        frame = pd.DataFrame({
            "rank": short["rank"].astype(int).to_numpy(), "material": short["material_id"].to_numpy(),
            "formula": short["formula"].to_numpy(),
            f"{merit} (mean ± σ)": [_pm(m, s) for m, s in zip(short["merit_mean"], short["merit_std"])],
            "cluster": [cluster_cell(c) for c in short["cluster"]],
            "out of distribution": short["out_of_distribution"].to_numpy(), "why": short["why"].to_numpy(),
        })
        body.append(_table(frame, raw=("cluster",)) + f'<p class="meta">{_esc(note)}</p>')

    body.append(f'<h2 id="candidates">Every candidate ({len(ranking):,})</h2>')
    if ranking.empty:
        body.append('<p class="meta">No candidates.</p>')
    else:
        shown = ranking.head(MAX_CANDIDATES)
        frame = pd.DataFrame({"rank": shown["rank"].astype(int).to_numpy(), "material": shown["material_id"].to_numpy(),
                              "formula": shown["formula"].to_numpy()})
        for name in screen.merits():
            frame[f"{name} (mean ± σ)"] = [_pm(m, s) for m, s in zip(shown[f"{name}_mean"], shown[f"{name}_std"])]
        if "score" in shown.columns:
            frame["score"] = shown["score"].to_numpy()
        frame["cluster"] = shown["cluster"].to_numpy()
        frame["out of distribution"] = shown["out_of_distribution"].astype(bool).to_numpy()
        lead = (f"The best {MAX_CANDIDATES} of {len(ranking):,} are listed, in rank order."
                if len(ranking) > MAX_CANDIDATES else "In rank order.")
        body.append(f'<p class="meta">{_esc(lead)} Score: the acquisition\'s (higher is picked first).</p>'
                    + _table(frame, scroll=len(frame) > 25))

    if len(screen.rounds) > 1:
        body.append(_rounds_html(screen, img))
    return _page("Screening", "".join(body), nav)


def _same_cluster(c, report_clusters: Collection):
    """``c`` as the report names the cluster (a CSV gives text, the report numbers), else None."""
    for k in report_clusters:
        if str(k) == str(c):
            return k
    return None


def _rounds_html(screen: ScreenResults, img: Path) -> str:
    """Active learning: a row per round, the figure, and what each round's picks turned out to be."""
    rows = []
    for entry in screen.rounds:
        picked = entry.get("picked") or []
        rows.append({
            "round": int(entry["round"]), "materials in the dataset": entry.get("n_dataset"),
            "candidates": entry.get("n_candidates"), "picked": len(picked) if int(entry["round"]) > 0 else None,
            "joined": _joined(entry) if int(entry["round"]) > 0 else None,
            "median test MAE": entry.get("mae_median"),
            "within ±2σ": (entry.get("calibration") or {}).get("within_2sigma"),
        })
    frame = pd.DataFrame({k: pd.Series([row[k] for row in rows], dtype=object) for k in rows[0]})
    parts = ['<h2 id="rounds">Active-learning rounds</h2>',
             '<p class="meta">Round 0 is the workflow\'s own model; each later round computed the previous round\'s '
             "shortlist with DFT, added what curation kept to the dataset and retrained the ensemble. Median test MAE "
             "(log10 α) and the share of test points within ±2σ are on round 0's test materials throughout, so the "
             "rounds compare.</p>", _table(frame),
             _copy_figure(screen.folder / "rounds.png", img, "screen_rounds.png", "metrics per round",
                          "Per round: the median test MAE, the test points within ±2σ and the picks that joined.")]
    for entry in screen.rounds[1:]:
        picked = pd.DataFrame(entry.get("picked") or [])
        parts.append(f"<h3>Round {int(entry['round'])}: the picks of round {int(entry['round']) - 1}</h3>")
        if picked.empty:
            parts.append('<p class="meta">No picks.</p>')
            continue
        merit = str(picked["merit"].iloc[0]) if "merit" in picked.columns else screen.merit
        parts.append(_table(pd.DataFrame({
            "material": picked["material_id"].astype(str).to_numpy(), "formula": picked["formula"].astype(str).to_numpy(),
            f"predicted {merit} (mean ± σ)": [_pm(m, s) for m, s in zip(picked["predicted_mean"], picked["predicted_std"])],
            f"computed {merit}": [_number(v) for v in picked["computed"]], "outcome": picked["outcome"].astype(str).to_numpy(),
        }).astype(object)))
    return "".join(parts)


def _number(value) -> float | None:
    """A JSON number (NaN, null or missing: None, shown as a dash)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
