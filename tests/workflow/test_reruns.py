"""Partial reruns on one whole pipeline run with the stand-in VASP: the report lists the failed
materials, a new K reclusters without recomputing DFT or training, a K above the number of
materials is named and leaves no interpret output, one material's DFT can be forced alone, and
``--until`` stops at a stage.

The module runs the pipeline once (about 1-2 minutes on 2 cores) and the tests use it in order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from conftest import NO_MPI, SNAKEMAKE, copy_workflow, stand_in_vasp_config

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

# Materials the fake POTCAR library covers (tests/data/vasp/fake_potcars.json), each with its own
# stand-in gap so that spectra and clusters differ.
GAPS_EV = {
    "mp-1265": 6.0, "mp-2605": 5.2, "mp-2472": 4.6, "mp-1342": 3.8, "Na2O-antifluorite": 2.6,
    "mp-1960": 5.6, "MgS-rocksalt": 3.6, "CaS-rocksalt": 3.2, "SrS-rocksalt": 2.9, "CrO3-Ama2": 2.0,
}
FAILING = "CrO3-Ama2"  # the band-gap run always fails (ZBRENT, exit code 1)
TRUNCATED = "mp-2472"  # the optics run writes half a vasprun.xml
OK = sorted(set(GAPS_EV) - {FAILING, TRUNCATED})
K = 2


def write_config(wf: Path, fake_potcars: Path, ids=tuple(GAPS_EV)) -> dict[str, str]:
    """The stand-in VASP config (test.yaml) and catalog (small.yaml) in ``wf``; returns the env."""
    control = {
        "models": {m: {"gap_ev": g} for m, g in GAPS_EV.items()},
        "errors": {
            "bandgap": {"kind": "zbrent", "runs": -1, "only_in": FAILING},
            "optics": {"kind": "truncated", "runs": -1, "only_in": TRUNCATED},
        },
    }
    return stand_in_vasp_config(
        wf, fake_potcars, ids, control, model={"preset": "demo", "epochs": 2}, interpret={"n_clusters": K}
    )


def run(wf: Path, env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """snakemake TARGETS/OPTIONS --cores 2 --configfile test.yaml [--config ...]: targets first."""
    config = []
    if "--config" in args:
        i = args.index("--config")
        args, config = args[:i], list(args[i:])
    return subprocess.run(
        [SNAKEMAKE, *args, "--cores", "2", *NO_MPI, "--configfile", "test.yaml", *config],
        cwd=wf, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **env},
    )


def rules_run(proc: subprocess.CompletedProcess) -> list[str]:
    """The rule of every job snakemake started (or, with -n, would start), from its output."""
    return re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", proc.stderr + proc.stdout, flags=re.M)


def mtimes(paths) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in paths}


class _Tables(HTMLParser):
    """Rows (lists of cell text) of every <table> after the element with id ``anchor``."""

    def __init__(self, anchor: str):
        super().__init__()
        self.anchor, self.seen, self.rows, self.cell = anchor, False, [], None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.anchor:
            self.seen = True
        elif tag == "h2" and self.seen and self.rows:
            self.seen = False  # the next section
        elif self.seen and tag == "tr":
            self.rows.append([])
        elif self.seen and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if self.cell is not None and tag in ("td", "th"):
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def failures_in_report(index: Path) -> pd.DataFrame:
    parser = _Tables("failures")
    parser.feed(index.read_text())
    header, *rows = parser.rows
    return pd.DataFrame(rows, columns=header)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, fake_potcars):
    wf = copy_workflow(tmp_path_factory.mktemp("reruns") / "wf")
    env = write_config(wf, fake_potcars)
    proc = run(wf, env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return wf, env


def test_pipeline_completes_and_the_report_lists_the_failed_materials(pipeline):
    wf, _ = pipeline
    res = wf / "results"
    summary = pd.read_csv(res / "dft/summary.csv").set_index("material_id")
    assert summary.status.to_dict() == {m: "failed" if m in (FAILING, TRUNCATED) else "ok" for m in GAPS_EV}
    dataset = pd.read_parquet(res / "dataset/dataset.parquet")
    assert sorted(dataset.material_id) == OK
    assert len(pd.read_parquet(res / "interpret/clusters.parquet")) == len(OK)

    failures = failures_in_report(res / "report/index.html")
    dft = failures[failures.stage.str.startswith("dft")].set_index("material_id")
    assert sorted(dft.index) == sorted([FAILING, TRUNCATED])
    assert "bandgap" in dft.loc[FAILING, "reason"]
    assert "vasprun.xml" in dft.loc[TRUNCATED, "reason"]


def test_truncated_vasprun_is_a_failure_record_naming_the_file(pipeline):
    wf, _ = pipeline
    vasprun = f"results/dft/{TRUNCATED}/work/optics/vasprun.xml"
    record = json.loads((wf / f"results/dft/{TRUNCATED}/result.json").read_text())
    assert record["status"] == "failed" and record["stage"] == "optics"
    assert vasprun in record["reason"] and "truncated" in record["reason"]
    summary = pd.read_csv(wf / "results/dft/summary.csv").set_index("material_id")
    assert vasprun in summary.loc[TRUNCATED, "reason"]
    assert summary.loc[TRUNCATED, "log_path"].endswith("optics/vasp.out")
    # the stand-in really cut the file: the failure is not made up
    text = (wf / vasprun).read_text()
    assert text.startswith("<?xml") and "</modeling>" not in text


def test_new_k_reclusters_without_recomputing_dft_or_training(pipeline):
    wf, env = pipeline
    res = wf / "results"
    kept = [*res.glob("dft/*/result.json"), res / "spectra/spectra.parquet", res / "dataset/dataset.parquet",
            res / "model/checkpoint.pt", res / "model/embeddings.parquet", res / "model/predictions.parquet"]
    before = mtimes(kept)
    assert pd.read_parquet(res / "interpret/clusters.parquet").cluster.nunique() == K

    proc = run(wf, env, "--config", "interpret={n_clusters: 3}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    # the screening places candidates in the clusters, so its round reruns too (its summary may join
    # the DAG only once that checkpoint is done); nothing before the clustering runs again
    ran = set(rules_run(proc))
    assert {"all", "interpret", "report", "screen_round"} <= ran <= {"all", "interpret", "report", "screen_round", "screen"}
    assert mtimes(kept) == before
    clusters = pd.read_parquet(res / "interpret/clusters.parquet")
    assert clusters.cluster.nunique() == 3 and sorted(clusters.material_id) == OK
    assert json.loads((res / "interpret/comparison.json").read_text())["k"] == 3
    assert len(list((res / "report").glob("cluster_*.html"))) == 3
    # the same K again: nothing to do
    again = run(wf, env, "-n", "--config", "interpret={n_clusters: 3}")
    assert again.returncode == 0 and rules_run(again) == [], again.stderr[-2000:]


def test_k_larger_than_the_materials_is_named_and_leaves_no_interpret_output(pipeline):
    wf, env = pipeline
    res = wf / "results"
    before = mtimes([res / "model/checkpoint.pt", res / "dataset/dataset.parquet"])
    proc = run(wf, env, "results/interpret/clusters.parquet", "--config", "interpret={n_clusters: 50}")
    assert proc.returncode != 0
    message = (wf / "logs/interpret/interpret.log").read_text()
    assert "interpret.n_clusters" in message and f"number of materials ({len(OK)})" in message, message
    assert rules_run(proc) == ["interpret"]
    assert mtimes([res / "model/checkpoint.pt", res / "dataset/dataset.parquet"]) == before
    # only the outputs of interpret_environments, a rule that ran before and did not fail, are there
    leftovers = [p.name for p in (res / "interpret").iterdir() if p.name not in ("environments.parquet", "failures.csv")]
    assert leftovers == []


def test_forcing_one_material_recomputes_only_its_dft(pipeline):
    wf, env = pipeline
    res = wf / "results"
    forced = res / "dft/mp-1265/result.json"
    others = [p for p in res.glob("dft/*/result.json") if p != forced]
    before, forced_before = mtimes(others), forced.stat().st_mtime_ns
    spectra_before = mtimes([res / "spectra/spectra.parquet"])

    proc = run(wf, env, "--force", "results/dft/mp-1265/result.json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert rules_run(proc) == ["dft_vasp"]
    assert forced.stat().st_mtime_ns > forced_before
    assert json.loads(forced.read_text())["status"] == "ok"
    assert mtimes(others) == before
    assert mtimes([res / "spectra/spectra.parquet"]) == spectra_before
    # the downstream stages now see a newer input: the next full run would update them
    dry = run(wf, env, "-n")
    assert "spectra" in rules_run(dry) and "dft_vasp" not in rules_run(dry)


def test_until_stops_after_the_named_stage(tmp_path, fake_potcars):
    # The DFT jobs join the DAG only once the structures checkpoint has run, so the stage to name
    # to stop after the DFT is spectra (which writes the DFT summary).
    wf = copy_workflow(tmp_path / "wf")
    env = write_config(wf, fake_potcars, ids=("mp-1265", "Na2O-antifluorite"))
    proc = run(wf, env, "--until", "spectra")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert sorted(rules_run(proc)) == ["dft_vasp", "dft_vasp", "spectra", "structures"]
    res = wf / "results"
    assert sorted(p.parent.name for p in res.glob("dft/*/result.json")) == ["Na2O-antifluorite", "mp-1265"]
    assert (res / "spectra/spectra.parquet").is_file() and (res / "dft/summary.csv").is_file()
    assert sorted(p.name for p in res.iterdir()) == ["dft", "spectra", "structures"]
    assert sorted(p.name for p in (wf / "logs").iterdir()) == ["benchmarks", "dft", "spectra", "structures"]
    assert sorted(p.name for p in (wf / "logs/benchmarks").iterdir()) == ["dft"]  # no training benchmark
