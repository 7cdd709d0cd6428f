"""`snakemake --profile slurm` as users type it, against a real SLURM: a private single-node cluster
(munge, slurmctld, slurmd on loopback, partitions ``cpu`` and ``gpu``) started for the session;
jobs really go through sbatch.

The site profile is installed the documented way, ``make slurm-profile PARTITION=cpu
GPU_PARTITION=gpu`` into a private ``XDG_CONFIG_HOME``, where snakemake finds ``--profile slurm``;
the test site then sets what a site without accounting sets (job status from squeue) and polls
faster. The node declares 32 CPUs and 128 GB, the size of the cluster nodes the rules' own
requests are written for (slurm_cluster.py), so nothing is capped: each job asks for what its
rule declares. It has no GPU: it declares one GPU that the scheduler only counts.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, SNAKEMAKE, copy_workflow, snakemake, stand_in_vasp_config, write_catalog_subset
from fakes.slurm_cluster import SlurmUnavailable
from fakes.slurm_cluster import slurm_cluster as start_slurm_cluster
from optabs.model.checkpoint import load_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

GPAW_SUBSET = ["mp-1265", "SrS-rocksalt", "mp-1190"]
VASP_SUBSET = ["mp-1265", "Na2O-antifluorite", "CrO3-Ama2"]  # all kept; the fake POTCARs cover them
# Five kept materials whose elements the fake POTCARs cover: three bundles of at most two.
BUNDLE_SUBSET = ["mp-1265", "mp-2605", "Na2O-antifluorite", "MgS-rocksalt", "CaS-rocksalt"]
# The demo catalog's materials that pass the filter (README): what the bundling note scales to.
DEMO_KEPT = 40
# MPI tasks of each stand-in VASP run: the rule asks for 32, one stand-in process per task; two
# show the launch as well (--set-resources changes that one value).
VASP_TASKS = 2
# What the test site adds to the installed profile: no accounting (sacct) here, so squeue (which
# needs the cluster's MinJobAge=3600), and short polling so that a test is not mostly waiting.
TEST_SITE = {
    "slurm-status-command": "squeue",
    "slurm-init-seconds-before-status-checks": 2,
    "seconds-between-status-checks": 2,
    "latency-wait": 10,
}


@pytest.fixture(scope="session")
def slurm_cluster():
    """A private SLURM for the session (skips with the reason when it cannot run here)."""
    try:
        with start_slurm_cluster() as cluster:
            yield cluster
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def site(tmp_path) -> dict[str, str]:
    """The site profile installed by ``make slurm-profile`` (partitions cpu and gpu, no account)
    with TEST_SITE; returns the environment variable that makes snakemake find it."""
    xdg = tmp_path / "xdg"
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "slurm-profile", "PARTITION=cpu", "GPU_PARTITION=gpu"],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "XDG_CONFIG_HOME": str(xdg)})
    assert proc.returncode == 0, proc.stderr
    config = xdg / "snakemake/slurm/config.yaml"
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), **TEST_SITE}))
    return {"XDG_CONFIG_HOME": str(xdg)}


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


def slurm_command(*args: str) -> list[str]:
    """``snakemake --profile slurm`` and ``args``, as typed (SNAKEMAKE is the venv's snakemake)."""
    return [SNAKEMAKE, "--profile", "slurm", *args]


def run_slurm(cluster, workflow_dir, *args, env=None, timeout=480):
    return subprocess.run(slurm_command(*args), cwd=workflow_dir, capture_output=True, text=True,
                          timeout=timeout, env=job_env(cluster, env))


def use_config(workflow_dir: Path, settings: dict) -> None:
    """Put ``settings`` into the workflow copy's own config.yaml, so that the plain command runs them."""
    path = workflow_dir / "config.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **settings}))


def vasp_workflow(dest: Path, fake_potcars: Path, control: dict | None = None,
                  ids: list[str] = VASP_SUBSET) -> tuple[Path, dict]:
    """A workflow copy on the stand-in VASP (tests/fake_vasp.py) for catalog entries ``ids``, its
    settings in config.yaml; every stand-in run must be one task of a SLURM step of VASP_TASKS tasks."""
    workflow_dir = copy_workflow(dest)
    env = stand_in_vasp_config(workflow_dir, fake_potcars, ids,
                               {"require_mpi": {"ntasks": VASP_TASKS}, **(control or {})})
    use_config(workflow_dir, yaml.safe_load((workflow_dir / "test.yaml").read_text()))
    return workflow_dir, env


def rule_of(job: dict) -> str:
    """The rule a SLURM job ran, from the comment the executor gives it: ``rule_<rule>`` or
    ``rule_<rule>_wildcards_<...>``; a bundle of one rule reads ``rule_<group>_<rule>``."""
    name = job.get("Comment", "").removeprefix("rule_").split("_wildcards_")[0]
    half = len(name) // 2
    return name[:half] if name == f"{name[:half]}_{name[:half]}" else name


def memory_mb(job: dict) -> int:
    """A job's memory request in MB from scontrol's MinMemoryNode (``32000M``; ``62.50G`` for 64000 MB)."""
    value, unit = float(job["MinMemoryNode"][:-1]), job["MinMemoryNode"][-1]
    return round(value * {"M": 1, "G": 1024, "T": 1024**2}[unit])


def by_rule(jobs: list[dict]) -> dict[str, list[dict]]:
    """The jobs of each rule, in submission order."""
    grouped: dict[str, list[dict]] = {}
    for job in sorted(jobs, key=lambda j: int(j["JobId"])):
        grouped.setdefault(rule_of(job), []).append(job)
    return grouped


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


def test_snakemake_profile_slurm_as_typed_runs_the_demo_pipeline(slurm_cluster, site, tmp_path):
    workflow_dir = copy_workflow(tmp_path / "wf")
    write_catalog_subset(workflow_dir / "small.yaml", GPAW_SUBSET)
    use_config(workflow_dir, {"catalog": "small.yaml", "interpret": {"n_clusters": 2},
                              "model": {"preset": "demo", "epochs": 5, "ensemble": 2}})
    start = time.monotonic()
    proc = run_slurm(slurm_cluster, workflow_dir, env=site, timeout=600)  # snakemake --profile slurm
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr[-6000:]
    assert "Using profiles slurm and workflow specific profile profiles/default" in proc.stderr
    results = workflow_dir / "results"
    assert (results / "report/index.html").is_file()
    summary = pd.read_csv(results / "dft/summary.csv")
    assert sorted(summary.material_id) == sorted(GPAW_SUBSET) and (summary.status == "ok").all()

    jobs = by_rule(slurm_cluster.jobs(workflow_dir))
    print(f"\n{sum(map(len, jobs.values()))} sbatch jobs in {elapsed:.0f} s:",
          {rule: [j["Partition"] for j in js] for rule, js in sorted(jobs.items())})
    assert all(j["JobState"] == "COMPLETED" for js in jobs.values() for j in js)
    # every rule of the chain is one sbatch job, the checkpoint included; each GPAW run its own
    assert set(jobs) == {"structures", "dft_gpaw", "spectra", "dataset", "model_graphs", "model_train",
                         "model_train_member", "model_evaluate", "model_embeddings", "interpret_environments",
                         "interpret", "screen_graphs", "screen_round", "screen", "report"}
    assert {rule: len(js) for rule, js in jobs.items() if len(js) != 1} == {"dft_gpaw": 3}
    # training: the GPU partition (the executor's choice for a job with a GPU), one GPU, and the
    # rule's own threads, memory and runtime (4 CPUs, 32000 MB, 720 min)
    (train,) = jobs.pop("model_train")
    assert train["Partition"] == "gpu" and "gpu:1" in train.get("TresPerJob", "")
    assert (train["NumCPUs"], memory_mb(train), train["TimeLimit"]) == ("4", 32000, "12:00:00")
    # the ensemble's second member: its own job on its own GPU, sized as member 0
    (member,) = jobs.pop("model_train_member")
    assert member["Partition"] == "gpu" and "gpu:1" in member.get("TresPerJob", "")
    assert (member["NumCPUs"], memory_mb(member), member["TimeLimit"]) == ("4", 32000, "12:00:00")
    # everything else in the CPU partition, with its rule's size: e.g. structures 60 min, 8000 MB
    assert {j["Partition"] for js in jobs.values() for j in js} == {"cpu"}
    (structures,) = jobs["structures"]
    assert (memory_mb(structures), structures["TimeLimit"]) == (8000, "01:00:00")
    # a GPAW job: one CPU, 3000 MB, 2 h
    assert {(j["NumCPUs"], memory_mb(j), j["TimeLimit"]) for j in jobs["dft_gpaw"]} == {("1", 3000, "02:00:00")}

    # One value changed on the command line changes that value only; --default-resources reaches
    # what the rules leave unset (here the partition, which every job then asks for by name).
    proc = run_slurm(slurm_cluster, workflow_dir, "results/model/metrics.json", "--forcerun", "model_train",
                     "--set-resources", "model_train:runtime=37", "--default-resources", "slurm_partition=gpu",
                     env=site, timeout=300)
    assert proc.returncode == 0, proc.stderr[-6000:]
    again = by_rule(slurm_cluster.jobs(workflow_dir))
    train2, evaluate2 = again["model_train"][-1], again["model_evaluate"][-1]
    assert train2["JobId"] != train["JobId"] and len(again["model_evaluate"]) == 2
    assert train2["TimeLimit"] == "00:37:00"
    assert (train2["NumCPUs"], memory_mb(train2), train2["Partition"]) == ("4", 32000, "gpu")
    assert "gpu:1" in train2.get("TresPerJob", "")
    assert evaluate2["Partition"] == "gpu"  # a CPU rule, sent by --default-resources
    assert (memory_mb(evaluate2), evaluate2["TimeLimit"]) == (8000, "01:00:00")  # its rule's own


def dft_submissions(cluster, workflow_dir) -> list[dict]:
    """The sbatch jobs that ran VASP: one per material, or a bundle of several (comment rule_dft_dft_vasp)."""
    return [j for j in cluster.jobs(workflow_dir) if "dft_vasp" in j.get("Comment", "")]


def stand_in_runs(workflow_dir: Path, material_id: str) -> list[dict]:
    """Every stand-in VASP run of one material: what it saw, in order (fake_vasp.py's run logs)."""
    runs = []
    for log in sorted((workflow_dir / "results/dft" / material_id).rglob("fake_vasp_runs.json")):
        runs += json.loads(log.read_text())
    return runs


def test_vasp_runs_under_srun_with_its_tasks_and_custodian_still_corrects(slurm_cluster, site, tmp_path,
                                                                         fake_potcars):
    """Each VASP run is `srun -n <tasks> vasp`: a job step of the job's tasks (the stand-in fails any
    other launch), and a VASP error inside that step is corrected by custodian as without SLURM."""
    workflow_dir, env = vasp_workflow(tmp_path / "wf", fake_potcars, {
        "errors": {"relax": {"kind": "subspace", "runs": 1, "only_in": "Na2O-antifluorite"}}})
    proc = run_slurm(slurm_cluster, workflow_dir, "results/dft/summary.csv",
                     "--set-resources", f"dft_vasp:tasks={VASP_TASKS}", env={**site, **env})
    assert proc.returncode == 0, proc.stderr[-6000:]
    summary = pd.read_csv(workflow_dir / "results/dft/summary.csv")
    assert sorted(summary.material_id) == sorted(VASP_SUBSET) and (summary.status == "ok").all()
    jobs = dft_submissions(slurm_cluster, workflow_dir)
    assert len(jobs) == 3 and all(j["JobState"] == "COMPLETED" and j["Partition"] == "cpu" for j in jobs)
    assert {j["NumTasks"] for j in jobs} == {str(VASP_TASKS)}  # sbatch --ntasks from the rule's tasks
    job_ids = {j["JobId"] for j in jobs}
    for material_id in VASP_SUBSET:
        runs = stand_in_runs(workflow_dir, material_id)
        assert {r["kind"] for r in runs} >= {"relax", "bandgap", "optics"}
        # rank 0 of a real step (not the batch script itself) of this material's own sbatch job
        for run in runs:
            assert run["mpi"]["ntasks"] == str(VASP_TASKS) and run["mpi"]["rank"] == "0"
            assert run["mpi"]["step_id"] not in (None, "batch") and run["mpi"]["job_id"] in job_ids
        # and the other rank ran beside it
        assert list((workflow_dir / "results/dft" / material_id).rglob("fake_vasp_rank1.json"))
    # the induced error: custodian's VaspErrorHandler set LREAL = False and VASP ran again, in a step
    relax = [r for r in stand_in_runs(workflow_dir, "Na2O-antifluorite") if r["kind"] == "relax"]
    assert [r["error"] for r in relax[:2]] == ["subspace", None]
    assert str(relax[1]["incar"].get("LREAL")).upper().strip(".") in ("FALSE", "F")


def test_bundling_is_opt_in_and_cuts_sbatch_submissions(slurm_cluster, site, tmp_path, fake_potcars):
    """Five materials in three sbatch jobs with --groups/--group-components (bundles of 2, 2 and 1),
    each bundle capped to a node's memory by --resources. As the profiles stand, each material is
    its own sbatch job (the srun test above: three materials, three jobs)."""
    bundle = ("--groups", "dft_vasp=dft", "--group-components", "dft=2", "--resources", "mem_mb=128000")
    workflow_dir, env = vasp_workflow(tmp_path / "wf", fake_potcars, ids=BUNDLE_SUBSET)
    proc = run_slurm(slurm_cluster, workflow_dir, "results/dft/summary.csv",
                     "--set-resources", f"dft_vasp:tasks={VASP_TASKS}", *bundle, env={**site, **env})
    assert proc.returncode == 0, proc.stderr[-6000:]
    summary = pd.read_csv(workflow_dir / "results/dft/summary.csv")
    assert sorted(summary.material_id) == sorted(BUNDLE_SUBSET) and (summary.status == "ok").all()
    jobs = dft_submissions(slurm_cluster, workflow_dir)
    assert len(jobs) == 3 and all(j["JobState"] == "COMPLETED" and j["Partition"] == "cpu" for j in jobs)
    assert all("group_dft" in j.get("Comment", "") or "dft_dft_vasp" in j.get("Comment", "") for j in jobs), jobs
    # the same for the demo catalog's kept materials in bundles of 8: ceil(40 / 8) = 5 submissions instead of 40
    print(f"\nDFT sbatch submissions for {len(BUNDLE_SUBSET)} materials: 3 bundles; for the demo catalog "
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


def run_and_cancel(cluster, workflow_dir: Path, command: list[str], env: dict, running_job, after_cancel=None,
                   timeout: float = 420) -> tuple[int, str, str]:
    """Start ``command`` (a snakemake run) in ``workflow_dir``; once ``running_job()`` names a SLURM
    job id, ``scancel`` it and call ``after_cancel()``; wait for snakemake to end. Returns its exit
    code, its stderr and the cancelled job's id."""
    log = open(workflow_dir / "snakemake.stderr", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, cwd=workflow_dir, stdout=subprocess.DEVNULL, stderr=log, env=job_env(cluster, env))
    try:
        job_id = wait_until(running_job, 400, "the job to cancel did not start")
        cluster.command("scancel", job_id)
        if after_cancel:
            after_cancel()
        returncode = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return returncode, (workflow_dir / "snakemake.stderr").read_text(), job_id


def test_scancel_of_a_running_dft_job_is_retried_with_more_time(slurm_cluster, site, tmp_path, fake_potcars):
    # the stand-in VASP waits 30 s in CrO3-Ama2's folder: long enough to cancel that job while it runs
    slow = "CrO3-Ama2"
    workflow_dir, env = vasp_workflow(tmp_path / "wf", fake_potcars, {"sleep": {"seconds": 30, "only_in": slow}})
    # cancel the job running VASP for the slow material; the next attempt runs at full speed (the
    # stand-in reads its control file on every run)
    control = workflow_dir / "fake_control.json"
    returncode, stderr, job_id = run_and_cancel(
        slurm_cluster, workflow_dir,
        slurm_command("results/dft/summary.csv", "--set-resources", f"dft_vasp:tasks={VASP_TASKS}"), {**site, **env},
        running_job=lambda: slurm_job_running_in(workflow_dir / "results/dft" / slow),
        after_cancel=lambda: control.write_text(json.dumps({"require_mpi": {"ntasks": VASP_TASKS}})))
    # the rule's `retries: 2` submits the cancelled job again; the workflow finishes
    assert returncode == 0, stderr[-6000:]
    # the failed job's SLURM log (show-failed-logs), then the retry
    assert f"JOB {job_id} ON {slurm_cluster.host} CANCELLED" in stderr
    assert "Error in rule dft_vasp" in stderr and "Trying to restart job" in stderr
    jobs = {j["JobId"]: j for j in dft_submissions(slurm_cluster, workflow_dir)}
    cancelled = jobs.pop(job_id)
    assert cancelled["JobState"] == "CANCELLED"
    # three materials, one of them twice
    assert sorted(j["JobState"] for j in jobs.values()) == ["COMPLETED"] * 3
    # the retry of the cancelled material asked for twice the time and memory (attempt 2)
    (retry,) = [j for j in jobs.values() if int(j["JobId"]) > int(job_id) and j["Comment"] == cancelled["Comment"]]
    assert (cancelled["TimeLimit"], memory_mb(cancelled)) == ("1-00:00:00", 64000)
    assert (retry["TimeLimit"], memory_mb(retry)) == ("2-00:00:00", 128000)
    summary = pd.read_csv(workflow_dir / "results/dft/summary.csv")
    assert sorted(summary.material_id) == sorted(VASP_SUBSET) and (summary.status == "ok").all()
    assert (workflow_dir / "results/dft" / slow / "result.json").is_file()


# A slice of the shared oxides, trained long enough per epoch to be cancelled in the middle.
RESUME_MATERIALS, RESUME_EPOCHS = 120, 12
# Bitwise equality needs one torch thread: with 4, the two runs already differed from epoch 2, before
# the cancel (losses by up to 2e-8, weights by 5e-7: multi-threaded CPU sums add in varying order).
ONE_THREAD = ("--set-threads", "model_train=1")


def oxide_slice(shared_data: Path, dest: Path, n: int) -> Path:
    """The first ``n`` materials of the shared database as an ALIGNN folder of their own."""
    dest.mkdir(parents=True)
    rows = (shared_data / "id_prop.csv").read_text().splitlines()[:n]
    (dest / "id_prop.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        shutil.copy(shared_data / row.split(",", 1)[0], dest / row.split(",", 1)[0])
    return dest


def test_training_cancelled_on_slurm_resumes_and_ends_as_an_uninterrupted_run(slurm_cluster, site, tmp_path,
                                                                              shared_data):
    settings = {"source": "dataset", "dataset_dir": str(oxide_slice(shared_data, tmp_path / "slice", RESUME_MATERIALS)),
                "model": {"preset": "demo", "epochs": RESUME_EPOCHS}}
    target = "results/model/checkpoint.pt"
    workflow_dir = copy_workflow(tmp_path / "slurm")
    use_config(workflow_dir, settings)
    train_log = workflow_dir / "logs/model/train.log"

    def training_after_epoch_3() -> str | None:
        """The training job's id once it has finished its third epoch (it runs 12)."""
        if not (train_log.is_file() and f"epoch 3/{RESUME_EPOCHS}:" in train_log.read_text()):
            return None
        return next(j["JobId"] for j in slurm_cluster.jobs(workflow_dir) if rule_of(j) == "model_train")

    returncode, stderr, _ = run_and_cancel(slurm_cluster, workflow_dir, slurm_command(target, *ONE_THREAD), site,
                                           running_job=training_after_epoch_3)
    assert returncode == 0, stderr[-6000:]
    trains = by_rule(slurm_cluster.jobs(workflow_dir))["model_train"]
    assert [j["JobState"] for j in trains] == ["CANCELLED", "COMPLETED"]
    # the retry (attempt 2) asked for twice the rule's time and memory, still one GPU
    assert [(j["TimeLimit"], memory_mb(j)) for j in trains] == [("12:00:00", 32000), ("1-00:00:00", 64000)]
    assert all(j["Partition"] == "gpu" and "gpu:1" in j.get("TresPerJob", "") for j in trains)
    # the retry went on after the last finished epoch (3 or later: cancelling takes a moment)
    text = train_log.read_text()
    assert "resuming from results/model/resume.pt: epoch " in text, text[-3000:]
    done = int(text.split("resuming from results/model/resume.pt: epoch ", 1)[1].split()[0])
    assert 3 <= done < RESUME_EPOCHS
    assert f"epoch {done + 1}/{RESUME_EPOCHS}:" in text and f"epoch {done}/{RESUME_EPOCHS}:" not in text.split("resuming")[1]

    # the same training, uninterrupted, without SLURM: the same best checkpoint, bitwise
    reference = copy_workflow(tmp_path / "local")
    use_config(reference, settings)
    local = snakemake([target, "--cores", "2", *ONE_THREAD], cwd=reference, timeout=600)
    assert local.returncode == 0, local.stderr[-4000:]
    weights = [load_checkpoint(d / target)["state_dict"] for d in (workflow_dir, reference)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    history = [pd.read_csv(d / "results/model/history.csv") for d in (workflow_dir, reference)]
    assert history[0][["epoch", "train_loss", "val_loss"]].equals(history[1][["epoch", "train_loss", "val_loss"]])
