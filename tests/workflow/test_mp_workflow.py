"""The `mp` source through the workflow, against the loopback Materials Project stand-in."""

import gzip
import json

import pandas as pd
import pytest

from conftest import snakemake
from fakes.mp_server import FakeMPServer, default_documents
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
