# Config validation and the helpers rules share. Nothing here does science.
import functools
import os
import sys
from pathlib import Path

from snakemake.utils import validate

# The science package lives in src/; make it importable here and in every job (local, SLURM,
# conda envs) without requiring an install.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p))

from optabs.config import check_config, coerce_cli_strings, load_schema
from optabs.errors import InputError
from optabs.ids import MATERIAL_ID_PATTERN


wildcard_constraints:
    material_id=MATERIAL_ID_PATTERN,


_SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
# Nested --config values arrive as strings ('3' for {n_clusters: 3}); give them their types.
coerce_cli_strings(config, load_schema(_SCHEMA))
# Concise messages naming each bad key first; then snakemake's own validation fills defaults.
check_config(config, _SCHEMA)
validate(config, "../schemas/config.schema.yaml")

RESULTS = "results"
LOGS = "logs"
# Snakemake's benchmark records (wall time, memory, I/O per job) of the expensive rules, as
# tab-separated tables beside the logs; the repository's benchmarks/ folder is code, not output.
BENCHMARKS = f"{LOGS}/benchmarks"
# Graphs are cached outside any rule's outputs, so rebuilding the manifest never deletes them:
# only graphs of new or changed structures are built again.
GRAPH_CACHE = f"{RESULTS}/model/graph_cache.pt"


def check_config_consistency():
    """Checks across keys that a JSON schema cannot express; each names the key."""
    source = config["source"]
    if source == "files" and not config.get("structures_dir"):
        raise ValueError(
            "config key 'structures_dir' is empty but source is 'files': pass --config structures_dir=/path/to/folder"
        )
    if source == "catalog" and not Path(config["catalog"]).is_file():
        raise ValueError(f"config key 'catalog': file {config['catalog']} does not exist")
    if source == "catalog":
        # An empty catalog or a duplicated id stops the run here, before any job writes a file.
        from optabs.structures.catalog import catalog_ids

        try:
            catalog_ids(config["catalog"])
        except InputError as exc:
            raise InputError(f"config key 'catalog': {exc}") from None
    if source == "dataset" and not config.get("dataset_dir"):
        raise ValueError(
            "config key 'dataset_dir' is empty but source is 'dataset': pass --config dataset_dir=/path/to/alignn/folder"
        )


check_config_consistency()

DFT_ENGINE = config["dft"]["engine"]
# Engine and model settings are checked now, so a wrong one stops the run before any job; the
# messages start with the config key (config key 'dft.gpaw': ...).
from optabs.dataset.curation import Curation
from optabs.dft.stage import make_engine
from optabs.filters import FilterSettings
from optabs.grid import Grid
from optabs.interpret.settings import InterpretSettings
from optabs.model.settings import ModelSettings

make_engine(DFT_ENGINE, config["dft"][DFT_ENGINE])
for _section, _settings in [
    ("filter", FilterSettings),
    ("spectra", Grid),
    ("dataset", Curation),
    ("model", ModelSettings),
    ("interpret", InterpretSettings),
]:
    _settings.from_config(_section, config[_section])


def source_input():
    """What the structures stage reads for the configured source."""
    source = config["source"]
    if source == "catalog":
        return config["catalog"]
    if source == "mp":
        return f"{RESULTS}/structures/mp_documents.json.gz"
    if source == "dataset":
        return config["dataset_dir"]
    return config["structures_dir"]


def slurm_resources(kind):
    """Where a job runs on SLURM: the partition (``cpu`` or ``gpu`` kind) and account from config.

    How much it gets (runtime, mem_mb, cpus_per_task, gpus) is set per rule in profiles/slurm.
    Local runs ignore these resources.
    """
    res = {"slurm_partition": config["slurm"][f"{kind}_partition"]}
    if config["slurm"]["account"]:
        res["slurm_account"] = config["slurm"]["account"]
    return res


@functools.lru_cache(maxsize=4)
def _kept_digests(path, mtime):
    import pandas as pd

    from optabs.dft.stage import structure_digest

    table = pd.read_parquet(path, columns=["material_id", "structure"])
    return dict(zip(table.material_id, map(structure_digest, table.structure)))


def kept_table_path():
    return checkpoints.structures.get().output.kept


def kept_material_ids():
    path = kept_table_path()
    return sorted(_kept_digests(path, os.path.getmtime(path)))


def kept_structure_digest(material_id):
    path = f"{RESULTS}/structures/kept.parquet"
    return _kept_digests(path, os.path.getmtime(path)).get(material_id, "")


def dft_results(wildcards):
    """Every kept material's result.json (known once the structures checkpoint has run)."""
    return expand(f"{RESULTS}/dft/{{material_id}}/result.json", material_id=kept_material_ids())


def failure_tables():
    """The ``failures.csv`` of every stage this source runs (see optabs.failures), in stage order."""
    stages = ["dataset", "model", "interpret"]
    if config["source"] != "dataset":
        stages = ["structures", "spectra"] + stages
    return [f"{RESULTS}/{stage}/failures.csv" for stage in stages]


def report_inputs(wildcards):
    """Everything the report shows, and the failure tables of the stages this source runs."""
    return {
        "dataset": f"{RESULTS}/dataset/dataset.parquet",
        "metrics": f"{RESULTS}/model/metrics.json",
        "predictions": f"{RESULTS}/model/predictions.parquet",
        "clusters": f"{RESULTS}/interpret/clusters.parquet",
        "linkage": f"{RESULTS}/interpret/linkage.npy",
        "comparison": f"{RESULTS}/interpret/comparison.json",
        "sweep": f"{RESULTS}/interpret/sweep.parquet",
        "chemistry": f"{RESULTS}/interpret/chemistry",
        "failures": failure_tables(),
    }


def final_targets():
    """The targets of the default run: the report and the dataset export."""
    return [f"{RESULTS}/report", f"{RESULTS}/dataset/alignn"]
