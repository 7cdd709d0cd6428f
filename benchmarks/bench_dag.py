"""DAG scaling: ``snakemake -n`` wall time with 1,000 and 10,000 materials (goal: 10,000 under
15 s, and the 10k/1k time ratio under 12), and for ``configs/database.yaml`` on the shared oxides.

Run: ``python benchmarks/bench_dag.py`` (prints JSON; ``OPTABS_BENCH_QUICK=1``: 100 and 1,000).

How N per-material DFT jobs get into a dry run without computing anything: the ``structures``
checkpoint's outputs are written by hand (``tests/fakes/dag.py``: ``synthetic_kept``, which the
workflow tests use too), and the planned numbers are read back from the dry run's "Job stats"
table and checked.

The time is the whole ``snakemake -n --cores 2`` command (start-up, parsing the Snakefile and
its imports, building the DAG, printing every planned job), measured by ``/usr/bin/time -v``
with its peak RSS. Each size runs in its own copy, once.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The synthetic checkpoint outputs and the "Job stats" parser are the tests' (tests/fakes/dag.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import SHARED_DATA, SNAKEMAKE, copy_workflow, measure, quick  # noqa: E402
from fakes.dag import job_counts, synthetic_kept  # noqa: E402

GOAL_10K_S = 15.0  # issue 19: the 10,000-material dry run stays under 15 s (it was 15.5 s when set)
GOAL_RATIO = 12.0


def dry_run(n: int, tmp: Path) -> dict:
    workdir = copy_workflow(tmp / f"wf-{n}")
    synthetic_kept(workdir, n)
    m = measure([SNAKEMAKE, "-n", "--cores", "2"], cwd=workdir, timeout=600).check(f"snakemake -n with {n} materials")
    counts = job_counts(m.stdout)
    planned = counts.get("dft_gpaw", 0)
    if planned != n:
        raise RuntimeError(f"the dry run with {n} synthetic materials planned {planned} dft_gpaw jobs, not {n}")
    return {"materials": n, "seconds": round(m.wall_s, 2), "peak_rss_mb": m.peak_rss_mb,
            "dft_jobs_planned": planned, "total_jobs_planned": counts.get("total")}


def database_dry_run(tmp: Path) -> dict:
    """``snakemake -n`` of configs/database.yaml on the shared oxides (no per-material jobs there)."""
    if not SHARED_DATA.is_dir():
        return {"skipped": f"needs the shared oxides at {SHARED_DATA} (absent)"}
    workdir = copy_workflow(tmp / "wf-database")
    m = measure([SNAKEMAKE, "-n", "--cores", "2", "--configfile", "configs/database.yaml",
                 "--config", f"dataset_dir={SHARED_DATA}"], cwd=workdir, timeout=300).check("database dry run")
    return {"seconds": round(m.wall_s, 2), "peak_rss_mb": m.peak_rss_mb, "total_jobs_planned": job_counts(m.stdout).get("total")}


def run() -> dict:
    small, large = (100, 1000) if quick() else (1000, 10000)
    with tempfile.TemporaryDirectory(prefix="optabs-bench-dag-") as tmp:
        runs = [dry_run(n, Path(tmp)) for n in (small, large)]
        database = database_dry_run(Path(tmp))
    ratio = runs[1]["seconds"] / runs[0]["seconds"]
    out = {
        "quick": quick(),
        "runs": runs,
        f"seconds_{small}": runs[0]["seconds"],
        f"seconds_{large}": runs[1]["seconds"],
        "ratio_large_over_small": round(ratio, 2),
        "seconds_per_1000_extra_materials": round((runs[1]["seconds"] - runs[0]["seconds"]) / (large - small) * 1000, 2),
        "database_1116": database,
    }
    if (small, large) == (1000, 10000):
        out["goal_10000_under_s"] = GOAL_10K_S
        out["goal_ratio_under"] = GOAL_RATIO
        out["met_10000"] = runs[1]["seconds"] < GOAL_10K_S
        out["met_ratio"] = ratio < GOAL_RATIO
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
