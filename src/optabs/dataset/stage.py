"""The dataset stage's entry points: curate this workflow's spectra, or import a published folder."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from optabs.dataset.alignn_format import export_alignn, import_alignn
from optabs.dataset.curation import Curation, curate, source_stability
from optabs.dataset.table import write_dataset
from optabs.failures import Failure, write_failures
from optabs.grid import Grid
from optabs.io import write_csv

log = logging.getLogger(__name__)

STAGE = "dataset"


def _write(dataset: pd.DataFrame, dropped: pd.DataFrame, *, dataset_path, dropped_path, failures_path, alignn_dir) -> None:
    """The stage's four outputs; the dataset last, so a crash never leaves it without its export."""
    export_alignn(dataset, alignn_dir)
    write_csv(dropped_path, dropped)
    write_failures(failures_path, [Failure(r.material_id, STAGE, r.reason, r.detail) for r in dropped.itertuples()])
    write_dataset(dataset_path, dataset)


def curate_stage(
    spectra_path: str | Path, curation: Curation, *, kept_path: str | Path | None = None, dataset_path, dropped_path,
    failures_path, alignn_dir
) -> pd.DataFrame:
    """Curate the spectra table (stability, gap) into the dataset; dropped materials are failures of this stage.

    ``kept_path``: the structures stage's kept table, where each material's source and the
    Materials Project's energy above hull come from (none: stability ``auto`` means ``local``).
    """
    sources = source_stability(pd.read_parquet(kept_path)) if kept_path is not None else None
    if sources is None and curation.stability in ("auto", "mp"):
        log.warning("no kept table given: the materials' sources and Materials Project values are unknown, so "
                    "stability %r can only mean the local hull (or fail, for mp)", curation.stability)
    dataset, dropped = curate(pd.read_parquet(spectra_path), curation, sources)
    log.info("%d materials in the dataset, %d dropped", len(dataset), dropped.material_id.nunique())
    _write(dataset, dropped, dataset_path=dataset_path, dropped_path=dropped_path, failures_path=failures_path,
           alignn_dir=alignn_dir)
    return dataset


def import_stage(folder: str | Path, grid: Grid, *, dataset_path, dropped_path, failures_path, alignn_dir) -> pd.DataFrame:
    """Import an ALIGNN spectra folder as the dataset (no DFT); rows that cannot be used are failures."""
    result = import_alignn(folder, grid)
    log.info("imported %d of %d rows, %d dropped", len(result.dataset), result.n_rows, len(result.dropped))
    _write(result.dataset, result.dropped, dataset_path=dataset_path, dropped_path=dropped_path,
           failures_path=failures_path, alignn_dir=alignn_dir)
    return result.dataset
