"""The ``files`` source: a folder of CIF/POSCAR files, material ids from the file names."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from pymatgen.core import Structure

from optabs.errors import InputError
from optabs.ids import safe_material_id
from optabs.structures import Candidate

log = logging.getLogger(__name__)

STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
STRUCTURE_PREFIXES = ("POSCAR", "CONTCAR")


def is_structure_file(path: Path) -> bool:
    """Whether ``path`` is a file named like a CIF or POSCAR (by suffix or prefix)."""
    return path.is_file() and (
        path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.upper().startswith(STRUCTURE_PREFIXES)
    )


def material_id_from_filename(path: Path) -> str:
    """``POSCAR_Ba3Si2(B3O8)2_mp-1019526.vasp`` -> ``Ba3Si2_B3O8_2_mp-1019526``; ``MgO.cif`` -> ``MgO``."""
    stem = path.name
    if path.suffix.lower() in STRUCTURE_SUFFIXES:
        stem = path.stem
    for prefix in STRUCTURE_PREFIXES:
        if stem.upper().startswith(prefix) and len(stem) > len(prefix) + 1:
            stem = stem[len(prefix) + 1 :]
            break
    return safe_material_id(stem)


def read_structure(path: Path) -> Structure:
    """Read one CIF or POSCAR; any parse failure becomes an :class:`InputError` naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix.lower() == ".cif":
                structure = Structure.from_file(path)
            else:
                structure = Structure.from_str(path.read_text(), fmt="poscar")
    except Exception as exc:
        raise InputError(f"cannot read structure file {path}: {exc}") from exc
    if len(structure) == 0:
        raise InputError(f"structure file {path} holds no atoms")
    return structure


def load_folder(folder: str | Path) -> tuple[list[Candidate], list[dict[str, str]]]:
    """Read every CIF/POSCAR file in ``folder`` (not recursive).

    Returns the candidates and one problem row per unreadable file or duplicate id
    (``material_id, formula, source_ref, criterion, detail``): a bad file is reported by name
    and the others go on. A missing or empty folder raises :class:`InputError`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"structure folder {folder} does not exist: set 'structures_dir' in the config")
    files = sorted(p for p in folder.iterdir() if is_structure_file(p))
    if not files:
        raise InputError(
            f"structure folder {folder} holds no CIF/POSCAR files (*.cif, *.vasp, *.poscar, POSCAR*, CONTCAR*)"
        )
    candidates: list[Candidate] = []
    problems: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for path in files:
        try:
            material_id = material_id_from_filename(path)
            structure = read_structure(path)
        except InputError as exc:
            log.warning("%s", exc)
            problems.append(_problem(path.stem, path.name, "unreadable", str(exc)))
            continue
        if material_id in seen:
            detail = f"material id {material_id} already taken by {seen[material_id]}"
            log.warning("%s: %s", path.name, detail)
            problems.append(_problem(material_id, path.name, "duplicate_id", detail))
            continue
        seen[material_id] = path.name
        candidates.append(Candidate(material_id, structure, source="files", source_ref=path.name))
    return candidates, problems


def _problem(material_id: str, source_ref: str, criterion: str, detail: str) -> dict[str, str]:
    return {"material_id": material_id, "formula": "", "source_ref": source_ref, "criterion": criterion, "detail": detail}
