"""The model stage's workflow entry points.

Each reads the stage's inputs from files, calls the functions of the other modules and writes
its outputs atomically; the rules' scripts only pass paths and settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optabs.errors import InputError
from optabs.grid import Grid
from optabs.model.checkpoint import load_model
from optabs.model.embeddings import embeddings
from optabs.model.graphs import Graph, build_graphs, cached_graphs, load_graphs, structures_of
from optabs.model.metrics import evaluate
from optabs.model.predict import predictions_table
from optabs.model.settings import ModelSettings
from optabs.model.train import TrainResult, train
from optabs.spectra import onset_energies

log = logging.getLogger(__name__)

#: The ``stage`` of the records in ``failures.csv`` (see :mod:`optabs.failures`).
FAILURE_STAGE = "model (graph)"


def graphs_stage(
    dataset_path: str | Path, settings: ModelSettings, cache_path: str | Path, manifest_path: str | Path,
    failures_path: str | Path,
) -> None:
    """Build (or reuse from ``cache_path``) every dataset material's graph; write a manifest
    (JSON: graph settings, ids, failures) that later rules depend on, and ``failures_path``
    (``failures.csv``: one record per structure whose graph could not be built)."""
    from optabs.dataset import read_dataset
    from optabs.failures import Failure, write_failures
    from optabs.io import write_json

    dataset = read_dataset(dataset_path)
    graphs, failures = cached_graphs(structures_of(dataset), cache_path, settings)
    log.info("%d graphs, %d failures (cache %s)", len(graphs), len(failures), cache_path)
    write_json(
        manifest_path,
        {"key": settings.graph_key(), "cache": str(cache_path), "material_ids": sorted(graphs),
         "failures": [{"material_id": m, "reason": r} for m, r in failures]},
    )
    write_failures(failures_path, [Failure(m, FAILURE_STAGE, r, "") for m, r in failures])


def _stage_graphs(dataset: pd.DataFrame, cache_path: str | Path, settings: ModelSettings) -> dict[str, Graph]:
    graphs = load_graphs(cache_path, settings)
    if graphs is None:
        raise InputError(f"graph cache {cache_path} is missing or was built with other settings; rerun rule model_graphs")
    return {m: graphs[m] for m in dataset.material_id if m in graphs}


def train_stage(
    dataset_path: str | Path, cache_path: str | Path, settings: ModelSettings, outdir: str | Path, grid: Grid
) -> TrainResult:
    """Train on the dataset's graphs; writes ``outdir/checkpoint.pt`` (with ``grid``) and ``outdir/history.csv``,
    continuing a killed run from ``outdir/resume.pt`` where it matches (see :func:`train`)."""
    from optabs.dataset import read_dataset

    dataset = read_dataset(dataset_path)
    return train(dataset, _stage_graphs(dataset, cache_path, settings), settings, outdir, grid)


def evaluate_stage(
    dataset_path: str | Path,
    cache_path: str | Path,
    checkpoint_path: str | Path | list[str | Path],
    grid: Grid,
    predictions_path: str | Path,
    metrics_path: str | Path,
    per_material_path: str | Path,
    parity_png: str | Path,
    worst_png: str | Path,
) -> dict[str, Any]:
    """Predict every material, score ALIGNN and both baselines on the test split, draw the figures.

    ``checkpoint_path``: one checkpoint, or the members of an ensemble (:mod:`optabs.model.ensemble`):
    predictions and metrics are then the members' mean, ``predictions.parquet`` adds the standard
    deviation (``log10_alpha_std``) and ``metrics.json`` the ensemble's calibration on the test
    split (``ensemble``: members, share of test points inside +-1 and +-2 sigma).
    """
    from optabs.dataset import read_dataset, spectra_matrix
    from optabs.io import write_json, write_parquet
    from optabs.model.ensemble import load_ensemble, mean_and_std, member_predictions
    from optabs.plots import onset_parity_figure, worst_by_quartile_figure

    dataset = read_dataset(dataset_path)
    paths = [checkpoint_path] if isinstance(checkpoint_path, (str, Path)) else list(checkpoint_path)
    models, settings, split, trained_on = load_ensemble(paths)
    if trained_on is not None and trained_on != grid:
        raise InputError(
            f"model checkpoint {paths[0]} was trained on the grid {trained_on.to_dict()}, but config key "
            f"'spectra' gives {grid.to_dict()}: retrain the model (or restore the spectra settings)"
        )
    graphs = _stage_graphs(dataset, cache_path, settings)
    ids = [m for m in dataset.material_id if m in graphs]
    pred, std = mean_and_std(member_predictions(models, graphs, ids, grid.log10_alpha_floor))
    full = spectra_matrix(dataset).copy()
    row = {m: i for i, m in enumerate(dataset.material_id)}
    for i, m in enumerate(ids):
        full[row[m]] = pred[i]
    evaluation = evaluate(dataset, split, full, grid.energy_ev, grid.onset_threshold, settings.seed, grid.log10_alpha_floor)
    evaluation.metrics["ensemble"] = _ensemble_metrics(spectra_matrix(dataset), row, ids, split, pred, std, len(models),
                                                       grid.log10_alpha_floor)
    write_parquet(predictions_path, predictions_table(ids, split, pred, std))
    write_parquet(per_material_path, evaluation.per_material)
    write_json(metrics_path, evaluation.metrics)
    test = evaluation.per_material[evaluation.per_material.split == "test"]
    onset_parity_figure(test.onset_ev.to_numpy(), test.onset_alignn_ev.to_numpy(), parity_png)
    test_rows = [row[m] for m in test.material_id]
    worst_by_quartile_figure(
        grid.energy_ev, spectra_matrix(dataset)[test_rows], full[test_rows], test.mae_alignn.to_numpy(),
        list(test.material_id), worst_png,
    )
    return evaluation.metrics


def _ensemble_metrics(truth_all, row, ids, split, pred, std, members: int, floor: float) -> dict[str, Any]:
    """``metrics.json``'s ``ensemble``: the members, and for more than one the calibration of the
    sigma bands on the test split, as trained and with sigma scaled by the factor the validation
    split asks for (:func:`optabs.model.ensemble.sigma_scale`)."""
    from optabs.model.ensemble import calibration, sigma_scale

    out: dict[str, Any] = {"members": members}
    if members < 2:
        return out
    parts = {}
    for part in ("val", "test"):
        rows = [i for i, m in enumerate(ids) if split.get(m) == part]
        parts[part] = (truth_all[[row[ids[i]] for i in rows]], pred[rows], std[rows])
    out.update(calibration(*parts["test"], floor))
    scale = sigma_scale(*parts["val"], floor) if len(parts["val"][0]) else None
    out["sigma_scale_from_val"] = scale
    if scale is not None:
        truth, mean, sd = parts["test"]
        out["test_scaled"] = calibration(truth, mean, scale * sd, floor)
    return out


def embeddings_stage(dataset_path: str | Path, cache_path: str | Path, checkpoint_path: str | Path, out_path: str | Path) -> None:
    """Per-layer mean atom features of every material (``embeddings.parquet``)."""
    from optabs.dataset import read_dataset
    from optabs.io import write_parquet

    dataset = read_dataset(dataset_path)
    model, settings, _ = load_model(checkpoint_path)
    graphs = _stage_graphs(dataset, cache_path, settings)
    write_parquet(out_path, embeddings(model, graphs, [m for m in dataset.material_id if m in graphs]))


#: Columns of ``skipped.csv`` written by :func:`predict_structures`.
SKIPPED_COLUMNS = ["file", "material_id", "reason", "detail"]


def standardised_candidates(candidates: list[Any]) -> tuple[list[Any], list[dict[str, str]]]:
    """The candidates ``predict`` can use, each reduced to the primitive cell that training saw
    (:func:`optabs.filters.primitive_cell`), and one ``skipped.csv`` row per disordered structure
    (refused by file name: no crystal graph represents a partially occupied site)."""
    from optabs.filters import disorder_detail, primitive_cell

    kept, refused = [], []
    for c in candidates:
        disorder = disorder_detail(c.structure)
        if disorder:
            refused.append({"file": c.source_ref, "material_id": c.material_id, "reason": "disordered", "detail": disorder})
            continue
        c.structure = primitive_cell(c.structure)
        kept.append(c)
    return kept, refused


def predict_structures(
    checkpoint_path: str | Path | list[str | Path], structures_dir: str | Path, out_dir: str | Path, out_parquet: str | Path,
    grid: Grid | None = None, skipped_path: str | Path | None = None,
) -> pd.DataFrame:
    """Predicted spectra for a folder of CIF/POSCAR files, written in the dataset's formats:
    an ALIGNN folder (``out_dir``: POSCARs + ``id_prop.csv``) and a dataset-style parquet table.

    Every structure is first reduced to the primitive cell that training used (the structures
    stage's :func:`optabs.filters.primitive_cell`), so a conventional cell or a supercell gets the
    spectrum of its primitive cell. Unreadable files, disordered structures (partial occupancy,
    mixed sites) and structures without a graph are skipped, the others predicted: each skipped
    file is logged by name and, where ``skipped_path`` is given, listed there (CSV,
    :data:`SKIPPED_COLUMNS`; always written, empty when none was skipped). Predictions are clipped
    at the grid's floor as in ``evaluate`` (:func:`optabs.model.metrics.clip_to_floor`).

    ``grid``: the energy grid of the model's outputs; default the one stored in the checkpoint
    (an :class:`InputError` naming the checkpoint if it stores none).
    """
    from optabs.dataset import DATASET_COLUMNS, export_alignn, write_dataset
    from optabs.dataset.table import UNCHECKED_STABILITY
    from optabs.io import write_csv
    from optabs.model.ensemble import load_ensemble, mean_and_std, member_predictions
    from optabs.structures.files import load_folder

    candidates, problems = load_folder(structures_dir)
    skipped = [{"file": p["source_ref"], "material_id": p["material_id"], "reason": p["criterion"], "detail": p["detail"]}
               for p in problems]
    candidates, refused = standardised_candidates(candidates)
    skipped += refused
    paths = [checkpoint_path] if isinstance(checkpoint_path, (str, Path)) else list(checkpoint_path)
    models, settings, _, stored = load_ensemble(paths)
    grid = grid or stored
    if grid is None:
        raise InputError(
            f"model checkpoint {paths[0]} stores no energy grid (it was written before checkpoints kept one): "
            "retrain the model (or give predict_structures the grid it was trained on)"
        )
    structures = {c.material_id: c.structure for c in candidates}
    source = {c.material_id: c.source_ref for c in candidates}
    graphs, failures = build_graphs(structures, settings)
    skipped += [{"file": source[m], "material_id": m, "reason": "no_graph", "detail": reason} for m, reason in failures]
    for row in skipped:
        log.warning("skipped %s (%s): %s", row["file"], row["reason"], row["detail"])
    if skipped_path is not None:
        write_csv(skipped_path, pd.DataFrame(skipped, columns=SKIPPED_COLUMNS))
    ids = [c.material_id for c in candidates if c.material_id in graphs]
    if not ids:
        raise InputError(f"no structure in {structures_dir} could be predicted (see the log)")
    if models[0].fc.out_features != grid.n_points:
        raise InputError(
            f"the model predicts {models[0].fc.out_features} points but the grid has {grid.n_points}: use the training config"
        )
    pred, _ = mean_and_std(member_predictions(models, graphs, ids, grid.log10_alpha_floor))
    table = pd.DataFrame(
        {
            "material_id": ids,
            "source_name": [source[m] for m in ids],
            "formula": [structures[m].composition.reduced_formula for m in ids],
            "structure": [structures[m].to_json() for m in ids],
            "log10_alpha": [list(map(float, p)) for p in pred],
            "onset_ev": onset_energies(grid.energy_ev, pred, grid.onset_threshold),
            "dft_gap_ev": np.nan,
            "corrected_gap_ev": np.nan,
            "e_above_hull_ev": np.nan,
            **UNCHECKED_STABILITY,
            "engine": "predicted",
        }
    )[DATASET_COLUMNS]
    export_alignn(table, out_dir)
    write_dataset(out_parquet, table)
    return table
