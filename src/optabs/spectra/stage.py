"""The spectra stage: every DFT result -> gap-corrected log10 alpha on the common grid.

Writes the spectra table (:data:`SPECTRA_COLUMNS`), the per-material DFT summary
(:data:`DFT_SUMMARY_COLUMNS`) and the stage's failures (:mod:`optabs.failures`): a material
whose DFT failed is a failure of stage ``dft``, one whose spectrum could not be corrected a
failure of stage ``spectra``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from optabs.dft import DielectricResult, read_result
from optabs.errors import InputError
from optabs.failures import Failure, write_failures
from optabs.grid import Grid
from optabs.io import write_csv, write_parquet
from optabs.spectra.corrected import corrected_spectrum

log = logging.getLogger(__name__)

SPECTRA_COLUMNS = [
    "material_id",
    "formula",
    "structure",
    "log10_alpha",
    "onset_ev",
    "dft_gap_ev",
    "dft_direct_gap_ev",
    "corrected_gap_ev",
    "gap_method",
    "energy_per_atom_ev",
    "energy_scale",
    "engine",
]
DFT_SUMMARY_COLUMNS = ["material_id", "status", "engine", "dft_gap_ev", "corrected_gap_ev", "gap_method", "reason", "log_path"]


def spectra_table(result_paths: list[str | Path], grid: Grid) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gap-corrected log10 alpha on the grid for every successful DFT result.

    Returns ``(spectra, summary)``: the spectra table (:data:`SPECTRA_COLUMNS`) and one summary
    row per material (:data:`DFT_SUMMARY_COLUMNS`) with ``status`` ``ok``, ``failed`` (DFT) or
    ``spectra_failed`` (the correction could not be applied, e.g. data not covering the grid).
    A corrupt result file is a failure of that material, named in the summary.
    """
    energy = grid.energy_ev
    spectra, summary = [], []
    for path in result_paths:
        material_id = Path(path).parent.name
        try:
            outcome = read_result(path)
        except InputError as exc:
            summary.append(_summary(material_id, "failed", "", reason=str(exc), log_path=str(path)))
            continue
        if not isinstance(outcome, DielectricResult):
            summary.append(
                _summary(outcome.material_id, "failed", outcome.engine, reason=outcome.reason, log_path=outcome.log_path)
            )
            continue
        r = outcome
        try:
            corrected = corrected_spectrum(
                r.energy_ev, r.eps_imag, r.dft_gap_ev, r.corrected_gap_ev, energy,
                floor=grid.log10_alpha_floor, onset_threshold=grid.onset_threshold,
            )
        except InputError as exc:
            summary.append(_summary(r.material_id, "spectra_failed", r.engine, r, reason=str(exc)))
            continue
        structure = Structure.from_dict(r.structure)
        spectra.append(
            {
                "material_id": r.material_id,
                "formula": structure.composition.reduced_formula,
                "structure": structure.to_json(),
                "log10_alpha": [float(v) for v in corrected.log10_alpha],
                "onset_ev": math.nan if corrected.onset_ev is None else float(corrected.onset_ev),
                "dft_gap_ev": r.dft_gap_ev,
                "dft_direct_gap_ev": r.dft_direct_gap_ev,
                "corrected_gap_ev": r.corrected_gap_ev,
                "gap_method": r.gap_method,
                "energy_per_atom_ev": r.energy_per_atom_ev,
                "energy_scale": r.energy_scale,
                "engine": r.engine,
            }
        )
        summary.append(_summary(r.material_id, "ok", r.engine, r))
    return pd.DataFrame(spectra, columns=SPECTRA_COLUMNS), pd.DataFrame(summary, columns=DFT_SUMMARY_COLUMNS)


def _summary(material_id, status, engine, result=None, reason="", log_path=""):
    """One row of the DFT summary (:data:`DFT_SUMMARY_COLUMNS`)."""
    return {
        "material_id": material_id,
        "status": status,
        "engine": engine,
        "dft_gap_ev": getattr(result, "dft_gap_ev", math.nan),
        "corrected_gap_ev": getattr(result, "corrected_gap_ev", math.nan),
        "gap_method": getattr(result, "gap_method", ""),
        "reason": reason,
        "log_path": log_path,
    }


def summary_failures(summary: pd.DataFrame) -> list[Failure]:
    """The failures in a DFT summary: stage ``dft`` for a failed calculation, ``spectra`` for a failed correction."""
    failed = summary[summary.status != "ok"]
    return [
        Failure(
            row.material_id,
            "dft" if row.status == "failed" else "spectra",
            row.reason,
            f"log: {row.log_path}" if row.log_path else "",
        )
        for row in failed.itertuples()
    ]


def spectra_stage(
    result_paths: list[str | Path], grid: Grid, *, spectra_path, summary_path, failures_path
) -> pd.DataFrame:
    """Run :func:`spectra_table` and write the spectra, the DFT summary and the failures."""
    spectra, summary = spectra_table(result_paths, grid)
    log.info("%d spectra, %d materials without one", len(spectra), (summary.status != "ok").sum())
    write_failures(failures_path, summary_failures(summary))
    write_csv(summary_path, summary)
    write_parquet(spectra_path, spectra)
    return spectra
