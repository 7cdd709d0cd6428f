"""The workflow's report stage: read the earlier stages' files and build the report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from optabs.failures import read_failures
from optabs.report.build import build_report


def report_stage(
    outdir: str | os.PathLike,
    *,
    dataset_path,
    clusters_path,
    linkage_path,
    comparison_path,
    chemistry_dir,
    sweep_path=None,
    motif_q_max: float = 0.01,
    metrics_path=None,
    predictions_path=None,
    failure_paths: Iterable[str | os.PathLike] = (),
    grid=None,
    title: str = "optabs report",
    screen_dir=None,
) -> Path:
    """Read the stages' files and build the report (see :func:`build_report`).

    ``sweep_path``: the interpret stage's ``sweep.parquet`` (optional). ``failure_paths``: the
    ``failures.csv`` of every earlier stage (:func:`optabs.failures.read_failures`). ``screen_dir``:
    the screen stage's folder (``results/screen``), or None where the workflow does not screen.
    """
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
        failures=read_failures(failure_paths),
        title=title,
        linkage=np.load(linkage_path),
        grid=grid,
        sweep=pd.read_parquet(sweep_path) if sweep_path else None,
        motif_q_max=motif_q_max,
        screen_dir=screen_dir,
    )
