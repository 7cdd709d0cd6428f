"""ALIGNN on a GPU: the ``paper`` preset's throughput, epoch time and what limits it (run on a GPU node).

Run: ``python benchmarks/bench_gpu.py DATASET_DIR OUT.json`` on a machine with CUDA, where
``DATASET_DIR`` is an ALIGNN spectra folder (the shared oxides: 1,116 real oxides, 2-40 atoms).
It is not part of ``make bench`` (CI and the development machine have no GPU); its last result
is kept in ``benchmarks/results-gpu.json`` and merged into the README table by ``run.py``.
Options: ``--previous FILE`` (default: ``OUT.json`` if it exists) keeps an earlier result made
with another graph builder under ``previous_graph``; ``--device cpu --limit 24 --epochs 1``
is a quick smoke test of every section without a GPU; ``--budget-s`` skips the optional
sections (previous graph's training, batch 16 / 64, inference) once that many seconds are spent;
``--tables DIR`` writes the profiler's op tables there. The JSON is rewritten after each section.

What is measured, with the study's architecture and batch size (``paper`` preset: 4 ALIGNN + 4
GCN layers, hidden 64, batch 4, AdamW 1e-3, one-cycle) on the study's crystal graph
(:mod:`optabs.model.crystal_graph`: k-nearest shells, undirected):

- graph construction (structures/s, all cores) and the graphs' size: edges per atom, line-graph
  edges (triplets) per graph and per atom, beside the same for the previous builder (alignn's
  ``build_pure_torch_graph(max_neighbors=10)``: exactly 10 directed edges per atom), built here
  in one process as before;
- training on the GPU for ``EPOCHS`` epochs: graphs/s and wall time of each epoch (the first
  includes CUDA start-up), and the epoch time scaled to the study's 2,144 training graphs, to
  compare with its ~42 s per epoch on an A100 80GB (~51 graphs/s); the same at batch 4 on the
  previous builder's graphs (a ratio on one machine);
- a profile of one batch-4 training step: host-side collation (batching the graphs on the CPU),
  host-to-device copy, forward (+ loss), backward, optimiser step, each timed between
  ``torch.cuda.synchronize`` calls; the step as the training loop runs it (no extra syncs),
  with and without deterministic kernels; and under ``torch.profiler``: kernels per step,
  their mean duration, the GPU's busy fraction, CUDA runtime calls per step, the top ops;
- the same at batch 16 and 64 (not the study's setting: how far a larger batch gets);
- inference and embedding extraction (graphs/s, batch 32), peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from optabs.dataset import import_alignn, spectra_matrix  # noqa: E402
from optabs.grid import Grid  # noqa: E402
from optabs.model.crystal_graph import BUILDER, BUILDER_VERSION  # noqa: E402
from optabs.model.embeddings import embeddings  # noqa: E402
from optabs.model.graphs import build_graphs, default_workers, structures_of  # noqa: E402
from optabs.model.network import batch, batches, forward, model_config, new_model  # noqa: E402
from optabs.model.predict import predict  # noqa: E402
from optabs.model.settings import ModelSettings  # noqa: E402
from optabs.model.split import split_ids  # noqa: E402
from optabs.model.train import _param_groups, _torch_runtime, train  # noqa: E402

EPOCHS = 3
STUDY_TRAIN_GRAPHS = 2144
STUDY_EPOCH_SECONDS_A100 = 42.0
PREVIOUS_BUILDER = "alignn build_pure_torch_graph(max_neighbors=10)"
#: Profile: steps run first (allocator, cuDNN/cuBLAS warm-up), steps timed, steps under torch.profiler.
PROFILE_WARMUP, PROFILE_STEPS, PROFILER_STEPS = 15, 60, 20


# ---------------------------------------------------------------------------------------------
# Graphs


def previous_builder_graphs(structures: Mapping[str, Any], settings: ModelSettings) -> tuple[dict, float]:
    """The graphs the previous builder made (alignn's ``build_pure_torch_graph``, the k nearest
    per source atom, directed), in one process, and the seconds it took."""
    from alignn.torch_graph_builder import build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    graphs = {}
    t0 = time.perf_counter()
    try:
        for mid, structure in structures.items():
            try:
                graphs[mid] = build_pure_torch_graph(
                    pmg_to_atoms(structure), two_body_cutoff=float(settings.cutoff),
                    three_body_cutoff=float(settings.three_body_cutoff),
                    max_neighbors=int(settings.max_neighbors), atom_features="cgcnn",
                )
            except Exception:  # counted as missing below
                continue
    finally:
        torch.set_num_threads(old_threads)
    return graphs, time.perf_counter() - t0


def graph_stats(graphs: Mapping[str, Any], batch_size: int = 4) -> dict:
    """Size of the graphs: atoms, directed edges (bonds) and line-graph edges (triplets)."""
    atoms = np.array([g.num_nodes for g, _ in graphs.values()], dtype=np.int64)
    edges = np.array([g.num_edges for g, _ in graphs.values()], dtype=np.int64)
    triplets = np.array([lg.num_edges for _, lg in graphs.values()], dtype=np.int64)
    degree = np.concatenate([np.bincount(g.src.numpy(), minlength=g.num_nodes) for g, _ in graphs.values()])
    k = 10
    return {
        "graphs": len(atoms),
        "atoms_per_graph": round(float(atoms.mean()), 2),
        "edges_per_atom": round(float(edges.sum() / atoms.sum()), 3),
        "edges_per_atom_min_max": [int(degree.min()), int(degree.max())],
        f"atoms_with_more_than_{k}_edges": round(float((degree > k).mean()), 4),
        "edges_per_graph": round(float(edges.mean()), 1),
        "line_graph_edges_per_graph": round(float(triplets.mean()), 1),
        "line_graph_edges_per_atom": round(float(triplets.sum() / atoms.sum()), 2),
        "line_graph_edges_per_edge": round(float(triplets.sum() / edges.sum()), 2),
        "line_graph_edges_max_graph": int(triplets.max()),
        f"per_batch_of_{batch_size}": {
            "atoms": round(batch_size * float(atoms.mean()), 1),
            "edges": round(batch_size * float(edges.mean()), 1),
            "line_graph_edges": round(batch_size * float(triplets.mean()), 1),
        },
    }


# ---------------------------------------------------------------------------------------------
# Training


def _train(dataset, graphs, batch_size: int, epochs: int, tmp: Path, device: str) -> tuple[dict, Any]:
    settings = ModelSettings.preset("paper", epochs=epochs, batch_size=batch_size, device=device)
    cuda = settings.torch_device().type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    result = train(dataset, graphs, settings, tmp / f"b{batch_size}")
    h = result.history
    n_train = sum(v == "train" for v in result.split.values())
    best_rate = float(h.graphs_per_s.max())
    return {
        "batch_size": batch_size,
        "n_train": n_train,
        "n_parameters": result.n_parameters,
        "epochs": epochs,
        "graphs_per_s": [round(float(v), 1) for v in h.graphs_per_s],
        "epoch_seconds": [round(float(v), 2) for v in h.seconds],
        "train_loss": [round(float(v), 4) for v in h.train_loss],
        "val_loss": [round(float(v), 4) for v in h.val_loss],
        f"epoch_seconds_scaled_to_{STUDY_TRAIN_GRAPHS}_graphs": round(STUDY_TRAIN_GRAPHS / best_rate, 1),
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }, result.model


# ---------------------------------------------------------------------------------------------
# Profile of one training step


class _Step:
    """A training setup as :func:`optabs.model.train.train` makes it: model, AdamW, one-cycle
    schedule, the training ids in a seeded random order and the targets (on the CPU)."""

    def __init__(self, dataset, graphs: Mapping[str, Any], settings: ModelSettings, device: torch.device, steps: int):
        data = dataset[dataset.material_id.isin(list(graphs))].reset_index(drop=True)
        self.Y = torch.as_tensor(spectra_matrix(data), dtype=torch.float32)
        self.row = {mid: i for i, mid in enumerate(data.material_id)}
        split = split_ids(list(data.material_id), settings)
        train_ids = sorted(m for m, s in split.items() if s == "train")
        order = torch.randperm(len(train_ids), generator=torch.Generator().manual_seed(settings.seed)).tolist()
        self.order = [train_ids[i] for i in order]
        self.graphs, self.device, self.batch_size = graphs, device, settings.batch_size
        torch.manual_seed(settings.seed)
        self.model = new_model(model_config(settings, self.Y.shape[1])).to(device)
        self.model.train()
        self.optimizer = torch.optim.AdamW(_param_groups(self.model), lr=settings.learning_rate,
                                           weight_decay=settings.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=settings.learning_rate, total_steps=steps + 1, pct_start=0.3)
        self._batches = self._cycle()

    def _cycle(self):
        while True:
            yield from batches(self.order, self.batch_size)

    def next_ids(self) -> list[str]:
        return next(self._batches)

    def step(self, ids: Sequence[str]) -> float:
        """One step exactly as the training loop runs it (one sync: reading the loss)."""
        g, lg = batch(self.graphs, ids, self.device)
        target = self.Y[[self.row[m] for m in ids]].to(self.device)
        loss = torch.nn.functional.mse_loss(forward(self.model, g, lg), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def phased_step(self, ids: Sequence[str], sync: Callable[[], None]) -> dict[str, float]:
        """One step, each phase timed between syncs (seconds)."""
        from alignn.torch_graph_builder import batch_torch_graph_pairs

        t = [time.perf_counter()]
        g, lg = batch_torch_graph_pairs([self.graphs[i] for i in ids])
        target = self.Y[[self.row[m] for m in ids]]
        t.append(time.perf_counter())
        if self.device.type != "cpu":
            g, lg, target = g.to(self.device), lg.to(self.device), target.to(self.device)
        sync()
        t.append(time.perf_counter())
        loss = torch.nn.functional.mse_loss(forward(self.model, g, lg), target)
        sync()
        t.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sync()
        t.append(time.perf_counter())
        self.optimizer.step()
        self.scheduler.step()
        float(loss.detach())
        sync()
        t.append(time.perf_counter())
        names = ("collate", "host_to_device", "forward", "backward", "optimizer")
        return {name: t[i + 1] - t[i] for i, name in enumerate(names)}


def _gpu_activity(events: Sequence[Any], device_type: Any) -> dict:
    """Kernels, copies and the merged busy time (µs) of the profiler events on ``device_type``."""
    spans = sorted((float(e.time_range.start), float(e.time_range.end), e.name)
                   for e in events if e.device_type == device_type)
    busy, end = 0.0, -math.inf
    for start, stop, _ in spans:
        if stop > end:
            busy += stop - max(start, end)
            end = stop
    kernels = [stop - start for start, stop, name in spans if not name.startswith(("Memcpy", "Memset"))]
    copies = [stop - start for start, stop, name in spans if name.startswith("Memcpy")]
    return {"busy_us": busy, "kernels": kernels, "copies": copies, "window_us": (spans[-1][1] - spans[0][0]) if spans else 0.0}


def _op_table(averages: Sequence[Any], attr: str, steps: int, n: int = 12) -> list[dict]:
    rows = sorted(averages, key=lambda a: getattr(a, attr, 0.0), reverse=True)[:n]
    return [{"op": a.key[:70], "calls_per_step": round(a.count / steps, 1),
             "self_us_per_step": round(getattr(a, attr, 0.0) / steps, 1)} for a in rows if getattr(a, attr, 0.0) > 0]


def _profiled(step: _Step, steps: int, tables: Path | None, label: str) -> dict:
    """``steps`` training steps under torch.profiler: kernels, runtime calls, busy fraction."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = step.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step.step(step.next_ids())
        if cuda:
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - t0) * 1e6
    events = prof.events()
    gpu = _gpu_activity(events, DeviceType.CUDA if cuda else DeviceType.CPU)
    cpu_names: dict[str, list[float]] = {}
    for e in events:
        if e.device_type == DeviceType.CPU and e.name.startswith(("cuda", "cu")):
            cpu_names.setdefault(e.name, []).append(float(e.time_range.end - e.time_range.start))
    runtime = {name: {"calls_per_step": round(len(v) / steps, 1), "us_per_step": round(sum(v) / steps, 1)}
               for name, v in sorted(cpu_names.items(), key=lambda kv: -sum(kv[1]))[:8]}
    averages = prof.key_averages()
    device_attr = "self_device_time_total" if hasattr(averages[0], "self_device_time_total") else "self_cuda_time_total"
    kernels = gpu["kernels"]
    out = {
        "steps": steps,
        "wall_ms_per_step_profiled": round(wall_us / steps / 1e3, 3),
        "gpu_busy_ms_per_step": round(gpu["busy_us"] / steps / 1e3, 3),
        "gpu_busy_fraction_profiled": round(gpu["busy_us"] / wall_us, 3) if cuda else None,
        "kernels_per_step": round(len(kernels) / steps, 1),
        "kernel_us_mean": round(statistics.fmean(kernels), 2) if kernels else None,
        "kernel_us_median": round(statistics.median(kernels), 2) if kernels else None,
        "kernel_share_under_10us": round(sum(k < 10 for k in kernels) / len(kernels), 3) if kernels else None,
        "copies_per_step": round(len(gpu["copies"]) / steps, 1),
        "cuda_runtime_calls": runtime,
        "top_ops_by_self_cpu": _op_table(averages, "self_cpu_time_total", steps),
        "top_ops_by_self_gpu": _op_table(averages, device_attr, steps) if cuda else [],
    }
    if tables is not None:
        tables.mkdir(parents=True, exist_ok=True)
        sorts = ("self_device_time_total", "self_cuda_time_total") if cuda else ()
        text = ""
        for sort in (*sorts, "self_cpu_time_total"):
            try:  # the device column's name changed across torch versions
                text = averages.table(sort_by=sort, row_limit=40)
                break
            except Exception:
                continue
        (tables / f"profile_{label}.txt").write_text(text)
    return out


def profile_training(dataset, graphs: Mapping[str, Any], device: str, batch_size: int = 4,
                     tables: Path | None = None, label: str = "b4", quick: bool = False) -> dict:
    """Where the time of one training step goes (see the module docstring)."""
    warmup, timed, profiled = (2, 4, 2) if quick else (PROFILE_WARMUP, PROFILE_STEPS, PROFILER_STEPS)
    out: dict = {"batch_size": batch_size}
    for deterministic in (True, False):
        settings = ModelSettings.preset("paper", batch_size=batch_size, device=device)
        with _torch_runtime(settings, deterministic=deterministic) as dev:
            cuda = dev.type == "cuda"
            sync = torch.cuda.synchronize if cuda else (lambda: None)
            step = _Step(dataset, graphs, settings, dev, warmup + 2 * timed + profiled)
            for _ in range(warmup):
                step.step(step.next_ids())
            sync()
            # The loop as train() runs it.
            t0 = time.perf_counter()
            for _ in range(timed):
                step.step(step.next_ids())
            sync()
            loop_ms = (time.perf_counter() - t0) / timed * 1e3
            key = "deterministic" if deterministic else "nondeterministic"
            entry: dict = {"step_ms": round(loop_ms, 3), "graphs_per_s": round(batch_size / loop_ms * 1e3, 1)}
            if deterministic:
                phases = [step.phased_step(step.next_ids(), sync) for _ in range(timed)]
                mean = {k: statistics.fmean(p[k] for p in phases) * 1e3 for k in phases[0]}
                total = sum(mean.values())
                entry["phases_ms"] = {k: round(v, 3) for k, v in mean.items()}
                entry["phases_share"] = {k: round(v / total, 3) for k, v in mean.items()}
                entry["synced_step_ms"] = round(total, 3)
                try:
                    entry["profiler"] = _profiled(step, profiled, tables, label)
                    busy = entry["profiler"]["gpu_busy_ms_per_step"]
                    entry["gpu_busy_fraction"] = round(busy / loop_ms, 3) if cuda else None
                except Exception as exc:  # the profile is extra: keep the timings
                    entry["profiler_error"] = f"{type(exc).__name__}: {exc}"
            out[key] = entry
    return out


def _conclusion(profile: dict) -> str:
    det = profile.get("deterministic", {})
    prof = det.get("profiler", {})
    phases = det.get("phases_share", {})
    if not phases:
        return "profile incomplete"
    host = phases.get("collate", 0) + phases.get("host_to_device", 0)
    split = (f"collation + host-to-device copy take {host:.0%} of the synced step, forward "
             f"{phases.get('forward', 0):.0%}, backward {phases.get('backward', 0):.0%}, optimizer "
             f"{phases.get('optimizer', 0):.0%}")
    nondet = profile.get("nondeterministic", {}).get("step_ms")
    det_note = (f"; without deterministic kernels the step takes {nondet:.1f} ms instead of {det['step_ms']:.1f} ms"
                if nondet else "")
    busy = det.get("gpu_busy_fraction")
    if busy is None or not prof.get("kernel_us_mean"):
        return f"{det['step_ms']:.1f} ms per step; {split}{det_note}."
    launches = sum(v["calls_per_step"] for k, v in prof.get("cuda_runtime_calls", {}).items() if "aunch" in k)
    bound = "launch/CPU-bound" if busy < 0.5 else "GPU-bound"
    return (f"{bound}: {prof['kernels_per_step']:.0f} kernels per step (~{launches:.0f} launch calls) of "
            f"{prof['kernel_us_mean']:.1f} µs mean keep the GPU busy {busy:.0%} of a {det['step_ms']:.1f} ms step; "
            f"{split}{det_note}.")


# ---------------------------------------------------------------------------------------------


def _previous_figures(path: Path | None) -> dict | None:
    """The figures of an earlier result to keep under ``previous_graph``."""
    if path is None or not path.is_file():
        return None
    old = json.loads(path.read_text())
    if old.get("graph", {}).get("builder") == f"{BUILDER} {BUILDER_VERSION}":
        return old.get("previous_graph")  # a rerun on the same builder: keep what it kept
    old.pop("previous_graph", None)
    old.setdefault("graph", {}).setdefault("builder", PREVIOUS_BUILDER)
    return old


def run(dataset_dir: Path, args: argparse.Namespace, save: Callable[[dict], None]) -> dict:
    warnings.simplefilter("ignore")
    t_start = time.perf_counter()
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        return {"skipped": "no CUDA device visible"}
    out: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "gpu": None,  # below: CUDA is started after the graph-building workers are forked
        "device": args.device,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": __import__("pandas").__version__,
        "python": platform.python_version(),
        "cpu_cores": default_workers(),
        "graph": {"builder": f"{BUILDER} {BUILDER_VERSION}",
                  "definition": "k-nearest shells (k = 10, + 1e-3 A), undirected; line graph of all bonds"},
        "study_reference": {"gpu": "NVIDIA A100 80GB", "train_graphs": STUDY_TRAIN_GRAPHS,
                            "epoch_seconds": STUDY_EPOCH_SECONDS_A100,
                            "graphs_per_s": round(STUDY_TRAIN_GRAPHS / STUDY_EPOCH_SECONDS_A100, 1)},
    }
    previous = _previous_figures(args.previous)
    if previous is not None:
        out["previous_graph"] = previous

    def optional(name: str) -> bool:
        spent = time.perf_counter() - t_start
        if args.budget_s is not None and spent > args.budget_s:
            out.setdefault("skipped_sections", []).append(f"{name} ({spent:.0f} s spent)")
            return False
        return True

    t0 = time.perf_counter()
    dataset = import_alignn(dataset_dir, Grid()).dataset
    if args.limit:
        dataset = dataset.head(args.limit).reset_index(drop=True)
    out["import_seconds"] = round(time.perf_counter() - t0, 2)
    paper = ModelSettings.preset("paper")
    structures = structures_of(dataset)
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, paper)
    seconds = time.perf_counter() - t0
    out["graphs"] = {"n": len(graphs), "failures": len(failures), "seconds": round(seconds, 2),
                     "structures_per_s": round(len(graphs) / seconds, 1), "workers": default_workers()}
    if cuda:
        out["gpu"] = torch.cuda.get_device_name(0)
    out["graph_stats"] = {"new": graph_stats(graphs)}
    old_graphs, old_seconds = previous_builder_graphs(structures, paper)
    out["graph_stats"]["previous_builder"] = graph_stats(old_graphs)
    out["graph_stats"]["previous_builder"]["structures_per_s_one_process"] = round(len(old_graphs) / old_seconds, 1)
    save(out)
    print(json.dumps(out["graph_stats"]), flush=True)

    out["training"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out["training"]["batch_4"], model = _train(dataset, graphs, 4, args.epochs, Path(tmp), args.device)
        print(json.dumps(out["training"]["batch_4"]), flush=True)
        save(out)
        out["profile_batch_4"] = profile_training(dataset, graphs, args.device, 4, args.tables, "b4", quick=bool(args.limit))
        out["profile_batch_4"]["conclusion"] = _conclusion(out["profile_batch_4"])
        print(json.dumps(out["profile_batch_4"]), flush=True)
        save(out)
        if optional("previous graph's training"):
            out["training"]["batch_4_previous_graph"], _ = _train(dataset, old_graphs, 4, min(2, args.epochs),
                                                                  Path(tmp) / "old", args.device)
            new_rate = max(out["training"]["batch_4"]["graphs_per_s"][1:] or out["training"]["batch_4"]["graphs_per_s"])
            old_rate = max(out["training"]["batch_4_previous_graph"]["graphs_per_s"])
            out["training"]["batch_4_new_over_previous_graph"] = round(new_rate / old_rate, 3)
            print(json.dumps(out["training"]["batch_4_previous_graph"]), flush=True)
            save(out)
        if optional("previous graph's profile"):
            prev = profile_training(dataset, old_graphs, args.device, 4, args.tables, "b4_previous", quick=bool(args.limit))
            out["profile_batch_4_previous_graph"] = prev
            out["profile_batch_4_previous_graph"]["conclusion"] = _conclusion(prev)
            save(out)
        for batch_size in (16, 64):
            if optional(f"batch {batch_size}"):
                out["training"][f"batch_{batch_size}"], _ = _train(dataset, graphs, batch_size, min(2, args.epochs),
                                                                   Path(tmp), args.device)
                print(json.dumps(out["training"][f"batch_{batch_size}"]), flush=True)
                save(out)
        if optional("inference"):
            ids = list(graphs)
            sync = torch.cuda.synchronize if cuda else (lambda: None)
            sync()
            t0 = time.perf_counter()
            predict(model, graphs, ids, batch_size=32, threads=None)
            sync()
            out["inference_graphs_per_s"] = round(len(ids) / (time.perf_counter() - t0), 1)
            t0 = time.perf_counter()
            embeddings(model, graphs, ids, batch_size=32, threads=None)
            out["embeddings_graphs_per_s"] = round(len(ids) / (time.perf_counter() - t0), 1)
    out["total_seconds"] = round(time.perf_counter() - t_start, 1)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier result to keep under previous_graph (default: OUT if it exists)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=None, help="only the first N materials (smoke test)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--budget-s", type=float, default=None, help="skip optional sections after this many seconds")
    parser.add_argument("--tables", type=Path, default=None, help="folder for the profiler's op tables")
    args = parser.parse_args(argv)
    if args.previous is None and args.out is not None and args.out.is_file():
        args.previous = args.out

    def save(result: dict) -> None:
        if args.out is not None:
            args.out.write_text(json.dumps(result, indent=2) + "\n")

    result = run(args.dataset_dir, args, save)
    save(result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
