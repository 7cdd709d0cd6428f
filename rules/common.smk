# Config validation and the helpers rules share. Nothing here does science, and nothing here
# needs more than snakemake, pyyaml, jsonschema and pandas (optabs.startup): the workflow
# parses, lints and plans where only those are installed, beside the optabs package itself
# (`pip install --no-deps -e .`; the conda envs install it with envs/*.post-deploy.sh).
import functools
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

try:
    from optabs.config import check_config, coerce_cli_strings, load_schema
    from optabs.ids import MATERIAL_ID_PATTERN
    from optabs.startup import check_sections, check_sources, structure_digest
except ModuleNotFoundError as _exc:
    raise WorkflowError(
        f"cannot import {_exc.name}: the optabs package is not installed where snakemake runs. "
        "From the repository root: `make setup` (everything), or `pip install --no-deps -e .` "
        "beside snakemake, pyyaml, jsonschema and pandas to parse, lint and dry-run only."
    ) from None


wildcard_constraints:
    material_id=MATERIAL_ID_PATTERN,
    member="[1-9][0-9]*",
    round="[0-9]+",


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

check_sources(config)
# Every stage's settings as its job will read them, so a wrong one stops the run before any job
# (the messages start with the config key: config key 'dft.gpaw': ...). Without the science
# stack here (a bare Snakemake for --lint or -n), each job checks its own settings instead.
_unchecked = check_sections(config)
if _unchecked:
    logger.info(f"optabs: {_unchecked}")

DFT_ENGINE = config["dft"]["engine"]


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


@functools.lru_cache(maxsize=4)
def _kept_digests(path, mtime):
    import pandas as pd

    table = pd.read_parquet(path, columns=["material_id", "structure"])
    return dict(zip(table.material_id, map(structure_digest, table.structure)))


def kept_table_path():
    return checkpoints.structures.get().output.kept


def kept_material_ids():
    path = kept_table_path()
    return sorted(_kept_digests(path, os.path.getmtime(path)))


def kept_structure_digest(material_id):
    """The structure digest of a material of kept.parquet or, failing that, of candidates.parquet
    (the DFT jobs compute either, as active learning asks for shortlisted candidates)."""
    path = f"{RESULTS}/structures/kept.parquet"
    digest = _kept_digests(path, os.path.getmtime(path)).get(material_id)
    if digest is None:
        path = f"{RESULTS}/structures/candidates.parquet"
        if os.path.exists(path):
            digest = _kept_digests(path, os.path.getmtime(path)).get(material_id)
    return digest or ""


@functools.lru_cache(maxsize=4)
def _site_counts(path, mtime):
    import json

    import pandas as pd

    table = pd.read_parquet(path, columns=["material_id", "structure"])
    return {m: len(json.loads(s)["sites"]) for m, s in zip(table.material_id, table.structure)}


def dft_priority(wildcards):
    """A DFT job's priority: its cell's number of sites. The largest cells start first, so that
    on a few cores the last jobs to finish are short ones (longest-first scheduling; the demo's
    six-atom cells take ten times its two-atom ones)."""
    for name in ("kept", "candidates"):
        path = f"{RESULTS}/structures/{name}.parquet"
        if os.path.exists(path):
            count = _site_counts(path, os.path.getmtime(path)).get(wildcards.material_id)
            if count is not None:
                return count
    return 0


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
        # the screen stage's summary; its folder (results/screen) holds the rest of what the page shows
        **({"screen": f"{RESULTS}/screen/rounds.json"} if SCREEN_ENABLED else {}),
    }


# The training settings as the training jobs see them: without `ensemble`, so that adding members
# never reruns the ones already trained (params are a rerun trigger).
MODEL_TRAINING = {k: v for k, v in config["model"].items() if k != "ensemble"}


def model_checkpoints():
    """The ensemble's checkpoints: member 0 (rule model_train), then members 1..N-1."""
    n = int(config["model"].get("ensemble", 1))
    return [f"{RESULTS}/model/checkpoint.pt"] + [f"{RESULTS}/model/members/{k}/checkpoint.pt" for k in range(1, n)]


SCREEN_ROUNDS = int(config["screen"]["rounds"])
# Screening needs candidates: the structures stage's uncomputed cells, or a folder of them.
SCREEN_ENABLED = config["source"] != "dataset" or bool(config["screen"]["candidates_dir"])


def screen_candidate_tables():
    """The structures stage's candidates table, where this source has a structures stage."""
    return [] if config["source"] == "dataset" else [f"{RESULTS}/structures/candidates.parquet"]


def screen_structure_tables():
    """The structures of every material a round may compute (for the curation's stability sources)."""
    return [f"{RESULTS}/structures/kept.parquet"] + screen_candidate_tables()


def round_dataset(r):
    return f"{RESULTS}/dataset/dataset.parquet" if r == 0 else f"{RESULTS}/screen/round{r}/dataset.parquet"


def round_checkpoints(r):
    """Round r's ensemble: the workflow's model for round 0, then each round's own members."""
    if r == 0:
        return model_checkpoints()
    n = int(config["model"].get("ensemble", 1))
    return [f"{RESULTS}/screen/round{r}/members/{k}/checkpoint.pt" for k in range(n)]


def shortlisted_ids(r):
    """The material ids of round r's shortlist (known once its screen_round checkpoint has run)."""
    import pandas as pd

    path = checkpoints.screen_round.get(round=str(r)).output.shortlist
    return list(pd.read_csv(path, usecols=["material_id"], dtype=str).material_id)


def computed_tables(r):
    """What round r may not offer again: the kept table (computed in round 0) and the earlier shortlists."""
    kept = [] if config["source"] == "dataset" else [f"{RESULTS}/structures/kept.parquet"]
    return kept + [f"{RESULTS}/screen/round{q}/shortlist.csv" for q in range(r)]


def round_results(wildcards):
    """Every DFT result round r's dataset is made of: the kept materials' and rounds 0..r-1's picks."""
    r = int(wildcards.round)
    ids = set(kept_material_ids())
    for q in range(r):
        ids.update(shortlisted_ids(q))
    return expand(f"{RESULTS}/dft/{{material_id}}/result.json", material_id=sorted(ids))


def final_targets():
    """The targets of the default run: the report, the dataset export and, with candidates, the screening."""
    screen = [f"{RESULTS}/screen/rounds.json"] if SCREEN_ENABLED else []
    return [f"{RESULTS}/report", f"{RESULTS}/dataset/alignn"] + screen
