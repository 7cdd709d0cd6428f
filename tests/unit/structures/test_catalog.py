"""The embedded structure catalog (resources/catalog.yaml) and its loader.

The physical checks compare numbers computed from the catalog's structures with published
values typed in here, so a transcription error in a lattice constant or a Wyckoff
coordinate shows up as a wrong bond length, density, coordination or space group.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from pymatgen.analysis.local_env import CrystalNN
from pymatgen.core import Element
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from optabs.errors import InputError
from optabs.ids import MATERIAL_ID_PATTERN
from optabs.structures import Candidate
from optabs.structures.catalog import load_catalog

CATALOG = Path(__file__).resolve().parents[3] / "resources" / "catalog.yaml"
ANIONS = {"O", "S", "Se"}
REJECTS = {"MgOH2-brucite", "NiO-rocksalt", "Nd2O3-hexagonal"}


@pytest.fixture(scope="module")
def raw_entries() -> list[dict]:
    return yaml.safe_load(CATALOG.read_text())["entries"]


@pytest.fixture(scope="module")
def catalog() -> dict[str, Candidate]:
    return {c.material_id: c for c in load_catalog(CATALOG)}


def _neighbour_distances(candidate: Candidate, element: str, cutoff: float) -> list[float]:
    """Distances (Angstrom) from the first site of ``element`` to all neighbours within ``cutoff``."""
    s = candidate.structure
    index = next(i for i, site in enumerate(s) if site.specie.symbol == element)
    return sorted(n.nn_distance for n in s.get_neighbors(s[index], cutoff))


def _first_index(candidate: Candidate, element: str) -> int:
    return next(i for i, site in enumerate(candidate.structure) if site.specie.symbol == element)


def _cn(candidate: Candidate, element: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns about missing oxidation states
        return CrystalNN().get_cn(candidate.structure, _first_index(candidate, element))


# ----------------------------------------------------------------- the shipped catalog


def test_shipped_catalog_loads_as_catalog_candidates(catalog, raw_entries):
    assert len(catalog) == len(raw_entries) >= 30
    by_id = {e["material_id"]: e for e in raw_entries}
    for mid, c in catalog.items():
        entry = by_id[mid]
        assert c.source == "catalog"
        assert c.source_ref == entry["source"]
        assert c.properties == {
            "spacegroup": entry["spacegroup"],
            "spacegroup_number": entry["spacegroup_number"],
            "reference": entry["source"],
        }
        assert c.magnetic_ordering == entry.get("magnetic_ordering")
        assert c.formula == c.structure.composition.reduced_formula


def test_every_entry_is_small_and_most_are_tiny(catalog):
    sizes = {mid: len(c.structure) for mid, c in catalog.items()}
    assert max(sizes.values()) <= 10, {k: v for k, v in sizes.items() if v > 10}
    # the DFT demo runs every kept material on 2 cores: only a few 8-10 atom cells
    assert sum(n >= 8 for n in sizes.values()) <= 4


def test_primitive_cells_are_primitive(catalog):
    for mid, c in catalog.items():
        assert len(c.structure.get_primitive_structure()) == len(c.structure), mid


def test_ids_are_unique_and_safe(raw_entries):
    ids = [e["material_id"] for e in raw_entries]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(MATERIAL_ID_PATTERN, i) for i in ids)


def test_entries_cite_a_structure_determination(raw_entries):
    for e in raw_entries:
        # a publication year closing a parenthesis, "(1976)" or "(Interscience, 1963)":
        # every source names a publication, not only a database id
        assert re.search(r"\b(19|20)\d\d\)", e["source"]), e["material_id"]


def test_anions_are_oxide_sulfide_or_selenide_only(catalog):
    counts = {a: 0 for a in ANIONS}
    for mid, c in catalog.items():
        if mid in REJECTS:
            continue
        elements = {el.symbol for el in c.structure.composition.elements}
        anions = elements & ANIONS
        assert len(anions) == 1, (mid, elements)
        counts[anions.pop()] += 1
        cations = [Element(x) for x in elements - ANIONS]
        assert all(el.is_metal or el.symbol in {"Si", "Ge"} for el in cations), (mid, elements)
    assert counts["O"] > counts["S"] + counts["Se"]  # mostly oxides
    assert counts["S"] >= 5 and counts["Se"] >= 5


def test_the_three_reject_entries_are_present_and_marked(catalog, raw_entries):
    marked = {e["material_id"] for e in raw_entries if str(e.get("note", "")).startswith("expected to be rejected")}
    assert marked == REJECTS
    elements = {mid: {el.symbol for el in catalog[mid].structure.composition.elements} for mid in REJECTS}
    assert "H" in elements["MgOH2-brucite"]
    assert elements["NiO-rocksalt"] & {"Mn", "Fe", "Co", "Ni"}
    assert catalog["NiO-rocksalt"].magnetic_ordering == "AFM"
    assert "Nd" in elements["Nd2O3-hexagonal"]


def test_kept_entries_avoid_what_the_filter_rejects(catalog):
    for mid, c in catalog.items():
        if mid in REJECTS:
            continue
        for el in c.structure.composition.elements:
            assert el.symbol != "H", mid
            assert not 25 <= el.Z <= 28, mid  # Mn..Ni
            assert not (el.is_lanthanoid and el.symbol not in {"La", "Ce"}), mid


def test_spacegroup_found_by_spglib_matches_every_entry(catalog):
    wrong = {}
    for mid, c in catalog.items():
        found = SpacegroupAnalyzer(c.structure, symprec=0.01).get_space_group_number()
        if found != c.properties["spacegroup_number"]:
            wrong[mid] = (found, c.properties["spacegroup_number"])
    assert not wrong, f"detected vs catalog space group: {wrong}"


def test_no_unphysically_short_bonds(catalog):
    for mid, c in catalog.items():
        d = c.structure.distance_matrix + np.eye(len(c.structure)) * 1e9
        shortest = d.min()
        # O-H in brucite is the only bond under 1.5 Angstrom
        assert shortest > (0.9 if mid == "MgOH2-brucite" else 1.5), (mid, shortest)


# ------------------------------------------------ physical facts against published values


def test_mgo_nearest_neighbour_distance(catalog):
    # Hazen, Am. Mineral. 61, 266 (1976): a = 4.2117 A, so Mg-O = a/2 = 2.106 A
    assert _neighbour_distances(catalog["mp-1265"], "Mg", 2.5) == pytest.approx([2.106] * 6, abs=0.001)


@pytest.mark.parametrize(
    ("material_id", "density", "reference"),
    [
        ("mp-1265", 3.58, "periclase, X-ray density from a = 4.21 A"),
        ("mp-1143", 3.99, "corundum, Lewis et al., Acta Cryst. A38, 733 (1982)"),
        ("mp-7000", 2.65, "alpha-quartz, Levien et al., Am. Mineral. 65, 920 (1980)"),
        ("mp-856", 6.99, "cassiterite, Handbook of Mineralogy D(calc) 6.99"),
        ("mp-2657", 4.25, "rutile, Handbook of Mineralogy D(calc) 4.25"),
        ("mp-390", 3.89, "anatase, Horn et al., Z. Kristallogr. 136, 273 (1972)"),
        ("mp-20194", 7.22, "CeO2, X-ray density from a = 5.41 A"),
        ("mp-10695", 4.09, "sphalerite, Skinner, Am. Mineral. 46, 1399 (1961)"),
        ("mp-5229", 5.12, "SrTiO3, X-ray density from a = 3.905 A"),
        ("mp-2133", 5.68, "zincite, Kisi & Elcombe, Acta Cryst. C45, 1867 (1989)"),
    ],
)
def test_densities_match_published(catalog, material_id, density, reference):
    assert catalog[material_id].structure.density == pytest.approx(density, rel=0.01), reference


def test_wurtzite_zno_is_tetrahedral(catalog):
    zno = catalog["mp-2133"]
    assert _cn(zno, "Zn") == 4
    # Kisi & Elcombe (1989): three Zn-O at 1.974 A and one along c at 1.988 A
    assert _neighbour_distances(zno, "Zn", 2.2) == pytest.approx([1.974, 1.974, 1.974, 1.988], abs=0.003)


def test_corundum_al_is_octahedral(catalog):
    al2o3 = catalog["mp-1143"]
    assert _cn(al2o3, "Al") == 6
    # Lewis et al. (1982): Al-O 3 x 1.855 and 3 x 1.972 A
    assert _neighbour_distances(al2o3, "Al", 2.1) == pytest.approx([1.855] * 3 + [1.972] * 3, abs=0.005)


def test_quartz_tetrahedra_and_bridging_angle(catalog):
    quartz = catalog["mp-7000"]
    assert _cn(quartz, "Si") == 4
    # Levien, Prewitt & Weidner (1980): Si-O 1.605 and 1.614 A, Si-O-Si 143.7 degrees
    assert _neighbour_distances(quartz, "Si", 1.8) == pytest.approx([1.605, 1.605, 1.614, 1.614], abs=0.002)
    s = quartz.structure
    o = _first_index(quartz, "O")
    si1, si2 = (n.coords - s[o].coords for n in s.get_neighbors(s[o], 1.8))
    angle = np.degrees(np.arccos(si1 @ si2 / np.linalg.norm(si1) / np.linalg.norm(si2)))
    assert angle == pytest.approx(143.7, abs=0.3)


def test_beta_ga2o3_has_tetrahedral_and_octahedral_ga(catalog):
    s = catalog["mp-886"].structure
    cnn = CrystalNN()
    by_cn: dict[int, list[float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, site in enumerate(s):
            if site.specie.symbol == "Ga":
                cn = cnn.get_cn(s, i)
                by_cn.setdefault(cn, []).extend(n.nn_distance for n in s.get_neighbors(site, 2.2))
    assert sorted(by_cn) == [4, 6]
    # Geller, J. Chem. Phys. 33, 676 (1960): mean Ga-O 1.83 A (tetrahedral), 2.00 A (octahedral)
    assert np.mean(by_cn[4]) == pytest.approx(1.83, abs=0.01)
    assert np.mean(by_cn[6]) == pytest.approx(2.00, abs=0.02)


def test_cro3_chromium_is_tetrahedral(catalog):
    from matminer.featurizers.site import CrystalNNFingerprint

    cro3 = catalog["CrO3-Ama2"]
    fingerprint = CrystalNNFingerprint.from_preset("ops")
    labels = fingerprint.feature_labels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = fingerprint.featurize(cro3.structure, _first_index(cro3, "Cr"))
    assert features[labels.index("tetrahedral CN_4")] > 0.8
    assert features[labels.index("octahedral CN_6")] < 0.1
    # Stephens & Cruickshank, Acta Cryst. B26, 222 (1970): two bridging Cr-O of 1.748 A
    # (Cr-O-Cr 143 degrees) and two short terminal Cr=O
    d = _neighbour_distances(cro3, "Cr", 2.0)
    assert len(d) == 4
    assert d[2:] == pytest.approx([1.748, 1.748], abs=0.005)
    assert all(1.55 < x < 1.62 for x in d[:2])


# --------------------------------------------------------------- malformed catalogs

MGO = {
    "material_id": "MgO-test",
    "formula": "MgO",
    "spacegroup": "Fm-3m",
    "spacegroup_number": 225,
    "lattice": {"a": 4.2117, "b": 4.2117, "c": 4.2117, "alpha": 90, "beta": 90, "gamma": 90},
    "sites": [{"species": "Mg", "coords": [0, 0, 0]}, {"species": "O", "coords": ["1/2", "1/2", "1/2"]}],
    "source": "test entry",
}


def _write(tmp_path: Path, entries) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}))
    return path


def _entry(**changes) -> dict:
    entry = {k: v for k, v in MGO.items()}
    entry.update(changes)
    return entry


def _raises(path: Path, *fragments: str) -> InputError:
    with pytest.raises(InputError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def test_small_valid_catalog_with_fractions(tmp_path):
    (candidate,) = load_catalog(_write(tmp_path, [_entry()]))
    assert candidate.formula == "MgO"
    assert len(candidate.structure) == 2
    assert candidate.magnetic_ordering is None


def test_missing_key(tmp_path):
    entry = _entry()
    del entry["lattice"]
    _raises(_write(tmp_path, [entry]), "entry 0", "MgO-test", "missing key", "lattice")


@pytest.mark.parametrize("coords", [[0, 0], [0, 0, "x"], "0 0 0", [0, 0, None]])
def test_bad_coords(tmp_path, coords):
    entry = _entry(sites=[{"species": "Mg", "coords": coords}, MGO["sites"][1]])
    _raises(_write(tmp_path, [entry]), "entry 0", "MgO-test", "site 0", "coords")


def test_duplicate_id(tmp_path):
    _raises(_write(tmp_path, [_entry(), _entry(source="another paper")]), "duplicate", "MgO-test")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "entries: []\n", "entries:\n"])
def test_empty_catalog(tmp_path, text):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    _raises(path, "has no entries")


def test_overlapping_atoms(tmp_path):
    # the anion written on the cation's site by mistake
    entry = _entry(sites=[{"species": "Mg", "coords": [0, 0, 0]}, {"species": "O", "coords": [0.01, 0, 0]}])
    _raises(_write(tmp_path, [entry]), "entry 0", "MgO-test", "apart")


def test_unknown_species(tmp_path):
    entry = _entry(sites=[{"species": "Mq", "coords": [0, 0, 0]}, MGO["sites"][1]])
    _raises(_write(tmp_path, [entry]), "MgO-test", "unknown species", "Mq")


def test_bad_spacegroup(tmp_path):
    _raises(_write(tmp_path, [_entry(spacegroup="Fm-3x")]), "MgO-test", "unknown space group", "Fm-3x")


def test_spacegroup_number_must_agree(tmp_path):
    _raises(_write(tmp_path, [_entry(spacegroup_number=221)]), "MgO-test", "225", "221")


def test_sites_must_give_the_formula(tmp_path):
    _raises(_write(tmp_path, [_entry(formula="MgO2")]), "MgO-test", "MgO2")


def test_unsafe_id_names_the_entry(tmp_path):
    _raises(_write(tmp_path, [_entry(), _entry(material_id="Mg O/2")]), "entry 1", "not safe")


def test_bad_magnetic_ordering(tmp_path):
    _raises(_write(tmp_path, [_entry(magnetic_ordering="ferro")]), "MgO-test", "magnetic_ordering")


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text("entries: [\n")
    _raises(path, "not valid YAML")
    _raises(tmp_path / "absent.yaml", "cannot read")


def test_lattice_incompatible_with_spacegroup(tmp_path):
    lattice = {"a": 4.2, "b": 4.2, "c": 5.0, "alpha": 90, "beta": 90, "gamma": 120}
    _raises(_write(tmp_path, [_entry(lattice=lattice)]), "MgO-test", "Fm-3m")


def test_catalog_max_sites_lists_larger_cells_as_not_computed(tmp_path):
    import pandas as pd

    from optabs.structures.stage import run_structures_stage

    filter_config = yaml.safe_load((CATALOG.parents[1] / "config.yaml").read_text())["filter"]
    kept_all, rejected_all = tmp_path / "all.parquet", tmp_path / "all.csv"
    run_structures_stage("catalog", CATALOG, filter_config, kept_all, rejected_all)
    all_kept = pd.read_parquet(kept_all)
    # sizes of the primitive cells, counted independently of the stage
    sizes = {
        c.material_id: len(SpacegroupAnalyzer(c.structure, symprec=0.01).find_primitive())
        for c in load_catalog(CATALOG)
    }
    large = {m for m in all_kept.material_id if sizes[m] > 6}
    assert "CrO3-Ama2" in large and len(large) >= 3

    kept6, rejected6 = tmp_path / "six.parquet", tmp_path / "six.csv"
    run_structures_stage("catalog", CATALOG, filter_config, kept6, rejected6, catalog_max_sites=6)
    assert set(pd.read_parquet(kept6).material_id) == set(all_kept.material_id) - large
    rows = pd.read_csv(rejected6)
    limited = rows[rows.criterion == "catalog_max_sites"]
    assert set(limited.material_id) == large
    assert limited.detail.str.contains("catalog_max_sites: null").all()
    # the other rejections are the same with and without the limit
    assert set(rows[rows.criterion != "catalog_max_sites"].material_id) == set(pd.read_csv(rejected_all).material_id)
