"""Scores of predicted spectra: per-material MAE, onset agreement, and ALIGNN against the baselines."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optabs.dataset import spectra_matrix
from optabs.errors import InputError
from optabs.grid import ONSET_THRESHOLD
from optabs.model.baselines import composition_baseline, mean_spectrum_baseline
from optabs.spectra import onset_energies

#: Per-material MAE (log10 alpha units) under which a prediction counts as good (the threshold
#: the comparison with the study reports).
GOOD_MAE = 0.14


def per_material_mae(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(M,) mean absolute error over the grid of each material (log10 alpha units)."""
    return np.mean(np.abs(np.atleast_2d(y_true) - np.atleast_2d(y_pred)), axis=1)


def clip_to_floor(predictions: np.ndarray, floor: float) -> np.ndarray:
    """(M, n_grid) predicted log10 α (cm⁻¹) clipped below at the grid's ``floor``.

    The one treatment of the floor for every prediction the project scores or writes (evaluate and
    predictions.parquet, and ``optabs predict``): the target spectra are clipped at the floor, so a prediction
    below it carries no information and is raised to it (the model's raw output is otherwise kept).
    """
    return np.maximum(np.asarray(predictions, dtype=float), float(floor))


def _none_if_nan(x: float | np.floating | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def spectrum_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, energy_ev: np.ndarray, threshold: float = ONSET_THRESHOLD
) -> dict[str, Any]:
    """Spectrum and onset metrics of (M, n_grid) predictions against the truth.

    ``mae_q25``, ``mae_median``, ``mae_q75``, ``mae_mean``: quartiles and mean of the
    per-material MAE (log10 alpha); ``frac_mae_below_0.14``: share of materials with MAE < 0.14.
    Onsets use the dataset's definition (:func:`optabs.spectra.onset_energies`: the first grid
    energy with log10 alpha > ``threshold``); materials where either onset is undefined are left
    out of ``onset_r2`` and ``onset_mae_ev`` and counted in ``n_onset_undefined``. Undefined values
    (no materials, fewer than two onsets) are None, so the dict is valid JSON.
    """
    y_true, y_pred = np.atleast_2d(np.asarray(y_true, float)), np.atleast_2d(np.asarray(y_pred, float))
    if y_true.shape != y_pred.shape:
        raise InputError(f"spectrum_metrics: truth {y_true.shape} and prediction {y_pred.shape} differ in shape")
    mae = per_material_mae(y_true, y_pred) if len(y_true) else np.zeros(0)
    energy, threshold = np.asarray(energy_ev, float), float(threshold)
    on_true = onset_energies(energy, y_true, threshold) if len(y_true) else np.zeros(0)
    on_pred = onset_energies(energy, y_pred, threshold) if len(y_true) else np.zeros(0)
    ok = np.isfinite(on_true) & np.isfinite(on_pred)
    r2 = math.nan
    if ok.sum() >= 2:
        ss_res = np.sum((on_true[ok] - on_pred[ok]) ** 2)
        ss_tot = np.sum((on_true[ok] - on_true[ok].mean()) ** 2)
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    q25, q50, q75 = np.percentile(mae, [25, 50, 75]) if len(mae) else (math.nan,) * 3
    return {
        "n_materials": int(len(mae)),
        "mae_mean": _none_if_nan(mae.mean() if len(mae) else math.nan),
        "mae_q25": _none_if_nan(q25),
        "mae_median": _none_if_nan(q50),
        "mae_q75": _none_if_nan(q75),
        f"frac_mae_below_{GOOD_MAE}": _none_if_nan(np.mean(mae < GOOD_MAE) if len(mae) else math.nan),
        "onset_r2": _none_if_nan(r2),
        "onset_mae_ev": _none_if_nan(np.mean(np.abs(on_true[ok] - on_pred[ok])) if ok.any() else math.nan),
        "n_onset": int(ok.sum()),
        "n_onset_undefined": int((~ok).sum()),
    }


@dataclass
class Evaluation:
    """``metrics``: the ``metrics.json`` structure; ``per_material``: one row per material with a
    split (material_id, formula, split, mae_alignn, mae_mean_spectrum, mae_composition,
    onset_ev, onset_alignn_ev)."""

    metrics: dict[str, Any]
    per_material: pd.DataFrame


def evaluate(
    dataset: pd.DataFrame,
    split: Mapping[str, str],
    alignn_predictions: np.ndarray,
    energy_ev: np.ndarray,
    threshold: float = ONSET_THRESHOLD,
    seed: int = 123,
    floor: float | None = None,
) -> Evaluation:
    """ALIGNN against the two baselines, all scored on the test split.

    ``alignn_predictions``: (len(dataset), n_grid), row i the prediction of dataset row i
    (rows of materials not in ``split``, e.g. without a graph, are ignored). The baselines are
    fitted on the training materials of the same ``split``.

    ``floor``: the grid's log10 α floor. Every prediction (ALIGNN and both baselines) is clipped
    at it before scoring (:func:`clip_to_floor`), as ``predict`` clips what it
    writes: one model, one spectrum. ``None``: scored as given (the caller clipped, or no floor).

    ``metrics`` = ``{"n_train", "n_val", "n_test", "floor": {...}, "alignn": {...},
    "mean_spectrum": {...}, "composition": {...}}`` with :func:`spectrum_metrics` dicts; ``floor``
    states the treatment (``log10_alpha_floor``, ``predictions_clipped``).
    """
    Y = spectra_matrix(dataset)
    P = np.asarray(alignn_predictions, dtype=float)
    if P.shape != Y.shape:
        raise InputError(f"evaluate: predictions {P.shape} do not match the dataset's spectra {Y.shape}")
    labels = np.array([split.get(m, "") for m in dataset.material_id])
    tr, te = labels == "train", labels == "test"
    if not tr.any():
        raise InputError("evaluate: the split has no training materials to fit the baselines on")
    formulas = list(dataset.formula)
    mean_model = mean_spectrum_baseline(Y[tr])
    comp_model = composition_baseline([f for f, t in zip(formulas, tr) if t], Y[tr], seed=seed)
    has = labels != ""
    preds = {
        "alignn": P,
        "mean_spectrum": mean_model.predict(formulas),
        "composition": comp_model.predict(formulas),
    }
    if floor is not None:
        preds = {name: clip_to_floor(pred, floor) for name, pred in preds.items()}
        P = preds["alignn"]
    metrics: dict[str, Any] = {
        "n_train": int(tr.sum()), "n_val": int((labels == "val").sum()), "n_test": int(te.sum()),
        "floor": {
            "log10_alpha_floor": None if floor is None else float(floor),
            "predictions_clipped": floor is not None,
            "applies_to": list(preds) if floor is not None else [],
            "rule": "every prediction is clipped below at the floor of the target spectra, in evaluate and in predict"
            if floor is not None else "predictions scored as given",
        },
    }
    for name, pred in preds.items():
        metrics[name] = spectrum_metrics(Y[te], pred[te], energy_ev, threshold)
    energy, threshold = np.asarray(energy_ev, float), float(threshold)
    per_material = pd.DataFrame(
        {
            "material_id": dataset.material_id.to_numpy()[has],
            "formula": np.asarray(formulas, dtype=object)[has],
            "split": labels[has],
            **{f"mae_{name}": per_material_mae(Y[has], pred[has]) for name, pred in preds.items()},
            "onset_ev": onset_energies(energy, Y[has], threshold),
            "onset_alignn_ev": onset_energies(energy, P[has], threshold),
        }
    )
    return Evaluation(metrics, per_material)

