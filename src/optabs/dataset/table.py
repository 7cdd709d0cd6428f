"""The dataset table: its columns, reading, writing and the spectra as one matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from optabs.io import atomic_path

DATASET_COLUMNS = [
    "material_id",
    "source_name",
    "formula",
    "structure",
    "log10_alpha",
    "onset_ev",
    "dft_gap_ev",
    "corrected_gap_ev",
    "e_above_hull_ev",
    "stability",
    "stability_policy",
    "mp_database_version",
    "engine",
]
DROPPED_COLUMNS = ["material_id", "formula", "reason", "detail"]
#: The stability columns of a row this workflow did not judge (an import, a prediction).
UNCHECKED_STABILITY = {"stability": "unchecked", "stability_policy": "none", "mp_database_version": ""}


def dropped_row(material_id: str, formula: str, reason: str, detail: str) -> dict[str, str]:
    """One row of the dropped table (:data:`DROPPED_COLUMNS`)."""
    return {"material_id": material_id, "formula": formula, "reason": reason, "detail": detail}


def write_dataset(path: str | Path, dataset: pd.DataFrame) -> None:
    """Write the dataset table (:data:`DATASET_COLUMNS`) as parquet, atomically."""
    with atomic_path(path) as tmp:
        dataset[DATASET_COLUMNS].to_parquet(tmp, index=False)


def read_dataset(path: str | Path) -> pd.DataFrame:
    """Read a dataset table written by :func:`write_dataset`."""
    return pd.read_parquet(path)


def spectra_matrix(dataset: pd.DataFrame) -> np.ndarray:
    """(M, n_points) array of the dataset's log10 alpha spectra."""
    return np.stack([np.asarray(v, dtype=float) for v in dataset["log10_alpha"]])
