"""The profiles as users type them: ``make slurm-profile`` installs the site profile where
``snakemake --profile slurm`` finds it, and the workflow profile (profiles/default) joins every
run by itself. Dry runs and argument parsing only; the real SLURM runs are in test_slurm.py."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import REPO, snakemake
from fakes.dag import planned_jobs

SITE = {"ACCOUNT": "myproject", "PARTITION": "short", "GPU_PARTITION": "a100"}
WORKFLOW_PROFILE = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())


def make_slurm_profile(xdg: Path, *extra: str, **variables: str) -> subprocess.CompletedProcess:
    args = [f"{k}={v}" for k, v in {**SITE, **variables}.items()]
    return subprocess.run(["make", "-s", "-C", str(REPO), "slurm-profile", *args, *extra], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "XDG_CONFIG_HOME": str(xdg)})


def parsed_arguments(cwd: Path, xdg: Path, *args: str) -> dict:
    """What snakemake's own command-line parser makes of ``args`` (profiles included) in ``cwd``."""
    code = (
        "import json, sys\n"
        "from snakemake.cli import parse_args\n"
        "_, a = parse_args(sys.argv[1:])\n"
        "print(json.dumps({k: v if isinstance(v, (bool, int, str, type(None))) else sorted(map(str, v))\n"
        "                  if isinstance(v, (dict, list, set)) else str(v) for k, v in vars(a).items()}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_CONFIG_HOME": str(xdg)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture
def slurm_profile_tool():
    spec = importlib.util.spec_from_file_location("slurm_profile", REPO / "tools/slurm_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_slurm_profile_writes_the_site_profile_once(tmp_path):
    xdg = tmp_path / "config"
    proc = make_slurm_profile(xdg)
    assert proc.returncode == 0, proc.stderr
    folder = xdg / "snakemake" / "slurm"
    config = yaml.safe_load((folder / "config.yaml").read_text())
    partitions = yaml.safe_load((folder / "partitions.yaml").read_text())
    # it says what it wrote
    assert str(folder / "config.yaml") in proc.stdout and "slurm_account" in proc.stdout
    # executor and site settings only: nothing per rule, no bundling, no workflow config
    assert config["executor"] == "slurm"
    assert config["default-resources"] == {"slurm_account": "myproject"}
    assert config["slurm-partition-config"] == "partitions.yaml"
    assert {"jobs", "latency-wait", "slurm-status-command", "slurm-init-seconds-before-status-checks"} <= set(config)
    assert not {"set-resources", "group-components", "config", "configfile"} & set(config)
    assert not set(config) & set(WORKFLOW_PROFILE)  # so neither profile hides a key of the other
    assert partitions == {"partitions": {"short": {"max_gpu": 0}, "a100": {"max_gpu": 8}}}

    # a second run without FORCE leaves the profile alone and says so
    (folder / "config.yaml").write_text("# edited by hand\n" + (folder / "config.yaml").read_text())
    again = make_slurm_profile(xdg, PARTITION="other")
    assert again.returncode != 0
    assert "already exist" in again.stderr and "FORCE=1" in again.stderr
    assert (folder / "config.yaml").read_text().startswith("# edited by hand")
    assert "short" in (folder / "partitions.yaml").read_text()
    # FORCE=1 replaces it; without ACCOUNT there is no default resource (the executor guesses one)
    forced = make_slurm_profile(xdg, ACCOUNT="", PARTITION="other", FORCE="1")
    assert forced.returncode == 0, forced.stderr
    assert "default-resources" not in yaml.safe_load((folder / "config.yaml").read_text())
    assert "other" in yaml.safe_load((folder / "partitions.yaml").read_text())["partitions"]


def test_make_slurm_profile_needs_the_partitions(tmp_path):
    proc = make_slurm_profile(tmp_path, GPU_PARTITION="")
    assert proc.returncode != 0 and "GPU_PARTITION is required" in proc.stderr
    proc = make_slurm_profile(tmp_path, PARTITION="short queue")
    assert proc.returncode != 0 and "PARTITION='short queue'" in proc.stderr
    assert not (tmp_path / "snakemake").exists()


def test_snakemake_profile_slurm_as_typed(workflow_dir, tmp_path):
    xdg = tmp_path / "config"
    # before the install: the error users met
    before = snakemake(["--profile", "slurm", "-n"], cwd=workflow_dir, timeout=60, env={"XDG_CONFIG_HOME": str(xdg)})
    assert before.returncode != 0 and "no profile.yaml (or config.yaml) found" in before.stderr
    assert make_slurm_profile(xdg).returncode == 0

    proc = snakemake(["--profile", "slurm", "-n", "all_structures"], cwd=workflow_dir, timeout=120,
                     env={"XDG_CONFIG_HOME": str(xdg)})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    # both profiles, the workflow's found by snakemake itself
    assert "Using profiles slurm and workflow specific profile profiles/default" in proc.stderr
    # the structures job: the account from the site profile, its size from the rule itself
    (structures,) = [job for job in planned_jobs(proc.stdout) if job["rule"] == "structures"]
    assert structures["resources"]["slurm_account"] == "myproject"
    assert (structures["resources"]["runtime"], structures["resources"]["mem_mb"]) == ("60", "8000")

    # every setting arrives, from the profile it belongs to; no profile retries every rule
    args = parsed_arguments(workflow_dir, xdg, "--profile", "slurm", "-n")
    assert args["executor"] == "slurm" and args["jobs"] == 100 and not args["retries"]
    assert args["slurm_partition_config"] == str(xdg / "snakemake/slurm/partitions.yaml")
    assert "slurm_account" in args["default_resources"]
    assert not args["set_resources"]  # the rules declare their resources
    assert args["rerun_incomplete"] is True and not args["group_components"]  # no bundling (rules/dft.smk)


def test_workflow_profile_joins_a_run_without_any_profile(workflow_dir, tmp_path):
    args = parsed_arguments(workflow_dir, tmp_path, "-n", "--cores", "1")
    assert args["rerun_incomplete"] is True
    # and --workflow-profile none leaves it out
    bare = parsed_arguments(workflow_dir, tmp_path, "-n", "--cores", "1", "--workflow-profile", "none")
    assert not bare["rerun_incomplete"]


def resources_of(jobs: list[dict]) -> dict[str, dict[str, str]]:
    return {job["rule"]: job["resources"] for job in jobs}


def test_every_rule_that_runs_declares_threads_runtime_and_memory(workflow_dir):
    proc = snakemake(["-n", "--cores", "8", "--workflow-profile", "none"], cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    jobs = [job for job in planned_jobs(proc.stdout) if job["rule"] != "all"]
    # the chain's 10 jobs, 2 more ensemble members (model.ensemble: 3) and the screening's 3
    assert len(jobs) == 15
    undeclared = [job["rule"] for job in jobs if not {"runtime", "mem_mb"} <= job["resources"].keys()]
    assert not undeclared
    # Snakemake's own defaults would be mem_mb=1000 and no runtime: these are the rules' numbers
    sizes = {job["rule"]: (job["threads"], job["resources"]["runtime"], job["resources"]["mem_mb"]) for job in jobs}
    assert sizes["model_train"] == (4, "720", "32000") and sizes["interpret_environments"] == (2, "120", "8000")
    assert resources_of(jobs)["model_train"]["gpu"] == "1"
    # every member trains on its own GPU, with the same resources as member 0
    members = [job for job in jobs if job["rule"] == "model_train_member"]
    assert len(members) == 2 and all(job["resources"] == resources_of(jobs)["model_train"] for job in members)
    assert all("gpu" not in job["resources"] for job in jobs if not job["rule"].startswith("model_train"))


def test_set_resources_changes_one_value_and_default_resources_reach_the_rules(workflow_dir):
    base = ["-n", "--cores", "8"]
    before = resources_of(planned_jobs(snakemake(base, cwd=workflow_dir, timeout=120).stdout))
    proc = snakemake([*base, "--set-resources", "model_train:runtime=37", "--default-resources", "slurm_partition=short"],
                     cwd=workflow_dir, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after = resources_of(planned_jobs(proc.stdout))
    # model_train: runtime changed, its GPU and memory kept (the whole profile section is no longer replaced)
    assert after["model_train"]["runtime"] == "37"
    assert before["model_train"]["runtime"] == "720"
    assert [after["model_train"][k] for k in ("mem_mb", "gpu")] == [before["model_train"][k] for k in ("mem_mb", "gpu")]
    # every job now names the partition given as a default; nothing injects another one
    assert {res.get("slurm_partition") for rule, res in after.items() if rule != "all"} == {"short"}
    assert all(after[rule]["runtime"] == before[rule]["runtime"] for rule in after if rule not in ("all", "model_train"))


def test_the_executor_sends_only_the_gpu_rule_to_the_gpu_partition(tmp_path, workflow_dir):
    """Automatic partition selection (snakemake-executor-plugin-slurm) on the installed partitions,
    for each planned job's resources as the rules declare them."""
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    assert make_slurm_profile(tmp_path).returncode == 0
    partitions = read_partition_file(tmp_path / "snakemake/slurm/partitions.yaml")
    proc = snakemake(["-n", "--cores", "8"], cwd=workflow_dir, timeout=120)
    chosen = {}
    for job in planned_jobs(proc.stdout):
        resources = {k: int(v) if v.isdigit() else v for k, v in job["resources"].items()}
        planned = SimpleNamespace(name=job["rule"], threads=job["threads"], resources=resources)
        chosen[job["rule"]] = get_best_partition(partitions, planned, logging.getLogger(__name__))
    assert len(chosen) == 15
    assert chosen.pop("model_train") == SITE["GPU_PARTITION"]
    assert chosen.pop("model_train_member") == SITE["GPU_PARTITION"]
    assert set(chosen.values()) == {SITE["PARTITION"]}


def test_the_repository_slurm_profile_is_the_template_filled_for_the_test_cluster(slurm_profile_tool):
    # profiles/slurm (what `--profile profiles/slurm` and the SLURM tests use) is the template with
    # partitions cpu and gpu and no account
    assert (REPO / "profiles/slurm/partitions.yaml").read_text() == slurm_profile_tool.partitions_yaml("cpu", "gpu")
    template = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert yaml.safe_load(slurm_profile_tool.config_yaml("", "cpu", "gpu")) == template
    assert not set(template) & set(WORKFLOW_PROFILE)
