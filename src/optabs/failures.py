"""One failure record for every stage: why a material left the pipeline (or lost a result).

Each stage that leaves materials out writes ``results/<stage>/failures.csv`` with
:data:`FAILURE_COLUMNS` (:func:`write_failures`); the report reads them all with
:func:`read_failures`. Stage-specific tables (``rejected.csv``, ``dft/summary.csv``,
``dropped.csv``) keep their extra columns beside it.

==============  =====================================================================
material_id     the material
stage           the stage (and step) that left it out: ``structures``, ``dft``,
                ``spectra``, ``dataset``, ``model (graph)``, ``interpret (environments)``
reason          a short key: the filter criterion, the failed step, ``small_gap``, ...
detail          the whole message: numbers, files, what to do
==============  =====================================================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import astuple, dataclass
from pathlib import Path

import pandas as pd

from optabs.errors import InputError
from optabs.io import write_csv

FAILURE_COLUMNS = ["material_id", "stage", "reason", "detail"]


@dataclass(frozen=True)
class Failure:
    """Why ``material_id`` has no result from ``stage``: a short ``reason`` and the whole ``detail``."""

    material_id: str
    stage: str
    reason: str
    detail: str = ""


def failures_frame(failures: Iterable[Failure]) -> pd.DataFrame:
    """A table with :data:`FAILURE_COLUMNS`, one row per record (empty table for none)."""
    return pd.DataFrame([astuple(f) for f in failures], columns=FAILURE_COLUMNS)


def write_failures(path: str | os.PathLike, failures: Iterable[Failure]) -> None:
    """Write the records as CSV, atomically (a header only when there are none)."""
    write_csv(path, failures_frame(failures))


def read_failures(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """All records of the ``failures.csv`` files ``paths``, in order (:data:`FAILURE_COLUMNS`).

    A file without the four columns raises :class:`InputError` naming it.
    """
    frames = []
    for path in paths:
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
        missing = [c for c in FAILURE_COLUMNS if c not in frame.columns]
        if missing:
            raise InputError(f"{Path(path)} is not a failures table (missing columns {missing}); rerun the stage that wrote it")
        frames.append(frame[FAILURE_COLUMNS])
    if not frames:
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.concat(frames, ignore_index=True)
