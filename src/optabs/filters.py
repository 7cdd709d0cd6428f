"""The published chemistry criteria (Tokyo 2025-26 study, step 1 of its screening).

A material is kept when it contains at least one of O, S, Se; none of H, the halogens, the
noble gases, Mn-Ni, Tc-Rh, Os-Ir, Po, lanthanides other than La and Ce, actinides; is not
spin-polarized; is not in space group P1; and has at most 40 atoms in its primitive cell.
Before these, a structure must be ordered (one element per site, every site fully occupied):
no DFT engine computes a partially occupied site and no crystal graph represents one, so a
disordered structure (e.g. Mg0.5Ca0.5O from a CIF with occupancies) is rejected with the
criterion ``disordered`` alone.

:func:`rejection_reasons` returns one reason per failed criterion (an empty list means kept),
each as ``"<criterion>: <detail>"`` with ``criterion`` one of :data:`CRITERIA`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import spglib
from pymatgen.core import Element, Structure

from optabs.config import Settings
from optabs.errors import ConfigError

HALOGENS = ("F", "Cl", "Br", "I", "At", "Ts")
NOBLE_GASES = ("He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og")
TRANSITION_METALS_EXCLUDED = ("Mn", "Fe", "Co", "Ni", "Tc", "Ru", "Rh", "Os", "Ir")
LANTHANIDES_EXCLUDED = tuple(Element.from_Z(z).symbol for z in range(59, 72))  # Pr..Lu; La (57), Ce (58) allowed
ACTINIDES = tuple(Element.from_Z(z).symbol for z in range(89, 104))  # Ac..Lr

#: The published exclusion list, in the order of the criteria above.
DEFAULT_EXCLUDED = ("H", *HALOGENS, *NOBLE_GASES, *TRANSITION_METALS_EXCLUDED, "Po", *LANTHANIDES_EXCLUDED, *ACTINIDES)

CRITERIA = ("disordered", "no_required_element", "excluded_element", "spin_polarized", "space_group_p1", "too_many_sites")

#: Magnetic orderings that mean "not spin-polarized" (Materials Project's ``ordering`` field).
NONMAGNETIC_ORDERINGS = ("NM", "")


@dataclass(frozen=True)
class FilterSettings(Settings):
    """Thresholds of the chemistry filter; defaults are the published ones.

    ``magnetization_tol`` is in Bohr magnetons per cell: a total magnetization above it counts
    as spin-polarized when the source gives no ordering. ``symprec`` (angstrom) is used both to
    find the space group and to reduce the cell to its primitive form.
    """

    required_elements: tuple[str, ...] = ("O", "S", "Se")
    excluded_elements: tuple[str, ...] = DEFAULT_EXCLUDED
    max_sites: int = 40
    exclude_p1: bool = True
    exclude_spin_polarized: bool = True
    magnetization_tol: float = 0.05
    symprec: float = 0.01

    NAME = "filter"

    def __post_init__(self) -> None:
        # Config files give lists; keep tuples so the settings are hashable and comparable.
        for key in ("required_elements", "excluded_elements"):
            value = getattr(self, key)
            if isinstance(value, str):
                raise ConfigError(f"filter setting '{key}' must be a list of element symbols, not the string {value!r}")
            object.__setattr__(self, key, tuple(value))


def primitive_cell(structure: Structure, symprec: float = 0.01) -> Structure:
    """The primitive cell of ``structure``: spglib's primitive (symprec in Å), Niggli-reduced.

    The one standardisation of the project: the structures stage (every source), the dataset
    import and ``predict`` all pass structures through it, so a crystal given as its primitive
    cell, a conventional cell, a supercell or with its sites in another order reaches DFT and the
    model as the same cell. The result is what pymatgen's ``SpacegroupAnalyzer.find_primitive``
    gives, from one spglib call instead of two. Falls back to ``structure`` itself where spglib
    finds no primitive (degenerate cells) or where the structure is disordered.
    """
    if not structure.is_ordered:
        return structure
    kinds: dict = {}
    numbers = [kinds.setdefault(site.species, len(kinds) + 1) for site in structure]
    species = {number: next(iter(sp)) for sp, number in kinds.items()}
    try:
        cell = (structure.lattice.matrix.tolist(), structure.frac_coords.tolist(), numbers)
        found = spglib.find_primitive(cell, symprec=symprec)
    except Exception:  # spglib refuses some degenerate cells
        found = None
    if found is None or len(found[2]) > len(structure):
        return structure
    lattice, positions, prim_numbers = found
    return Structure(lattice, [species[int(n)] for n in prim_numbers], positions, to_unit_cell=True).get_reduced_structure()


def disorder_detail(structure: Structure, show: int = 3) -> str:
    """What makes ``structure`` disordered (partial occupancy, mixed or vacant sites), or ``""``
    if every site holds exactly one element with occupancy 1."""
    bad = [(i, site) for i, site in enumerate(structure) if not site.is_ordered]
    if not bad:
        return ""
    shown = "; ".join(
        f"site {i}: " + " ".join(f"{sp}:{occ:g}" for sp, occ in site.species.items()) for i, site in bad[:show]
    )
    more = f" and {len(bad) - show} more" if len(bad) > show else ""
    return (
        f"{len(bad)} of {len(structure)} sites partially occupied or mixed ({shown}{more}); no DFT engine or "
        "crystal graph represents such a site: give an ordered structure (e.g. a supercell with the "
        "occupancies resolved)"
    )


def space_group_number(structure: Structure, symprec: float = 0.01) -> int:
    """International space-group number found with tolerance ``symprec`` (angstrom)."""
    # Imported here: pymatgen.symmetry pulls in scipy.cluster and scipy.spatial (~0.25 s), and the
    # Snakefile's settings check imports this module on every snakemake start.
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:
        return 1


def is_spin_polarized(magnetization: float | str | None, tol: float) -> bool | None:
    """True/False from a magnetic ordering (``"NM"``, ``"FM"``, ...) or a total magnetization
    (Bohr magnetons per cell); None when the source says nothing."""
    if magnetization is None:
        return None
    if isinstance(magnetization, str):
        return magnetization.strip().upper() not in NONMAGNETIC_ORDERINGS
    if isinstance(magnetization, float) and math.isnan(magnetization):
        return None
    return abs(float(magnetization)) > tol


def rejection_reasons(
    structure: Structure,
    magnetization: float | str | None = None,
    settings: FilterSettings | None = None,
) -> list[str]:
    """Every published criterion ``structure`` fails, one reason each; ``[]`` means kept.

    ``magnetization`` is the source's magnetic data: an ordering string (``"NM"``, ``"FM"``,
    ``"AFM"``, ``"FiM"``) or a total magnetization in Bohr magnetons per cell; ``None`` when
    unknown (the spin criterion is then not applied).
    """
    s = settings or FilterSettings()
    disorder = disorder_detail(structure)
    if disorder:
        return [f"disordered: {disorder}"]
    elements = {el.symbol for el in structure.composition.elements}
    reasons = []
    if not elements & set(s.required_elements):
        reasons.append(f"no_required_element: none of {', '.join(s.required_elements)}")
    excluded = [el for el in s.excluded_elements if el in elements]
    if excluded:
        reasons.append(f"excluded_element: {', '.join(excluded)}")
    if s.exclude_spin_polarized and magnetization is not None and is_spin_polarized(magnetization, s.magnetization_tol):
        reasons.append(f"spin_polarized: {_describe_magnetization(magnetization)}")
    if s.exclude_p1 and space_group_number(structure, s.symprec) == 1:
        reasons.append("space_group_p1: no symmetry beyond P1")
    n_prim = len(primitive_cell(structure, s.symprec))
    if n_prim > s.max_sites:
        reasons.append(f"too_many_sites: {n_prim} atoms in the primitive cell > {s.max_sites}")
    return reasons


def _describe_magnetization(m: float | str) -> str:
    if isinstance(m, str):
        return f"magnetic ordering {m}"
    return f"total magnetization {float(m):.3g} Bohr magnetons per cell"


@dataclass
class FilterOutcome:
    """Kept candidates and the rejected table rows (one per failed criterion)."""

    kept: list = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def apply_filter(candidates: list, settings: FilterSettings | None = None) -> FilterOutcome:
    """Split candidates (``optabs.structures.Candidate``) into kept and rejected.

    Kept structures are reduced to their primitive cell (what the DFT stage computes).
    Rejected rows: ``material_id, formula, source_ref, criterion, detail``.
    """
    s = settings or FilterSettings()
    out = FilterOutcome()
    for c in candidates:
        reasons = rejection_reasons(c.structure, c.magnetic_data, s)
        if not reasons:
            c.structure = primitive_cell(c.structure, s.symprec)
            out.kept.append(c)
            continue
        for reason in reasons:
            criterion, _, detail = reason.partition(": ")
            out.rejected.append(
                {
                    "material_id": c.material_id,
                    "formula": c.formula,
                    "source_ref": c.source_ref,
                    "criterion": criterion,
                    "detail": detail,
                }
            )
    return out
