"""The workflow parses, lints and plans in a bare Snakemake (issue 19 item 9): a venv holding only
snakemake, pandas, pyyaml, jsonschema and pyarrow, with the optabs package on its path as
`pip install --no-deps -e .` puts it, and none of the science stack; what the Snakemake
catalog's checks and the bare job of .github/workflows/main.yml run."""

import os
import subprocess

import pytest

from conftest import REPO
from fakes.bare_venv import bare_venv
from fakes.dag import full_dag_jobs, job_counts, synthetic_kept

BARE = ["snakemake", "pandas", "pyyaml", "jsonschema", "pyarrow"]
SCIENCE = ["pymatgen", "torch", "custodian", "gpaw"]
# rules/common.smk logs this line where the science stack is absent (optabs.startup.check_sections)
STARTUP_LINE = "optabs: settings of the engine"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """The bare venv's python, with <repo>/src on its path (a .pth file, as an editable install)."""
    return bare_venv(tmp_path_factory.mktemp("bare") / "venv", BARE, [REPO / "src"])


def run(python, args, cwd, timeout=120):
    """``python args`` in ``cwd`` with nothing of this environment's Python path (PYTHONPATH would
    put src/ and tests/ on it, hiding what the venv lacks); MP_API_KEY defined for source mp."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(MP_API_KEY="", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("module", SCIENCE)
def test_the_bare_venv_lacks_the_science_stack(bare_python, tmp_path, module):
    proc = run(bare_python, ["-c", f"import {module}"], cwd=tmp_path)
    assert proc.returncode != 0 and f"No module named '{module}'" in proc.stderr, proc.stderr


def test_the_bare_venv_imports_optabs_from_this_checkout(bare_python, tmp_path):
    proc = run(bare_python, ["-c", "import optabs, snakemake; print(optabs.__file__)"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(REPO / "src" / "optabs" / "__init__.py")


def test_dry_run_in_the_bare_venv(bare_python, workflow_dir):
    proc = run(bare_python, ["-m", "snakemake", "-n", "--cores", "1"], cwd=workflow_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # the settings are left to the jobs, said in one line
    assert any(line.startswith(STARTUP_LINE) for line in out.splitlines()), out
    assert job_counts(proc.stdout).get("structures") == 1, proc.stdout


def test_lint_in_the_bare_venv(bare_python, workflow_dir):
    proc = run(bare_python, ["-m", "snakemake", "--lint"], cwd=workflow_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Lints for" not in out and "Congratulations, your workflow is in a good condition!" in out, out


@pytest.mark.parametrize(("configfile", "source", "engine"), [
    (None, "catalog", "gpaw"),
    ("configs/paper.yaml", "mp", "vasp"),
], ids=["default", "paper"])
def test_full_dag_in_the_bare_venv(bare_python, workflow_dir, configfile, source, engine):
    # The checkpoint's outputs are written here (pymatgen is in this process, not in the venv);
    # reading them back for the DFT jobs needs pandas and pyarrow only.
    synthetic_kept(workflow_dir, 20, source=source)
    args = ["-m", "snakemake", "-n", "--cores", "2"] + (["--configfile", configfile] if configfile else [])
    proc = run(bare_python, args, cwd=workflow_dir)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # the default config trains a 3-member ensemble, the paper config 5 members
    assert job_counts(proc.stdout) == full_dag_jobs(engine, 20, 5 if configfile else 3), proc.stdout


def test_without_optabs_the_dry_run_says_how_to_install_it(workflow_dir, tmp_path):
    python = bare_venv(tmp_path / "venv", BARE)  # no src/ on the path
    proc = run(python, ["-m", "snakemake", "-n", "--cores", "1"], cwd=workflow_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "WorkflowError" in out and "rules/common.smk" in out, out
    assert "cannot import optabs" in out and "pip install --no-deps -e ." in out, out
    assert not (workflow_dir / "results").exists()

