"""The `mp` source through the workflow, against the loopback Materials Project stand-in."""

import gzip
import json
import os
import subprocess

import pandas as pd
import pytest

from conftest import NO_MPI, SNAKEMAKE, snakemake, stand_in_vasp_config
from fakes.mp_server import FakeMPServer, default_documents, rocksalt, summary_doc
from optabs.filters import DEFAULT_EXCLUDED

FAKE_KEY = "wfTESTkey0123456789abcdefABCDEF9"  # 32 characters, as mp-api requires


def all_text_under(root):
    """(path, text) of every file under root, .snakemake/ (its run logs, job metadata) included,
    gzip files decompressed."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        yield path, raw.decode("utf-8", errors="replace")


@pytest.mark.slow
def test_mp_source_end_to_end_key_never_written(workflow_dir, tmp_path):
    with FakeMPServer(default_documents(), access_log=tmp_path / "access.log") as server:
        proc = snakemake(
            ["--cores", "1", "results/structures/kept.parquet", "--config", "source=mp"],
            cwd=workflow_dir,
            timeout=300,
            env={"MP_API_KEY": FAKE_KEY, "MP_API_ENDPOINT": server.url, "HOME": str(tmp_path / "home")},
        )
        data_requests = server.data_requests
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the key was sent to the server as the API header, and nowhere else
    assert data_requests and all(r.headers.get("x-api-key") == FAKE_KEY for r in data_requests)
    assert FAKE_KEY not in proc.stdout + proc.stderr
    searched = set()
    for path, text in all_text_under(workflow_dir):
        assert FAKE_KEY not in text, f"API key written to {path}"
        searched.add(path.relative_to(workflow_dir).parts[0])
    assert {".snakemake", "logs", "results"} <= searched
    assert list((workflow_dir / ".snakemake/log").glob("*.snakemake.log"))
    docs = json.loads(gzip.decompress((workflow_dir / "results/structures/mp_documents.json.gz").read_bytes()))
    # the server-side pre-filter: at most 40 sites, none of the excluded elements (NiO, Mg(OH)2 out)
    expected = {
        d["material_id"]
        for d in default_documents()
        if d["nsites"] <= 40 and not set(d["elements"]) & set(DEFAULT_EXCLUDED)
    }
    assert {d["material_id"] for d in docs} == expected
    assert {"mp-26", "mp-19009"}.isdisjoint(expected)
    kept = pd.read_parquet(workflow_dir / "results/structures/kept.parquet")
    rejected = pd.read_csv(workflow_dir / "results/structures/rejected.csv")
    assert "mp" in set(kept.source)
    assert kept.material_id.is_unique and set(kept.material_id).isdisjoint(rejected.material_id)

    # a rerun never queries again: the saved documents are the rule's output
    with FakeMPServer(default_documents()) as server:
        proc = snakemake(
            ["--cores", "1", "results/structures/kept.parquet", "--config", "source=mp"],
            cwd=workflow_dir,
            timeout=120,
            env={"MP_API_KEY": FAKE_KEY, "MP_API_ENDPOINT": server.url},
        )
        assert proc.returncode == 0
        assert server.requests == []


def test_missing_key_is_one_clear_line(workflow_dir):
    proc = snakemake(
        ["--cores", "1", "results/structures/kept.parquet", "--config", "source=mp"],
        cwd=workflow_dir,
        timeout=300,
        env={"MP_API_KEY": "", "MP_API_ENDPOINT": "http://127.0.0.1:9/"},
    )
    assert proc.returncode != 0
    log = (workflow_dir / "logs/structures/mp_fetch.log").read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "MP_API_KEY" in errors[0], log
    assert "Traceback" not in log
    assert not (workflow_dir / "results/structures/mp_documents.json.gz").exists()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_mp_stability_decides_curation_not_the_local_hull(workflow_dir, fake_potcars, tmp_path):
    # Three rock-salt materials, each alone in its chemical system, all at the stand-in VASP's
    # -6 eV/atom: on this run's own hull every one is on the hull. The Materials Project puts BaS
    # 0.12 eV/atom above its hull (over the 0.05 tolerance) and CaO 0.03 (within it).
    docs = [
        summary_doc("mp-1265", rocksalt("Mg", "O", 4.21), band_gap=4.45, energy_above_hull=0.0),
        summary_doc("mp-1500", rocksalt("Ba", "S", 6.39), band_gap=2.16, energy_above_hull=0.12),
        summary_doc("mp-2605", rocksalt("Ca", "O", 4.81), band_gap=3.6, energy_above_hull=0.03),
    ]
    env = stand_in_vasp_config(workflow_dir, fake_potcars, ["mp-1265"], source="mp",
                               dataset={"e_above_hull_max_ev": 0.05, "min_gap_ev": 0.3})
    env = {**os.environ, **env, "MP_API_KEY": FAKE_KEY, "HOME": str(tmp_path / "home")}

    def curate(*configfiles):
        return subprocess.run(
            [SNAKEMAKE, "--cores", "2", "results/dataset/dataset.parquet", *NO_MPI,
             "--configfile", "test.yaml", *configfiles],
            cwd=workflow_dir, capture_output=True, text=True, timeout=300, env=env,
        )

    with FakeMPServer(docs) as server:
        env["MP_API_ENDPOINT"] = server.url
        proc = curate()
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = workflow_dir / "results/dataset"
    dataset = pd.read_parquet(res / "dataset.parquet").set_index("material_id")
    dropped = pd.read_csv(res / "dropped.csv").set_index("material_id")
    assert sorted(dataset.index) == ["mp-1265", "mp-2605"]
    assert dropped.reason.to_dict() == {"mp-1500": "unstable"}
    assert dropped.loc["mp-1500", "detail"] == (
        "Materials Project energy_above_hull 0.120 eV/atom (database 2025.09.25) > 0.05 eV/atom"
    )
    assert dataset.e_above_hull_ev.to_dict() == {"mp-1265": 0.0, "mp-2605": 0.03}
    assert set(dataset.stability) == {"stable"} and set(dataset.stability_policy) == {"mp"}
    assert set(dataset.mp_database_version) == {"2025.09.25"}
    failures = pd.read_csv(res / "failures.csv")
    assert failures.material_id.tolist() == ["mp-1500"] and "Materials Project" in failures.detail[0]

    # The same DFT results on the local hull: nothing is dropped for stability (each material is
    # alone in its system), and none is called stable: no Mg, Ca, Ba, O or S was computed.
    (workflow_dir / "local.yaml").write_text("dataset:\n  stability: local\n")
    proc = curate("local.yaml")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "rule dataset:" in proc.stdout + proc.stderr and "rule dft_vasp:" not in proc.stdout + proc.stderr
    dataset = pd.read_parquet(res / "dataset.parquet").set_index("material_id")
    assert sorted(dataset.index) == ["mp-1265", "mp-1500", "mp-2605"]
    assert set(dataset.stability) == {"unknown"} and set(dataset.stability_policy) == {"local"}
    assert pd.read_csv(res / "dropped.csv").empty
