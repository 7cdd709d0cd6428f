"""The embedded structure catalog: small real crystals written from published crystallographic data.

A catalog is a YAML file with one top-level key, ``entries``, a list of mappings::

    entries:
      - material_id: mp-1265
        formula: MgO
        spacegroup: Fm-3m          # Hermann-Mauguin symbol pymatgen accepts
        spacegroup_number: 225     # must agree with the symbol
        lattice: {a: 4.2117, b: 4.2117, c: 4.2117, alpha: 90, beta: 90, gamma: 90}   # Angstrom, degrees
        sites:                     # one representative per Wyckoff orbit, fractional coordinates
          - {species: Mg, coords: [0, 0, 0]}
          - {species: O, coords: [1/2, 1/2, 1/2]}
        source: "MP mp-1265; Hazen, Am. Mineral. 61, 266 (1976)"
        magnetic_ordering: NM      # optional: NM | FM | AFM | FiM
        note: free text            # optional

Coordinates may be numbers or exact fractions written as ``p/q`` (so that 1/3 stays on the
three-fold axis). Each entry is expanded with :meth:`pymatgen.core.Structure.from_spacegroup`
and reduced to its primitive cell.
"""

from __future__ import annotations

import functools
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup

from optabs.errors import InputError
from optabs.ids import check_material_id
from optabs.structures import Candidate, check_unique_ids

#: Closest two atoms may come in a catalog structure (Angstrom); closer means wrong Wyckoff data.
MIN_INTERATOMIC_DISTANCE = 0.5

REQUIRED_KEYS = ("material_id", "formula", "spacegroup", "spacegroup_number", "lattice", "sites", "source")
LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")
MAGNETIC_ORDERINGS = ("NM", "FM", "AFM", "FiM")


def load_catalog(path: str | os.PathLike) -> list[Candidate]:
    """Read a structure catalog (format in the module docstring) into primitive-cell candidates.

    Raises :class:`InputError` naming the file, the entry and what is wrong.
    """
    path = Path(path)
    entries = _read_entries(path)
    candidates = [_entry_to_candidate(entry, index, path) for index, entry in enumerate(entries)]
    try:
        check_unique_ids(candidates)
    except InputError as err:
        raise InputError(f"catalog {path}: {err}") from None
    return candidates


def catalog_ids(path: str | os.PathLike) -> list[str]:
    """The material ids of a catalog, read without building any structure (fast enough for the
    start-up checks, before any job runs).

    Raises :class:`InputError` naming the file for a missing, unreadable or empty catalog and
    naming every duplicated id with the entries that use it.
    """
    path = Path(path)
    entries = _read_entries(path)
    where: dict[str, list[int]] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("material_id") is not None:
            where.setdefault(str(entry["material_id"]), []).append(index)
    dups = {k: v for k, v in where.items() if len(v) > 1}
    if dups:
        lines = "; ".join(f"{k!r} in entries {', '.join(map(str, v))}" for k, v in sorted(dups.items()))
        raise InputError(f"catalog {path}: duplicate material_id {lines}. Every material needs its own id.")
    return list(where)


def _read_entries(path: Path) -> list[Any]:
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read catalog {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"catalog {path} is not valid YAML: {err}") from None
    if data is None or (isinstance(data, dict) and not data.get("entries")):
        raise InputError(f"catalog {path} has no entries")
    if not isinstance(data, dict) or not isinstance(data["entries"], list):
        raise InputError(f"catalog {path} must be a mapping with a list under 'entries'")
    return data["entries"]


def _entry_to_candidate(entry: Any, index: int, path: Path) -> Candidate:
    where = _describe(entry, index, path)
    if not isinstance(entry, dict):
        raise InputError(f"{where}: an entry must be a mapping, got {type(entry).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}")

    material_id = entry["material_id"]
    try:
        check_material_id(material_id)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None

    spacegroup = _spacegroup(entry, where)
    lattice = _lattice(entry["lattice"], where)
    species, coords = _sites(entry["sites"], where)
    try:
        conventional = Structure.from_spacegroup(str(entry["spacegroup"]), lattice, species, coords)
    except ValueError as err:
        raise InputError(f"{where}: cannot expand the sites in {entry['spacegroup']}: {err}") from None
    _check_distances(conventional, where)
    structure = conventional.get_primitive_structure()

    formula = str(entry["formula"])
    if structure.composition.reduced_formula != _reduced(formula, where):
        raise InputError(
            f"{where}: the sites give {structure.composition.reduced_formula}, not {formula}; "
            "check the Wyckoff positions"
        )

    ordering = entry.get("magnetic_ordering")
    if ordering is not None and ordering not in MAGNETIC_ORDERINGS:
        raise InputError(
            f"{where}: magnetic_ordering {ordering!r} is not one of {', '.join(MAGNETIC_ORDERINGS)}"
        )
    source = str(entry["source"])
    return Candidate(
        material_id=material_id,
        structure=structure,
        source="catalog",
        source_ref=source,
        magnetic_ordering=ordering,
        properties={
            "spacegroup": str(entry["spacegroup"]),
            "spacegroup_number": spacegroup.int_number,
            "reference": source,
        },
    )


def _describe(entry: Any, index: int, path: Path) -> str:
    material_id = entry.get("material_id") if isinstance(entry, dict) else None
    name = f" ({material_id})" if material_id else ""
    return f"catalog {path}, entry {index}{name}"


@functools.cache
def _cached_spacegroup(symbol: str) -> SpaceGroup:
    # pymatgen caches SpaceGroup instances only weakly, and building Fm-3m takes ~0.4 s; holding
    # them here lets Structure.from_spacegroup reuse them (a catalog repeats a few groups).
    return SpaceGroup(symbol)


def _spacegroup(entry: dict, where: str) -> SpaceGroup:
    symbol = entry["spacegroup"]
    try:
        spacegroup = _cached_spacegroup(str(symbol))
    except ValueError:
        raise InputError(f"{where}: unknown space group symbol {symbol!r}") from None
    number = entry["spacegroup_number"]
    if number != spacegroup.int_number:
        raise InputError(
            f"{where}: space group {symbol} is number {spacegroup.int_number}, but spacegroup_number says {number!r}"
        )
    return spacegroup


def _lattice(value: Any, where: str) -> Lattice:
    if not isinstance(value, dict):
        raise InputError(f"{where}: lattice must be a mapping with keys {', '.join(LATTICE_KEYS)}")
    missing = [key for key in LATTICE_KEYS if key not in value]
    if missing:
        raise InputError(f"{where}: lattice is missing {', '.join(missing)}")
    params = [_number(value[key], f"{where}: lattice {key}") for key in LATTICE_KEYS]
    if min(params[:3]) <= 0 or not all(0 < angle < 180 for angle in params[3:]):
        raise InputError(f"{where}: lattice parameters {params} are not a valid cell (lengths > 0, angles in (0, 180))")
    return Lattice.from_parameters(*params)


def _sites(value: Any, where: str) -> tuple[list[str], list[list[float]]]:
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: sites must be a non-empty list of {{species, coords}}")
    species, coords = [], []
    for i, site in enumerate(value):
        at = f"{where}, site {i}"
        if not isinstance(site, dict) or "species" not in site or "coords" not in site:
            raise InputError(f"{at}: a site needs 'species' and 'coords'")
        symbol = site["species"]
        if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
            raise InputError(f"{at}: unknown species {symbol!r} (use an element symbol such as 'Zn')")
        xyz = site["coords"]
        if not isinstance(xyz, list) or len(xyz) != 3:
            raise InputError(f"{at}: coords must be 3 numbers (fractional), got {xyz!r}")
        species.append(symbol)
        coords.append([_number(x, f"{at}: coords") for x in xyz])
    return species, coords


def _number(value: Any, what: str) -> float:
    """A float from a YAML number or an exact fraction string such as ``'1/3'``."""
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError):
            raise InputError(f"{what}: expected a number or a fraction like 1/3, got {value!r}") from None
    else:
        raise InputError(f"{what}: expected a number, got {value!r}")
    if not np.isfinite(number):
        raise InputError(f"{what}: expected a finite number, got {value!r}")
    return number


def _check_distances(structure: Structure, where: str) -> None:
    if len(structure) < 2:
        return
    distances = structure.distance_matrix + np.eye(len(structure)) * 1e9
    i, j = np.unravel_index(np.argmin(distances), distances.shape)
    if distances[i, j] < MIN_INTERATOMIC_DISTANCE:
        raise InputError(
            f"{where}: atoms {structure[i].species_string} and {structure[j].species_string} are "
            f"{distances[i, j]:.3f} Å apart after expanding the space group (< {MIN_INTERATOMIC_DISTANCE} Å): "
            "check the Wyckoff coordinates and the space group setting"
        )


def _reduced(formula: str, where: str) -> str:
    try:
        return Composition(formula).reduced_formula
    except (ValueError, KeyError):
        raise InputError(f"{where}: formula {formula!r} is not a chemical formula") from None
