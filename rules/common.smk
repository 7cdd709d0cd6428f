# Config validation and the helpers rules share. Nothing here does science.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

# The science package lives in src/; make it importable here and in every job (local, SLURM,
# conda envs) without requiring an install.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p))

from optabs.config import check_config

# Concise messages naming each bad key first; then snakemake's own validation fills defaults.
check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
validate(config, "../schemas/config.schema.yaml")

RESULTS = "results"
LOGS = "logs"


def check_config_consistency():
    """Checks across keys that a JSON schema cannot express; each names the key."""
    source = config["source"]
    if source == "files" and not config.get("structures_dir"):
        raise ValueError(
            "config key 'structures_dir' is empty but source is 'files': "
            "pass --config structures_dir=/path/to/folder"
        )
    if source == "catalog" and not Path(config["catalog"]).is_file():
        raise ValueError(f"config key 'catalog': file {config['catalog']} does not exist")


check_config_consistency()


def source_input():
    """What the structures stage reads for the configured source."""
    source = config["source"]
    if source == "catalog":
        return config["catalog"]
    if source == "mp":
        return f"{RESULTS}/structures/mp_documents.json.gz"
    return config["structures_dir"]


def source_path():
    return source_input()


def slurm_resources(kind):
    """Where a job runs on SLURM: the partition (``cpu`` or ``gpu`` kind) and account from config.

    How much it gets (runtime, mem_mb, cpus_per_task, gpus) is set per rule in profiles/slurm.
    Local runs ignore these resources.
    """
    res = {"slurm_partition": config["slurm"][f"{kind}_partition"]}
    if config["slurm"]["account"]:
        res["slurm_account"] = config["slurm"]["account"]
    return res


def final_targets():
    """The targets of the default run: the last stage that exists so far."""
    return [
        f"{RESULTS}/structures/kept.parquet",
        f"{RESULTS}/structures/rejected.csv",
    ]
