"""The demo preset's absorption edge against the same engine on a dense optics grid (issue 16).

For every material of the demo catalog (cells of up to 6 atoms), GPAW runs twice in one work
folder: the demo preset, and the demo preset with an optics grid at least twice as dense along
every axis (fcc 16x16x16 instead of 8x8x8), the "converged edge". The ground state is
computed once and read from its cache the second time, so the two differ only in the optics
grid. Both spectra are uncorrected (``gap_method: none``: the gap correction shifts both alike).
Per material: onset (first log10 α > 2.5) and E5 (first log10 α > 5) of each, and the
differences demo − dense; materials with a gap below 0.3 eV are listed but not counted, as the
study drops them.

Run: ``python benchmarks/bench_edges.py [MATERIAL_ID ...]`` (prints JSON; no ids: the whole demo
catalog). ``OPTABS_BENCH_QUICK=1``: MgO, ZnS, ZnO. ``OPTABS_BENCH_EDGES_PROGRESS=FILE`` appends each
finished material to FILE as one JSON line; ``python benchmarks/bench_edges.py --summarise FILE...``
prints the summary of such files (a long run cut short keeps what it finished).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, bench_env, quick  # noqa: E402

QUICK_MATERIALS = ["mp-1265", "mp-10695", "mp-2133"]  # MgO, ZnS, ZnO
DENSE_FACTOR = 2.0
MIN_GAP_EV = 0.3


def _one(material_id: str, workdir: str) -> dict:
    """Demo and dense-optics edges of one catalog material (runs in a worker process)."""
    import numpy as np

    from optabs.dft import CalculationError
    from optabs.dft.gpaw import GpawEngine, GpawSettings
    from optabs.spectra import energy_grid, onset_energy
    from optabs.spectra.reference import uncorrected_log10_alpha
    from optabs.structures.catalog import load_catalog

    candidate = next(c for c in load_catalog(REPO / "resources" / "catalog.yaml") if c.material_id == material_id)
    from optabs.dft.gpaw.steps import optics_density
    from optabs.dft.gpaw.structure import optics_kpoint_grid, structure_to_atoms

    demo = GpawSettings.preset("demo", gap_method="none")
    # dense: at least DENSE_FACTOR x the demo's first optics grid along every axis (that grid can
    # be denser than kdensity_nscf asks: kpoints_per_atom_nscf, or GPAW's tetrahedra's vertices)
    atoms = structure_to_atoms(material_id, candidate.structure)
    demo_density = optics_density(atoms, demo)
    demo_grid, _ = optics_kpoint_grid(
        atoms, demo_density, demo.optics_grid, ibz_vertices=demo.integration == "tetrahedron"
    )
    b_lengths = np.linalg.norm(atoms.cell.reciprocal(), axis=1) * 2 * np.pi  # |b_i|, 1/Å
    density = max(DENSE_FACTOR * demo_density, float(np.max(DENSE_FACTOR * np.array(demo_grid) / b_lengths)) - 1e-6)
    # the dense grid is the reference as it stands: not densified again (a failed refinement
    # check or a forbidden edge would take it to 3x the demo's grid, hours for the largest cells)
    dense = GpawSettings.preset(
        "demo", gap_method="none", kdensity_nscf=density, max_refinement_densifications=0
    )
    row: dict = {"formula": candidate.structure.composition.reduced_formula}
    grid = energy_grid()
    for name, settings in (("demo", demo), ("dense", dense)):
        try:
            result = GpawEngine(settings).run(material_id, candidate.structure, Path(workdir) / material_id)
        except CalculationError as exc:
            row[name] = {"error": str(exc)[:300]}
            continue
        spectrum = uncorrected_log10_alpha(result.energy_ev, result.eps_imag, result.dft_gap_ev)
        row["gap_ev"] = round(result.dft_gap_ev, 3)
        row[name] = {
            "kpts_optics": result.settings["kpts_nscf"],
            "integration": result.settings["integration"],
            "onset_ev": onset_energy(grid, spectrum),
            "e5_ev": onset_energy(grid, spectrum, 5.0),
            "eps1_0": round(float(np.mean(result.eps_real[0, :3])), 2),
            "seconds": round(result.timings_s["total"], 1),
        }
    if "onset_ev" in row.get("demo", {}) and "onset_ev" in row.get("dense", {}):
        for key in ("onset_ev", "e5_ev"):
            a, b = row["demo"][key], row["dense"][key]
            row[f"d_{key}"] = None if a is None or b is None else round(a - b, 3)
    return row


def run(only: list[str] | None = None) -> dict:
    import os

    from optabs.structures.catalog import load_catalog

    os.environ.update({k: v for k, v in bench_env().items() if k.endswith("_NUM_THREADS") or k == "GPAW_CONFIG"})
    ids = [c.material_id for c in load_catalog(REPO / "resources" / "catalog.yaml") if len(c.structure) <= 6]
    if quick():
        ids = [m for m in ids if m in QUICK_MATERIALS]
    elif only:
        ids = [m for m in only if m in ids]  # in the order asked
    progress = os.environ.get("OPTABS_BENCH_EDGES_PROGRESS")
    rows: dict = {}
    with tempfile.TemporaryDirectory(prefix="optabs-bench-edges-") as tmp, ProcessPoolExecutor(2) as pool:
        futures = {pool.submit(_one, m, tmp): m for m in ids}
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            if progress:
                with open(progress, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({futures[future]: rows[futures[future]]}) + "\n")
    return summarise({m: rows[m] for m in ids}, bool(only))


def summarise(rows: dict, subset: bool) -> dict:
    """The benchmark's record from per-material rows (see :func:`_one`)."""
    counted = {m: r for m, r in rows.items() if r.get("gap_ev", 0) >= MIN_GAP_EV and "d_onset_ev" in r}

    def worst(key: str) -> float | None:
        values = [abs(r[key]) for r in counted.values() if r.get(key) is not None]
        return round(max(values), 3) if values else None

    def median(key: str) -> float | None:
        values = [abs(r[key]) for r in counted.values() if r.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "quick": quick(),
        "dense_factor": DENSE_FACTOR,
        "materials": len(rows),
        "subset": subset and not quick(),
        "counted (gap >= 0.3 eV)": len(counted),
        "max_abs_d_onset_ev": worst("d_onset_ev"),
        "max_abs_d_e5_ev": worst("d_e5_ev"),
        "median_abs_d_onset_ev": median("d_onset_ev"),
        "median_abs_d_e5_ev": median("d_e5_ev"),
        "beyond_0.15_ev": sorted(m for m, r in counted.items()
                                 if any(abs(r.get(k) or 0) > 0.15 for k in ("d_onset_ev", "d_e5_ev"))),
        "per_material": rows,
    }


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    if sys.argv[1:2] == ["--summarise"]:
        lines = [json.loads(line) for name in sys.argv[2:] for line in Path(name).read_text().splitlines() if line]
        print(json.dumps(summarise({k: v for line in lines for k, v in line.items()}, True), indent=2))
    else:
        print(json.dumps(run(sys.argv[1:] or None), indent=2))
