"""The ``structures`` stage: read the configured source, apply the chemistry filter, write tables.

Outputs (all written atomically):
- ``kept.parquet``: the candidates table (see :mod:`optabs.structures`) of kept materials,
  structures reduced to the primitive cell;
- ``rejected.csv``: ``material_id, formula, source_ref, criterion, detail``, one row per failed
  criterion, plus unreadable or duplicate inputs (criterion ``unreadable`` / ``duplicate_id``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from optabs.errors import InputError
from optabs.filters import FilterSettings, apply_filter
from optabs.io import write_csv, write_parquet
from optabs.structures import Candidate, candidates_to_frame

log = logging.getLogger(__name__)

REJECTED_COLUMNS = ["material_id", "formula", "source_ref", "criterion", "detail"]


def load_source(source: str, path: str | Path) -> tuple[list[Candidate], list[dict[str, str]]]:
    """Candidates from one source and the inputs it could not use (rows of the rejected table).

    ``path``: the catalog YAML (``catalog``), the saved Materials Project documents (``mp``) or
    the structure folder (``files``).
    """
    if source == "catalog":
        from optabs.structures.catalog import load_catalog

        return load_catalog(path), []
    if source == "mp":
        from optabs.structures.mp import documents_to_candidates, load_documents

        return documents_to_candidates(load_documents(path)), []
    if source == "files":
        from optabs.structures.files import load_folder

        return load_folder(path)
    raise InputError(f"config key 'source': unknown source {source!r} (catalog, mp or files)")


def run_structures_stage(
    source: str, path: str | Path, filter_config: dict[str, Any] | None, kept_path: str | Path, rejected_path: str | Path
) -> tuple[int, int]:
    """Run the stage; returns (number kept, number of rejected materials)."""
    candidates, problems = load_source(source, path)
    if not candidates:
        unusable = "".join(f"\n  {p['source_ref']}: {p['detail']}" for p in problems)
        raise InputError(
            f"source {source!r} at {path} gave no structures: nothing to compute"
            + (f". Every input was unusable; fix or replace these files:{unusable}" if problems else "")
        )
    outcome = apply_filter(candidates, FilterSettings.from_config(filter_config))
    rejected = pd.DataFrame(problems + outcome.rejected, columns=REJECTED_COLUMNS)
    n_rejected = rejected["material_id"].nunique()
    log.info("%s: %d candidates, %d kept, %d rejected", source, len(candidates), len(outcome.kept), n_rejected)
    if not outcome.kept:
        log.warning("the filter rejected every material; see %s", rejected_path)
    write_csv(rejected_path, rejected)
    write_parquet(kept_path, candidates_to_frame(outcome.kept))
    return len(outcome.kept), n_rejected
