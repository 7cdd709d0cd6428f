"""Which hull decides stability: the Materials Project's, this run's own (with unknowns), or none."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fakes.mp_server import rocksalt, summary_doc, zincblende
from optabs.dataset import Curation, curate, elements_without_reference, source_stability
from optabs.dataset.curation import stability_policy
from optabs.errors import ConfigError
from optabs.spectra.stage import SPECTRA_COLUMNS
from optabs.structures import candidates_to_frame
from optabs.structures.catalog import load_catalog
from optabs.structures.mp import documents_to_candidates

CATALOG = Path(__file__).resolve().parents[3] / "resources" / "catalog.yaml"


def spectra(*rows):
    """A spectra table of (material_id, formula, energy_per_atom_ev, dft_gap_ev) rows, one energy scale."""
    return pd.DataFrame([
        {"material_id": mid, "formula": formula, "structure": "", "log10_alpha": [2.0, 3.0], "onset_ev": 1.0,
         "dft_gap_ev": gap, "dft_direct_gap_ev": gap, "corrected_gap_ev": gap + 1, "gap_method": "test",
         "energy_per_atom_ev": energy, "energy_scale": "s", "engine": "vasp"}
        for mid, formula, energy, gap in rows
    ], columns=SPECTRA_COLUMNS)


def mp_sources(values, version="2025.09.25"):
    """The kept table's stability columns for materials of source mp: material_id -> MP energy above hull."""
    return pd.DataFrame({"material_id": list(values), "source": "mp",
                         "mp_e_above_hull_ev": [math.nan if v is None else v for v in values.values()],
                         "mp_database_version": version})


def by_id(frame, column):
    return dict(zip(frame.material_id, frame[column]))


# --- policy mp ----------------------------------------------------------------------------------


def test_mp_policy_drops_by_the_materials_project_value_whatever_the_local_hull_says():
    # ZnS is alone in Zn-S, so the local hull has it on the hull (0); the MP hull puts it 0.12 above.
    # The second MgO lies 0.3 eV/atom above the first on the local hull; MP calls it stable.
    table = spectra(("mp-zns", "ZnS", -5.0, 2.0), ("mp-mgo", "MgO", -6.0, 4.5), ("mp-mgo2", "MgO", -5.7, 4.0),
                    ("mp-cao", "CaO", -6.0, 3.6), ("mp-zno", "ZnO", -5.5, 1.0))
    sources = mp_sources({"mp-zns": 0.12, "mp-mgo": 0.0, "mp-mgo2": 0.0, "mp-cao": 0.04, "mp-zno": None})
    dataset, dropped = curate(table, Curation(e_above_hull_max_ev=0.05), sources)

    assert by_id(dropped, "reason") == {"mp-zns": "unstable"}
    assert dropped.detail.iloc[0] == "Materials Project energy_above_hull 0.120 eV/atom (database 2025.09.25) > 0.05 eV/atom"
    assert sorted(dataset.material_id) == ["mp-cao", "mp-mgo", "mp-mgo2", "mp-zno"]
    assert set(dataset.stability_policy) == {"mp"} and set(dataset.mp_database_version) == {"2025.09.25"}
    # e_above_hull_ev is the Materials Project's value, NaN where the document had none
    assert by_id(dataset, "e_above_hull_ev") == pytest.approx({"mp-mgo": 0.0, "mp-mgo2": 0.0, "mp-cao": 0.04,
                                                               "mp-zno": math.nan}, nan_ok=True)
    assert by_id(dataset, "stability") == {"mp-mgo": "stable", "mp-mgo2": "stable", "mp-cao": "stable",
                                           "mp-zno": "unknown"}


def test_mp_policy_reads_the_values_the_documents_carried():
    docs = [summary_doc("mp-10695", zincblende("Zn", "S", 5.41), energy_above_hull=0.2),
            summary_doc("mp-1265", rocksalt("Mg", "O", 4.21), energy_above_hull=0.0)]
    for doc in docs:
        doc["database_version"] = "2024.11.14"
    kept = candidates_to_frame(documents_to_candidates(docs))
    sources = source_stability(kept)
    assert by_id(sources, "mp_e_above_hull_ev") == {"mp-10695": 0.2, "mp-1265": 0.0}
    assert set(sources.mp_database_version) == {"2024.11.14"} and set(sources.source) == {"mp"}

    dataset, dropped = curate(spectra(("mp-10695", "ZnS", -5.0, 2.0), ("mp-1265", "MgO", -6.0, 4.5)),
                              Curation(e_above_hull_max_ev=0.0), sources)
    assert list(dataset.material_id) == ["mp-1265"]
    assert list(dropped.material_id) == ["mp-10695"] and "0.200 eV/atom (database 2024.11.14)" in dropped.detail[0]


def test_catalog_materials_have_no_materials_project_value():
    kept = candidates_to_frame(load_catalog(CATALOG)[:2])
    sources = source_stability(kept)
    assert set(sources.source) == {"catalog"}
    assert sources.mp_e_above_hull_ev.isna().all() and set(sources.mp_database_version) == {""}


# --- policy local -------------------------------------------------------------------------------


def test_local_policy_marks_materials_without_a_computed_reference_unknown():
    table = spectra(
        ("zn", "Zn", -1.0, 0.0),      # elemental references of Zn and S (metals: dropped for their gap)
        ("s", "S", -4.0, 0.0),
        ("zns", "ZnS", -6.0, 2.0),    # below both references: stable, and known to be
        ("zns-b", "ZnS", -5.8, 2.0),  # a polymorph 0.2 above it: dropped
        ("mgo", "MgO", -6.0, 4.5),    # no Mg, no O computed: on the hull only for want of references
        ("mgo-b", "MgO", -5.9, 4.0),  # 0.1 above the other MgO: above the true hull too, dropped
        ("zno", "ZnO", -5.0, 1.0),    # Zn computed, O not
    )
    dataset, dropped = curate(table, Curation(e_above_hull_max_ev=0.05, stability="local"))
    assert by_id(dataset, "stability") == {"zns": "stable", "mgo": "unknown", "zno": "unknown"}
    assert set(dataset.stability_policy) == {"local"} and set(dataset.mp_database_version) == {""}
    reasons = dropped.groupby("material_id").reason.apply(set).to_dict()
    assert reasons == {"zn": {"small_gap"}, "s": {"small_gap"}, "zns-b": {"unstable"}, "mgo-b": {"unstable"}}
    assert "0.100 eV/atom above the hull of the computed phases" in by_id(dropped, "detail")["mgo-b"]


def test_unknown_materials_are_dropped_when_asked_with_the_missing_elements():
    table = spectra(("zn", "Zn", -1.0, 0.5), ("zno", "ZnO", -5.0, 1.0), ("mgo", "MgO", -6.0, 4.5))
    dataset, dropped = curate(table, Curation(stability="local", drop_unknown=True))
    assert list(dataset.material_id) == ["zn"]
    detail = by_id(dropped, "detail")
    assert set(by_id(dropped, "reason").values()) == {"stability_unknown"}
    assert detail["zno"].startswith("no computed reference for O:")
    assert detail["mgo"].startswith("no computed reference for Mg, O:")


def test_elements_without_reference_per_energy_scale():
    missing = elements_without_reference(["Zn", "ZnO", "ZnO", "Mg2SiO4"], ["a", "a", "b", "a"])
    assert missing == [(), ("O",), ("O", "Zn"), ("Mg", "O", "Si")]


# --- policy none, the choice of policy ----------------------------------------------------------


def test_no_policy_keeps_every_gap_and_marks_them_unchecked():
    table = spectra(("mgo", "MgO", -6.0, 4.5), ("mgo-b", "MgO", -5.0, 4.0), ("pbs", "PbS", -4.0, 0.1))
    dataset, dropped = curate(table, Curation(stability="none"), mp_sources({"mgo": 0.5, "mgo-b": 0.5, "pbs": 0.0}))
    assert sorted(dataset.material_id) == ["mgo", "mgo-b"]
    assert by_id(dropped, "reason") == {"pbs": "small_gap"}
    assert set(dataset.stability) == {"unchecked"} and dataset.e_above_hull_ev.isna().all()


def test_auto_is_mp_only_when_every_material_comes_from_mp():
    assert stability_policy("auto", ["mp", "mp"]) == "mp"
    assert stability_policy("auto", ["mp", "catalog"]) == "local"
    assert stability_policy("auto", []) == "local"
    assert stability_policy("local", ["mp"]) == "local"
    with pytest.raises(ConfigError, match="stability 'mp' needs materials from source 'mp'.*'files'"):
        stability_policy("mp", ["mp", "files"])
    # without the kept table nothing is known about sources: auto falls back to the local hull
    dataset, _ = curate(spectra(("mgo", "MgO", -6.0, 4.5)), Curation())
    assert list(dataset.stability_policy) == ["local"] and list(dataset.stability) == ["unknown"]


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="config key 'dataset'.*stability.*one of auto, mp, local, none"):
        Curation.from_config("dataset", {"stability": "hull"})
    with pytest.raises(ConfigError, match="drop_unknown"):
        Curation(drop_unknown="yes")
    with pytest.raises(ConfigError, match="e_above_hull_max_ev"):
        Curation(e_above_hull_max_ev=-0.1)
    assert Curation() == Curation(e_above_hull_max_ev=0.0, min_gap_ev=0.3, stability="auto", drop_unknown=False)


def test_empty_spectra_give_an_empty_dataset():
    dataset, dropped = curate(spectra(), Curation(), mp_sources({}))
    assert len(dataset) == 0 and len(dropped) == 0
    assert np.array_equal(dataset.columns, curate(spectra(("mgo", "MgO", -6.0, 4.5)), Curation())[0].columns)
