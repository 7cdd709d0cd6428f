"""The dataset stage: the model's training table, its ALIGNN folder-format export and import.

``dataset.parquet`` columns (one row per material):

================  ===========  ======================================================
material_id       str          safe id (file name, Snakemake wildcard)
source_name       str          the original name (e.g. the POSCAR file name of an import)
formula           str          reduced formula
structure         str          pymatgen Structure JSON
log10_alpha       list[float]  log10 of alpha (cm^-1) on the grid, clipped below at the floor
onset_ev          float        first grid energy where log10_alpha > threshold (eV); NaN if none
dft_gap_ev        float        DFT band gap (eV); NaN if unknown (imports)
corrected_gap_ev  float        corrected gap the spectrum was shifted to (eV); NaN if unknown
e_above_hull_ev   float        energy above hull (eV/atom); NaN if unknown
engine            str          gpaw | vasp | imported
================  ===========  ======================================================

The ALIGNN folder format (the published database's): one ``POSCAR_<formula>_<id>.vasp`` per
material and ``id_prop.csv`` without header, each row the file name then the spectrum values.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from optabs.errors import InputError
from optabs.io import atomic_path
from optabs.structures import safe_material_id

log = logging.getLogger(__name__)

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
    "engine",
]
DROPPED_COLUMNS = ["material_id", "formula", "reason", "detail"]


@dataclass
class Grid:
    """The common energy grid (eV) and the log10 alpha conventions."""

    e_min_ev: float = 0.0
    e_max_ev: float = 15.0
    n_points: int = 1501
    log10_alpha_floor: float = 2.0
    onset_threshold: float = 2.5

    @classmethod
    def from_config(cls, cfg: dict | None) -> "Grid":
        return cls(**(cfg or {}))

    @property
    def energy_ev(self) -> np.ndarray:
        """(n_points,) energies in eV."""
        return np.linspace(self.e_min_ev, self.e_max_ev, self.n_points)


def onsets(grid: Grid, spectra: np.ndarray) -> np.ndarray:
    """Onset energies (eV) of (M, n_points) log10 alpha spectra on ``grid``; NaN where never
    above ``grid.onset_threshold`` (see :func:`optabs.spectra.onset_energies`)."""
    from optabs.spectra import onset_energies

    return onset_energies(grid.energy_ev, np.atleast_2d(spectra), grid.onset_threshold)


# ---------------------------------------------------------------- ALIGNN folder format: export


def poscar_name(formula: str, material_id: str) -> str:
    return f"POSCAR_{formula}_{material_id}.vasp"


def export_alignn(dataset: pd.DataFrame, folder: str | Path, decimals: int = 6) -> Path:
    """Write ``dataset`` as an ALIGNN folder (POSCARs + ``id_prop.csv``); returns the folder.

    The folder is written beside its final place and renamed into it, so a crash leaves no
    half-written export.
    """
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.part")
    if tmp.exists():
        _rmtree(tmp)
    tmp.mkdir(parents=True)
    fmt = f"{{:.{decimals}f}}"
    with open(tmp / "id_prop.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        for row in dataset.itertuples(index=False):
            name = row.source_name if _is_poscar_name(row.source_name) else poscar_name(row.formula, row.material_id)
            Structure.from_str(row.structure, fmt="json").to(filename=str(tmp / name), fmt="poscar")
            writer.writerow([name, *(fmt.format(v) for v in row.log10_alpha)])
    if folder.exists():
        _rmtree(folder)
    tmp.rename(folder)
    return folder


def _is_poscar_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith("POSCAR_") and name.endswith(".vasp") and "/" not in name


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


# ---------------------------------------------------------------- ALIGNN folder format: import


@dataclass
class ImportResult:
    dataset: pd.DataFrame
    dropped: pd.DataFrame
    n_rows: int = 0
    problems: list[str] = field(default_factory=list)


_POSCAR_NAME = re.compile(r"^POSCAR_(?P<formula>[A-Za-z0-9().\[\]]+)_(?P<id>.+?)\.(vasp|poscar)$", re.IGNORECASE)


def material_id_from_poscar_name(name: str) -> str:
    """The id part of ``POSCAR_<formula>_<id>.vasp`` made safe:
    ``POSCAR_Ba3Si2(B3O8)2_mp-1019526.vasp`` -> ``mp-1019526``. Other names: the whole stem, made safe."""
    match = _POSCAR_NAME.match(Path(name).name)
    if match:
        return safe_material_id(match.group("id"))
    stem = re.sub(r"\.(vasp|poscar)$", "", Path(name).name, flags=re.IGNORECASE)
    return safe_material_id(re.sub(r"^POSCAR_?", "", stem))


def import_alignn(folder: str | Path, grid: Grid) -> ImportResult:
    """Read an ALIGNN spectra folder (POSCAR files + ``id_prop.csv``) as a dataset table.

    Every row's length is checked against the grid; rows with the wrong length or non-numeric
    values, unreadable POSCARs, missing files and duplicate ids are reported by name in the
    ``dropped`` table (and the log) and the rest goes on. Raises :class:`InputError` if the
    folder or ``id_prop.csv`` is missing, or nothing could be imported.
    """
    folder = Path(folder)
    id_prop = folder / "id_prop.csv"
    if not id_prop.is_file():
        raise InputError(
            f"dataset folder {folder}: no id_prop.csv (expected the ALIGNN format: POSCAR files and "
            "id_prop.csv with the file name and the spectrum values in each row); set 'dataset_dir'"
        )
    rows, dropped = [], []
    seen: dict[str, str] = {}
    with open(id_prop, newline="") as fh:
        lines = list(csv.reader(fh))
    for lineno, fields in enumerate(lines, start=1):
        if not fields or not fields[0].strip():
            continue
        name = fields[0].strip()
        try:
            material_id = material_id_from_poscar_name(name)
        except InputError as exc:
            dropped.append(_drop(name, "", "bad_name", f"id_prop.csv line {lineno}: {exc}"))
            continue
        n_values = len(fields) - 1
        if n_values != grid.n_points:
            dropped.append(
                _drop(material_id, "", "wrong_length", f"id_prop.csv line {lineno} ({name}): {n_values} values, grid has {grid.n_points}")
            )
            continue
        try:
            values = np.array(fields[1:], dtype=float)
        except ValueError:
            dropped.append(_drop(material_id, "", "bad_values", f"id_prop.csv line {lineno} ({name}): non-numeric value"))
            continue
        if not np.all(np.isfinite(values)):
            dropped.append(_drop(material_id, "", "bad_values", f"id_prop.csv line {lineno} ({name}): NaN or inf"))
            continue
        if material_id in seen:
            dropped.append(_drop(material_id, "", "duplicate_id", f"{name}: id already used by {seen[material_id]}"))
            continue
        path = folder / name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(path.read_text(), fmt="poscar")
            if len(structure) == 0:
                raise ValueError("no atoms")
        except Exception as exc:  # any parse failure: report by name, go on
            dropped.append(_drop(material_id, "", "unreadable_structure", f"{path}: {exc}"))
            continue
        seen[material_id] = name
        rows.append(
            {
                "material_id": material_id,
                "source_name": name,
                "formula": structure.composition.reduced_formula,
                "structure": structure.to_json(),
                "log10_alpha": np.maximum(values, grid.log10_alpha_floor),
                "dft_gap_ev": math.nan,
                "corrected_gap_ev": math.nan,
                "e_above_hull_ev": math.nan,
                "engine": "imported",
            }
        )
    for d in dropped:
        log.warning("dropped %s: %s", d["material_id"], d["detail"])
    if not rows:
        raise InputError(f"dataset folder {folder}: no usable rows in {id_prop} ({len(dropped)} dropped; see the log)")
    dataset = pd.DataFrame(rows)
    dataset["onset_ev"] = onsets(grid, np.stack(dataset["log10_alpha"].to_numpy()))
    dataset["log10_alpha"] = [list(map(float, v)) for v in dataset["log10_alpha"]]
    return ImportResult(dataset[DATASET_COLUMNS], pd.DataFrame(dropped, columns=DROPPED_COLUMNS), n_rows=len(lines))


def _drop(material_id: str, formula: str, reason: str, detail: str) -> dict[str, str]:
    return {"material_id": material_id, "formula": formula, "reason": reason, "detail": detail}


def write_dataset(path: str | Path, dataset: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        dataset[DATASET_COLUMNS].to_parquet(tmp, index=False)


def read_dataset(path: str | Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def spectra_matrix(dataset: pd.DataFrame) -> np.ndarray:
    """(M, n_points) array of the dataset's log10 alpha spectra."""
    return np.stack([np.asarray(v, dtype=float) for v in dataset["log10_alpha"]])


# ---------------------------------------------------------------- from DFT results: spectra stage

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
    from optabs.dft import DielectricResult, read_result
    from optabs.spectra import corrected_spectrum

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


# ---------------------------------------------------------------- curation: dataset stage


@dataclass
class Curation:
    """Which materials enter the dataset: stable within ``e_above_hull_max_ev`` (eV/atom) and
    with a DFT gap of at least ``min_gap_ev`` (eV)."""

    e_above_hull_max_ev: float = 0.0
    min_gap_ev: float = 0.3

    @classmethod
    def from_config(cls, cfg: dict | None) -> "Curation":
        return cls(**(cfg or {}))


def energies_above_hull(formulas: list[str], energies_per_atom: np.ndarray, scales: list[str]) -> np.ndarray:
    """Energy above the convex hull (eV/atom) of each material against the others.

    Built with pymatgen's ``PhaseDiagram`` over the computed materials, separately for each
    energy scale (only energies from the same engine and settings are comparable). Elements
    with no computed reference get a pseudo-reference 10 eV/atom above every computed energy, so
    the hull is the lower envelope of the computed compounds: e_above_hull says how far a
    material lies above a mix of the *computed* phases (a polymorph above a more stable one, a
    ternary above its computed binaries), never less stable than it is.
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    energies = np.asarray(energies_per_atom, dtype=float)
    comps = [Composition(f) for f in formulas]
    out = np.full(len(formulas), math.nan)
    for scale in sorted(set(scales)):
        idx = [i for i, s in enumerate(scales) if s == scale]
        ceiling = float(np.max(energies[idx])) + 10.0
        # One small phase diagram per chemical system (the materials whose elements are a subset
        # of it): a single diagram over every element of a diverse set is a hull in ~20
        # dimensions, which qhull cannot build in reasonable time.
        systems: dict[frozenset, list[int]] = {}
        for i in idx:
            systems.setdefault(frozenset(comps[i].elements), []).append(i)
        for system, members in systems.items():
            within = [j for j in idx if frozenset(comps[j].elements) <= system]
            entries = {j: PDEntry(comps[j], energies[j] * comps[j].num_atoms) for j in within}
            have = {comps[j].elements[0] for j in within if len(comps[j].elements) == 1}
            refs = [PDEntry(Composition({el: 1}), ceiling) for el in sorted(system - have)]
            pd_ = PhaseDiagram(list(entries.values()) + refs)
            for i in members:
                out[i] = max(0.0, pd_.get_e_above_hull(entries[i], allow_negative=True))
    return out


def curate(spectra: pd.DataFrame, curation: Curation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset (:data:`DATASET_COLUMNS`) and the dropped table (:data:`DROPPED_COLUMNS`)."""
    spectra = spectra.copy()
    spectra["e_above_hull_ev"] = (
        energies_above_hull(list(spectra.formula), spectra.energy_per_atom_ev.to_numpy(), list(spectra.energy_scale))
        if len(spectra)
        else []
    )
    unstable = spectra.e_above_hull_ev > curation.e_above_hull_max_ev + 1e-8
    small_gap = spectra.dft_gap_ev < curation.min_gap_ev
    dropped = []
    for row in spectra[unstable].itertuples():
        dropped.append(
            _drop(row.material_id, row.formula, "unstable",
                  f"{row.e_above_hull_ev:.3f} eV/atom above the hull > {curation.e_above_hull_max_ev}")
        )
    for row in spectra[small_gap].itertuples():
        dropped.append(
            _drop(row.material_id, row.formula, "small_gap", f"DFT gap {row.dft_gap_ev:.3f} eV < {curation.min_gap_ev} eV")
        )
    kept = spectra[~unstable & ~small_gap].copy()
    kept["source_name"] = kept.material_id
    return kept[DATASET_COLUMNS].reset_index(drop=True), pd.DataFrame(dropped, columns=DROPPED_COLUMNS)
