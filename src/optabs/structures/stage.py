"""The ``structures`` stage: read the configured source, apply the chemistry filter, write tables.

Outputs (all written atomically):
- ``kept.parquet``: the candidates table (see :mod:`optabs.structures`) of the materials this run
  computes, structures reduced to the primitive cell;
- ``candidates.parquet``: the same columns, for the materials that pass the filter but are not
  computed in this run (catalog cells above ``catalog_max_sites``, and with
  ``screen.initial_fraction`` < 1 the share left for screening); always written, maybe empty;
- ``rejected.csv``: ``material_id, formula, source_ref, criterion, detail``, one row per failed
  criterion, plus unreadable or duplicate inputs (criterion ``unreadable`` / ``duplicate_id``);
- ``failures.csv``: the same rows as :class:`optabs.failures.Failure` records (stage
  ``structures``, reason the criterion), which the report lists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optabs.errors import InputError
from optabs.failures import Failure, write_failures
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


def limit_catalog_size(kept: list[Candidate], max_sites: int | None) -> tuple[list[Candidate], list[dict[str, str]]]:
    """Split filter-kept candidates by the size of their primitive cell (``catalog_max_sites``).

    The embedded demo computes cells of up to ``max_sites`` atoms so that its GPAW stage stays
    short on a laptop; larger catalog entries are listed as not computed, with how to include
    them. ``None``: keep every one.
    """
    if max_sites is None:
        return kept, []
    small = [c for c in kept if len(c.structure) <= max_sites]
    skipped = [
        {
            "material_id": c.material_id,
            "formula": c.formula,
            "source_ref": c.source_ref,
            "criterion": "catalog_max_sites",
            "detail": (
                f"{len(c.structure)} atoms in the primitive cell > catalog_max_sites {max_sites}: not computed "
                "in this run (passes the chemistry filter; set catalog_max_sites: null to compute it)"
            ),
        }
        for c in kept
        if len(c.structure) > max_sites
    ]
    return small, skipped


def initial_share(
    candidates: list[Candidate], fraction: float = 1.0, seed: int = 0
) -> tuple[list[Candidate], list[Candidate]]:
    """Split ``candidates`` into (computed now, left for screening): a seeded random share.

    ``round(fraction * n)`` of the n candidates (at least one) are computed now, the rest are
    left as screening candidates (``screen.initial_fraction``, ``screen.seed``). Which ones depends
    only on the set of ids and the seed, not on the input order (the draw is over the sorted ids);
    both lists keep the input order. ``fraction`` 1 keeps every candidate.
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"config key 'screen.initial_fraction': expected a share in (0, 1], got {fraction}")
    if fraction >= 1.0 or not candidates:
        return list(candidates), []
    ids = sorted(c.material_id for c in candidates)
    n_now = max(1, round(fraction * len(ids)))
    now = {ids[i] for i in np.random.default_rng(seed).choice(len(ids), size=n_now, replace=False)}
    return [c for c in candidates if c.material_id in now], [c for c in candidates if c.material_id not in now]


def run_structures_stage(
    source: str,
    path: str | Path,
    filter_config: dict[str, Any] | None,
    kept_path: str | Path,
    rejected_path: str | Path,
    catalog_max_sites: int | None = None,
    failures_path: str | Path | None = None,
    candidates_path: str | Path | None = None,
    initial_fraction: float = 1.0,
    seed: int = 0,
) -> tuple[int, int]:
    """Run the stage; returns (number kept, number of rejected materials).

    ``catalog_max_sites`` (source ``catalog`` only): see :func:`limit_catalog_size`; the larger
    cells are listed in the rejected table (criterion ``catalog_max_sites``) and are screening
    candidates. ``initial_fraction``, ``seed``: see :func:`initial_share` (of the cells within the
    size limit). ``failures_path``: where the rejected rows are written as failure records;
    ``candidates_path``: where the candidates table goes (none: either is not written).
    """
    candidates, problems = load_source(source, path)
    if not candidates:
        unusable = "".join(f"\n  {p['source_ref']}: {p['detail']}" for p in problems)
        raise InputError(
            f"source {source!r} at {path} gave no structures: nothing to compute"
            + (f". Every input was unusable; fix or replace these files:{unusable}" if problems else "")
        )
    outcome = apply_filter(candidates, FilterSettings.from_config("filter", filter_config))
    small, too_large = limit_catalog_size(outcome.kept, catalog_max_sites if source == "catalog" else None)
    kept, later = initial_share(small, initial_fraction, seed)
    large_ids = {r["material_id"] for r in too_large}
    later += [c for c in outcome.kept if c.material_id in large_ids]
    rejected = pd.DataFrame(problems + outcome.rejected + too_large, columns=REJECTED_COLUMNS)
    n_rejected = rejected["material_id"].nunique()
    log.info("%s: %d inputs, %d kept, %d rejected, %d left as screening candidates", source, len(candidates),
             len(kept), n_rejected, len(later))
    if too_large:
        log.info("%d catalog entries larger than catalog_max_sites %s are not computed: %s", len(too_large),
                 catalog_max_sites, ", ".join(r["material_id"] for r in too_large))
    if not kept:
        log.warning("the filter rejected every material; see %s", rejected_path)
    if failures_path is not None:
        write_failures(
            failures_path, [Failure(r.material_id, "structures", r.criterion, r.detail) for r in rejected.itertuples()]
        )
    write_csv(rejected_path, rejected)
    write_parquet(kept_path, candidates_to_frame(kept))
    if candidates_path is not None:
        write_parquet(candidates_path, candidates_to_frame(later))
    return len(kept), n_rejected
