"""The screen stage's entry points: candidates in, ranking and shortlist out (files written atomically).

Candidates are structures that passed the filter and have no DFT result: the structures stage's
``candidates.parquet`` (cells it did not compute) and, optionally, a CIF/POSCAR folder
(``screen.candidates_dir``); materials already in the dataset are never candidates. Each is
predicted by every ensemble member; the figures of merit get a mean and a sigma; the nearest
learned cluster comes from Ward clusters of the dataset's features of ``interpret.layer``
(member 0, the model the interpret stage clusters), cut as the interpret stage cuts them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optabs.errors import InputError
from optabs.grid import Grid
from optabs.interpret.clustering import feature_matrix, ward_clusters
from optabs.interpret.settings import InterpretSettings
from optabs.model.embeddings import embeddings
from optabs.model.ensemble import member_predictions
from optabs.model.graphs import Graph
from optabs.model.metrics import clip_to_floor
from optabs.screen.ood import learned_clusters, nearest_cluster
from optabs.screen.rank import ranking_table, shortlist
from optabs.screen.settings import ScreenSettings

log = logging.getLogger(__name__)


@dataclass
class Candidates:
    """Candidate structures: ``structures`` {material_id: pymatgen Structure}, ``source`` {material_id: where from}
    and ``skipped`` (rows: file, material_id, reason, detail) for files that could not be used."""

    structures: dict[str, Any]
    source: dict[str, str]
    skipped: list[dict[str, str]]


def load_candidates(table_path: str | Path | None, folder: str | Path | None, exclude: Sequence[str]) -> Candidates:
    """Candidates from a kept-style table (``candidates.parquet``: material_id, structure JSON) and a
    CIF/POSCAR folder (each reduced to its primitive cell, as training saw them), minus ``exclude``."""
    from pymatgen.core import Structure

    from optabs.model.stage import standardised_candidates
    from optabs.structures.files import load_folder

    skip = set(exclude)
    structures: dict[str, Any] = {}
    source: dict[str, str] = {}
    skipped: list[dict[str, str]] = []
    if table_path:
        table = pd.read_parquet(table_path, columns=["material_id", "structure"])
        for row in table.itertuples(index=False):
            if row.material_id not in skip:
                structures[row.material_id] = Structure.from_str(row.structure, fmt="json")
                source[row.material_id] = str(table_path)
    if folder:
        found, problems = load_folder(folder)
        skipped += [{"file": p["source_ref"], "material_id": p["material_id"], "reason": p["criterion"],
                     "detail": p["detail"]} for p in problems]
        found, refused = standardised_candidates(found)
        skipped += refused
        for c in found:
            if c.material_id not in skip and c.material_id not in structures:
                structures[c.material_id] = c.structure
                source[c.material_id] = c.source_ref
    return Candidates(structures, source, skipped)


def screen(
    models: Sequence[Any], known_ids: Sequence[str], known_graphs: Mapping[str, Graph], candidate_ids: Sequence[str],
    formulas: Sequence[str], candidate_graphs: Mapping[str, Graph], settings: ScreenSettings,
    interpret: InterpretSettings, grid: Grid, sigma_scale: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ranking, shortlist)`` of the candidates (see :func:`optabs.screen.rank.ranking_table`).

    ``sigma_scale``: the calibration factor of the ensemble's spread (:func:`validation_scale`);
    each member's spectrum is moved away from the members' mean by this factor before any figure
    of merit is computed, so every sigma (spectrum band and figures of merit) is the calibrated one.

    ``known_ids``: the dataset's materials (with graphs in ``known_graphs``), whose features of
    ``interpret.layer`` by member 0 are Ward-clustered into ``interpret.n_clusters`` (at most one
    per material) for the nearest-cluster and out-of-distribution columns.
    """
    if not candidate_ids:
        log.warning("no candidate to screen: every structure that passed the filter has a DFT result")
        n = len(models)
        ranking = ranking_table([], [], np.zeros((n, 0, grid.n_points)), grid, settings, np.zeros(0, int),
                                np.zeros(0), np.zeros(0, bool))
        return ranking, shortlist(ranking, settings, n)
    layer = interpret.layer
    # member 0's spectra and the candidates' features of the clustering layer in one forward pass
    first: list[np.ndarray] = []
    feats = feature_matrix(embeddings(models[0], candidate_graphs, list(candidate_ids), batch_size=64, layers=[layer],
                                      spectra=first), layer, list(candidate_ids))
    rest = member_predictions(models[1:], candidate_graphs, candidate_ids, grid.log10_alpha_floor) if len(models) > 1 \
        else np.zeros((0, len(candidate_ids), grid.n_points))
    members = np.concatenate([clip_to_floor(np.concatenate(first), grid.log10_alpha_floor)[None], rest])
    if sigma_scale is not None and sigma_scale != 1.0:
        centre = members.mean(axis=0)
        members = centre + sigma_scale * (members - centre)
    known = feature_matrix(embeddings(models[0], known_graphs, list(known_ids), batch_size=64, layers=[layer]), layer,
                           list(known_ids))
    labels = ward_clusters(known, min(interpret.n_clusters, len(known_ids)), standardize=interpret.standardize).labels
    centroids = learned_clusters(known, labels, standardize=interpret.standardize)
    cluster, distance, ood = nearest_cluster(centroids, feats)
    ranking = ranking_table(candidate_ids, formulas, members, grid, settings, cluster, distance, ood)
    return ranking, shortlist(ranking, settings, len(models))


def validation_scale(
    models: Sequence[Any], dataset: pd.DataFrame, graphs: Mapping[str, Graph], split: Mapping[str, str], grid: Grid,
) -> float | None:
    """The factor that calibrates the ensemble's spread on the validation split (None for a single
    model or no validation material): :func:`optabs.model.ensemble.sigma_scale`, so that 95.4 % of
    the validation points fall inside +-2 sigma. The test split is never used for it."""
    from optabs.dataset import spectra_matrix
    from optabs.model.ensemble import mean_and_std, sigma_scale

    val = dataset[dataset.material_id.map(lambda m: split.get(m) == "val" and m in graphs)].reset_index(drop=True)
    if len(models) < 2 or len(val) == 0:
        return None
    mean, std = mean_and_std(member_predictions(models, graphs, list(val.material_id), grid.log10_alpha_floor))
    return sigma_scale(spectra_matrix(val), mean, std, grid.log10_alpha_floor)


def write_screen(
    ranking: pd.DataFrame, short: pd.DataFrame, grid: Grid, merit: str, *, ranking_path: str | Path,
    shortlist_path: str | Path, merit_png: str | Path | None = None, spectra_png: str | Path | None = None,
) -> None:
    """Write the ranking (parquet), the shortlist (CSV) and, where paths are given, the two figures."""
    from optabs.io import write_csv, write_parquet
    from optabs.plots import band_spectra_figure, merit_sigma_figure

    write_parquet(ranking_path, ranking)
    write_csv(shortlist_path, short)
    if merit_png is not None:
        merit_sigma_figure(ranking[f"{merit}_mean"], ranking[f"{merit}_std"],
                           ranking.material_id.isin(set(short.material_id)), ranking.out_of_distribution, merit, merit_png)
    if spectra_png is not None:
        top = ranking[ranking.material_id.isin(set(short.material_id))]
        band_spectra_figure(grid.energy_ev, np.stack(top.log10_alpha_mean) if len(top) else np.zeros((0, grid.n_points)),
                            np.stack(top.log10_alpha_std) if len(top) else np.zeros((0, grid.n_points)),
                            [f"{r.formula} ({r.material_id}), cluster {r.cluster}" for r in top.itertuples()], spectra_png)


def screen_graphs_stage(
    candidates_path: str | Path | None, candidates_dir: str | Path | None, settings: Any, cache_path: str | Path,
    manifest_path: str | Path, skipped_path: str | Path,
) -> list[str]:
    """Graphs of every candidate (cached between runs like the dataset's), a manifest (JSON:
    ``material_ids``, ``formulas``) and ``skipped.csv`` (files or structures without a graph)."""
    from optabs.io import write_csv, write_json
    from optabs.model.graphs import cached_graphs, save_graphs
    from optabs.model.stage import SKIPPED_COLUMNS

    found = load_candidates(candidates_path, candidates_dir, ())
    graphs, failures = cached_graphs(found.structures, cache_path, settings)
    if not Path(cache_path).is_file():  # no candidate at all: an empty cache, so that every round can read it
        save_graphs({}, cache_path, settings, {})
    skipped = found.skipped + [{"file": found.source[m], "material_id": m, "reason": "no_graph", "detail": r}
                               for m, r in failures]
    ids = [m for m in found.structures if m in graphs]
    log.info("%d candidates with graphs, %d skipped", len(ids), len(skipped))
    write_csv(skipped_path, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    write_json(manifest_path, {"key": settings.graph_key(), "cache": str(cache_path), "material_ids": ids,
                               "formulas": {m: found.structures[m].composition.reduced_formula for m in ids}})
    return ids


def summary_stage(
    round_dirs: Sequence[str | Path], *, ranking_path: str | Path, shortlist_path: str | Path, rounds_path: str | Path,
    rounds_png: str | Path,
) -> dict:
    """The screen stage's results: the last round's ranking and shortlist (what to compute next),
    and ``rounds.json``: per round its metrics and (from round 1) what it computed (``picked``)."""
    import json
    import shutil

    from optabs.io import atomic_path, write_json
    from optabs.plots import rounds_figure

    rounds = []
    for d in map(Path, round_dirs):
        entry = json.loads((d / "metrics.json").read_text())
        picked = d / "picked.csv"
        entry["picked"] = pd.read_csv(picked, dtype={"material_id": str}).to_dict("records") if picked.is_file() else []
        rounds.append(entry)
    last = Path(round_dirs[-1])
    for src, dst in ((last / "ranking.parquet", ranking_path), (last / "shortlist.csv", shortlist_path)):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    summary = {"rounds": rounds}
    write_json(rounds_path, summary)
    rounds_figure([r["round"] for r in rounds], [r.get("mae_median") for r in rounds],
                  [(r.get("calibration") or {}).get("within_2sigma") for r in rounds],
                  [sum(p["outcome"] == "joined the dataset" for p in r["picked"]) for r in rounds], rounds_png)
    return summary


def screen_folder(
    checkpoints: Sequence[str | Path], dataset_path: str | Path, folder: str | Path, out_dir: str | Path,
    config_path: str | Path | None = None,
) -> pd.DataFrame:
    """``optabs screen``: rank a CIF/POSCAR folder's candidates (minus the dataset's materials) with an
    ensemble; writes ``ranking.parquet``, ``shortlist.csv``, ``skipped.csv`` and the two figures into ``out_dir``."""
    import yaml

    from optabs.dataset import read_dataset
    from optabs.io import write_csv
    from optabs.model.ensemble import load_ensemble
    from optabs.model.graphs import build_graphs, structures_of
    from optabs.model.stage import SKIPPED_COLUMNS

    try:
        config = yaml.safe_load(Path(config_path).read_text()) if config_path else {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"config file {config_path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(config, dict):
        raise InputError(f"config file {config_path} is not a mapping of config keys")
    settings = ScreenSettings.from_config("screen", config.get("screen"))
    interpret = InterpretSettings.from_config("interpret", config.get("interpret"))
    models, model_settings, split, grid = load_ensemble(list(checkpoints))
    if grid is None:
        raise InputError(f"model checkpoint {checkpoints[0]} stores no energy grid: retrain the model")
    dataset = read_dataset(dataset_path)
    known_graphs, _ = build_graphs(structures_of(dataset), model_settings)
    found = load_candidates(None, folder, list(dataset.material_id))
    graphs, failures = build_graphs(found.structures, model_settings)
    skipped = found.skipped + [{"file": found.source[m], "material_id": m, "reason": "no_graph", "detail": r}
                               for m, r in failures]
    out = Path(out_dir)
    write_csv(out / "skipped.csv", pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    ids = [m for m in found.structures if m in graphs]
    scale = validation_scale(models, dataset, known_graphs, split, grid) if settings.calibrate else None
    ranking, short = screen(models, list(known_graphs), known_graphs, ids,
                            [found.structures[m].composition.reduced_formula for m in ids], graphs, settings, interpret,
                            grid, scale)
    write_screen(ranking, short, grid, settings.merit, ranking_path=out / "ranking.parquet",
                 shortlist_path=out / "shortlist.csv", merit_png=out / "merit_sigma.png",
                 spectra_png=out / "shortlist_spectra.png")
    return short
