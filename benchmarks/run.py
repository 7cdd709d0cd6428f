"""`make bench`: run every benchmark, write benchmarks/results.json and benchmarks/results.md.

Each benchmark module has ``run() -> dict``; the results record the machine (cores, memory,
CPU model) and the date. Speed goals are ratios or scaling, never absolute timings in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: name -> (module, what it measures)
BENCHMARKS = {
    "spectra": ("bench_spectra", "Kramers-Kronig and scissor vs vise on 1,501 x 6"),
    "gpaw": ("bench_gpaw", "GPAW demo preset, wall time and peak memory per material"),
    "model": ("bench_model", "graph building (structures/s), CPU training throughput (graphs/s), epoch time"),
    "interpret": ("bench_interpret", "clustering + chemistry + report at 3,000 materials; CrystalNN per material"),
}


def machine() -> dict:
    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(BENCHMARKS), help="benchmarks to run (default: all)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = machine()
    for name in args.names:
        module_name, what = BENCHMARKS[name]
        start = time.monotonic()
        try:
            value = importlib.import_module(module_name).run()
            results[name] = {"what": what, "date": dt.date.today().isoformat(), "result": value}
        except Exception as exc:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            results[name] = {"what": what, "date": dt.date.today().isoformat(), "error": f"{type(exc).__name__}: {exc}"}
        results[name]["wall_s"] = round(time.monotonic() - start, 1)
        print(f"{name}: {results[name]['wall_s']} s", flush=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    (out.with_suffix(".md")).write_text(markdown(results))
    return 0


def markdown(results: dict) -> str:
    m = results.get("machine", {})
    lines = [
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB",
        "",
        "| benchmark | date | key numbers |",
        "|---|---|---|",
    ]
    for name, entry in results.items():
        if name == "machine":
            continue
        body = entry.get("error") or ", ".join(f"{k}={_fmt(v)}" for k, v in _flat(entry.get("result", {})).items())
        lines.append(f"| {name} | {entry.get('date', '')} | {body} |")
    return "\n".join(lines) + "\n"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    raise SystemExit(main())
