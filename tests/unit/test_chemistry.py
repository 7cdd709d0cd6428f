"""optabs.chemistry: cation environments (CrystalNN), per-material labels, per-cluster tables."""

from __future__ import annotations

import logging
import math

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
    material_environments,
    oxidation_states,
)
from optabs.grid import Grid
from optabs.interpret import ClusterChemistry, cluster_chemistry
from optabs.spectra import onset_energies


def rock_salt_mgo() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def alpha_quartz() -> Structure:
    """alpha-SiO2, P3_221, a = 4.916, c = 5.405 A: corner-sharing SiO4 tetrahedra (Si-O 1.61 A)."""
    return Structure.from_spacegroup(
        154, Lattice.hexagonal(4.916, 5.405), ["Si", "O"], [[0.4697, 0.0, 2 / 3], [0.4135, 0.2669, 0.1191 + 2 / 3]]
    )


def barite() -> Structure:
    """BaSO4 (barite), Pnma: isolated SO4 tetrahedra (S-O 1.44-1.52 A) between Ba."""
    return Structure.from_spacegroup(
        "Pnma", Lattice.orthorhombic(8.8842, 5.4559, 7.1569), ["Ba", "S", "O", "O", "O"],
        [[0.1844, 0.25, 0.1581], [0.0622, 0.25, 0.6912], [-0.0821, 0.25, 0.5996], [0.1837, 0.25, 0.5425],
         [0.0811, 0.0312, 0.8093]],
    )


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


def test_si_in_alpha_quartz_is_tetrahedral():
    table = cation_environments(alpha_quartz())
    assert len(table) == 3 and set(table["element"]) == {"Si"}
    assert (table["coordination_number"] == 4).all()
    assert (table["tetrahedral"] > 0.8).all()
    assert (table["octahedral"] < 0.2).all()


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
    tet = [0.95, 0.30, 0.20, 0.87, np.nan, 0.0]
    octa = [0.10, 0.63, 0.30, 0.97, 0.5, 0.5]
    assert dominant_environment(tet, octa).tolist() == [
        "tetrahedral", "octahedral", "other", "octahedral", "unknown", "octahedral"
    ]


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
    broken = by_id.loc["broken"]
    assert math.isnan(broken["tetrahedral_max"]) and math.isnan(broken["octahedral_max"])
    assert broken["dominant_env"] == "unknown" and broken["error"]
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
        "cations": [["Na", "V"], ["K", "V"], ["Cr", "Na"], ["Mg"], ["Mg", "Si"], []],
        "anions": [["O"], ["O"], ["O"], ["O"], ["O"], []], "oxidation_method": "bond_valence", "error": "",
    })
    labels = np.array([1, 1, 1, 2, 2, 3])
    return dataset, labels, envs, energy


def test_cluster_chemistry_tables_on_a_toy_set():
    dataset, labels, envs, energy = toy_cluster_inputs()
    chem = cluster_chemistry(dataset, labels, envs)
    assert isinstance(chem, ClusterChemistry)
    assert set(chem.tables()) == {"summary", "enrichment", "ions", "env_counts", "score_hist", "members"}

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
