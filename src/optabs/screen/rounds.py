"""Active-learning rounds in the workflow: round r's shortlist is the DFT work of round r+1.

Round 0 is the workflow's own model (its ensemble in ``results/model``) on its own dataset.
Round r >= 1 computes round r-1's shortlist with the configured DFT engine, curates every
result so far into the round's dataset (the dataset stage's own spectra and curation), trains a
new ensemble on it and ranks the remaining candidates. Every round keeps round 0's test split
(new materials train), so that its test error and calibration are comparable across rounds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optabs.dataset import read_dataset, spectra_matrix, write_dataset
from optabs.dataset.curation import Curation, curate, source_stability
from optabs.errors import InputError
from optabs.grid import Grid
from optabs.interpret.settings import InterpretSettings
from optabs.io import write_csv, write_json
from optabs.model.checkpoint import load_checkpoint
from optabs.model.ensemble import calibration, load_ensemble, mean_and_std, member_predictions
from optabs.model.graphs import Graph, load_graphs
from optabs.model.metrics import spectrum_metrics
from optabs.model.settings import ModelSettings
from optabs.screen.settings import ScreenSettings
from optabs.spectra.stage import spectra_table

log = logging.getLogger(__name__)

#: The columns of a round's ``picked.csv``: what the previous round picked and what DFT found.
PICKED_COLUMNS = ["round", "material_id", "formula", "merit", "predicted_mean", "predicted_std", "computed",
                  "outcome"]


def graph_union(cache_paths: Sequence[str | Path], settings: ModelSettings) -> dict[str, Graph]:
    """Every graph of the caches (the dataset's and the candidates'); a stale or missing cache is an error."""
    graphs: dict[str, Graph] = {}
    for path in cache_paths:
        part = load_graphs(path, settings)
        if part is None:
            raise InputError(f"graph cache {path} is missing or was built with other settings; rerun its rule")
        graphs.update(part)
    return graphs


def round_dataset_stage(
    round_no: int, result_paths: Sequence[str | Path], structure_tables: Sequence[str | Path], shortlist_path: str | Path,
    curation: Curation, grid: Grid, merit_values: Any, *, dataset_path: str | Path, picked_path: str | Path,
) -> pd.DataFrame:
    """Round ``round_no``'s dataset from every DFT result so far, and what its picks turned out to be.

    ``result_paths``: the result.json of the kept materials and of every shortlist before this
    round; curated as the dataset stage curates (``structure_tables``: kept and candidates, for the
    sources' stability). ``merit_values``: a function (N, G) log10 alpha -> (N,) values of the
    ranked figure of merit, applied to each pick's computed spectrum.
    """
    spectra, summary = spectra_table(list(result_paths), grid)
    sources = source_stability(pd.concat([pd.read_parquet(p) for p in structure_tables], ignore_index=True))
    dataset, dropped = curate(spectra, curation, sources)
    picked = pd.read_csv(shortlist_path, dtype={"material_id": str})
    in_dataset = set(dataset.material_id)
    why_dropped = {r.material_id: f"{r.reason}: {r.detail}" for r in dropped.itertuples()}
    why_failed = {r.material_id: f"DFT {r.status}: {r.reason}" for r in summary.itertuples() if r.status != "ok"}
    spectrum_of = {m: np.asarray(v, float) for m, v in zip(spectra.material_id, spectra.log10_alpha)}
    rows = []
    for p in picked.itertuples():
        computed = float(merit_values(spectrum_of[p.material_id][None, :])[0]) if p.material_id in spectrum_of else np.nan
        outcome = ("joined the dataset" if p.material_id in in_dataset
                   else why_dropped.get(p.material_id) or why_failed.get(p.material_id) or "no result")
        rows.append({"round": round_no, "material_id": p.material_id, "formula": p.formula, "merit": p.merit,
                     "predicted_mean": p.merit_mean, "predicted_std": p.merit_std, "computed": computed,
                     "outcome": outcome})
    log.info("round %d: %d materials in the dataset; of %d picks %d joined", round_no, len(dataset), len(rows),
             sum(r["outcome"] == "joined the dataset" for r in rows))
    write_csv(picked_path, pd.DataFrame(rows, columns=PICKED_COLUMNS))
    write_dataset(dataset_path, dataset)
    return dataset


def base_split(checkpoint_path: str | Path) -> dict[str, str]:
    """Round 0's split (member 0's checkpoint): every round keeps its test set."""
    return dict(load_checkpoint(checkpoint_path)["split"])


def train_round_stage(
    dataset_path: str | Path, cache_paths: Sequence[str | Path], base_checkpoint: str | Path,
    settings: ModelSettings, outdir: str | Path, grid: Grid,
) -> None:
    """Train one member of a round's ensemble on the round's dataset, with round 0's split."""
    from optabs.model.train import train

    dataset = read_dataset(dataset_path)
    graphs = graph_union(cache_paths, settings)
    train(dataset, {m: graphs[m] for m in dataset.material_id if m in graphs}, settings, outdir, grid,
          split=base_split(base_checkpoint))


def round_metrics(
    models: Sequence[Any], dataset: pd.DataFrame, graphs: Mapping[str, Graph], split: Mapping[str, str], grid: Grid,
    scale: float | None = None,
) -> dict[str, Any]:
    """The ensemble's scores on round 0's test materials: spectrum and onset metrics of the mean,
    and the calibration of its bands (:func:`optabs.model.ensemble.calibration`), as trained and,
    with a ``scale`` (from the validation split), as the screening uses them (``calibration_scaled``)."""
    test = dataset[dataset.material_id.map(lambda m: split.get(m) == "test" and m in graphs)].reset_index(drop=True)
    out: dict[str, Any] = {"n_dataset": int(len(dataset)), "n_test": int(len(test)), "members": len(models)}
    if len(test) == 0:
        return out
    mean, std = mean_and_std(member_predictions(models, graphs, list(test.material_id), grid.log10_alpha_floor))
    truth = spectra_matrix(test)
    out.update(spectrum_metrics(truth, mean, grid.energy_ev, grid.onset_threshold))
    if len(models) > 1:
        out["calibration"] = calibration(truth, mean, std, grid.log10_alpha_floor)
        if scale is not None:
            out["calibration_scaled"] = calibration(truth, mean, scale * std, grid.log10_alpha_floor)
    return out


def screen_round_stage(
    round_no: int, checkpoints: Sequence[str | Path], dataset_path: str | Path, cache_paths: Sequence[str | Path],
    candidates_manifest: str | Path, settings: ScreenSettings, interpret: InterpretSettings, grid: Grid,
    computed_tables: Sequence[str | Path] = (), *,
    ranking_path: str | Path, shortlist_path: str | Path, metrics_path: str | Path, merit_png: str | Path,
    spectra_png: str | Path,
) -> pd.DataFrame:
    """Rank round ``round_no``'s candidates and score its ensemble on round 0's test set.

    Candidates: the manifest's (rule ``screen_graphs``) minus every material computed so far:
    those of the dataset and of ``computed_tables`` (the kept table, the earlier shortlists: a
    material whose DFT failed or that curation dropped is not offered again).
    """
    import json

    from optabs.screen.stage import screen, validation_scale, write_screen

    models, model_settings, split, _ = load_ensemble(list(checkpoints))
    dataset = read_dataset(dataset_path)
    graphs = graph_union(cache_paths, model_settings)
    manifest = json.loads(Path(candidates_manifest).read_text())
    known = [m for m in dataset.material_id if m in graphs]
    computed = set(dataset.material_id)
    for table in computed_tables:
        ids = pd.read_parquet(table, columns=["material_id"]) if str(table).endswith(".parquet") else pd.read_csv(
            table, usecols=["material_id"], dtype=str)
        computed.update(ids.material_id)
    candidates = [m for m in manifest["material_ids"] if m not in computed and m in graphs]
    formulas = [manifest["formulas"][m] for m in candidates]
    scale = validation_scale(models, dataset, graphs, split, grid) if settings.calibrate else None
    ranking, short = screen(models, known, graphs, candidates, formulas, graphs, settings, interpret, grid, scale)
    ranking.insert(1, "round", round_no)
    write_screen(ranking, short, grid, settings.merit, ranking_path=ranking_path, shortlist_path=shortlist_path,
                 merit_png=merit_png, spectra_png=spectra_png)
    metrics = round_metrics(models, dataset, graphs, split, grid, scale)
    metrics.update({"sigma_scale": scale, "round": round_no, "n_candidates": len(candidates), "acquisition": settings.acquisition,
                    "merit": settings.merit})
    write_json(metrics_path, metrics)
    return ranking
