"""Ensembles: members trained on one split with different initial weights and batch order.

The ensemble's prediction is the mean of its members' spectra (each clipped at the grid's floor
first, as every prediction is: :func:`optabs.model.metrics.clip_to_floor`), its uncertainty the
standard deviation over the members (ddof 0). Shapes: member predictions ``(M, N, G)`` (members,
materials, grid points), log10 alpha (alpha in cm^-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from optabs.errors import InputError
from optabs.grid import Grid
from optabs.model.checkpoint import load_checkpoint, model_from_checkpoint, stored_grid
from optabs.model.graphs import Graph
from optabs.model.metrics import clip_to_floor
from optabs.model.predict import predict
from optabs.model.settings import ModelSettings


def load_ensemble(
    paths: Sequence[str | Path], device: str | None = None
) -> tuple[list[Any], ModelSettings, dict[str, str], Grid | None]:
    """``(models, settings of member 0, split, grid)`` from the members' checkpoints.

    Every member must share the split, the grid and the graph settings of the first: a member
    trained for another dataset or config raises :class:`InputError` naming its file.
    """
    if not paths:
        raise InputError("no model checkpoint given: train the model first (rule model_train)")
    models, first = [], None
    for path in paths:
        payload = load_checkpoint(path)
        model, settings, split = model_from_checkpoint(payload, device)
        grid = stored_grid(payload)
        if first is None:
            first = (settings, split, grid)
        elif split != first[1] or grid != first[2] or settings.graph_key() != first[0].graph_key():
            raise InputError(
                f"model checkpoint {path} was trained on another split, grid or graph settings than {paths[0]}: "
                "retrain the ensemble (every member from the same dataset and config)"
            )
        models.append(model)
    assert first is not None  # paths is not empty
    return models, first[0], first[1], first[2]


def member_predictions(
    models: Sequence[Any], graphs: Mapping[str, Graph], ids: Sequence[str], floor: float, threads: int | None = 1
) -> np.ndarray:
    """(M, N, G) log10 alpha of the materials ``ids`` by each member, clipped at ``floor``."""
    if not models:
        return np.zeros((0, len(ids), 0))
    return np.stack([clip_to_floor(predict(m, graphs, ids, batch_size=64, threads=threads), floor) for m in models])


def mean_and_std(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble's (N, G) mean and standard deviation (ddof 0) of (M, N, G) member predictions."""
    members = np.asarray(members, dtype=float)
    return members.mean(axis=0), members.std(axis=0)


def calibration(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, floor: float) -> dict[str, Any]:
    """How often the truth lies inside the ensemble's bands, over spectrum points (N, G arrays).

    ``within_1sigma`` / ``within_2sigma``: share of the points with ``|truth - mean| <= k sigma``
    among the points where the truth or the mean is above the floor (below the edge both sit at
    the floor, where agreement is trivial and would inflate the coverage); the ``_all_points``
    variants count every point. A Gaussian error of the size sigma would give 0.683 and 0.954.
    ``mean_sigma``: the mean sigma over the counted points. None where nothing is counted.
    """
    truth, mean, std = (np.asarray(a, dtype=float) for a in (truth, mean, std))
    err = np.abs(truth - mean)
    active = (truth > floor) | (mean > floor)
    out: dict[str, Any] = {"n_points": int(active.sum()), "n_points_all": int(err.size)}
    for k in (1, 2):
        inside = err <= k * std
        out[f"within_{k}sigma"] = float(inside[active].mean()) if active.any() else None
        out[f"within_{k}sigma_all_points"] = float(inside.mean()) if err.size else None
    out["mean_sigma"] = float(std[active].mean()) if active.any() else None
    return out


def sigma_scale(truth: np.ndarray, mean: np.ndarray, std: np.ndarray, floor: float, coverage: float = 0.954) -> float | None:
    """The factor s that makes ``coverage`` of the points (as :func:`calibration` counts them) fall
    inside ``mean +- 2 s sigma``: half the ``coverage`` quantile of ``|truth - mean| / sigma``.

    Fitted on the validation split and checked on the test split, it recalibrates an ensemble
    whose spread is too narrow (small deep ensembles usually are; Kuleshov et al., ICML 2018;
    Levi et al., Sensors 22, 5540 (2022)). None where no point is counted.
    """
    truth, mean, std = (np.asarray(a, dtype=float) for a in (truth, mean, std))
    active = (truth > floor) | (mean > floor)
    if not active.any():
        return None
    ratio = np.abs(truth - mean)[active] / np.where(std[active] > 0, std[active], np.finfo(float).tiny)
    return float(np.quantile(ratio, coverage) / 2.0)
