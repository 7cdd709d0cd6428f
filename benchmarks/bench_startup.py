"""Start-up: how long snakemake takes to stop on a bad input, before any job (the time a user waits
for the error), beside the time of a plain dry run of the same workflow.

The tests show that each of these stops before any job and writes nothing (tests/workflow/
test_faults.py); how long that takes is measured here, not asserted there. Each case runs
``snakemake --cores 1`` in a fresh copy of the workflow, measured by ``/usr/bin/time -v``:

- ``empty_catalog``: ``--config catalog=empty.yaml`` (a catalog without entries);
- ``unknown_key``: ``--config fliter='{max_sites: 10}'`` (a misspelt top-level key);
- ``bad_engine_setting``: ``--config dft='{gpaw: {ecut: -1}}'``;
- ``dry_run``: ``-n`` with the default config (parse, every check, the DAG up to the checkpoint).

``ratio_to_dry_run``: the stop's wall time over the dry run's; a stop that needed much more than a
dry run would mean the failure comes late.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SNAKEMAKE, bench_env, copy_workflow, measure  # noqa: E402

CASES = {
    "empty_catalog": ["--config", "catalog=empty.yaml"],
    "unknown_key": ["--config", "fliter={max_sites: 10}"],
    "bad_engine_setting": ["--config", "dft={gpaw: {ecut: -1}}"],
}


def run() -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="optabs-bench-startup-") as tmp:
        dry = copy_workflow(Path(tmp) / "dry")
        m = measure([SNAKEMAKE, "-n", "--cores", "1"], cwd=dry, timeout=300, env=bench_env()).check("dry run")
        results["dry_run"] = m.summary()
        for name, args in CASES.items():
            workdir = copy_workflow(Path(tmp) / name)
            (workdir / "empty.yaml").write_text("entries: []\n")
            m = measure([SNAKEMAKE, "--cores", "1", *args], cwd=workdir, timeout=300, env=bench_env())
            wrote = [p.name for p in (workdir / "results", workdir / "logs") if p.exists()]
            if m.returncode == 0 or wrote:
                raise RuntimeError(f"{name}: expected a stop before any job, got exit {m.returncode}, wrote {wrote}")
            results[name] = {**m.summary(), "ratio_to_dry_run": round(m.wall_s / results["dry_run"]["wall_s"], 2),
                             "message": next((line for line in (m.stderr + m.stdout).splitlines()
                                              if "config key" in line), "")[:160]}
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
