"""Calibration of the ensemble's uncertainty on the database run (issue 21).

The workflow itself, as a user runs it: ``configs/database.yaml`` on the 1,116 shared oxides
(the ``cpu`` model preset: the study's architecture, 30 epochs; split 80/10/10 with seed 123)
with ``model.ensemble: 5``, up to ``all_model``; each of the 5 training jobs gets one thread, so
two train side by side on the 2 cores (``--set-threads``). ``metrics.json``'s ``ensemble`` then
holds the share of the test split's points inside the ensemble's +-1 sigma and +-2 sigma bands
(points where truth or prediction are above the floor; the floor below the edge is trivially
matched), and the same with sigma scaled by the factor the validation split asks for.
Goal: the +-2 sigma band covers at least 80 % of the test points (as trained).
``OPTABS_BENCH_QUICK=1``: the first 80 materials, 3 epochs.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, SNAKEMAKE, alignn_slice, bench_env, copy_workflow, measure, quick  # noqa: E402

MEMBERS = 5
TIMEOUT_S = 3600


def run() -> dict:
    if not SHARED_DATA.is_dir():
        return {"quick": quick(), "skipped": f"needs the shared oxides at {SHARED_DATA} (absent)"}
    with tempfile.TemporaryDirectory() as tmp:
        wf = copy_workflow(Path(tmp) / "wf")
        data = alignn_slice(SHARED_DATA, 80, Path(tmp) / "slice") if quick() else SHARED_DATA
        model = f"{{preset: cpu, ensemble: {MEMBERS}{', epochs: 3' if quick() else ''}}}"
        args = [SNAKEMAKE, "all_model", "--cores", "2", "--configfile", "configs/database.yaml", "--set-threads",
                "model_train=1", "model_train_member=1", "--config", f"dataset_dir={data}", f"model={model}"]
        t0 = time.perf_counter()
        proc = measure(args, cwd=wf, env=bench_env(), timeout=TIMEOUT_S).check("the database run")
        metrics = json.loads((wf / "results/model/metrics.json").read_text())
    ens = metrics["ensemble"]
    test = {k: ens[k] for k in ("within_1sigma", "within_2sigma", "within_1sigma_all_points", "within_2sigma_all_points",
                                "mean_sigma", "n_points")}
    out = {
        "quick": quick(), "members": ens["members"], "materials": metrics["n_train"] + metrics["n_val"] + metrics["n_test"],
        "model": "cpu preset (4+4 layers, hidden 64, 30 epochs)", "n_test": metrics["n_test"], "test": test,
        "sigma_scale": ens.get("sigma_scale_from_val"), "test_scaled": ens.get("test_scaled"),
        "mae_median": metrics["alignn"]["mae_median"], "frac_mae_below_0.14": metrics["alignn"]["frac_mae_below_0.14"],
        "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": proc.peak_rss_mb,
        "goal": "+-2 sigma covers >= 80 % of the test points",
    }
    out["goal_met"] = bool(test["within_2sigma"] >= 0.8)
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
