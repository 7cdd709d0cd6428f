"""The workflow as a whole: dry runs of the whole DAG (past the structures checkpoint too) and of
each stage's target, lint of every config, and the demo's stages to completion."""

import re

import pandas as pd
import pytest

from conftest import REPO, copy_workflow, snakemake, write_catalog_subset
from fakes.dag import full_dag_jobs, job_counts, job_resources, synthetic_kept

# A small catalog for the stage targets: three materials kept, NiO rejected by the filter.
TARGET_CATALOG = ["mp-1265", "SrS-rocksalt", "mp-1190", "NiO-rocksalt"]
KEPT = 3
# What each stage's target plans once the structures checkpoint has run: its stage and the
# stages before it, never a later one (GPAW, the default engine: one dft_gpaw job per material).
STAGE_JOBS = {
    "all_structures": {},
    "all_dft": {"dft_gpaw": KEPT},
    "all_spectra": {"dft_gpaw": KEPT, "spectra": 1},
    "all_dataset": {"dft_gpaw": KEPT, "spectra": 1, "dataset": 1},
    "all_model": {"dft_gpaw": KEPT, "spectra": 1, "dataset": 1, "model_graphs": 1, "model_train": 1,
                  "model_train_member": 2, "model_evaluate": 1, "model_embeddings": 1},
    "all_interpret": {"dft_gpaw": KEPT, "spectra": 1, "dataset": 1, "model_graphs": 1, "model_train": 1,
                      "model_train_member": 2, "model_evaluate": 1, "model_embeddings": 1,
                      "interpret_environments": 1, "interpret": 1},
}


def planned_counts(proc) -> dict[str, int]:
    """The "Job stats" table of a (dry) run: rule -> number of jobs, without the total."""
    counts = job_counts(proc.stdout)
    counts.pop("total", None)
    return counts


def test_dry_run_default_config(workflow_dir):
    proc = snakemake(["-n", "--cores", "2"], cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "structures" in proc.stdout


def test_dry_run_paper_config_with_slurm_profile(workflow_dir):
    # source mp declares MP_API_KEY (envvars): a plan needs it defined, not valid
    proc = snakemake(
        ["-n", "--profile", "profiles/slurm", "--configfile", "configs/paper.yaml"], cwd=workflow_dir, timeout=120,
        env={"MP_API_KEY": ""},
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # the Materials Project source fetches once, then filters
    assert "structures_mp_fetch" in proc.stdout
    assert "structures" in proc.stdout


# Every config the repository ships: the default (config.yaml), configs/*.yaml, and the test
# config of the whole chain on tiny data (.test/config.yaml).
CONFIGS = [None, *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.yaml")), ".test/config.yaml"]


@pytest.mark.parametrize("configfile", CONFIGS, ids=lambda c: c or "default")
def test_lint_reports_nothing(workflow_dir, tmp_path, configfile):
    args = ["--lint"]
    if configfile:
        args += ["--configfile", configfile]
    if configfile == "configs/database.yaml":
        (tmp_path / "alignn").mkdir()  # the folder must be named; lint reads nothing from it
        args += ["--config", f"dataset_dir={tmp_path / 'alignn'}"]
    # source mp (configs/paper.yaml) declares MP_API_KEY (envvars): defined, not valid
    proc = snakemake(args, cwd=workflow_dir, timeout=120, env={"MP_API_KEY": ""})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Lints for" not in out, out
    assert "Congratulations, your workflow is in a good condition!" in out, out


@pytest.mark.parametrize(("configfile", "source", "engine"), [
    (None, "catalog", "gpaw"),
    ("configs/paper.yaml", "mp", "vasp"),
], ids=["default", "paper"])
def test_full_dag_past_the_structures_checkpoint(workflow_dir, configfile, source, engine):
    # The checkpoint's outputs written by hand (20 materials): the dry run plans one DFT job per
    # material and every later stage, and neither the checkpoint nor the MP fetch again.
    ids = synthetic_kept(workflow_dir, 20, source=source)
    args = ["-n", "--cores", "2"] + (["--configfile", configfile] if configfile else [])
    proc = snakemake(args, cwd=workflow_dir, timeout=120, env={"MP_API_KEY": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the default config trains a 3-member ensemble, the paper config 5 members
    assert job_counts(proc.stdout) == full_dag_jobs(engine, 20, 5 if configfile else 3), proc.stdout
    assert sorted(re.findall(r"output: results/dft/(\S+)/result\.json", proc.stdout)) == ids
    # each DFT job carries its engine's resources from rules/dft.smk
    resources = job_resources(proc.stdout, f"dft_{engine}")
    assert len(resources) == 20, proc.stdout
    for job in resources:
        assert {"runtime", "mem_mb"} <= set(job), job
        if engine == "vasp":
            assert job["mpi"] == "srun" and job["tasks"] == "32", job


def test_stage_targets_before_the_structures_checkpoint_plan_only_it(workflow_dir):
    # The DFT jobs join the DAG only once the checkpoint has run: all_dft on the embedded catalog
    # plans the checkpoint first, and nothing else.
    for target in ("all_structures", "all_dft"):
        proc = snakemake(["-n", "--cores", "2", target], cwd=workflow_dir, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert planned_counts(proc) == {"structures": 1, target: 1}, proc.stdout


@pytest.fixture(scope="module")
def structures_done(tmp_path_factory):
    """A workflow copy on TARGET_CATALOG whose structures checkpoint has really run (about 5 s)."""
    wf = copy_workflow(tmp_path_factory.mktemp("targets") / "wf")
    write_catalog_subset(wf / "resources" / "catalog.yaml", TARGET_CATALOG)
    proc = snakemake(["--cores", "1", "all_structures"], cwd=wf, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    kept = pd.read_parquet(wf / "results/structures/kept.parquet")
    assert len(kept) == KEPT and "NiO-rocksalt" not in set(kept.material_id)
    return wf


@pytest.mark.parametrize("target", STAGE_JOBS)
def test_stage_target_plans_its_stage_and_nothing_after_it(structures_done, target):
    proc = snakemake(["-n", "--cores", "2", target], cwd=structures_done, timeout=120)
    assert proc.returncode == 0, proc.stderr
    expected = {**STAGE_JOBS[target], target: 1} if STAGE_JOBS[target] else {}
    assert planned_counts(proc) == expected, proc.stdout
    if target == "all_dft":
        # one job per kept material, by id
        kept = pd.read_parquet(structures_done / "results/structures/kept.parquet").material_id
        assert sorted(set(re.findall(r"output: results/dft/(\S+)/result\.json", proc.stdout))) == sorted(kept)


def test_dataset_target_with_the_dataset_source_imports(workflow_dir, tmp_path):
    folder = tmp_path / "alignn"
    folder.mkdir()
    proc = snakemake(["-n", "--cores", "2", "all_dataset", "--config", "source=dataset", f"dataset_dir={folder}"],
                     cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert planned_counts(proc) == {"dataset_import": 1, "all_dataset": 1}, proc.stdout


@pytest.mark.slow
def test_demo_structures_stage_runs_offline(workflow_dir):
    proc = snakemake(
        ["--profile", "profiles/local", "--cores", "2", "results/structures/kept.parquet"],
        cwd=workflow_dir,
        timeout=600,
        env={"MP_API_KEY": ""},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    kept = pd.read_parquet(workflow_dir / "results/structures/kept.parquet")
    rejected = pd.read_csv(workflow_dir / "results/structures/rejected.csv")
    assert len(kept) >= 25
    # the catalog's deliberate rejects: one with H, one from Mn-Ni, one lanthanide other than La/Ce
    details = " ".join(rejected["detail"])
    assert "H" in rejected.loc[rejected.criterion == "excluded_element", "detail"].str.split(", ").sum()
    assert any(el in details for el in ("Mn", "Fe", "Co", "Ni"))
    assert any(el in details for el in ("Nd", "Pr", "Sm", "Gd", "Eu"))
    assert set(kept["material_id"]).isdisjoint(rejected["material_id"])
