"""The published chemistry criteria, one test per criterion and its reason."""

import pytest
from pymatgen.core import Lattice, Structure

from optabs.filters import FilterSettings, apply_filter, rejection_reasons
from optabs.structures import Candidate


def rocksalt(cation: str, anion: str = "O", a: float = 4.5) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def criteria(reasons: list[str]) -> list[str]:
    return [r.split(":")[0] for r in reasons]


def test_plain_oxide_is_kept():
    assert rejection_reasons(rocksalt("Mg", a=4.212)) == []


@pytest.mark.parametrize("anion", ["O", "S", "Se"])
def test_each_required_anion_suffices(anion):
    assert rejection_reasons(rocksalt("Ca", anion, a=5.5)) == []


def test_no_oxygen_sulfur_selenium_is_rejected():
    # ZnTe: a telluride, none of O, S, Se
    znte = Structure.from_spacegroup("F-43m", Lattice.cubic(6.10), ["Zn", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    reasons = rejection_reasons(znte)
    assert criteria(reasons) == ["no_required_element"]
    assert "O, S, Se" in reasons[0]


@pytest.mark.parametrize(
    "element, why",
    [
        ("Ni", "Mn-Ni"),
        ("Mn", "Mn-Ni"),
        ("Ru", "Tc-Rh"),
        ("Os", "Os-Ir"),
        ("Ir", "Os-Ir"),
        ("Nd", "lanthanide other than La/Ce"),
        ("Lu", "lanthanide other than La/Ce"),
        ("U", "actinide"),
        ("Th", "actinide"),
        ("Po", "polonium"),
    ],
)
def test_excluded_metals(element, why):
    reasons = rejection_reasons(rocksalt(element))
    assert criteria(reasons) == ["excluded_element"], why
    assert element in reasons[0]


@pytest.mark.parametrize("element", ["La", "Ce"])
def test_lanthanum_and_cerium_are_allowed(element):
    assert rejection_reasons(rocksalt(element, a=5.1)) == []


@pytest.mark.parametrize("element", ["H", "F", "Cl", "Br", "I", "Xe", "Ar"])
def test_hydrogen_halogens_noble_gases_rejected(element):
    # an oxide that also contains the element: MgO with one O replaced (Cl) or an extra site (H)
    s = Structure(Lattice.cubic(4.2), ["Mg", "O", element], [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]])
    reasons = rejection_reasons(s)
    assert "excluded_element" in criteria(reasons)
    assert element in next(r for r in reasons if r.startswith("excluded_element"))


def test_several_failures_give_one_reason_each():
    # NdCl, magnetic: no O/S/Se, two excluded elements (one reason listing both), spin-polarized
    s = rocksalt("Nd", "Cl", a=5.6)
    reasons = rejection_reasons(s, magnetization=3.0)
    assert criteria(reasons) == ["no_required_element", "excluded_element", "spin_polarized"]
    assert "Cl" in reasons[1] and "Nd" in reasons[1]


@pytest.mark.parametrize(
    "magnetization, rejected",
    [("AFM", True), ("FM", True), ("FiM", True), ("NM", False), (2.0, True), (-1.0, True), (0.01, False), (None, False)],
)
def test_spin_polarization(magnetization, rejected):
    reasons = rejection_reasons(rocksalt("Mg"), magnetization=magnetization)
    assert ("spin_polarized" in criteria(reasons)) is rejected


def test_spin_criterion_can_be_switched_off():
    settings = FilterSettings(exclude_spin_polarized=False)
    assert rejection_reasons(rocksalt("Mg"), "AFM", settings) == []


def test_p1_is_rejected():
    # a triclinic cell with three inequivalent atoms at general positions: space group P1
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 81, 97, 103)
    s = Structure(lattice, ["Mg", "O", "S"], [[0.0, 0.0, 0.0], [0.31, 0.17, 0.43], [0.62, 0.71, 0.08]])
    assert criteria(rejection_reasons(s)) == ["space_group_p1"]
    assert rejection_reasons(s, settings=FilterSettings(exclude_p1=False)) == []


def test_too_many_sites_counts_the_primitive_cell():
    # a 3x3x2 supercell of rock-salt MgO has 36 atoms but its primitive cell has 2: kept
    supercell = rocksalt("Mg", a=4.212) * (3, 3, 2)
    assert len(supercell) == 8 * 18
    assert rejection_reasons(supercell) == []
    # a large cell that is really large: rattle the supercell so no symmetry reduces it
    import numpy as np

    rng = np.random.default_rng(0)
    big = Structure(
        supercell.lattice, supercell.species, supercell.cart_coords + rng.normal(0, 0.05, (len(supercell), 3)),
        coords_are_cartesian=True,
    )
    reasons = rejection_reasons(big, settings=FilterSettings(exclude_p1=False))
    assert criteria(reasons) == ["too_many_sites"]
    assert "144 atoms" in reasons[0] and "> 40" in reasons[0]


def test_max_sites_threshold_from_settings():
    al2o3 = Structure.from_spacegroup(
        "R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"], [[0, 0, 0.35216], [0.30624, 0, 0.25]]
    )
    assert rejection_reasons(al2o3) == []  # 10 atoms in the primitive cell
    reasons = rejection_reasons(al2o3, settings=FilterSettings(max_sites=5))
    assert criteria(reasons) == ["too_many_sites"] and "10 atoms" in reasons[0]


def test_settings_from_config_section():
    s = FilterSettings.from_config("filter", {"required_elements": ["S"], "max_sites": 8})
    assert s.required_elements == ("S",) and s.max_sites == 8
    assert criteria(rejection_reasons(rocksalt("Mg", "O"), settings=s)) == ["no_required_element"]


def test_apply_filter_splits_and_reduces_to_primitive():
    conventional = rocksalt("Mg", a=4.212)
    assert len(conventional) == 8
    cands = [
        Candidate("mgo", conventional, source="test"),
        Candidate("nio", rocksalt("Ni", a=4.18), source="test", magnetic_ordering="AFM"),
    ]
    out = apply_filter(cands)
    assert [c.material_id for c in out.kept] == ["mgo"]
    assert len(out.kept[0].structure) == 2
    assert sorted(r["criterion"] for r in out.rejected) == ["excluded_element", "spin_polarized"]
    assert all(r["material_id"] == "nio" for r in out.rejected)


@pytest.mark.parametrize(
    "site, shown",
    [({"Mg": 0.5, "Ca": 0.5}, "Ca:0.5"), ({"Mg": 0.9}, "Mg:0.9")],  # a mixed site; a site with vacancies
)
def test_a_disordered_structure_is_rejected_as_disordered_alone(site, shown):
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.4), [site, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    reasons = rejection_reasons(s)
    assert criteria(reasons) == ["disordered"]
    assert "4 of 8 sites" in reasons[0] and shown in reasons[0] and "ordered structure" in reasons[0]
    # the same crystal, ordered, is kept
    assert rejection_reasons(rocksalt("Mg", a=4.4)) == []


def test_primitive_cell_is_the_same_for_every_cell_of_a_crystal_and_matches_pymatgen():
    import numpy as np
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from optabs.filters import primitive_cell

    rutile = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                       [[0, 0, 0], [0.305, 0.305, 0]])
    supercell = rutile * (1, 1, 2) * (2, 1, 1)
    order = np.random.default_rng(3).permutation(len(supercell))
    variants = [rutile, supercell, Structure.from_sites([supercell[int(i)] for i in order]),
                rocksalt("Mg", a=4.212)]
    cells = [primitive_cell(v) for v in variants]
    assert [len(c) for c in cells] == [6, 6, 6, 2]
    for c in cells[1:3]:
        assert np.allclose(c.lattice.abc, cells[0].lattice.abc) and c.composition == cells[0].composition
        assert np.isclose(c.volume, rutile.volume)
    assert np.isclose(cells[3].volume, 4.212**3 / 4)
    # what pymatgen's SpacegroupAnalyzer.find_primitive gives (from two spglib calls instead of one)
    reference = SpacegroupAnalyzer(supercell, symprec=0.01).find_primitive()
    assert np.allclose(cells[1].lattice.matrix, reference.lattice.matrix)
    assert np.allclose(cells[1].frac_coords, reference.frac_coords)
