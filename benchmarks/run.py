"""`make bench`: run every benchmark, write benchmarks/results.json and benchmarks/results.md, and
put the table into README.md's "Performance" section (between the bench markers).

Each benchmark module has ``run() -> dict``; every entry records its date and wall time, the
results record the machine (cores, memory, CPU model). The GPU numbers are not measured here
(no GPU in CI or on the development machine): ``bench_gpu.py`` ran on a lent GPU and its
``results-gpu.json`` is merged into the table with its own date and GPU.

``OPTABS_BENCH_QUICK=1`` (``make bench QUICK=1``): every benchmark at small sizes, to check the
harness in a few minutes. A quick run writes ``benchmarks/work/results-quick.{json,md}``
(ignored by git) and leaves the README alone, so it is never mistaken for the record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import quick  # noqa: E402

README = HERE.parent / "README.md"
GPU_RESULTS = HERE / "results-gpu.json"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"

#: name -> (module, what it measures), cheapest first. ``gpaw`` is not in the default run:
#: the demo benchmark reads the same per-material GPAW timings from its own run.
BENCHMARKS = {
    "spectra": ("bench_spectra", "Kramers-Kronig and scissor vs vise on 1,501 x 6"),
    "dag": ("bench_dag", "snakemake -n with 1,000 and 10,000 synthetic materials; the database config"),
    "startup": ("bench_startup", "time to stop on a bad input (empty catalog, unknown key, bad setting) vs a dry run"),
    "interpret": ("bench_interpret", "clustering + comparison + chemistry + report at 3,000 synthetic materials"),
    "model": ("bench_model", "graphs, CPU training with 2 threads, inference on 200 oxides"),
    "database": ("bench_database", "the no-DFT chain on all 1,116 oxides, each step's time and peak RSS"),
    "screen": ("bench_screen", "ranking 1,000-10,000 candidate structures with a 5-member ensemble, graphs included"),
    "active_learning": ("bench_active_learning", "active learning on the 1,116 oxides (replay): ucb, greedy vs random"),
    "calibration": ("bench_calibration", "a 5-member ensemble on the 1,116 oxides: test points inside its sigma bands"),
    "demo": ("bench_demo", "the whole make demo: wall time, peak RSS, materials, time per rule and material, edge offsets"),
    "reference": ("bench_reference", "GPAW demo vs 10 Materials Project VASP spectra: E5, E4, MAE (uncorrected)"),
    "edges": ("bench_edges", "GPAW demo edge vs the same engine on a 2x denser optics grid (opt-in, ~30 min)"),
    "gpaw": ("bench_gpaw", "GPAW demo preset per material, each in a fresh process (opt-in)"),
}
DEFAULT = [name for name in BENCHMARKS if name not in ("gpaw", "edges")]


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
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
        info["date"] = dt.date.today().isoformat()
    except OSError:
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=DEFAULT, help=f"benchmarks to run (default: {' '.join(DEFAULT)})")
    parser.add_argument("--out", default=str(HERE / "work" / "results-quick.json") if quick() else str(HERE / "results.json"))
    parser.add_argument("--no-readme", action="store_true", help="do not update README.md (a quick run never does)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {}
    results["machine"] = machine()
    results["quick"] = quick()
    total = time.monotonic()
    for name in args.names:
        module_name, what = BENCHMARKS[name]
        print(f"{name}: {what} ...", flush=True)
        start = time.monotonic()
        entry: dict = {"what": what, "date": dt.datetime.now().isoformat(timespec="seconds"), "quick": quick()}
        try:
            entry["result"] = importlib.import_module(module_name).run()
        except Exception as exc:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            entry["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        entry["wall_s"] = round(time.monotonic() - start, 1)
        results[name] = entry
        print(f"{name}: {entry['wall_s']} s{' (ERROR)' if 'error' in entry else ''}", flush=True)
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each, so a late failure keeps the rest
    results["total_wall_s"] = round(time.monotonic() - total, 1)
    results["last_run"] = list(args.names)
    print(f"total: {results['total_wall_s']} s", flush=True)
    if GPU_RESULTS.exists():
        results["gpu"] = json.loads(GPU_RESULTS.read_text())
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    out.with_suffix(".md").write_text(table)
    if not quick() and not args.no_readme:
        update_readme(README, table)
    return 1 if any("error" in results.get(n, {}) for n in args.names) else 0


# ---------------------------------------------------------------- the table


def _s(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _mb(mb) -> str:
    return "?" if mb is None else (f"{mb:.0f} MB" if mb < 1024 else f"{mb / 1024:.2f} GB")


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


Row = tuple[str, str, str, bool | None]


def rows_spectra(r: dict) -> list[Row]:
    kk, sc = r["kramers_kronig"], r["scissor"]
    return [
        ("Kramers–Kronig, 1,501 × 6, vs vise `kramers_kronig_trans`",
         f"{kk['ratio']:,.0f}× faster ({kk['time_optabs_s'] * 1e3:.2f} ms vs {_s(kk['time_vise_s'])}); "
         f"max rel. diff {kk['max_rel_diff']:.2g} (first order removed: {kk['max_rel_diff_vise_first_order_removed']:.1g})",
         "≥ 100×", kk["ratio"] >= 100),
        ("scissor, 1,501 × 6, vs vise `imag_shift`",
         f"{sc['ratio']:,.0f}× faster ({sc['time_optabs_s'] * 1e3:.3f} ms vs {sc['time_vise_s'] * 1e3:.1f} ms)",
         "≥ 100×", sc["ratio"] >= 100),
    ]


def rows_dag(r: dict) -> list[Row]:
    small, large = r["runs"]
    rows = [(f"`snakemake -n`, {small['materials']:,} materials ({small['total_jobs_planned']:,} jobs)",
             f"{_s(small['seconds'])}, peak {_mb(small['peak_rss_mb'])}", "—", None),
            (f"`snakemake -n`, {large['materials']:,} materials ({large['total_jobs_planned']:,} jobs)",
             f"{_s(large['seconds'])}, peak {_mb(large['peak_rss_mb'])}",
             f"< {r['goal_10000_under_s']:.0f} s" if "met_10000" in r else "—", r.get("met_10000")),
            (f"DAG time ratio {large['materials']:,} / {small['materials']:,}", f"{r['ratio_large_over_small']:.2f}",
             "< 12" if "met_ratio" in r else "—", r.get("met_ratio"))]
    db = r.get("database_1116", {})
    rows.append(("`snakemake -n`, configs/database.yaml on the 1,116 oxides",
                 db.get("skipped") or f"{_s(db['seconds'])}", "seconds", None if "skipped" in db else db["seconds"] < 10))
    return rows


def rows_startup(r: dict) -> list[Row]:
    dry = r["dry_run"]["wall_s"]
    return [(f"stop on a bad input before any job ({name.replace('_', ' ')})",
             f"{_s(r[name]['wall_s'])} ({r[name]['ratio_to_dry_run']:.2f}× a dry run, {_s(dry)})", "< 1.5× a dry run",
             r[name]["ratio_to_dry_run"] < 1.5)
            for name in ("empty_catalog", "unknown_key", "bad_engine_setting")]


def rows_interpret(r: dict) -> list[Row]:
    full = r["n_materials"] == 3000
    return [(f"clustering ×2 + comparison + chemistry + report, {r['n_materials']:,} synthetic, K = {r['n_clusters_requested']}",
             f"{_s(r['total_s'])} (report {_s(r['report_s'])})", "< 60 s" if full else "—", r["total_s"] < 60 if full else None)]


def rows_model(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("model (graphs, 2-thread training, inference)", r["skipped"], "—", None)]
    g, t = r["graphs"], r["training"]["threads_2"]
    return [
        (f"crystal graphs ({g.get('builder', 'alignn')}), {g['n_structures']} oxides "
         f"({g['atoms_min_median_max'][0]}–{g['atoms_min_median_max'][2]} atoms), {g.get('workers', 1)} processes",
         f"{g['structures_per_s']:.0f} structures/s"
         + (f"; the previous builder in the same run {g['previous_builder']['structures_per_s']:.0f} structures/s "
            f"({g['ratio_new_to_previous']:.1f}×); {g['edges_per_atom']:.2f} edges per atom"
            if "previous_builder" in g else ""),
         "≥ 500 structures/s", None if r.get("quick") else g["structures_per_s"] >= 500),
        (f"CPU training, study architecture, batch {t['batch_size']}, 2 threads",
         f"{max(t['graphs_per_s']):.0f} graphs/s", "—", None),
        ("CPU inference, 1 thread, batch 32", f"{r['inference_graphs_per_s_1_thread']:.0f} graphs/s", "—", None),
    ]


def rows_database(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("spectra database chain", r["skipped"], "—", None)]
    s, n = r["steps"], r["materials"]
    t = s["train"]

    def step(name: str, extra: str = "") -> str:
        return f"{extra}{_s(s[name]['seconds'])}; peak {_mb(s[name]['peak_rss_mb'])}"

    return [
        (f"database: import {n:,} materials (ALIGNN folder)", step("import"), "—", None),
        (f"database: graphs, {n:,} oxides", step("graphs", f"{s['graphs']['structures_per_s']:.0f} structures/s, "), "—", None),
        (f"database: CPU training, `cpu` preset, {t['threads']} thread, batch {t['batch_size']}, {t['n_train']} graphs",
         f"{t['graphs_per_s']:.0f} graphs/s, {_s(t['epoch_seconds'])} per epoch ({t['projected_preset_epochs']} epochs ≈ "
         f"{t['projected_preset_minutes']:.0f} min; the study's 2,144-graph epoch ≈ "
         f"{_s(t.get('epoch_seconds_scaled_to_2144_graphs', float('nan')))}); peak {_mb(t['peak_rss_mb'])}", "—", None),
        (f"database: embeddings, {n:,} materials", step("embeddings"), "—", None),
        (f"database: CrystalNN environments, {n:,} materials, 2 workers", step("environments"), "—", None),
        (f"database: Ward ×2 + comparison + K-and-layer sweep + chemistry and motifs, K = {s['interpret']['n_clusters']}",
         step("interpret"), "—", None),
        (f"database: report ({s['report']['files']} files)", step("report"), "—", None),
        *_browser_row(s["report"].get("browser"), n),
        (f"database: environments + clustering + chemistry + report, {n:,} materials",
         _s(r["interpret_chemistry_report_seconds"]), "—", None),
        *([(f"database: interpret with the full sweep (K = {', '.join(map(str, s['interpret']['sweep_k']))}, every layer) "
            f"+ report, {n:,} materials", _s(r["interpret_sweep_report_seconds"]), "< 60 s",
            None if r.get("quick") else r["interpret_sweep_report_seconds"] < 60)]
          if "interpret_sweep_report_seconds" in r else []),
    ]


def _browser_row(b: dict | None, n: int) -> list[Row]:
    if not b:
        return []
    if "skipped" in b:
        return [("database report in headless Chromium", f"not checked: {b['skipped']}", "—", None)]
    ok = b.get("ok") and b.get("materials_on_cluster_pages") == n
    number = (f"{b.get('cluster_pages', '?')} cluster pages, every image loaded, "
              f"{b.get('materials_on_cluster_pages', '?'):,} of {n:,} materials listed") if b.get("ok") else b.get("error", "?")
    return [("database report in headless Chromium (the report test's check)", number, "all materials, all images", ok)]


def rows_demo(r: dict) -> list[Row]:
    d = r["dft"]
    dft = f"{d.get('ok', '?')} of {d.get('materials', '?')} materials computed, {d.get('failed', '?')} failed"
    gpaw = next((v for k, v in r.get("rules", {}).items() if k.startswith("dft_")), None)
    span = f"; DFT stage {_s(gpaw['span_seconds'])}" if gpaw else ""
    number = f"{_s(r['wall_s'])}{span}; peak {_mb(r['peak_rss_mb'])}; {dft}"
    if r.get("returncode"):
        number += f" (snakemake exit {r['returncode']}: a job failed)"
    rows = [(f"`make demo` ({r['catalog']}), 2 cores", number, "—", None)]
    if gpaw and not r.get("quick"):
        # issue 3's goal: the GPAW stage of the whole demo catalog under 10 minutes on 2 cores
        compute = d.get("dft_seconds_sum")
        detail = f"; GPAW itself {_s(compute)} of CPU, the rest is job start-up" if compute else ""
        speed = r.get("calibration_s")
        if speed:  # the machine's speed in this run (bench_demo.calibration_s)
            detail += f"; machine check {speed['before']:.2f} / {speed['after']:.2f} s before / after"
        rows.append(("`make demo`: GPAW stage (36 materials, 2 at a time)",
                     f"{_s(gpaw['span_seconds'])} wall, {_s(gpaw['job_seconds'])} of jobs{detail}",
                     "< 10 min", gpaw["span_seconds"] < 600))
    e = r.get("edges") or {}
    if "median_edge_offset_ev" in e:
        gamma = e.get("gamma_edge_materials", {})
        worst_gamma = max(gamma.values()) if gamma else None
        rows.append(("`make demo`: edge offset, onset − corrected direct gap (all / CdSe CdS ZnO ZnS ZnSe)",
                     f"median {e['median_edge_offset_ev']:+.2f} eV, max {e['max_edge_offset_ev']:+.2f} eV; "
                     + ", ".join(f"{k} {v:+.2f}" for k, v in gamma.items()),
                     "median ≤ 0.1 eV; Γ-edge five ≤ 0.2 eV",
                     None if r.get("quick") or worst_gamma is None
                     else e["median_edge_offset_ev"] <= 0.1 and worst_gamma <= 0.2))
    return rows


def rows_reference(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("GPAW demo vs Materials Project spectra", f"not run: {r['skipped']}", "—", None)]
    ok_rows = [m for m in r["materials"] if m["status"] == "ok"]
    number = (f"{len(ok_rows)} of {len(r['materials'])} computed; median abs. ΔE5 {r['median_abs_dE5_ev']:.2f} eV, "
              f"max {r['max_abs_dE5_ev']:.2f} eV; median abs. ΔE4 {r['median_abs_dE4_ev']:.2f} eV; "
              f"median MAE {r['median_mae']:.3f}")
    met = None if r.get("quick") else (r["median_abs_dE5_ev"] <= 0.1 and r["max_abs_dE5_ev"] <= 0.3
                                       and r["median_mae"] <= 0.12)
    return [("GPAW demo vs 10 Materials Project VASP spectra (uncorrected)", number,
             "median abs. ΔE5 ≤ 0.1, max ≤ 0.3 eV, median MAE ≤ 0.12", met)]


def rows_edges(r: dict) -> list[Row]:
    number = (f"{r['counted (gap >= 0.3 eV)']} materials; max abs. Δonset {r['max_abs_d_onset_ev']:.2f} eV, "
              f"max abs. ΔE5 {r['max_abs_d_e5_ev']:.2f} eV; beyond 0.15 eV: {', '.join(r['beyond_0.15_ev']) or 'none'}")
    return [(f"GPAW demo edge vs {r['dense_factor']:g}x denser optics grid", number, "≤ 0.15 eV each",
             None if r.get("quick") else not r["beyond_0.15_ev"])]


def rows_gpaw(r: dict) -> list[Row]:
    per = ", ".join(f"{m} {v['wall_s']:.0f} s" for m, v in r["materials"].items())
    peak = max(v["peak_rss_mb"] for v in r["materials"].values())
    return [("GPAW demo preset, one core per material", f"{per}; peak ≤ {_mb(peak)}", "—", None)]


def rows_screen(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("screening throughput", r["skipped"], "—", None)]
    rows = []
    for preset, e in r["presets"].items():
        n = max(e["sizes"], key=int)
        sizes = ", ".join(f"{int(k):,}: {v['structures_per_s']:.0f}/s" for k, v in e["sizes"].items())
        demo = preset == "demo"
        rows.append((f"screen: rank {int(n):,} candidates, {r['members']}-member ensemble, `{preset}` preset "
                     f"({e['architecture']}), graphs included",
                     f"{e['structures_per_s']:.0f} structures/s ({sizes}); time per structure, largest / smallest: "
                     f"{e['scaling_ratio']}×", "≥ 30 structures/s, linear" if demo else "—", r["goal_met"] if demo else None))
    return rows


def rows_active_learning(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("active-learning simulation", r["skipped"], "—", None)]
    f = r["found_after_last_round"]
    rounds = "; ".join(f"{k}: " + " → ".join(f"{v:.2f}" for v in vals) for k, vals in r["recall_per_round"].items())
    return [(f"active learning, {r['materials']:,} oxides (replay): {r['initial']} computed, then {r['rounds']} rounds of "
             f"{r['batch']}; top {r['top_n']} by {r['merit']}; {len(r['seeds'])} seeds, {r['ensemble']}-member ensembles",
             f"found after the last round: random {f['random']:.1f}, greedy {f['greedy']:.1f}, ucb {f['ucb']:.1f} "
             f"({r['ratio_best_to_random']}× random); recall per round: {rounds}; {_s(r['seconds'])}",
             "best of ucb/greedy ≥ 2× random, ≤ 30 min", r["goal_met"])]


def rows_calibration(r: dict) -> list[Row]:
    if "skipped" in r:
        return [("ensemble calibration", r["skipped"], "—", None)]
    c = r["test"]
    return [(f"calibration: {r['members']}-member ensemble ({r['model']}) on {r['materials']:,} oxides, "
             f"{c['n_points']:,} absorbing test points",
             f"inside ±1σ {c['within_1sigma']:.1%}, ±2σ {c['within_2sigma']:.1%} (σ scaled by {r['sigma_scale']:.2f} "
             f"from validation: ±2σ {r['test_scaled']['within_2sigma']:.1%}); median test MAE {r['mae_median']:.3f}",
             "±2σ covers ≥ 80 %", r["goal_met"])]


def rows_gpu(g: dict) -> list[Row]:
    b4 = g["training"]["batch_4"]
    ref = g["study_reference"]
    scaled = f"epoch_seconds_scaled_to_{ref['train_graphs']}_graphs"
    epoch = b4[scaled]
    rows = [(f"GPU training ({g['gpu']}, `paper` preset, batch 4; measured {g['date'][:10]})",
             f"{max(b4['graphs_per_s']):.0f} graphs/s; {epoch:.0f} s per {ref['train_graphs']:,}-graph epoch",
             f"the study: {ref['epoch_seconds']:.0f} s on an {ref['gpu'].replace('NVIDIA ', '')}", epoch <= ref["epoch_seconds"])]
    for key in ("batch_16", "batch_64"):
        if key in g["training"]:
            b = g["training"][key]
            rows.append((f"GPU training, batch {b['batch_size']} (not the study's setting)",
                         f"{max(b['graphs_per_s']):.0f} graphs/s; "
                         f"{b[scaled]:.1f} s per epoch", "—", None))
    prof = g.get("profile_batch_4", {}).get("deterministic")
    if prof:
        ph = prof["phases_share"]
        rows.append(("GPU training step, batch 4: what limits it",
                     f"{prof['step_ms']:.1f} ms per step; forward {100 * ph['forward']:.0f} %, backward "
                     f"{100 * ph['backward']:.0f} %, optimizer {100 * ph['optimizer']:.0f} %, collation + copy "
                     f"{100 * (ph['collate'] + ph['host_to_device']):.0f} %; {prof['profiler']['kernels_per_step']:.0f} "
                     f"kernels per step of {prof['profiler']['kernel_us_mean']:.1f} µs mean: launch-bound", "—", None))
    prev = g.get("training", {}).get("batch_4_previous_graph")
    if prev:
        rows.append(("GPU training, batch 4, previous graph (10 nearest), same run",
                     f"{max(prev['graphs_per_s']):.0f} graphs/s (the shell graph: {max(b4['graphs_per_s']):.0f})", "no slower",
                     max(b4["graphs_per_s"]) >= 0.9 * max(prev["graphs_per_s"])))
    rows.append(("GPU inference / embedding extraction, batch 32",
                 f"{g['inference_graphs_per_s']:.0f} / {g['embeddings_graphs_per_s']:.0f} graphs/s", "—", None))
    return rows


ROWS: dict[str, Callable[[dict], list[Row]]] = {
    "spectra": rows_spectra, "dag": rows_dag, "startup": rows_startup, "interpret": rows_interpret, "model": rows_model,
    "database": rows_database, "screen": rows_screen, "active_learning": rows_active_learning,
    "calibration": rows_calibration, "demo": rows_demo, "reference": rows_reference, "edges": rows_edges,
    "gpaw": rows_gpaw,
}


def markdown(results: dict) -> str:
    m = results.get("machine", {})
    lines = []
    if results.get("quick"):
        lines += ["**QUICK RUN (`OPTABS_BENCH_QUICK=1`): small sizes, not the record.**", ""]
    lines += [
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB; "
        f"load average at the start {m.get('load_average_at_start', '?')}. "
        f"`make bench` total: {_s(results['total_wall_s']) if 'total_wall_s' in results else '?'}.",
        "",
        "| benchmark | measured | goal | met? | date |",
        "|---|---|---|---|---|",
    ]
    for name, rows_of in ROWS.items():
        entry = results.get(name)
        if not entry:
            continue
        date = entry.get("date", "")[:10] + (" (quick)" if entry.get("quick") else "")
        if "error" in entry:
            lines.append(f"| {name} | error: {entry['error'][:200]} | | | {date} |")
            continue
        try:
            rows = rows_of(entry["result"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            rows = [(name, f"(no table row: {type(exc).__name__} {exc})", "", None)]
        for what, number, goal, ok in rows:
            lines.append(f"| {what} | {number} | {goal} | {_met(ok)} | {date} |")
    if "total_wall_s" in results:
        ran = results.get("last_run", DEFAULT)
        whole = set(DEFAULT) <= set(ran)
        ok = None if results.get("quick") or not whole else results["total_wall_s"] < 15 * 60
        what = "`make bench`, all of the above" if whole else f"last `run.py` call ({', '.join(ran)} only)"
        lines.append(f"| {what} | {_s(results['total_wall_s'])} | {'< 15 min' if whole else '—'} | {_met(ok)} | "
                     f"{results.get('machine', {}).get('date', '')} |")
    if "gpu" in results:
        for what, number, goal, ok in rows_gpu(results["gpu"]):
            lines.append(f"| {what} | {number} | {goal} | {_met(ok)} | {results['gpu']['date'][:10]} |")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between the bench markers in ``readme`` with ``table``."""
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        print(f"note: {readme.name} has no {START} ... {END} block; the table is only in results.md", flush=True)
        return
    readme.write_text(pattern.sub(lambda _: f"{START}\n{table}{END}", text, count=1))


if __name__ == "__main__":
    raise SystemExit(main())
