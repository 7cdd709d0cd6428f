"""The whole DAG in a dry run without computing anything: the ``structures`` checkpoint's outputs
written by hand, and what the dry run planned read back from its output.

How N per-material DFT jobs get into a dry run: in a copy of the workflow, the checkpoint's
outputs are written by hand (a synthetic ``results/structures/kept.parquet`` of N materials, each
with a distinct pymatgen structure JSON, an empty ``rejected.csv`` and an empty ``failures.csv``),
newer than the checkpoint's input (the catalog, or for source ``mp`` the fetched documents,
written here too so that the fetch is not planned either) and than its script (a copy checked
out or edited a moment ago would otherwise plan the checkpoint again: "Code has changed"). Snakemake then treats the checkpoint
as done, reads the material ids through ``rules/common.smk`` (``dft_results`` ->
``kept_material_ids``) and plans N ``dft_<engine>`` jobs plus the downstream chain.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

#: The structures checkpoint's input per source, relative to the working directory (rules/common.smk).
SOURCE_INPUTS = {"catalog": "resources/catalog.yaml", "mp": "results/structures/mp_documents.json.gz"}


def synthetic_kept(workdir: Path, n: int, source: str = "catalog") -> list[str]:
    """The structures checkpoint's outputs for ``n`` synthetic materials (MgO cells, ids
    ``syn-00000`` ...), dated now, their input for ``source`` (``catalog`` or ``mp``; for ``mp``
    an empty documents file is written) a minute earlier. Returns the ids."""
    import pandas as pd
    from pymatgen.core import Lattice, Structure

    template = Structure(Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).as_dict()
    rows = []
    for i in range(n):
        template["properties"] = {"synthetic_index": i}  # a distinct structure digest per material
        rows.append({"material_id": f"syn-{i:05d}", "formula": "MgO", "structure": json.dumps(template)})
    out = workdir / "results" / "structures"
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(out / "kept.parquet")
    pd.DataFrame(columns=["material_id", "formula", "structure"]).to_parquet(out / "candidates.parquet")
    (out / "rejected.csv").write_text("material_id,formula,source_ref,criterion,detail\n")
    (out / "failures.csv").write_text("material_id,stage,reason,detail\n")
    source_input = workdir / SOURCE_INPUTS[source]
    if source == "mp":
        with gzip.open(source_input, "wt", encoding="utf-8") as fh:
            fh.write("[]")
    now = time.time()
    os.utime(source_input, (now - 60, now - 60))
    for name in ("kept.parquet", "candidates.parquet", "rejected.csv", "failures.csv"):
        os.utime(out / name, (now, now))
    return [row["material_id"] for row in rows]


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The "Job stats" table of a snakemake (dry) run: rule -> number of jobs (``total`` included;
    empty when nothing is to be done)."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    for i, line in enumerate(lines):
        if line.split() == ["job", "count"]:
            for row in lines[i + 2:]:
                parts = row.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    break
                counts[parts[0]] = int(parts[1])
    return counts


def planned_jobs(dry_run_stdout: str) -> list[dict]:
    """The jobs a ``snakemake -n`` printed: ``{"rule", "threads", "resources": {name: text}}`` each."""
    jobs: list[dict] = []
    for line in dry_run_stdout.splitlines():
        if line.startswith(("rule ", "localrule ", "checkpoint ")) and line.rstrip().endswith(":"):
            jobs.append({"rule": line.split()[1].rstrip(":"), "threads": 1, "resources": {}})
        elif jobs and line.startswith("    threads: "):
            jobs[-1]["threads"] = int(line.split(":", 1)[1])
        elif jobs and line.startswith("    resources: "):
            pairs = (item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))
            jobs[-1]["resources"] = {name: value for name, value in pairs}
    return jobs


def job_resources(dry_run_output: str, rule: str) -> list[dict[str, str]]:
    """The ``resources:`` of every planned job of ``rule`` in a dry run's output, as name -> value
    (as printed), one dict per job in the order planned."""
    return [job["resources"] for job in planned_jobs(dry_run_output) if job["rule"] == rule]


def full_dag_jobs(engine: str, n: int, members: int = 1) -> dict[str, int]:
    """What a dry run of the default target plans once the structures checkpoint is done with
    ``n`` materials: ``n`` DFT jobs of ``engine``, one job of each later stage's rules, ``members - 1``
    more ensemble members, and the screening (its first round, before its checkpoint has run)."""
    later = ["spectra", "dataset", "model_graphs", "model_train", "model_evaluate", "model_embeddings",
             "interpret_environments", "interpret", "screen_graphs", "screen_round", "screen", "report", "all"]
    extra = {"model_train_member": members - 1} if members > 1 else {}
    return {f"dft_{engine}": n, **dict.fromkeys(later, 1), **extra, "total": n + len(later) + members - 1}
