"""Faults and bad input: corrupt engine output becomes a failure record naming the file; bad
user input (a malformed or duplicated structure, an empty catalog, out-of-range settings) gets a
message naming the file or key and leaves no partial output.

Elsewhere: a killed run resumed with --rerun-incomplete (test_dft_workflow.py), a failing
material and a truncated vasprun.xml in a whole run, K above the number of materials
(test_reruns.py), the Materials Project key in no file (test_mp_workflow.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from pymatgen.core import Lattice, Structure

from conftest import REPO, snakemake
from optabs.config import coerce_cli_strings, load_schema
from optabs.dft import FailureRecord, read_result, stage
from optabs.errors import InputError
from optabs.io import write_parquet
from optabs.structures import Candidate, candidates_to_frame


def mgo() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------ corrupt DFT output


@pytest.fixture
def corrupt_gpw(tmp_path):
    """A ground-state cache whose metadata matches the settings but whose gs.gpw is garbage."""
    gpaw = pytest.importorskip("optabs.dft.gpaw.cache", reason="GPAW is not installed")
    fingerprint = gpaw._fingerprint({"xc": "PBEsol", "ecut_ev": 400.0})
    work = tmp_path / "work"
    work.mkdir()
    gpw = work / "gs.gpw"
    gpw.write_bytes(b"\x00not a gpw file, half of one at best" * 20)
    (work / "gs.json").write_text(json.dumps({"fingerprint": fingerprint}))
    return gpaw, gpw, fingerprint


def test_unreadable_cached_gpw_is_an_error_naming_the_file(corrupt_gpw):
    gpaw, gpw, fingerprint = corrupt_gpw
    with pytest.raises(gpaw.GpawCalculationError) as info:
        gpaw._load_cached_gpw("MgO", gpw, fingerprint, "ground_state")
    assert str(gpw) in str(info.value) and "delete it and rerun" in str(info.value)
    assert info.value.log_path == str(gpw) and info.value.stage == "ground_state"
    # a cache made with other settings is not this run's: recomputed, no error
    assert gpaw._load_cached_gpw("MgO", gpw, gpaw._fingerprint({"other": 1}), "ground_state") is None
    (gpw.parent / "gs.json").write_text("{truncated")
    assert gpaw._load_cached_gpw("MgO", gpw, fingerprint, "ground_state") is None


class _Engine:
    """An engine whose run does one thing the test chooses."""

    name = "gpaw"

    def __init__(self, action):
        self.action = action

    def run(self, material_id, structure, workdir):
        return self.action(material_id)


@pytest.fixture
def kept(tmp_path):
    path = tmp_path / "kept.parquet"
    write_parquet(path, candidates_to_frame([Candidate("mp-1265", mgo(), source="test")]))
    return path


def run_with(monkeypatch, kept, action, tmp_path):
    monkeypatch.setattr(stage, "make_engine", lambda name, settings: _Engine(action))
    result_path = tmp_path / "dft/mp-1265/result.json"
    outcome = stage.run_material(
        "mp-1265", kept, "gpaw", {}, tmp_path / "dft/mp-1265/work", result_path, log_path="logs/dft/mp-1265.log"
    )
    return outcome, result_path


def test_corrupt_gpaw_output_becomes_the_material_failure_record(corrupt_gpw, kept, monkeypatch, tmp_path):
    gpaw, gpw, fingerprint = corrupt_gpw
    outcome, result_path = run_with(
        monkeypatch, kept, lambda m: gpaw._load_cached_gpw(m, gpw, fingerprint, "ground_state"), tmp_path
    )
    assert isinstance(outcome, FailureRecord)
    record = json.loads(result_path.read_text())
    assert record["status"] == "failed" and record["material_id"] == "mp-1265" and record["engine"] == "gpaw"
    assert str(gpw) in record["reason"] and record["stage"] == "ground_state" and record["log_path"] == str(gpw)
    assert read_result(result_path) == outcome
    assert [p.name for p in result_path.parent.iterdir()] == ["result.json", "work"]  # no temporary left


def test_unexpected_engine_exception_is_recorded_too(kept, monkeypatch, tmp_path):
    def crash(material_id):
        raise ZeroDivisionError("division by zero in a stand-in engine")

    outcome, result_path = run_with(monkeypatch, kept, crash, tmp_path)
    record = json.loads(result_path.read_text())
    assert record["status"] == "failed" and "ZeroDivisionError" in record["reason"]
    assert record["log_path"] == "logs/dft/mp-1265.log" == outcome.log_path


def test_corrupt_result_json_is_named(tmp_path):
    path = tmp_path / "result.json"
    path.write_text('{"status": "ok", "energy_ev": [0.0, 0.1')
    with pytest.raises(InputError, match=re.escape(str(path))) as info:
        read_result(path)
    assert "rerun" in str(info.value)


# ------------------------------------------------------------------ bad input, before any job


def stops_at_start(workflow_dir: Path, args: list[str]) -> str:
    """Run snakemake, check it stopped before any job, with nothing written; return its output."""
    proc = snakemake(["--cores", "1", *args], cwd=workflow_dir, timeout=60)
    assert proc.returncode != 0
    assert not (workflow_dir / "results").exists() and not (workflow_dir / "logs").exists()
    return proc.stderr + proc.stdout


def write_catalog(path: Path, entries: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"entries": entries}))


def catalog_entries(*ids: str) -> list[dict]:
    catalog = yaml.safe_load((REPO / "resources" / "catalog.yaml").read_text())
    by_id = {e["material_id"]: e for e in catalog["entries"]}
    return [by_id[i] for i in ids]


def test_empty_catalog_stops_before_any_job(workflow_dir):
    write_catalog(workflow_dir / "empty.yaml", [])
    out = stops_at_start(workflow_dir, ["--config", "catalog=empty.yaml"])
    assert "config key 'catalog'" in out and "empty.yaml has no entries" in out


def test_duplicate_catalog_id_stops_before_any_job_naming_it(workflow_dir):
    mgo_entry, cao_entry = catalog_entries("mp-1265", "mp-2605")
    write_catalog(workflow_dir / "dup.yaml", [mgo_entry, cao_entry, {**mgo_entry, "source": "a second paper"}])
    out = stops_at_start(workflow_dir, ["--config", "catalog=dup.yaml"])
    assert "dup.yaml" in out and "'mp-1265' in entries 0, 2" in out


def test_nested_command_line_values_get_the_schema_types():
    # what snakemake's --config gives for interpret='{n_clusters: 3}' etc.: every nested scalar a string
    cli = {"interpret": {"n_clusters": "3", "standardize": "true", "layer": "alignn_0"},
           "model": {"cutoff": "-1", "epochs": "two"}, "report": {"title": "2025"},
           "dft": {"vasp": {"u_values": {"Cr": "3.7"}, "command": "srun vasp_std"}}}
    coerce_cli_strings(cli, load_schema(REPO / "schemas" / "config.schema.yaml"))
    assert cli["interpret"] == {"n_clusters": 3, "standardize": True, "layer": "alignn_0"}
    assert cli["model"] == {"cutoff": -1, "epochs": "two"}  # not a number: left for validation to name
    assert cli["report"]["title"] == "2025"  # a string key stays a string
    assert cli["dft"]["vasp"] == {"u_values": {"Cr": 3.7}, "command": "srun vasp_std"}


@pytest.mark.parametrize(
    "override, key",
    [
        ("model={cutoff: -1}", "model.cutoff"),
        ("dft={gpaw: {ecut_ev: -400}}", "dft.gpaw.ecut_ev"),
        ("dft={engine: vasp, vasp: {cshift: -0.1}}", "dft.vasp.cshift"),
        ("interpret={n_clusters: 0}", "interpret.n_clusters"),
    ],
)
def test_out_of_range_setting_on_the_command_line_names_the_key(workflow_dir, override, key):
    out = stops_at_start(workflow_dir, ["--config", override])
    assert f"config key '{key}'" in out
    # the value is read as the number it is, so the message says what is wrong with it
    assert "not of type" not in out and ("less than" in out or "minimum" in out), out


# ------------------------------------------------------------------ bad structure files


@pytest.mark.slow
def test_files_source_bad_and_duplicate_files_reported_the_rest_goes_on(workflow_dir, tmp_path):
    folder = tmp_path / "structs"
    folder.mkdir()
    mgo().to(filename=str(folder / "MgO.cif"))
    mgo().to(filename=str(folder / "MgO.vasp"), fmt="poscar")  # the same id again
    Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25] * 3]).to(
        filename=str(folder / "ZnS.cif")
    )
    (folder / "half.cif").write_text(folder.joinpath("ZnS.cif").read_text()[:200])  # truncated
    proc = snakemake(
        ["--cores", "1", "results/structures/kept.parquet", "--config", "source=files", f"structures_dir={folder}"],
        cwd=workflow_dir, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import pandas as pd

    kept = pd.read_parquet(workflow_dir / "results/structures/kept.parquet")
    rejected = pd.read_csv(workflow_dir / "results/structures/rejected.csv").set_index("source_ref")
    assert sorted(kept.material_id) == ["MgO", "ZnS"]
    assert rejected.loc["half.cif", "criterion"] == "unreadable" and "half.cif" in rejected.loc["half.cif", "detail"]
    assert rejected.loc["MgO.vasp", "criterion"] == "duplicate_id" and "MgO.cif" in rejected.loc["MgO.vasp", "detail"]


@pytest.mark.slow
def test_files_source_with_only_bad_files_is_a_clear_error_and_writes_nothing(workflow_dir, tmp_path):
    folder = tmp_path / "structs"
    folder.mkdir()
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 4.2\nthis is not a cif\n")
    (folder / "POSCAR_empty.vasp").write_text("")
    proc = snakemake(
        ["--cores", "1", "--config", "source=files", f"structures_dir={folder}"], cwd=workflow_dir, timeout=300
    )
    assert proc.returncode != 0
    log = (workflow_dir / "logs/structures/structures.log").read_text()
    assert "gave no structures" in log and "broken.cif" in log and "POSCAR_empty.vasp" in log, log
    assert "Traceback" not in log
    assert files_in(workflow_dir / "results") == []
