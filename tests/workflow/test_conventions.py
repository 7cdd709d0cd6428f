"""The Snakemake workflow catalog's conventions (issue 19 items 8 and 9): snakefmt-clean rules,
benchmark records for the expensive rules, the Materials Project fetch as a local rule that
requires MP_API_KEY only for source mp, `snakemake --report` embedding our HTML site, the test
config in .test/, and GitHub CI mirroring .ci/run."""

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, copy_workflow, snakemake

# A 1x1 PNG, the stand-in for a figure.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
SNAKEFMT = shutil.which("snakefmt", path=str(Path(sys.executable).parent)) or shutil.which("snakefmt")

# Parses the workflow with Snakemake's API, planning and running nothing, and prints what the
# command line does not show: each rule's benchmark file and whether it is a local rule, and the
# environment variables the workflow declares (envvars:). `workflow.is_local(rule)` cannot tell
# the local rules here (without an executor every rule runs locally), hence `_localrules`.
PROBE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[1:]]),
        snakefile=Path("Snakefile"),
        workdir=Path("."),
    )._workflow
    rules = {r.name: {"local": r.name in workflow._localrules, "benchmark": r.benchmark and str(r.benchmark)}
             for r in workflow.rules}
    print(json.dumps({"envvars": sorted(workflow.envvars), "rules": rules}))
"""


def parse_workflow(wf: Path, *configfiles: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *configfiles], cwd=wf, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    """The parsed workflow with the default config (catalog, GPAW) and the paper config (mp, VASP)."""
    wf = copy_workflow(tmp_path_factory.mktemp("conventions") / "wf")
    env = {k: v for k, v in os.environ.items() if k != "MP_API_KEY"}
    return {
        "default": parse_workflow(wf, env=env),
        "paper": parse_workflow(wf, "configs/paper.yaml", env={**env, "MP_API_KEY": "not-a-key"}),
    }


def test_snakefiles_are_snakefmt_clean():
    if SNAKEFMT is None:
        pytest.skip("snakefmt is not installed: it is in the test extra (make setup, or pip install -e '.[test]')")
    proc = subprocess.run([SNAKEFMT, "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"run `snakefmt .` to format:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize(("config", "rule", "path"), [
    ("default", "dft_gpaw", "logs/benchmarks/dft/{material_id"),
    ("paper", "dft_vasp", "logs/benchmarks/dft/{material_id"),
    ("default", "model_train", "logs/benchmarks/model/train.tsv"),
])
def test_dft_and_training_record_a_benchmark_per_job(parsed, config, rule, path):
    benchmark = parsed[config]["rules"][rule]["benchmark"]
    # beside the logs, never in the repository's benchmarks/ (code); one file per material
    assert benchmark and benchmark.startswith(path) and benchmark.endswith(".tsv"), benchmark


def test_mp_fetch_is_a_local_rule_and_only_source_mp_declares_the_key(parsed):
    assert parsed["paper"]["rules"]["structures_mp_fetch"]["local"]
    assert parsed["paper"]["envvars"] == ["MP_API_KEY"]
    assert parsed["default"]["envvars"] == []


def test_only_source_mp_needs_the_key(workflow_dir, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    proc = snakemake(["-n", "--cores", "1"], cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "structures" in proc.stdout
    # source mp: Snakemake stops before planning, naming the variable
    proc = snakemake(["-n", "--cores", "1", "--configfile", "configs/paper.yaml"], cwd=workflow_dir, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "environment variables are requested by the workflow but undefined" in out and "MP_API_KEY" in out, out
    assert not (workflow_dir / "results").exists()


def test_snakemake_report_embeds_the_site_under_the_workflow_description(workflow_dir):
    # Stand-ins for a finished run's outputs: what --report reads is the files, not how they
    # were made (it notes the missing run metadata and goes on).
    site = workflow_dir / "results" / "report"
    (site / "img").mkdir(parents=True)
    (site / "index.html").write_text('<html><a href="cluster_1.html"><img src="img/dendrogram.png"></a></html>')
    (site / "cluster_1.html").write_text("<html>cluster 1</html>")
    (site / "img" / "dendrogram.png").write_bytes(PNG)
    (workflow_dir / "results" / "model").mkdir(parents=True)
    for name in ("onset_parity.png", "worst_by_quartile.png"):
        (workflow_dir / "results" / "model" / name).write_bytes(PNG)
    for name in ("rounds.png", "round0/merit_sigma.png", "round0/shortlist_spectra.png"):
        (workflow_dir / "results" / "screen" / name).parent.mkdir(parents=True, exist_ok=True)
        (workflow_dir / "results" / "screen" / name).write_bytes(PNG)
    proc = snakemake(["--report", "report.zip"], cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with zipfile.ZipFile(workflow_dir / "report.zip") as zf:
        names = zf.namelist()
        page = zf.read("report/report.html").decode()
    # the whole site, its relative links intact, in one folder of the zip
    folders = {Path(n).parent for n in names if n.endswith("/index.html")}
    assert len(folders) == 1, names
    folder = folders.pop()
    assert {f"{folder}/cluster_1.html", f"{folder}/img/dendrogram.png"} <= set(names), names
    assert "optabs turns crystal structures" in page  # report/workflow.rst
    assert "The workflow's HTML site" in page  # report/site.rst, the site's caption
    assert '"Report"' in page  # its category


# The bare job's distributions, pinned as in pyproject.toml (any extra, e.g. snakemake[reports]).
BARE_JOB_PINS = ("snakemake", "snakefmt", "pandas", "pyyaml", "jsonschema", "pyarrow")


def pyproject_pins() -> dict[str, str]:
    """Every ``name==version`` requirement of pyproject.toml (dependencies and extras) as name -> version."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = {}
    for line in lines:
        req = Requirement(line)
        (spec,) = req.specifier
        if spec.operator == "==":
            pins[req.name.lower()] = spec.version
    return pins


@pytest.fixture(scope="module")
def github_ci():
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "main.yml").read_text())
    return {name: "\n".join(step.get("run", "") for step in job["steps"]) for name, job in workflow["jobs"].items()}


def test_github_ci_runs_make_test_like_ci_run(github_ci):
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert any("make test" in script.splitlines() for script in github_ci.values()), github_ci


def test_github_ci_checks_the_workflow_in_a_bare_snakemake(github_ci):
    # One job with Snakemake and no science stack: optabs without its dependencies, then the
    # catalog's checks (snakefmt, --lint, a dry run), each a command of its own.
    (bare,) = [script for script in github_ci.values() if "pip install --no-deps -e ." in script]
    commands = [line.split() for line in bare.splitlines()]
    assert ["snakefmt", "--check", "."] in commands, bare
    assert any(c[:2] == ["snakemake", "--lint"] for c in commands), bare
    assert any(c[:2] == ["snakemake", "-n"] for c in commands), bare
    installed = [word for c in commands if c[:2] == ["pip", "install"] for word in c[2:]]
    assert not {"pymatgen", "torch", "gpaw", "custodian"} & {w.split("==")[0] for w in installed}, installed
    pins = pyproject_pins()
    for name in BARE_JOB_PINS:
        assert f"{name}=={pins[name]}" in installed, f"{name} is not pinned as in pyproject.toml ({pins[name]}): {installed}"


def test_the_test_config_runs_on_a_subset_of_the_embedded_catalog():
    # .test/config.yaml (the catalog's test config; tests/workflow/test_pipeline.py runs it end to
    # end) reads .test/catalog.yaml: entries of resources/catalog.yaml, unchanged
    import yaml

    assert yaml.safe_load((REPO / ".test" / "config.yaml").read_text())["catalog"] == ".test/catalog.yaml"
    test = yaml.safe_load((REPO / ".test" / "catalog.yaml").read_text())["entries"]
    embedded = {e["material_id"]: e for e in yaml.safe_load((REPO / "resources" / "catalog.yaml").read_text())["entries"]}
    assert len(test) == 8
    for entry in test:
        assert entry == embedded.get(entry["material_id"]), f"{entry['material_id']} differs from resources/catalog.yaml"
