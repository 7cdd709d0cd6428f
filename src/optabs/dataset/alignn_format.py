"""The published database's ALIGNN folder format: export and import.

One ``POSCAR_<formula>_<id>.vasp`` per material and ``id_prop.csv`` without header, each row
the file name then the spectrum values.
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

from optabs.dataset.table import DATASET_COLUMNS, DROPPED_COLUMNS, UNCHECKED_STABILITY, dropped_row
from optabs.errors import InputError
from optabs.filters import disorder_detail, primitive_cell
from optabs.grid import Grid
from optabs.ids import safe_material_id
from optabs.io import atomic_directory
from optabs.spectra import onset_energies

log = logging.getLogger(__name__)


def poscar_name(formula: str, material_id: str) -> str:
    """The published database's file name of one material: ``POSCAR_<formula>_<id>.vasp``."""
    return f"POSCAR_{formula}_{material_id}.vasp"


def export_alignn(dataset: pd.DataFrame, folder: str | Path, decimals: int = 6) -> Path:
    """Write ``dataset`` as an ALIGNN folder (POSCARs + ``id_prop.csv``); returns the folder.

    The folder is written beside its final place and renamed into it, so a crash leaves no
    half-written export.
    """
    folder = Path(folder)
    fmt = f"{{:.{decimals}f}}"
    with atomic_directory(folder) as tmp, open(tmp / "id_prop.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        for row in dataset.itertuples(index=False):
            name = row.source_name if _is_poscar_name(row.source_name) else poscar_name(row.formula, row.material_id)
            Structure.from_str(row.structure, fmt="json").to(filename=str(tmp / name), fmt="poscar")
            writer.writerow([name, *(fmt.format(v) for v in row.log10_alpha)])
    return folder


def _is_poscar_name(name: str) -> bool:
    return isinstance(name, str) and name.startswith("POSCAR_") and name.endswith(".vasp") and "/" not in name


@dataclass
class ImportResult:
    """What :func:`import_alignn` read: the dataset, the dropped rows and the count of id_prop.csv rows."""

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
    values, unreadable POSCARs, missing files, duplicate ids and disordered structures (reason
    ``disordered``) are reported by name in the ``dropped`` table (and the log) and the rest goes
    on. Structures are stored as :func:`optabs.filters.primitive_cell` gives them, the cell every
    other path computes and predicts. Raises :class:`InputError` if the
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
            dropped.append(dropped_row(name, "", "bad_name", f"id_prop.csv line {lineno}: {exc}"))
            continue
        n_values = len(fields) - 1
        if n_values != grid.n_points:
            dropped.append(
                dropped_row(material_id, "", "wrong_length",
                            f"id_prop.csv line {lineno} ({name}): {n_values} values, grid has {grid.n_points}")
            )
            continue
        try:
            values = np.array(fields[1:], dtype=float)
        except ValueError:
            dropped.append(dropped_row(material_id, "", "bad_values", f"id_prop.csv line {lineno} ({name}): non-numeric value"))
            continue
        if not np.all(np.isfinite(values)):
            dropped.append(dropped_row(material_id, "", "bad_values", f"id_prop.csv line {lineno} ({name}): NaN or inf"))
            continue
        if material_id in seen:
            dropped.append(dropped_row(material_id, "", "duplicate_id", f"{name}: id already used by {seen[material_id]}"))
            continue
        path = folder / name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(path.read_text(), fmt="poscar")
            if len(structure) == 0:
                raise ValueError("no atoms")
        except Exception as exc:  # any parse failure: report by name, go on
            dropped.append(dropped_row(material_id, "", "unreadable_structure", f"{path}: {exc}"))
            continue
        disorder = disorder_detail(structure)
        if disorder:
            dropped.append(dropped_row(material_id, structure.composition.reduced_formula, "disordered", f"{path}: {disorder}"))
            continue
        structure = primitive_cell(structure)
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
                **UNCHECKED_STABILITY,
                "engine": "imported",
            }
        )
    for d in dropped:
        log.warning("dropped %s: %s", d["material_id"], d["detail"])
    if not rows:
        raise InputError(f"dataset folder {folder}: no usable rows in {id_prop} ({len(dropped)} dropped; see the log)")
    dataset = pd.DataFrame(rows)
    dataset["onset_ev"] = onset_energies(
        grid.energy_ev, np.atleast_2d(np.stack(dataset["log10_alpha"].to_numpy())), grid.onset_threshold
    )
    dataset["log10_alpha"] = [list(map(float, v)) for v in dataset["log10_alpha"]]
    return ImportResult(dataset[DATASET_COLUMNS], pd.DataFrame(dropped, columns=DROPPED_COLUMNS), n_rows=len(lines))
