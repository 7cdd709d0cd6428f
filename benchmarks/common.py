"""Helpers the benchmark modules share: quick mode, a throw-away copy of the workflow, and a
subprocess measured by ``/usr/bin/time -v`` (wall time and its own peak resident memory)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "oxide-surrogate"
PYTHON = sys.executable
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TIME_V = "/usr/bin/time"

# The tests' throw-away copy of the workflow (src/ linked, not copied): one definition for both.
sys.path.insert(0, str(REPO / "tests"))
from conftest import copy_workflow  # noqa: E402,F401


def quick() -> bool:
    """``OPTABS_BENCH_QUICK=1``: every benchmark at small sizes, to check the harness in minutes."""
    return os.environ.get("OPTABS_BENCH_QUICK", "") not in ("", "0")


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every measured subprocess: one BLAS thread, the GPAW build config, src/ importable."""
    env = dict(os.environ)
    env.setdefault("GPAW_CONFIG", str(REPO / "resources" / "gpaw-siteconfig.py"))
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class Measured:
    """One measured subprocess. ``peak_rss_mb``: the largest resident set of the process or of any
    one of its children (``/usr/bin/time -v``'s "Maximum resident set size"), not their sum."""

    returncode: int
    wall_s: float
    peak_rss_mb: float | None
    stdout: str
    stderr: str

    def summary(self) -> dict:
        return {"wall_s": round(self.wall_s, 2), "peak_rss_mb": self.peak_rss_mb}

    def check(self, what: str) -> Measured:
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed (exit {self.returncode}): {(self.stdout + self.stderr)[-3000:]}")
        return self


def measure(args: list[str], cwd: Path | str, timeout: float, env: dict[str, str] | None = None) -> Measured:
    """Run ``args`` under ``/usr/bin/time -v`` (plain, without peak RSS, where it is absent)."""
    report = Path(cwd) / f".time-v-{os.getpid()}-{time.monotonic_ns()}.txt"
    timed = [TIME_V, "-v", "-o", str(report), *args] if os.access(TIME_V, os.X_OK) else list(args)
    start = time.perf_counter()
    proc = subprocess.run(timed, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or bench_env())
    wall = time.perf_counter() - start
    peak = None
    if report.exists():
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
        peak = round(int(match.group(1)) / 1024, 1) if match else None
        report.unlink()
    return Measured(proc.returncode, wall, peak, proc.stdout, proc.stderr)


def alignn_slice(source: Path, n: int, dest: Path) -> Path:
    """The first ``n`` rows of an ALIGNN folder (id_prop.csv and their POSCARs) copied to ``dest``."""
    dest.mkdir(parents=True)
    rows = (source / "id_prop.csv").read_text().splitlines()[:n]
    (dest / "id_prop.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        name = row.split(",", 1)[0]
        shutil.copy(source / name, dest / name)
    return dest

