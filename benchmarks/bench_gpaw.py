"""Cost of the embedded GPAW engine per material, demo preset.

Run: ``python benchmarks/bench_gpaw.py [MgO ZnS CdSe BaS] [--preset demo] [--gap-method GLLB-SC]``
(prints JSON). Needs gpaw (see resources/gpaw-siteconfig.py).

Each material runs in a fresh process (spawned, one BLAS thread: ``single_thread_env()``), so
``peak_rss_mb`` is that material's own peak resident memory and nothing is shared between
materials but the generated PBEsol datasets (``benchmarks/work/gpaw-setups``, generated on first
use; their cost shows up as ``timings_s.setups``). Work directories are wiped first, so no cached
ground state is reused. ``wall_s`` is the whole ``GpawEngine.run`` (ground state, optics bands,
dielectric function, GLLB-SC). Timings on a shared machine vary by tens of per cent with its load.

Structures are the experimental ones: MgO rock salt a = 4.212 Å, ZnS zinc blende 5.409 Å, CdSe
zinc blende 6.052 Å, BaS rock salt 6.389 Å (primitive cells, 2 atoms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "gpaw"
SETUPS = HERE / "work" / "gpaw-setups"

# (prototype, a in Å, cation, anion)
MATERIALS: dict[str, tuple[str, float, str, str]] = {
    "MgO": ("rocksalt", 4.212, "Mg", "O"),
    "ZnS": ("zincblende", 5.409, "Zn", "S"),
    "CdSe": ("zincblende", 6.052, "Cd", "Se"),
    "BaS": ("rocksalt", 6.389, "Ba", "S"),
}


def structure(name: str):
    from pymatgen.core import Lattice, Structure

    prototype, a, cation, anion = MATERIALS[name]
    group, anion_site = {"rocksalt": ("Fm-3m", 0.5), "zincblende": ("F-43m", 0.25)}[prototype]
    conventional = Structure.from_spacegroup(group, Lattice.cubic(a), [cation, anion], [[0, 0, 0], [anion_site] * 3])
    return conventional.get_primitive_structure()


def _one(name: str, preset: str, gap_method: str) -> dict[str, Any]:
    """Run one material in this (fresh) process and measure it."""
    from optabs.dft.gpaw import GpawEngine, GpawSettings

    settings = GpawSettings.preset(preset, setups_dir=str(SETUPS), gap_method=gap_method)
    workdir = WORK / name
    shutil.rmtree(workdir, ignore_errors=True)
    start = time.perf_counter()
    result = GpawEngine(settings).run(name, structure(name), workdir)
    wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "timings_s": {k: round(v, 2) for k, v in result.timings_s.items()},
        "xc": result.settings["xc"],
        "dft_gap_ev": round(result.dft_gap_ev, 3),
        "dft_direct_gap_ev": round(result.dft_direct_gap_ev, 3),
        "corrected_gap_ev": round(result.corrected_gap_ev, 3),
        "gap_method": result.gap_method,
        "eps1_0": round(float(result.eps_real[0, 0]), 3),
        "n_frequencies": result.settings["n_frequencies"],
        "omegamax_ev": round(result.settings["omegamax_ev"], 1),
        "kpts_gs": result.settings["kpts_gs"],
        "kpts_nscf": result.settings["kpts_nscf"],
        "nbands_optics": result.settings["nbands_optics"],
    }


def run(materials: list[str] | None = None, preset: str = "demo", gap_method: str = "GLLB-SC") -> dict[str, Any]:
    """Time ``GpawEngine.run`` for each material (names from :data:`MATERIALS`), one process each."""
    from optabs.dft.gpaw import gpaw_version, single_thread_env

    materials = list(materials or MATERIALS)
    unknown = sorted(set(materials) - set(MATERIALS))
    if unknown:
        raise SystemExit(f"unknown material(s) {unknown}; choose from {sorted(MATERIALS)}")
    os.environ.update(single_thread_env())  # inherited by the spawned workers before numpy loads
    out: dict[str, Any] = {
        "preset": preset,
        "gap_method": gap_method,
        "gpaw": gpaw_version(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "materials": {},
    }
    total = time.perf_counter()
    for name in materials:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            out["materials"][name] = pool.submit(_one, name, preset, gap_method).result()
    out["total_wall_s"] = round(time.perf_counter() - total, 1)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("materials", nargs="*", help=f"default: {' '.join(MATERIALS)}")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--gap-method", default="GLLB-SC", choices=["GLLB-SC", "none"])
    args = parser.parse_args(argv)
    json.dump(run(args.materials, args.preset, args.gap_method), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
