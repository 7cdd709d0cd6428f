"""The slurm profile against a real SLURM: a private single-node cluster (munge, slurmctld, slurmd
on loopback, partitions ``cpu`` and ``gpu``) started for the session; jobs really go through sbatch.

The node has 2 CPUs and no GPU (it counts one, see slurm_cluster.py). The requests of the workflow
profile (profiles/default, which snakemake loads beside profiles/slurm) are capped to the node
(training asks for 4 CPUs and 32 GB, VASP for 32 tasks and 64 GB): the test passes that profile's
own set-resources again with those numbers lowered, nothing else.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, copy_workflow, stand_in_vasp_config, write_catalog_subset
from fakes.slurm_cluster import SlurmUnavailable
from fakes.slurm_cluster import slurm_cluster as start_slurm_cluster

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

# Per-rule resources are the workflow profile's; profiles/slurm holds the site settings only.
PROFILE = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
GPAW_SUBSET = ["mp-1265", "SrS-rocksalt", "mp-1190"]
VASP_SUBSET = ["mp-1265", "Na2O-antifluorite", "CrO3-Ama2"]  # all kept; the fake POTCARs cover them
# The demo catalog's materials that pass the filter (README): what the bundling note scales to.
DEMO_KEPT = 40
# Short polling so a test is not mostly waiting; squeue because there is no accounting (sacct).
FAST_POLLING = [
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--latency-wait", "10",
]


@pytest.fixture(scope="session")
def slurm_cluster():
    """A private SLURM for the session (skips with the reason when it cannot run here)."""
    try:
        with start_slurm_cluster() as cluster:
            yield cluster
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))


def capped_resources(cluster) -> list[str]:
    """The workflow profile's set-resources as ``--set-resources`` arguments, capped to the test node.

    A bundle (group job) asks for the sum of its members' CPUs and memory (3 GPAW runs: 3 CPUs);
    ``--resources`` caps that to the node, and snakemake runs the members in series beyond it.
    """
    args = ["--resources", f"cpus_per_task={cluster.cpus}", f"mem_mb={cluster.mem_mb // 2}", "--set-resources"]
    for rule, resources in PROFILE["set-resources"].items():
        for name, value in resources.items():
            if name in ("cpus_per_task", "tasks"):
                value = min(value, cluster.cpus)
            elif name == "mem_mb":
                value = min(value, cluster.mem_mb // 2)
            args.append(f"{rule}:{name}={value}")
    return args


def job_env(cluster, extra: dict | None = None) -> dict[str, str]:
    """The environment of snakemake and, through sbatch --export=ALL, of every job: the private
    cluster's SLURM_CONF and the venv first on PATH (jobs run ``python -m snakemake``)."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **cluster.env,
        "PATH": os.pathsep.join([venv_bin, cluster.env.get("PATH", "")]),
        "GPAW_CONFIG": str(REPO / "resources/gpaw-siteconfig.py"),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        **(extra or {}),
    }


def slurm_args(cluster, *targets: str, configfile: str = "test.yaml", extra: tuple[str, ...] = ()) -> list[str]:
    # targets first: --configfile/--set-resources take every argument after them
    return [SNAKEMAKE, *targets, "--profile", "profiles/slurm", *FAST_POLLING, *extra,
            *capped_resources(cluster), "--configfile", configfile]


def run_slurm(cluster, workflow_dir, *targets, env=None, extra=(), timeout=480):
    return subprocess.run(slurm_args(cluster, *targets, extra=extra), cwd=workflow_dir, capture_output=True,
                          text=True, timeout=timeout, env=job_env(cluster, env))


def vasp_workflow(dest: Path, fake_potcars: Path, control: dict | None = None) -> tuple[Path, dict]:
    """A workflow copy on the stand-in VASP (tests/fake_vasp.py) for VASP_SUBSET."""
    workflow_dir = copy_workflow(dest)
    return workflow_dir, stand_in_vasp_config(workflow_dir, fake_potcars, VASP_SUBSET, control)


def rule_of(job: dict) -> str:
    """The rule a SLURM job ran, from the comment the executor gives it: ``rule_<rule>`` or
    ``rule_<rule>_wildcards_<...>``; a bundle of one rule reads ``rule_<group>_<rule>``."""
    name = job.get("Comment", "").removeprefix("rule_").split("_wildcards_")[0]
    half = len(name) // 2
    return name[:half] if name == f"{name[:half]}_{name[:half]}" else name


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def test_slurm_cluster_schedules_a_gpu_job(slurm_cluster, tmp_path):
    proc = slurm_cluster.command("sbatch", "--parsable", "--gpus=1", "--partition=gpu", "-D", str(tmp_path),
                                 "-o", str(tmp_path / "out"),
                                 "--wrap", "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES")
    job_id = proc.stdout.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (job,) = [j for j in slurm_cluster.jobs() if j["JobId"] == job_id]
        if job["JobState"] == "COMPLETED":
            break
        time.sleep(0.5)
    assert job["JobState"] == "COMPLETED" and job["Partition"] == "gpu"
    assert "gpu:1" in job.get("TresPerJob", "")
    assert "CUDA_VISIBLE_DEVICES=0" in (tmp_path / "out").read_text()


def test_demo_pipeline_on_slurm(slurm_cluster, tmp_path):
    workflow_dir = copy_workflow(tmp_path / "wf")
    write_catalog_subset(workflow_dir / "small.yaml", GPAW_SUBSET)
    (workflow_dir / "test.yaml").write_text(yaml.safe_dump(
        {"catalog": "small.yaml", "interpret": {"n_clusters": 2}, "model": {"preset": "demo", "epochs": 5}}))
    start = time.monotonic()
    proc = run_slurm(slurm_cluster, workflow_dir, timeout=600)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-6000:]
    results = workflow_dir / "results"
    assert (results / "report/index.html").is_file()
    summary = pd.read_csv(results / "dft/summary.csv")
    assert sorted(summary.material_id) == sorted(GPAW_SUBSET) and (summary.status == "ok").all()

    jobs = slurm_cluster.jobs(workflow_dir)
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(rule_of(job), []).append(job)
    print(f"\n{len(jobs)} sbatch jobs in {elapsed:.0f} s:",
          {rule: [j["Partition"] for j in js] for rule, js in sorted(by_rule.items())})
    assert all(j["JobState"] == "COMPLETED" for j in jobs), [(rule_of(j), j["JobState"]) for j in jobs]
    # training asked for one GPU and ran in the GPU partition
    (train,) = by_rule["model_train"]
    assert train["Partition"] == "gpu" and "gpu:1" in train.get("TresPerJob", "")
    # the three GPAW runs were bundled (group-components dft_gpaw: 8) into one CPU-partition job
    (dft,) = by_rule["dft_gpaw"]
    assert dft["Partition"] == "cpu"
    assert all(j["Partition"] == "cpu" for rule, js in by_rule.items() if rule != "model_train" for j in js)
    # every other rule of the chain is one sbatch job, the checkpoint included
    rules = {"structures", "dft_gpaw", "spectra", "dataset", "model_graphs", "model_train", "model_evaluate",
             "model_embeddings", "interpret_environments", "interpret", "report"}
    assert set(by_rule) == rules and len(jobs) == len(rules)


def dft_submissions(cluster, workflow_dir) -> list[dict]:
    return [j for j in cluster.jobs(workflow_dir) if rule_of(j) == "dft_vasp"]


def test_bundling_cuts_sbatch_submissions(slurm_cluster, tmp_path, fake_potcars):
    counts = {}
    for name, grouping in (("one_per_material", ()), ("bundled", ("--group-components", "dft_vasp=8"))):
        workflow_dir, env = vasp_workflow(tmp_path / name, fake_potcars)
        proc = run_slurm(slurm_cluster, workflow_dir, "results/dft/summary.csv", env=env, extra=grouping)
        assert proc.returncode == 0, proc.stderr[-6000:]
        summary = pd.read_csv(workflow_dir / "results/dft/summary.csv")
        assert sorted(summary.material_id) == sorted(VASP_SUBSET) and (summary.status == "ok").all()
        jobs = dft_submissions(slurm_cluster, workflow_dir)
        assert all(j["JobState"] == "COMPLETED" and j["Partition"] == "cpu" for j in jobs)
        counts[name] = len(jobs)
    assert counts == {"one_per_material": len(VASP_SUBSET), "bundled": 1}
    # the same rule for the demo catalog's kept materials: ceil(40 / 8) = 5 submissions instead of 40
    print(f"\nDFT sbatch submissions for {len(VASP_SUBSET)} materials: {counts}; for the demo catalog "
          f"({DEMO_KEPT} kept): {DEMO_KEPT} one per material, {math.ceil(DEMO_KEPT / 8)} in bundles of 8")


def slurm_job_running_in(folder: Path) -> str | None:
    """The SLURM job id of a process working in ``folder`` (or below), from its environment."""
    folder = folder.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if cwd == folder or folder in cwd.parents:
            for var in environ:
                if var.startswith(b"SLURM_JOB_ID="):
                    return var.split(b"=", 1)[1].decode()
    return None


def test_scancel_of_a_running_job_is_retried(slurm_cluster, tmp_path, fake_potcars):
    # the stand-in VASP waits 30 s in CrO3-Ama2's folder: long enough to cancel that job while it runs
    slow = "CrO3-Ama2"
    workflow_dir, env = vasp_workflow(tmp_path / "wf", fake_potcars, {"sleep": {"seconds": 30, "only_in": slow}})
    log = open(workflow_dir / "snakemake.stderr", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(slurm_args(slurm_cluster, "results/dft/summary.csv"), cwd=workflow_dir,
                            stdout=subprocess.DEVNULL, stderr=log, env=job_env(slurm_cluster, env))
    try:
        # a bundle of one has no wildcards in its SLURM comment: find the job by its running VASP
        job_id = wait_until(lambda: slurm_job_running_in(workflow_dir / "results/dft" / slow), 240,
                            f"no SLURM job running VASP for {slow}")
        slurm_cluster.command("scancel", job_id)
        # the next attempt runs at full speed (the stand-in reads its control file on every run)
        (workflow_dir / "fake_control.json").write_text("{}")
        returncode = proc.wait(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    stderr = (workflow_dir / "snakemake.stderr").read_text()
    # the profile's `retries: 2` submits the cancelled job again; the workflow finishes
    assert returncode == 0, stderr[-6000:]
    # the failed job's SLURM log (show-failed-logs), then the retry
    assert f"JOB {job_id} ON {slurm_cluster.host} CANCELLED" in stderr
    assert "Error in group dft_vasp" in stderr and "Trying to restart job" in stderr
    states = {j["JobId"]: j["JobState"] for j in dft_submissions(slurm_cluster, workflow_dir)}
    assert states.pop(job_id) == "CANCELLED"
    # three materials, one of them twice
    assert sorted(states.values()) == ["COMPLETED"] * 3, states
    summary = pd.read_csv(workflow_dir / "results/dft/summary.csv")
    assert sorted(summary.material_id) == sorted(VASP_SUBSET) and (summary.status == "ok").all()
    assert (workflow_dir / "results/dft" / slow / "result.json").is_file()
