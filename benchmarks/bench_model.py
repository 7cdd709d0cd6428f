"""Speed of the model stage on CPU: graph construction, ALIGNN training and inference.

Run: ``python benchmarks/bench_model.py`` (prints JSON). Needs the shared oxides
(``../shared/data/oxide-surrogate``: 1,116 real oxides, 2-40 atoms, 1,501-point spectra);
without them it prints a note and measures nothing.

What is measured:

- graph construction: ``optabs.model.build_graphs`` (pymatgen -> jarvis -> alignn's pure-PyTorch
  builder, 10 A, 10 neighbours, full three-body cutoff) on the first ``N_GRAPHS`` oxides,
  structures/s;
- training: ``optabs.model.train`` with the ``cpu`` preset's architecture and batch size (4
  ALIGNN + 4 GCN layers, hidden 64, batch 4) for ``EPOCHS`` epochs (1 with two threads) on
  the same oxides (80 % train), with 1 and 2 torch threads: training graphs/s (the best epoch), the epoch's wall time
  and the projected wall time of the ``cpu`` preset on ``PROJECT_TRAIN`` training graphs;
- inference: ``optabs.model.predict`` graphs/s (batch 32);
- peak RSS of the process (MB) and the load average, since the machine may be shared: a
  second busy process on a 2-core machine slows two-thread torch steps several-fold.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from optabs import model as M  # noqa: E402
from optabs.dataset import Grid, import_alignn  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data" / "oxide-surrogate"
N_GRAPHS = 200
EPOCHS = 2
PROJECT_TRAIN = 900


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run() -> dict:
    """The measurements as a JSON-ready dict (see the module docstring)."""
    if not SHARED_DATA.is_dir():
        return {"skipped": f"needs the shared oxides at {SHARED_DATA} (absent)"}
    warnings.simplefilter("ignore")
    out: dict = {"load_average_start": os.getloadavg()}
    grid = Grid()
    dataset = import_alignn(SHARED_DATA, grid).dataset.iloc[:N_GRAPHS].reset_index(drop=True)
    structures = M.structures_of(dataset)
    n_atoms = [len(s) for s in structures.values()]
    cpu = M.ModelSettings.preset("cpu", max_train_minutes=None)

    t0 = time.perf_counter()
    graphs, failures = M.build_graphs(structures, cpu)
    seconds = time.perf_counter() - t0
    out["graphs"] = {
        "n_structures": len(structures),
        "atoms_min_median_max": [min(n_atoms), sorted(n_atoms)[len(n_atoms) // 2], max(n_atoms)],
        "failures": len(failures),
        "seconds": round(seconds, 2),
        "structures_per_s": round(len(structures) / seconds, 1),
        "line_graph_edges_per_atom": round(
            sum(lg.num_edges for _, lg in graphs.values()) / sum(g.num_nodes for g, _ in graphs.values()), 1
        ),
    }

    out["training"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for threads in (1, 2):
            # Two threads get one epoch only: beside another busy process they can be 20x slower.
            epochs = EPOCHS if threads == 1 else 1
            settings = M.ModelSettings.preset("cpu", epochs=epochs, threads=threads, max_train_minutes=None)
            result = M.train(dataset, graphs, settings, Path(tmp) / f"t{threads}")
            h = result.history
            n_train = sum(v == "train" for v in result.split.values())
            best_rate = float(h.graphs_per_s.max())
            # An epoch on PROJECT_TRAIN graphs: training at the measured rate plus validation,
            # which scales the same way (one eighth as many graphs, forward only: ~1/3 the cost).
            val_seconds = float((h.seconds - n_train / h.graphs_per_s).min())
            epoch_projected = PROJECT_TRAIN / best_rate + val_seconds * PROJECT_TRAIN / n_train
            out["training"][f"threads_{threads}"] = {
                "architecture": f"{settings.alignn_layers}+{settings.gcn_layers} layers, hidden {settings.hidden_features}",
                "n_parameters": result.n_parameters,
                "batch_size": settings.batch_size,
                "n_train": n_train,
                "epochs": epochs,
                "graphs_per_s": [round(float(v), 1) for v in h.graphs_per_s],
                "epoch_seconds": [round(float(v), 2) for v in h.seconds],
                f"projected_epoch_seconds_{PROJECT_TRAIN}": round(epoch_projected, 1),
                f"projected_cpu_preset_minutes_{PROJECT_TRAIN}": round(epoch_projected * cpu.epochs / 60, 1),
            }
            model = result.model
        ids = list(graphs)
        t0 = time.perf_counter()
        M.predict(model, graphs, ids, batch_size=32, threads=1)
        out["inference_graphs_per_s_1_thread"] = round(len(ids) / (time.perf_counter() - t0), 1)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    out["load_average_end"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
