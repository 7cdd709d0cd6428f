"""Spectra from a trained network: batched prediction and the predictions table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from optabs.model.graphs import Graph
from optabs.model.network import batch, batches, forward, torch_threads


def predict(
    model: Any, graphs: Mapping[str, Graph], ids: Sequence[str], batch_size: int = 32, threads: int | None = 1
) -> np.ndarray:
    """(len(ids), n_grid) predicted log10 alpha of the materials ``ids`` (float64).

    Batching does not change the result beyond float rounding (per-atom layer norms, per-graph
    mean pooling). ``threads``: torch CPU threads for the call (None: leave as is; see
    :class:`~optabs.model.settings.ModelSettings` for why one is the default).
    """
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch_threads(threads), torch.no_grad():
        for chunk in batches(list(ids), batch_size):
            g, lg = batch(graphs, chunk, device)
            out.append(forward(model, g, lg).cpu().numpy())
    n_grid = model.fc.out_features
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n_grid))


def predictions_table(
    ids: Sequence[str], split: Mapping[str, str], predictions: np.ndarray, std: np.ndarray | None = None
) -> pd.DataFrame:
    """``predictions.parquet``: material_id, split, log10_alpha_pred (list[float] on the grid) and,
    for an ensemble, log10_alpha_std (the members' standard deviation; zeros for a single model)."""
    if std is None:
        std = np.zeros_like(np.asarray(predictions, dtype=float))
    return pd.DataFrame(
        {
            "material_id": list(ids),
            "split": [split.get(m, "") for m in ids],
            "log10_alpha_pred": [list(map(float, p)) for p in predictions],
            "log10_alpha_std": [list(map(float, s)) for s in std],
        }
    )
