"""Shared fixtures: the repository, a throw-away copy of the workflow, snakemake runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data" / "oxide-surrogate"
MP_REFERENCE = SHARED / "data" / "mp-absorption-reference"
VASP_DATA = REPO / "tests" / "data" / "vasp"
FAKE_VASP = REPO / "tests" / "fakes" / "fake_vasp.py"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_FILES = (
    "Snakefile", "rules", "scripts", "schemas", "resources", "config.yaml", "configs", "profiles", "envs", "report",
    ".test",
)


#: Snakemake options of a local run on the stand-in VASP: no MPI launcher (the rule's default, srun,
#: needs a SLURM cluster), so the stand-in runs as the command alone.
NO_MPI = ("--set-resources", "dft_vasp:mpi=''")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results, not the venv) into ``dest`` so a test can run it in isolation."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    # No src/: the Snakefile and the jobs import the installed optabs package, as a user's do.
    return dest


def snakemake(args: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake in ``cwd``; returns the completed process (stdout and stderr as text)."""
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A fresh copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "wf")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared dataset at {SHARED_DATA} (absent in this clone)")
    return SHARED_DATA


@pytest.fixture
def mp_reference() -> Path:
    if not MP_REFERENCE.is_dir():
        pytest.skip(f"needs the Materials Project reference spectra at {MP_REFERENCE} (absent in this clone)")
    return MP_REFERENCE


@pytest.fixture(scope="session")
def fake_potcars(tmp_path_factory) -> Path:
    """A POTCAR library (pymatgen's PMG_VASP_PSP_DIR layout) of fake POTCARs for PBE_54."""
    root = tmp_path_factory.mktemp("psp")
    template = (VASP_DATA / "POTCAR.template").read_text()
    for symbol, d in json.loads((VASP_DATA / "fake_potcars.json").read_text()).items():
        if symbol.startswith("_"):
            continue
        folder = root / "POT_GGA_PAW_PBE_54" / symbol
        folder.mkdir(parents=True)
        (folder / "POTCAR").write_text(
            template.format(
                symbol=symbol, element=d["element"], zval=d["zval"], pomass=d["pomass"],
                enmax=d["enmax"], enmin=0.75 * d["enmax"],
            )
        )
    return root


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through selenium (skips with the reason if it cannot be had)."""
    from fakes.browser import start_browser

    driver = start_browser()
    yield driver
    driver.quit()


def write_catalog_subset(path: Path, ids) -> None:
    """The embedded catalog's entries ``ids`` (all must exist) as a catalog file at ``path``."""
    import yaml

    catalog = yaml.safe_load((REPO / "resources" / "catalog.yaml").read_text())
    catalog["entries"] = [e for e in catalog["entries"] if e["material_id"] in set(ids)]
    assert len(catalog["entries"]) == len(set(ids)), f"not all of {ids} are in the catalog"
    path.write_text(yaml.safe_dump(catalog))


def stand_in_vasp_config(workflow_dir: Path, fake_potcars: Path, ids, control: dict | None = None,
                         **extra) -> dict[str, str]:
    """Point ``workflow_dir`` at the stand-in VASP (tests/fakes/fake_vasp.py) for catalog entries ``ids``.

    Writes small.yaml (the entries), fake_control.json (``control``: errors, per-material
    models, sleeps) and test.yaml (the VASP engine config plus ``extra`` top-level keys);
    returns the environment variables a run needs.
    """
    import yaml

    write_catalog_subset(workflow_dir / "small.yaml", ids)
    (workflow_dir / "fake_control.json").write_text(json.dumps(control or {}))
    cfg = {
        "catalog": "small.yaml",
        "catalog_max_sites": None,  # CrO3 (8 atoms) is above the demo limit
        "dft": {"engine": "vasp", "vasp": {
            "command": [sys.executable, str(FAKE_VASP)], "potcar_dir": str(fake_potcars),
            "kpoints_density": 50, "polling_time_s": 0.05, "monitor_freq": 1000000,
        }},
        "dataset": {"e_above_hull_max_ev": 0.0, "min_gap_ev": 0.3},
        **extra,
    }
    (workflow_dir / "test.yaml").write_text(yaml.safe_dump(cfg))
    return {"OPTABS_FAKE_VASP_CONTROL": str(workflow_dir / "fake_control.json"), "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture
def restore_logging():
    """``optabs.cli.main`` configures logging for a command-line run (root handlers, third-party
    levels); put it back so later tests see the logging they set up themselves (a handler left on a
    test's captured stderr would catch the next tests' log lines)."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    others = {name: logging.getLogger(name).level for name in ("urllib3", "requests", "mp_api", "matplotlib")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in others.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)
