"""Speed of the interpret and report stages at 3,000 materials, and of CrystalNN per material.

Run: ``python benchmarks/bench_interpret.py`` (prints JSON). Goal: clustering + comparison +
chemistry tables + the full report for 3,000 materials and 96 clusters in under 60 s on the
2-core development machine.

Input (synthetic, seeded): 3,000 materials in 96 groups. Each group has a feature centre (256
dimensions, as ALIGNN's hidden features), a small pool of cations, an environment and a typical
onset; a material is its group's centre plus noise, a formula from the pool (parsed by
pymatgen), and a 1,501-point log10 alpha spectrum rising above the floor at its onset with a
few absorption peaks. Cation environments are synthetic too (the CrystalNN step is measured
separately on real structures, where present).

Timed steps: ``ward_clusters`` of the features (the study's K = 96) and of the raw spectra,
``compare_clusterings``, ``cluster_chemistry``, ``build_report`` (97 figures, 97 pages), each
once, with ``time.perf_counter``. ``crystalnn`` times ``material_environments`` on the first
``n_crystalnn`` materials of the shared oxide dataset (one worker), if it is there; ``make bench``
skips it (``n_crystalnn = 0``) since ``bench_database.py`` runs CrystalNN on all 1,116 oxides
(``python benchmarks/bench_interpret.py 40`` times it on 40). ``OPTABS_BENCH_QUICK=1``: 500
materials, 24 clusters.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "oxide-surrogate"

CATIONS = ["Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "Zn", "Al", "Ga", "In", "Si", "Ge", "Sn",
           "Ti", "Zr", "Hf", "V", "Nb", "Ta", "Cr", "Mo", "W", "B", "P", "S", "Sc", "Y", "La", "Bi", "Sb", "Te"]
ANIONS = ["O", "O", "O", "O", "F", "S", "N"]


def synthetic(n_materials: int = 3000, n_groups: int = 96, dim: int = 256, seed: int = 0):
    """(dataset, features, envs) of ``n_materials`` synthetic materials in ``n_groups`` groups."""
    from optabs.chemistry import MATERIAL_ENV_COLUMNS
    from optabs.dataset import DATASET_COLUMNS
    from optabs.grid import Grid
    from optabs.spectra import onset_energies

    rng = np.random.default_rng(seed)
    grid = Grid()
    energy = grid.energy_ev
    group = np.sort(rng.integers(0, n_groups, n_materials))
    centres = rng.normal(0.0, 3.0, (n_groups, dim))
    features = centres[group] + rng.normal(0.0, 1.0, (n_materials, dim))
    pools = [rng.choice(CATIONS, 3, replace=False) for _ in range(n_groups)]
    anion = rng.choice(ANIONS, n_groups)
    env_of = rng.choice(["tetrahedral", "octahedral", "other"], n_groups)
    gap = rng.uniform(2.0, 8.0, n_groups)[group] + rng.normal(0.0, 0.3, n_materials)
    width = rng.uniform(0.1, 0.6, n_groups)[group]

    formulas = []
    for g in group:
        a, b = rng.choice(pools[g], 2, replace=False)
        formulas.append(f"{a}{rng.integers(1, 4)}{b}{anion[g]}{rng.integers(2, 7)}")
    rise = 1.0 / (1.0 + np.exp(-(energy[None, :] - gap[:, None]) / width[:, None]))
    peaks = sum(
        rng.uniform(0.2, 0.8, (n_materials, 1))
        * np.exp(-0.5 * ((energy[None, :] - gap[:, None] - rng.uniform(0.5, 6.0, (n_materials, 1))) / 0.6) ** 2)
        for _ in range(3)
    )
    spectra = np.maximum(grid.log10_alpha_floor, 1.5 + 4.2 * rise + peaks * rise)
    ids = [f"syn-{i:05d}" for i in range(n_materials)]
    dataset = pd.DataFrame({
        "material_id": ids, "source_name": ids, "formula": formulas, "structure": "",
        "log10_alpha": list(spectra), "onset_ev": onset_energies(grid.energy_ev, spectra, grid.onset_threshold),
        "dft_gap_ev": gap - 1.0,
        "corrected_gap_ev": gap, "e_above_hull_ev": 0.0, "engine": "synthetic",
    })[DATASET_COLUMNS]

    tet = np.where(env_of[group] == "tetrahedral", rng.uniform(0.8, 1.0, n_materials), rng.uniform(0.0, 0.4, n_materials))
    octa = np.where(env_of[group] == "octahedral", rng.uniform(0.6, 1.0, n_materials), rng.uniform(0.0, 0.4, n_materials))
    from optabs.chemistry import dominant_environment

    envs = pd.DataFrame({
        "material_id": ids, "formula": formulas, "n_cation_sites": 4, "tetrahedral_max": tet, "octahedral_max": octa,
        "tetrahedral_element": [pools[g][0] for g in group], "octahedral_element": [pools[g][1] for g in group],
        "dominant_env": dominant_environment(tet, octa), "cations": [sorted(pools[g][:2]) for g in group],
        "anions": [[anion[g]] for g in group], "oxidation_method": "synthetic", "error": "",
    })[MATERIAL_ENV_COLUMNS]
    return dataset, features, envs


def time_crystalnn(n: int = 40) -> dict:
    """Seconds per material of ``material_environments`` on real oxides (one worker)."""
    if not SHARED_DATA.is_dir():
        return {"skipped": f"no shared dataset at {SHARED_DATA}"}
    from optabs.chemistry import material_environments
    from optabs.dataset import import_alignn
    from optabs.grid import Grid

    dataset = import_alignn(SHARED_DATA, Grid()).dataset.iloc[:n]
    start = time.perf_counter()
    envs = material_environments(dataset, n_workers=1)
    seconds = time.perf_counter() - start
    return {
        "n_materials": n,
        "seconds": seconds,
        "seconds_per_material": seconds / n,
        "estimated_full_dataset_s_one_worker": seconds / n * 1116,
        "failed": int((envs["error"] != "").sum()),
    }


def run(n_materials: int | None = None, n_clusters: int | None = None, n_crystalnn: int = 0) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import quick

    n_materials = n_materials or (500 if quick() else 3000)
    n_clusters = n_clusters or (24 if quick() else 96)
    from optabs.chemistry import element_sets
    from optabs.dataset import spectra_matrix
    from optabs.failures import Failure, failures_frame
    from optabs.interpret import cluster_chemistry, compare_clusterings, ward_clusters
    from optabs.report import build_report

    dataset, features, envs = synthetic(n_materials)
    spectra = spectra_matrix(dataset)
    times: dict[str, float] = {}

    def timed(name, func):
        start = time.perf_counter()
        value = func()
        times[name] = time.perf_counter() - start
        return value

    by_features = timed("ward_features_s", lambda: ward_clusters(features, n_clusters))
    by_spectra = timed("ward_spectra_s", lambda: ward_clusters(spectra, n_clusters))
    comparison = timed("compare_s", lambda: compare_clusterings(
        spectra, element_sets(list(dataset["formula"])), envs["dominant_env"].tolist(),
        by_features.labels, by_spectra.labels, names=("features", "spectra")))
    chemistry = timed("chemistry_s", lambda: cluster_chemistry(dataset, by_features.labels, envs))
    clusters = pd.DataFrame({"material_id": dataset["material_id"], "cluster": by_features.labels,
                             "cluster_spectra": by_spectra.labels})
    rng = np.random.default_rng(1)
    split = rng.choice(["train", "val", "test"], n_materials, p=[0.8, 0.1, 0.1])
    predictions = pd.DataFrame({"material_id": dataset["material_id"], "split": split,
                                "log10_alpha_pred": list(spectra + rng.normal(0, 0.1, spectra.shape))})
    metrics = {"n_train": int((split == "train").sum()), "n_val": int((split == "val").sum()),
               "n_test": int((split == "test").sum()), "alignn": {"mae": 0.08}, "mean_spectrum": {"mae": 0.5}}
    failures = failures_frame([Failure("syn-x1", "dft", "scf", "SCF did not converge"),
                               Failure("syn-x2", "spectra", "no_onset", "no onset")])
    with tempfile.TemporaryDirectory() as tmp:
        index = timed("report_s", lambda: build_report(
            Path(tmp) / "report", dataset=dataset, clusters=clusters, comparison=comparison, chemistry=chemistry,
            metrics=metrics, predictions=predictions, failures=failures, title="benchmark", linkage=by_features.linkage))
        n_files = sum(1 for _ in index.parent.rglob("*") if _.is_file())
        size_mb = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file()) / 1e6
    total = sum(times.values())
    return {
        "quick": quick(),
        "n_materials": n_materials,
        "n_clusters_requested": n_clusters,
        "n_clusters_features": by_features.n_clusters,
        "n_clusters_spectra": by_spectra.n_clusters,
        **{k: round(v, 3) for k, v in times.items()},
        "total_s": round(total, 3),
        "goal_s": 60.0,
        "report_files": n_files,
        "report_mb": round(size_mb, 2),
        "comparison": {k: {m: round(comparison[k][m], 4)
                           for m in ("spectral_spread", "chemical_homogeneity", "coordination_agreement")}
                       for k in ("features", "spectra")},
        "crystalnn": time_crystalnn(n_crystalnn) if n_crystalnn else {"skipped": "n_crystalnn = 0"},
    }


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    print(json.dumps(run(n_crystalnn=int(sys.argv[1]) if len(sys.argv) > 1 else 0), indent=2))
