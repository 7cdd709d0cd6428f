"""The no-DFT chain on the shared spectra database (issue 10): every step on all 1,116 oxides,
each in its own process so each has its own peak memory.

Run: ``python benchmarks/bench_database.py`` (prints JSON). Needs the shared oxides
(``../shared/data/oxide-surrogate``, ALIGNN folder format); without them it records why it
skipped. ``OPTABS_BENCH_QUICK=1``: the first 60 materials, 6 clusters. ``interpret_sweep_report_seconds``:
issue 18's goal (interpret with the full sweep plus the report, under 60 s).

The steps are the workflow's stage entry points with ``configs/database.yaml``'s settings (the
``cpu`` model preset, 96 clusters of the first ALIGNN layer, the K-and-layer sweep at K = 12, 24,
48, 96), called in the rules' order:

==============  =========================================================  ======================
step            entry point (rule)                                         numbers
==============  =========================================================  ======================
import          ``dataset.stage.import_stage`` (dataset_import)            materials/s
graphs          ``model.stage.graphs_stage`` (model_graphs), empty cache   structures/s
train           ``model.stage.train_stage`` (model_train), cpu, 1 epoch    graphs/s, epoch s, 30-epoch projection
embeddings      ``model.stage.embeddings_stage`` (model_embeddings)        materials/s
environments    ``interpret.stage.environments_stage`` (environments)      CrystalNN, 2 workers as the rule
interpret       ``interpret.stage.interpret_stage`` (interpret)            Ward, comparison, sweep, motifs
report          ``report.report_stage`` (report)                           pages, figures
==============  =========================================================  ======================

Each step runs as ``python bench_database.py step NAME WORKDIR`` under ``/usr/bin/time -v``:
``seconds`` is the entry point's own time (measured inside), ``wall_s`` the whole process
(Python and torch start-up included), ``peak_rss_mb`` its maximum resident set (for
``environments``, the largest of the parent and its 2 workers, not their sum). The model
evaluation (``model_evaluate``) is not timed; the report is built without its metrics.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, SHARED_DATA, alignn_slice, measure, quick  # noqa: E402

STEPS = ("import", "graphs", "train", "embeddings", "environments", "interpret", "report")
QUICK_MATERIALS = 60
STUDY_TRAIN_GRAPHS = 2144
TIMEOUT_S = 900


def _settings(work: Path) -> dict:
    return json.loads((work / "settings.json").read_text())


def step(name: str, work: Path) -> dict:
    """Run one step in this process on the files of earlier steps in ``work``; returns its numbers."""
    import warnings

    warnings.simplefilter("ignore")
    s = _settings(work)
    from optabs.grid import Grid

    grid = Grid()
    dataset_path, cache, manifest = work / "dataset.parquet", work / "graph_cache.pt", work / "graphs.json"
    model_dir, embeddings_path, envs_path = work / "model", work / "embeddings.parquet", work / "environments.parquet"
    start = time.perf_counter()
    if name == "import":
        import pandas as pd

        from optabs.dataset.stage import import_stage

        dataset = import_stage(s["dataset_dir"], grid, dataset_path=dataset_path, dropped_path=work / "dropped.csv",
                               failures_path=work / "dataset" / "failures.csv", alignn_dir=work / "alignn")
        seconds = time.perf_counter() - start
        dropped = pd.read_csv(work / "dropped.csv")
        return {"seconds": seconds, "materials": len(dataset), "dropped": len(dropped),
                "materials_per_s": len(dataset) / seconds}
    from optabs.model.settings import ModelSettings

    model = ModelSettings.preset("cpu", epochs=1, max_train_minutes=None)
    if name == "graphs":
        from optabs.model.stage import graphs_stage

        graphs_stage(dataset_path, model, cache, manifest, model_dir / "failures.csv")
        seconds = time.perf_counter() - start
        info = json.loads(manifest.read_text())
        n = len(info["material_ids"]) + len(info["failures"])
        return {"seconds": seconds, "structures": n, "failures": len(info["failures"]), "structures_per_s": n / seconds}
    if name == "train":
        from optabs.model.stage import train_stage

        result = train_stage(dataset_path, cache, model, model_dir, grid)
        seconds = time.perf_counter() - start
        h = result.history
        n_train = sum(v == "train" for v in result.split.values())
        epoch_s = float(h.seconds.iloc[0])
        preset_epochs = ModelSettings.preset("cpu").epochs
        return {"seconds": seconds, "preset": "cpu", "threads": model.threads, "batch_size": model.batch_size,
                "n_parameters": result.n_parameters, "n_train": n_train, "epochs": 1,
                "graphs_per_s": float(h.graphs_per_s.iloc[0]), "epoch_seconds": epoch_s,
                # the study's epoch (2,144 training graphs; ~42 s on an A100) at this rate
                f"epoch_seconds_scaled_to_{STUDY_TRAIN_GRAPHS}_graphs": STUDY_TRAIN_GRAPHS / float(h.graphs_per_s.iloc[0]),
                "projected_preset_epochs": preset_epochs,
                "projected_preset_minutes": epoch_s * preset_epochs / 60}
    if name == "embeddings":
        from optabs.model.stage import embeddings_stage

        embeddings_stage(dataset_path, cache, model_dir / "checkpoint.pt", embeddings_path)
        seconds = time.perf_counter() - start
        import pandas as pd

        n = pd.read_parquet(embeddings_path, columns=["material_id"]).material_id.nunique()
        return {"seconds": seconds, "materials": int(n), "materials_per_s": n / seconds}
    if name == "environments":
        from optabs.interpret.stage import environments_stage

        envs = environments_stage(dataset_path, envs_path, work / "interpret" / "failures.csv", n_workers=2)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "materials": len(envs), "workers": 2, "failed": int((envs["error"] != "").sum()),
                "seconds_per_material_per_worker": 2 * seconds / max(len(envs), 1)}
    if name == "interpret":
        from optabs.interpret import InterpretSettings
        from optabs.interpret.stage import interpret_stage

        settings = InterpretSettings(n_clusters=s["n_clusters"], layer="alignn_0")  # sweep_k: the default 12-96
        comparison = interpret_stage(dataset_path, embeddings_path, envs_path, settings=settings, grid=grid,
                                     clusters_path=work / "clusters.parquet", linkage_path=work / "linkage.npy",
                                     comparison_path=work / "comparison.json", chemistry_dir=work / "chemistry",
                                     sweep_path=work / "sweep.parquet")
        return {"seconds": time.perf_counter() - start, "n_clusters": s["n_clusters"],
                "sweep_k": list(settings.sweep_k), "best_by_k": comparison.get("best_by_k", {})}
    if name == "report":
        from optabs.report import report_stage

        index = report_stage(work / "report", dataset_path=dataset_path, clusters_path=work / "clusters.parquet",
                             linkage_path=work / "linkage.npy", comparison_path=work / "comparison.json",
                             chemistry_dir=work / "chemistry", sweep_path=work / "sweep.parquet",
                             failure_paths=sorted(work.rglob("failures.csv")), grid=grid,
                             title="optabs benchmark: spectra database")
        seconds = time.perf_counter() - start
        files = [p for p in index.parent.rglob("*") if p.is_file()]
        return {"seconds": seconds, "files": len(files), "pngs": sum(p.suffix == ".png" for p in files),
                "mb": sum(p.stat().st_size for p in files) / 1e6, "browser": _browser_check(index, dataset_path)}
    raise SystemExit(f"unknown step {name!r}; choose from {', '.join(STEPS)}")


def _browser_check(index: Path, dataset_path: Path) -> dict:
    """The report test's browser check (tests/fakes/browser.py) on the whole report, not timed.

    Opens the index and every cluster page in headless Chromium, requires every image to load,
    and counts the dataset's materials that some cluster page names (all of them, if it covers
    the database). A machine without Chromium records why instead.
    """
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fakes.browser import check_report, start_browser

    try:
        driver = start_browser()
    except BaseException as exc:  # pytest.skip raises an exception that is not an Exception
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    try:
        pages = check_report(driver, index)
    except AssertionError as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        driver.quit()
    html = " ".join(p.read_text() for p in index.parent.glob("cluster_*.html"))
    ids = pd.read_parquet(dataset_path, columns=["material_id"]).material_id
    listed = int(sum(re.search(rf"(?<![\w-]){re.escape(m)}(?![\w-])", html) is not None for m in ids))
    return {"ok": True, "cluster_pages": len(pages), "all_images_loaded": True,
            "materials": int(len(ids)), "materials_on_cluster_pages": listed}


def _rounded(d: dict) -> dict:
    return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v) for k, v in d.items()}


def run() -> dict:
    if not SHARED_DATA.is_dir():
        return {"quick": quick(), "skipped": f"needs the shared oxides at {SHARED_DATA} (absent)"}
    out: dict = {"quick": quick(), "steps": {}}
    with tempfile.TemporaryDirectory(prefix="optabs-bench-database-") as tmp:
        work = Path(tmp)
        source = alignn_slice(SHARED_DATA, QUICK_MATERIALS, work / "slice") if quick() else SHARED_DATA
        (work / "settings.json").write_text(json.dumps({"dataset_dir": str(source), "n_clusters": 6 if quick() else 96}))
        for name in STEPS:
            m = measure([PYTHON, __file__, "step", name, str(work)], cwd=work, timeout=TIMEOUT_S).check(f"database step {name}")
            numbers = json.loads((work / f"{name}.json").read_text())
            out["steps"][name] = {**_rounded(numbers), "wall_s": round(m.wall_s, 2), "peak_rss_mb": m.peak_rss_mb}
            print(f"  database {name}: {m.wall_s:.1f} s, peak {m.peak_rss_mb} MB", file=sys.stderr, flush=True)
    steps = out["steps"]
    out["materials"] = steps["import"]["materials"]
    out["structures_per_s"] = steps["graphs"]["structures_per_s"]
    out["train_graphs_per_s"] = steps["train"]["graphs_per_s"]
    out["train_epoch_seconds"] = steps["train"]["epoch_seconds"]
    out["train_projected_cpu_preset_minutes"] = steps["train"]["projected_preset_minutes"]
    out["interpret_chemistry_report_seconds"] = round(
        sum(steps[s]["seconds"] for s in ("environments", "interpret", "report")), 2)
    # issue 18's goal: interpret (with the full K-and-layer sweep) plus report under 60 s
    out["interpret_sweep_report_seconds"] = round(steps["interpret"]["seconds"] + steps["report"]["seconds"], 2)
    out["total_wall_s"] = round(sum(v["wall_s"] for v in steps.values()), 1)
    out["peak_rss_mb_max"] = max(v["peak_rss_mb"] or 0 for v in steps.values())
    return out


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "step":
        os.environ.setdefault("TQDM_DISABLE", "1")
        numbers = step(argv[1], Path(argv[2]))
        (Path(argv[2]) / f"{argv[1]}.json").write_text(json.dumps(numbers))
        return
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
