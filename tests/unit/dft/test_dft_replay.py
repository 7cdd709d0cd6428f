"""The replay engine: the spectra stage gives back the database's spectrum; settings and misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optabs.dft import CalculationError, FailureRecord, read_result, write_result
from optabs.dft.replay import ReplaySettings, read_spectrum
from optabs.dft.stage import make_engine, run_material
from optabs.errors import ConfigError
from optabs.grid import Grid
from optabs.spectra.stage import spectra_table
from optabs.startup import check_sources
from optabs.structures.files import material_id_from_filename, read_structure

#: A wide gap, a small gap and a strongly absorbing niobate (n + i kappa far from weak absorption).
FILES = ["POSCAR_Zn4B6O13_mp-4812.vasp", "POSCAR_KInO2_mp-1018031.vasp", "POSCAR_BaNb2O6_mp-555050.vasp"]


@pytest.mark.shared_data
def test_the_spectra_stage_gives_back_the_database_spectrum(shared_data, tmp_path):
    engine = make_engine("replay", {"dataset_dir": str(shared_data)})
    paths = []
    for name in FILES:
        material_id = material_id_from_filename(Path(name))
        result = engine.run(material_id, read_structure(shared_data / name), tmp_path)
        assert result.engine == "replay" and result.gap_method == "replay"
        assert result.dft_gap_ev == result.corrected_gap_ev and np.isnan(result.total_energy_ev)
        assert (result.eps_imag >= 0).all() and not result.eps_imag[:, 3:].any()
        path = tmp_path / material_id / "result.json"
        write_result(path, result)  # through JSON, as the workflow passes it
        paths.append(path)
    spectra, summary = spectra_table(paths, Grid())
    assert list(summary.status) == ["ok"] * 3
    for row in spectra.itertuples():
        _, expected = read_spectrum(shared_data, row.material_id)
        # the inversion is solved with the stage's own Kramers-Kronig: round-off, not 1e-4 discretisation
        assert np.abs(np.asarray(row.log10_alpha) - expected).max() < 1e-6, row.material_id
        assert row.engine == "replay"


@pytest.mark.shared_data
def test_a_material_absent_from_the_database_is_a_recorded_failure(shared_data, tmp_path):
    with pytest.raises(CalculationError, match="not in the database"):
        read_spectrum(shared_data, "Unobtainium_mp-0")
    kept = tmp_path / "kept.parquet"

    structure = read_structure(shared_data / FILES[0])
    pd.DataFrame({"material_id": ["Unobtainium_mp-0"], "structure": [structure.to_json()]}).to_parquet(kept)
    outcome = run_material(
        "Unobtainium_mp-0", kept, "replay", {"dataset_dir": str(shared_data)}, tmp_path / "work", tmp_path / "result.json"
    )
    assert isinstance(outcome, FailureRecord) and "not in the database" in outcome.reason
    assert isinstance(read_result(tmp_path / "result.json"), FailureRecord)


def test_dataset_dir_is_required_and_must_hold_id_prop(tmp_path):
    with pytest.raises(ConfigError, match=r"^config key 'dft.replay': .*dataset_dir"):
        ReplaySettings.from_config("dft.replay", {})
    with pytest.raises(ConfigError, match=r"^config key 'dft.replay': .*id_prop.csv"):
        make_engine("replay", {"dataset_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"^config key 'dft.replay'"):
        make_engine("replay", {"dataset_dir": str(tmp_path), "extra": 1})


@pytest.mark.parametrize(
    ("source", "stability", "ok"),
    [
        ("files", "auto", False),
        ("files", "local", False),
        ("files", "none", True),
        ("mp", "auto", True),
    ],
)
def test_replay_asks_for_a_stability_policy_without_energies(source, stability, ok):
    config = {"source": source, "structures_dir": "x", "dft": {"engine": "replay"}, "dataset": {"stability": stability}}
    if ok:
        check_sources(config)
    else:
        with pytest.raises(ConfigError, match="^config key 'dataset.stability'.*replay"):
            check_sources(config)
