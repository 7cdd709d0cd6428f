"""optabs.chemistry: cation environments (CrystalNN), per-material labels, per-cluster tables."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from optabs.chemistry import (
    CATION_COLUMNS,
    MATERIAL_ENV_COLUMNS,
    cation_environments,
    dominant_environment,
    element_sets,
    majority_environment,
    material_environments,
    oxidation_states,
)
from optabs.grid import Grid
from optabs.interpret import ClusterChemistry, cluster_chemistry
from optabs.spectra import onset_energies


def rock_salt_mgo() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def alpha_quartz() -> Structure:
    """alpha-SiO2, P3_221, a = 4.916, c = 5.4054 A: corner-sharing SiO4 tetrahedra (Si-O 1.61 A).

    L. Levien, C. T. Prewitt, D. J. Weidner, Am. Mineral. 65, 920 (1980), 1 atm (AMCSD 0000789):
    Si (0.4697, 0, 0), O (0.4135, 0.2669, 0.1191); their origin is shifted by z = 2/3 from the
    International Tables setting that pymatgen uses (Si on the 2-fold axis at z = 2/3).
    """
    return Structure.from_spacegroup(
        154, Lattice.hexagonal(4.916, 5.4054), ["Si", "O"], [[0.4697, 0.0, 2 / 3], [0.4135, 0.2669, 0.1191 + 2 / 3]]
    )


def barite() -> Structure:
    """BaSO4 (barite), Pnma: isolated SO4 tetrahedra (S-O 1.44-1.52 A) between Ba."""
    return Structure.from_spacegroup(
        "Pnma", Lattice.orthorhombic(8.8842, 5.4559, 7.1569), ["Ba", "S", "O", "O", "O"],
        [[0.1844, 0.25, 0.1581], [0.0622, 0.25, 0.6912], [-0.0821, 0.25, 0.5996], [0.1837, 0.25, 0.5425],
         [0.0811, 0.0312, 0.8093]],
    )


def spinel(primitive: bool = True) -> Structure:
    """Normal spinel MgAl2O4, Fd-3m (origin choice 2): Mg on 8a (tetrahedral), Al on 16d (octahedral).

    F. Nestola et al., Am. Mineral. 92, 1838 (2007), ordered Sri Lanka crystal at 1 bar (AMCSD
    0004465): a = 8.0961 A, O on 32e at x = 0.263 (its 15 % Mg/Al inversion left out). The
    primitive cell holds 2 Mg, 4 Al and 8 O.
    """
    conventional = Structure.from_spacegroup(
        "Fd-3m:2", Lattice.cubic(8.0961), ["Mg", "Al", "O"], [[1 / 8] * 3, [1 / 2] * 3, [0.263] * 3]
    )
    return conventional.get_primitive_structure() if primitive else conventional


def forsterite() -> Structure:
    """Forsterite Mg2SiO4 (olivine), Pbnm: isolated SiO4 tetrahedra, Mg in octahedra (M1, M2).

    K. Fujino, S. Sasaki, Y. Takeuchi, R. Sadanaga, Acta Cryst. B37, 513 (1981) (AMCSD 0019694):
    a = 4.7534, b = 10.1902, c = 5.9783 A; M1 (0, 0, 0), M2 (0.99169, 0.27739, 1/4),
    Si (0.42645, 0.09403, 1/4), O1 (0.76594, 0.09156, 1/4), O2 (0.22164, 0.44705, 1/4),
    O3 (0.27751, 0.16310, 0.03304).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Pbnm" is a non-standard setting of Pnma; pymatgen says so
        return Structure.from_spacegroup(
            "Pbnm", Lattice.orthorhombic(4.7534, 10.1902, 5.9783), ["Mg", "Mg", "Si", "O", "O", "O"],
            [[0, 0, 0], [0.99169, 0.27739, 0.25], [0.42645, 0.09403, 0.25], [0.76594, 0.09156, 0.25],
             [0.22164, 0.44705, 0.25], [0.27751, 0.16310, 0.03304]],
        )


def cubic_perovskite(a_site: str, b_site: str, a: float) -> Structure:
    """Cubic perovskite ABO3, Pm-3m: B on 1a in a BO6 octahedron, A on 1b with 12 O, O on 3d.

    Lattice constants from R. W. G. Wyckoff, Crystal Structures, Vol. 2, 2nd ed. (1964), as in
    resources/catalog.yaml: SrTiO3 3.905 A, BaZrO3 4.193 A.
    """
    return Structure.from_spacegroup(
        "Pm-3m", Lattice.cubic(a), [b_site, a_site, "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0]]
    )


def chromium_trioxide() -> Structure:
    """CrO3, Ama2: infinite chains of corner-sharing CrO4 tetrahedra (2 terminal, 2 bridging O).

    J. S. Stephens, D. W. J. Cruickshank, Acta Cryst. B26, 222 (1970), published in C2cm; here in
    the standard Ama2 setting, as in resources/catalog.yaml (entry CrO3-Ama2): a = 5.743,
    b = 8.557, c = 4.789 A; Cr (1/4, 0.09676, 1/2), O (0, 0, 0.3841), O (1/4, 0.2677, 0.3755),
    O (1/4, 0.6078, 0.3284).
    """
    return Structure.from_spacegroup(
        "Ama2", Lattice.orthorhombic(5.743, 8.557, 4.789), ["Cr", "O", "O", "O"],
        [[0.25, 0.09676, 0.5], [0, 0, 0.3841], [0.25, 0.2677, 0.3755], [0.25, 0.6078, 0.3284]],
    )


def bond_lengths(structure: Structure, element: str, cutoff: float) -> list[float]:
    """Sorted distances (A, 3 decimals) from the first ``element`` site to its neighbours within ``cutoff``."""
    index = next(i for i, site in enumerate(structure) if site.specie.symbol == element)
    return sorted(round(n.nn_distance, 3) for n in structure.get_neighbors(structure[index], cutoff))


def envs_of(structures: dict[str, Structure]) -> pd.DataFrame:
    """:func:`material_environments` of named structures, indexed by name."""
    dataset = pd.DataFrame([
        {"material_id": k, "formula": s.composition.reduced_formula, "structure": s.to_json()}
        for k, s in structures.items()
    ])
    return material_environments(dataset).set_index("material_id")


# ---------------------------------------------------------------- one structure


def test_mgo_is_octahedral_one_row_per_cation_site():
    structure = rock_salt_mgo()
    table = cation_environments(structure)
    assert list(table.columns) == CATION_COLUMNS
    assert len(table) == 4  # four Mg in the conventional cell; the four O are anions, not listed
    assert set(table["element"]) == {"Mg"}
    assert sorted(table["site_index"]) == [i for i, s in enumerate(structure) if s.specie.symbol == "Mg"]
    assert (table["oxidation_state"] == 2).all()
    assert (table["coordination_number"] == 6).all()
    assert (table["octahedral"] > 0.8).all()
    assert (table["tetrahedral"] < 0.2).all()
    assert (table["environment"] == "octahedral").all()


def test_si_in_alpha_quartz_is_tetrahedral():
    structure = alpha_quartz()
    assert structure.get_space_group_info()[1] == 154
    assert bond_lengths(structure, "Si", 2.0) == [1.605, 1.605, 1.614, 1.614]  # the published SiO4
    table = cation_environments(structure)
    assert len(table) == 3 and set(table["element"]) == {"Si"}
    assert (table["coordination_number"] == 4).all()
    assert (table["tetrahedral"] > 0.8).all()
    assert (table["octahedral"] < 0.2).all()
    assert (table["environment"] == "tetrahedral").all()


def test_s_in_a_sulfate_is_a_tetrahedral_cation():
    structure = barite()
    assert structure.composition.reduced_formula == "BaSO4"
    table = cation_environments(structure.to_json())  # JSON in, as stored in the dataset
    assert sorted(table["element"].unique()) == ["Ba", "S"]  # S counts as a cation (S6+), O does not
    assert len(table) == 8
    sulfur = table[table["element"] == "S"]
    assert (sulfur["oxidation_state"] == 6).all()
    assert (sulfur["coordination_number"] == 4).all()
    assert (sulfur["tetrahedral"] > 0.8).all()
    assert (sulfur["environment"] == "tetrahedral").all()
    barium = table[table["element"] == "Ba"]
    assert (barium["coordination_number"] > 6).all() and (barium["environment"] == "other").all()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scores_equal_matminer_crystalnn_fingerprint():
    """Only two order parameters are computed, once per symmetry orbit: same numbers as matminer's featurize."""
    from matminer.featurizers.site import CrystalNNFingerprint

    structure = barite()
    fp = CrystalNNFingerprint.from_preset("ops")
    labels = fp.feature_labels()
    it, io = labels.index("tetrahedral CN_4"), labels.index("octahedral CN_6")
    table = cation_environments(structure)
    every_site = cation_environments(structure, symprec=None)
    pd.testing.assert_frame_equal(table, every_site)
    for row in table.iloc[[0, 4]].itertuples():  # one Ba and one S site
        reference = fp.featurize(structure, row.site_index)
        assert row.tetrahedral == pytest.approx(reference[it], abs=1e-12)
        assert row.octahedral == pytest.approx(reference[io], abs=1e-12)
        weights = {k: reference[labels.index(f"wt CN_{k}")] for k in range(1, 25)}
        assert row.coordination_number == max(weights, key=weights.get)


def test_oxidation_states_fall_back_when_bond_valence_fails(monkeypatch):
    from pymatgen.analysis.bond_valence import BVAnalyzer
    from pymatgen.core import Composition

    assert oxidation_states(rock_salt_mgo())[1] == "bond_valence"
    # a distorted "SiO" cell: no bond-valence solution and Si(2+) is not a common state,
    # so the guess comes from all oxidation states
    odd = Structure.from_spacegroup(154, Lattice.hexagonal(4.916, 5.405), ["Si", "O"], [[0.4697, 0, 0], [0.4135, 0.2669, 0.1191]])
    valences, method = oxidation_states(odd)
    assert method == "oxi_state_guesses_all"
    assert {s.specie.symbol: v for s, v in zip(odd, valences)} == {"Si": 2.0, "O": -2.0}
    assert set(cation_environments(odd)["element"]) == {"Si"}

    def no_valences(self, structure):
        raise ValueError("Valences cannot be assigned!")

    monkeypatch.setattr(BVAnalyzer, "get_valences", no_valences)
    valences, method = oxidation_states(barite())
    assert method == "oxi_state_guesses"
    assert {s.specie.symbol: v for s, v in zip(barite(), valences)} == {"Ba": 2.0, "S": 6.0, "O": -2.0}
    assert sorted(cation_environments(barite())["element"].unique()) == ["Ba", "S"]

    monkeypatch.setattr(Composition, "oxi_state_guesses", lambda self, **kwargs: [])
    valences, method = oxidation_states(barite())
    assert method == "electronegativity"
    assert {s.specie.symbol: v for s, v in zip(barite(), valences)} == {"Ba": 1.0, "S": 1.0, "O": -1.0}


def test_dominant_environment_compares_the_two_scores():
    tet = [0.95, 0.30, 0.20, 0.87, np.nan, 0.0, 0.7]
    octa = [0.10, 0.63, 0.30, 0.97, 0.5, 0.5, 0.7]
    assert dominant_environment(tet, octa).tolist() == [
        "tetrahedral", "octahedral", "other", "octahedral", "unknown", "octahedral", "octahedral"
    ]
    assert dominant_environment([0.49], [0.49], min_score=0.5).tolist() == ["other"]
    assert dominant_environment([0.49], [0.2], min_score=0.4).tolist() == ["tetrahedral"]


# ---------------------------------------------------------------- site labels -> material label


def test_majority_environment_counts_sites_and_breaks_ties_as_documented():
    t, o, x = "tetrahedral", "octahedral", "other"
    # plain majorities: every site counts once, scores do not matter
    assert majority_environment([t, o, o], [1.0, 0.0, 0.0], [0.0, 0.6, 0.6]) == o
    assert majority_environment([t, t, o], [0.6, 0.6, 0.0], [0.0, 0.0, 1.0]) == t
    assert majority_environment([x, x, t], [0.0, 0.0, 1.0], [0.1, 0.1, 0.0]) == x
    # a polyhedral label beats "other" with as many sites
    assert majority_environment([x, o], [0.0, 0.0], [0.0, 1.0]) == o
    assert majority_environment([t, x], [0.9, 0.0], [0.0, 0.0]) == t
    # tetrahedral against octahedral with as many sites: the larger summed score of each label
    assert majority_environment([t, o], [0.9, 0.0], [0.0, 0.8]) == t
    assert majority_environment([t, o], [0.6, 0.0], [0.0, 0.8]) == o
    assert majority_environment([t, t, o, o], [0.9, 0.6, 0.0, 0.0], [0.0, 0.0, 0.7, 0.7]) == t  # 1.5 > 1.4
    assert majority_environment([t, o, x], [0.7, 0.1, 0.0], [0.0, 0.9, 0.1]) == o  # three-way tie
    assert majority_environment([t, o], [0.75, 0.0], [0.0, 0.75]) == o  # equal sums: octahedral
    assert majority_environment([], [], []) == "unknown"


def test_spinel_is_octahedral_with_tetrahedral_mg_and_octahedral_al():
    """MgAl2O4: one third of the cations (Mg) tetrahedral, two thirds (Al) octahedral."""
    structure = spinel()
    assert structure.composition.formula == "Mg2 Al4 O8"
    assert bond_lengths(structure, "Mg", 2.2) == [1.935] * 4  # the published geometry: MgO4 ...
    assert bond_lengths(structure, "Al", 2.2) == [1.925] * 6  # ... and AlO6
    sites = cation_environments(structure)
    mg, al = sites[sites["element"] == "Mg"], sites[sites["element"] == "Al"]
    assert len(mg) == 2 and len(al) == 4
    assert (mg["environment"] == "tetrahedral").all() and (mg["tetrahedral"] > 0.95).all()
    assert (mg["coordination_number"] == 4).all()
    assert (al["environment"] == "octahedral").all() and (al["octahedral"] > 0.75).all()
    assert (al["coordination_number"] == 6).all()

    envs = envs_of({"primitive": structure, "conventional": spinel(primitive=False)})
    row = envs.loc["primitive"]
    assert row["dominant_env"] == "octahedral"
    assert (row["n_tetrahedral_sites"], row["n_octahedral_sites"], row["n_other_sites"]) == (2, 4, 0)
    assert row["motifs"] == ["Al octahedral", "Mg tetrahedral"]
    # the study's number is still the best tetrahedral score, that of Mg, above the best octahedral
    # one: the old max-against-max rule called spinel tetrahedral
    assert row["tetrahedral_max"] > 0.95 and row["tetrahedral_element"] == "Mg"
    assert 0.75 < row["octahedral_max"] < row["tetrahedral_max"] and row["octahedral_element"] == "Al"
    # the conventional cell: four times the sites, the same label
    big = envs.loc["conventional"]
    assert (big["n_tetrahedral_sites"], big["n_octahedral_sites"], big["n_other_sites"]) == (8, 16, 0)
    assert big["dominant_env"] == "octahedral" and big["motifs"] == ["Al octahedral", "Mg tetrahedral"]


def test_forsterite_is_octahedral_with_tetrahedral_si_and_octahedral_mg():
    structure = forsterite()
    assert structure.composition.formula == "Mg8 Si4 O16"
    assert bond_lengths(structure, "Si", 2.0) == [1.614, 1.637, 1.637, 1.655]  # the published SiO4
    sites = cation_environments(structure)
    si, mg = sites[sites["element"] == "Si"], sites[sites["element"] == "Mg"]
    assert len(si) == 4 and len(mg) == 8
    assert (si["environment"] == "tetrahedral").all() and (si["tetrahedral"] > 0.75).all()
    assert (mg["environment"] == "octahedral").all() and (mg["octahedral"] > 0.6).all()
    assert (mg["coordination_number"] == 6).all() and (si["coordination_number"] == 4).all()

    row = envs_of({"forsterite": structure}).loc["forsterite"]
    assert row["dominant_env"] == "octahedral"
    assert (row["n_tetrahedral_sites"], row["n_octahedral_sites"], row["n_other_sites"]) == (4, 8, 0)
    assert row["motifs"] == ["Mg octahedral", "Si tetrahedral"]
    assert row["tetrahedral_element"] == "Si" and row["tetrahedral_max"] > 0.75
    assert row["tetrahedral_max"] > row["octahedral_max"]  # the old rule's "tetrahedral"


def test_quartz_is_tetrahedral_and_rock_salt_mgo_octahedral():
    envs = envs_of({"quartz": alpha_quartz(), "mgo": rock_salt_mgo()})
    quartz, mgo = envs.loc["quartz"], envs.loc["mgo"]
    assert quartz["dominant_env"] == "tetrahedral" and quartz["motifs"] == ["Si tetrahedral"]
    assert (quartz["n_tetrahedral_sites"], quartz["n_octahedral_sites"], quartz["n_other_sites"]) == (3, 0, 0)
    assert mgo["dominant_env"] == "octahedral" and mgo["motifs"] == ["Mg octahedral"]
    assert (mgo["n_tetrahedral_sites"], mgo["n_octahedral_sites"], mgo["n_other_sites"]) == (0, 4, 0)


@pytest.mark.parametrize(("a_site", "b_site", "a"), [("Sr", "Ti", 3.905), ("Ba", "Zr", 4.193)])
def test_perovskite_b_site_is_octahedral_and_the_a_site_other(a_site, b_site, a):
    structure = cubic_perovskite(a_site, b_site, a)
    assert bond_lengths(structure, b_site, a / 2 + 0.01) == pytest.approx([a / 2] * 6, abs=1e-3)  # BO6
    sites = cation_environments(structure).set_index("element")
    assert sites.loc[b_site, "environment"] == "octahedral"
    assert sites.loc[b_site, "coordination_number"] == 6 and sites.loc[b_site, "octahedral"] > 0.95
    assert sites.loc[a_site, "environment"] == "other"
    assert sites.loc[a_site, "coordination_number"] == 12

    row = envs_of({"perovskite": structure}).loc["perovskite"]
    assert row["dominant_env"] == "octahedral"  # one B against one A: octahedral beats "other"
    assert (row["n_tetrahedral_sites"], row["n_octahedral_sites"], row["n_other_sites"]) == (0, 1, 1)
    assert row["motifs"] == sorted([f"{a_site} other", f"{b_site} octahedral"])


def test_cr_in_cro3_is_tetrahedral():
    structure = chromium_trioxide()
    assert structure.composition.reduced_formula == "CrO3" and len(structure) == 16
    # two terminal Cr=O and two bridging Cr-O-Cr bonds (Stephens & Cruickshank: 1.60 and 1.75 A)
    assert bond_lengths(structure, "Cr", 2.0) == [1.576, 1.58, 1.748, 1.748]
    sites = cation_environments(structure)
    assert len(sites) == 4 and set(sites["element"]) == {"Cr"}
    assert (sites["oxidation_state"] == 6).all()
    assert (sites["coordination_number"] == 4).all()
    assert (sites["tetrahedral"] > 0.85).all() and (sites["environment"] == "tetrahedral").all()
    row = envs_of({"cro3": structure}).loc["cro3"]
    assert row["dominant_env"] == "tetrahedral" and row["motifs"] == ["Cr tetrahedral"]


# ---------------------------------------------------------------- a dataset


def small_dataset() -> pd.DataFrame:
    structures = {"mgo": rock_salt_mgo(), "quartz": alpha_quartz(), "barite": barite()}
    rows = [{"material_id": k, "formula": s.composition.reduced_formula, "structure": s.to_json()} for k, s in structures.items()]
    rows.append({"material_id": "broken", "formula": "XO", "structure": "{not json"})
    return pd.DataFrame(rows)


def test_material_environments_labels_and_survives_a_broken_structure(caplog):
    with caplog.at_level(logging.WARNING, logger="optabs.chemistry"):
        envs = material_environments(small_dataset())
    assert list(envs.columns) == MATERIAL_ENV_COLUMNS
    by_id = envs.set_index("material_id")
    assert by_id.loc["mgo", "dominant_env"] == "octahedral" and by_id.loc["mgo", "octahedral_max"] > 0.8
    assert by_id.loc["quartz", "dominant_env"] == "tetrahedral" and by_id.loc["quartz", "tetrahedral_element"] == "Si"
    assert by_id.loc["barite", "dominant_env"] == "tetrahedral" and by_id.loc["barite", "tetrahedral_element"] == "S"
    assert by_id.loc["barite", "cations"] == ["Ba", "S"] and by_id.loc["barite", "anions"] == ["O"]
    assert by_id.loc["barite", "n_cation_sites"] == 8
    # four tetrahedral S against four Ba with more than six O: tetrahedral beats "other"
    barite_counts = by_id.loc["barite", ["n_tetrahedral_sites", "n_octahedral_sites", "n_other_sites"]]
    assert barite_counts.tolist() == [4, 0, 4]
    assert by_id.loc["barite", "motifs"] == ["Ba other", "S tetrahedral"]
    broken = by_id.loc["broken"]
    assert math.isnan(broken["tetrahedral_max"]) and math.isnan(broken["octahedral_max"])
    assert broken["dominant_env"] == "unknown" and broken["error"]
    assert broken["motifs"] == []
    assert (broken["n_tetrahedral_sites"], broken["n_octahedral_sites"], broken["n_other_sites"]) == (0, 0, 0)
    assert "broken" in caplog.text and "not computed" in caplog.text
    assert (by_id.drop(index="broken")["error"] == "").all()


def test_material_environments_in_a_process_pool_gives_the_same_table():
    dataset = small_dataset()
    serial = material_environments(dataset)
    pooled = material_environments(dataset, n_workers=2, chunk_size=1)
    pd.testing.assert_frame_equal(serial, pooled)


@pytest.mark.shared_data
def test_alkali_vanadates_and_chromates_are_tetrahedral(shared_data):
    """The study's group: V/Cr in isolated tetrahedra of real Materials Project structures."""
    names = {"POSCAR_Li3VO4_mp-19219.vasp": "V", "POSCAR_Na3VO4_mp-755436.vasp": "V", "POSCAR_Cs2CrO4_mp-647813.vasp": "Cr"}
    for name, element in names.items():
        table = cation_environments(Structure.from_file(shared_data / name))
        site = table[table["element"] == element]
        assert (site["tetrahedral"] > 0.8).all(), name
        assert (site["coordination_number"] == 4).all(), name
        assert (site["environment"] == "tetrahedral").all(), name


@pytest.mark.shared_data
def test_materials_project_structures_of_the_dataset(shared_data):
    """The same minerals as stored in the dataset (MP relaxed cells), through material_environments."""
    expected = {  # file: (dominant_env, {element: site environment})
        "POSCAR_MgAl2O4_mp-3536.vasp": ("octahedral", {"Mg": "tetrahedral", "Al": "octahedral"}),
        "POSCAR_Mg2SiO4_mp-2895.vasp": ("octahedral", {"Mg": "octahedral", "Si": "tetrahedral"}),
        "POSCAR_MgO_mp-1265.vasp": ("octahedral", {"Mg": "octahedral"}),
        "POSCAR_SiO2_mp-546794.vasp": ("tetrahedral", {"Si": "tetrahedral"}),  # a cristobalite-type SiO2, I-42d
        "POSCAR_BaTiO3_mp-5020.vasp": ("octahedral", {"Ba": "other", "Ti": "octahedral"}),  # cubic perovskite
        "POSCAR_CaTiO3_mp-4019.vasp": ("octahedral", {"Ca": "other", "Ti": "octahedral"}),  # Pnma perovskite
    }
    envs = envs_of({name: Structure.from_file(shared_data / name) for name in expected})
    for name, (dominant, per_element) in expected.items():
        row = envs.loc[name]
        assert row["dominant_env"] == dominant, name
        assert row["motifs"] == sorted(f"{el} {env}" for el, env in per_element.items()), name
    spinel_row = envs.loc["POSCAR_MgAl2O4_mp-3536.vasp"]
    assert (spinel_row["n_tetrahedral_sites"], spinel_row["n_octahedral_sites"]) == (2, 4)
    assert spinel_row["tetrahedral_element"] == "Mg" and spinel_row["tetrahedral_max"] > 0.95
    forsterite_row = envs.loc["POSCAR_Mg2SiO4_mp-2895.vasp"]
    assert (forsterite_row["n_tetrahedral_sites"], forsterite_row["n_octahedral_sites"]) == (4, 8)
    assert forsterite_row["tetrahedral_element"] == "Si" and forsterite_row["tetrahedral_max"] > 0.75


# ---------------------------------------------------------------- cluster tables


def toy_cluster_inputs():
    grid = Grid()
    energy = grid.energy_ev
    onset = np.array([3.0, 3.2, 3.4, 6.0, 6.5, 9.0])
    spectra = np.where(energy[None, :] >= onset[:, None], 4.0, 2.0)
    dataset = pd.DataFrame({
        "material_id": [f"m{i}" for i in range(6)],
        "formula": ["Na3VO4", "K3VO4", "Na2CrO4", "MgO", "Mg2SiO4", "ZnO"],
        "log10_alpha": list(spectra),
        "onset_ev": onset_energies(grid.energy_ev, spectra, grid.onset_threshold),
        "dft_gap_ev": [2.0, 2.5, 2.2, 5.0, 5.5, np.nan],
    })
    envs = pd.DataFrame({
        "material_id": dataset["material_id"], "formula": dataset["formula"], "n_cation_sites": 2,
        "tetrahedral_max": [0.95, 0.97, 0.99, 0.0, 0.9, np.nan],
        "octahedral_max": [0.1, 0.0, 0.0, 1.0, 0.95, np.nan],
        "tetrahedral_element": ["V", "V", "Cr", "", "Si", ""], "octahedral_element": ["Na", "", "", "Mg", "Mg", ""],
        "dominant_env": ["tetrahedral", "tetrahedral", "tetrahedral", "octahedral", "octahedral", "unknown"],
        "n_tetrahedral_sites": [1, 1, 1, 0, 1, 0], "n_octahedral_sites": [1, 0, 0, 1, 2, 0],
        "n_other_sites": [0, 1, 1, 0, 0, 0],
        "motifs": [["Na octahedral", "V tetrahedral"], ["K other", "V tetrahedral"], ["Cr tetrahedral", "Na other"],
                   ["Mg octahedral"], ["Mg octahedral", "Si tetrahedral"], []],
        "cations": [["Na", "V"], ["K", "V"], ["Cr", "Na"], ["Mg"], ["Mg", "Si"], []],
        "anions": [["O"], ["O"], ["O"], ["O"], ["O"], []], "oxidation_method": "bond_valence", "error": "",
    })
    assert list(envs.columns) == MATERIAL_ENV_COLUMNS  # the toy has the real table's columns
    labels = np.array([1, 1, 1, 2, 2, 3])
    return dataset, labels, envs, energy


def test_cluster_chemistry_tables_on_a_toy_set():
    dataset, labels, envs, energy = toy_cluster_inputs()
    chem = cluster_chemistry(dataset, labels, envs)
    assert isinstance(chem, ClusterChemistry)
    assert set(chem.tables()) == {"summary", "enrichment", "ions", "env_counts", "score_hist", "members", "motifs"}

    s = chem.summary.set_index("cluster")
    assert s["size"].tolist() == [3, 2, 1]
    assert s.loc[1, "onset_ev_mean"] == pytest.approx(3.2)
    assert s.loc[1, "onset_ev_min"] == pytest.approx(3.0) and s.loc[1, "onset_ev_max"] == pytest.approx(3.4)
    assert s.loc[2, "dft_gap_ev_min"] == pytest.approx(5.0)
    # a step of 2 decades above the floor: the 2 eV edge integral is 2 x 2 = 4 decade*eV
    assert s.loc[1, "edge_integral_mean"] == pytest.approx(4.0, abs=1e-9)
    assert (s.loc[1, "dominant_env"], s.loc[1, "dominant_env_fraction"]) == ("tetrahedral", 1.0)
    assert s.loc[3, "dominant_env"] == "unknown"
    assert s.loc[1, "top_cations"].startswith("V (2/3)") or s.loc[1, "top_cations"].startswith("Na (2/3)")
    assert s.loc[1, "top_anions"] == "O (3/3)"

    # enrichment of V in cluster 1: a = 2 in cluster (of 3), c = 0 in the rest (of 3);
    # log odds ratio with 0.5 pseudo-counts = ln((2.5 * 3.5) / (1.5 * 0.5))
    e = chem.enrichment.set_index(["cluster", "element"])
    v = e.loc[(1, "V")]
    assert (v["n_cluster"], v["n_dataset"]) == (2, 2)
    assert v["frac_cluster"] == pytest.approx(2 / 3) and v["frac_dataset"] == pytest.approx(2 / 6)
    assert v["log_odds"] == pytest.approx(math.log(2.5 * 3.5 / (1.5 * 0.5)))
    # log2 enrichment: f = (2 + 1 * 1/3) / (3 + 1) = 7/12 against 1/3 in the dataset -> log2(7/4)
    assert v["log2_enrichment"] == pytest.approx(math.log2(7 / 4))
    # O is in every material: neither enriched nor depleted by either measure
    assert e.loc[(1, "O"), "log_odds"] == 0.0 and e.loc[(1, "O"), "log2_enrichment"] == pytest.approx(0.0)
    assert e.loc[(2, "O"), "log2_enrichment"] == pytest.approx(0.0)
    assert chem.enrichment[chem.enrichment["cluster"] == 1]["element"].iloc[0] in {"V", "Na"}  # ranked by enrichment
    assert (chem.enrichment["n_cluster"] > 0).all()
    assert "V" in s.loc[1, "enriched"]

    ions = chem.ions.set_index(["cluster", "role", "element"])
    assert ions.loc[(1, "cation", "V"), "n_cluster"] == 2
    assert ions.loc[(2, "cation", "Mg"), "frac_cluster"] == pytest.approx(1.0)
    assert ions.loc[(2, "cation", "Mg"), "frac_dataset"] == pytest.approx(2 / 6)

    env = chem.env_counts.set_index(["cluster", "dominant_env"])
    assert env.loc[(1, "tetrahedral"), "n_cluster"] == 3
    assert env.loc[(1, "tetrahedral"), "frac_dataset"] == pytest.approx(3 / 6)
    assert env.loc[(3, "unknown"), "frac_cluster"] == pytest.approx(1.0)

    h = chem.score_hist
    one = h[(h["cluster"] == 1) & (h["score"] == "tetrahedral")]
    assert one["frac_cluster"].sum() == pytest.approx(1.0)
    assert one.loc[one["bin_lo"] == 0.9, "frac_cluster"].item() == pytest.approx(1.0)
    assert h[(h["cluster"] == 3)]["frac_cluster"].sum() == 0.0  # no known score

    m = chem.members
    assert m["cluster"].tolist() == [1, 1, 1, 2, 2, 3]
    assert m["material_id"].tolist()[:3] == ["m0", "m1", "m2"]  # by onset within a cluster


def test_cluster_chemistry_accepts_a_label_table_and_no_envs():
    dataset, labels, _, _ = toy_cluster_inputs()
    table = pd.DataFrame({"material_id": dataset["material_id"][::-1], "cluster": labels[::-1]})
    chem = cluster_chemistry(dataset, table, None)
    assert chem.summary["size"].tolist() == [3, 2, 1]
    assert (chem.summary["dominant_env"] == "unknown").all()
    assert chem.ions.empty
    rebuilt = ClusterChemistry.from_tables(chem.tables())
    pd.testing.assert_frame_equal(rebuilt.summary, chem.summary)


def test_element_sets_parse_formulas():
    assert element_sets(["Ba3Si2(B3O8)2", "MgO", "MgO"]) == [
        frozenset({"Ba", "Si", "B", "O"}), frozenset({"Mg", "O"}), frozenset({"Mg", "O"})
    ]
