"""Speed of the model stage on CPU beyond the database benchmark: two-thread training and inference.

Run: ``python benchmarks/bench_model.py`` (prints JSON). Needs the shared oxides
(``../shared/data/oxide-surrogate``: 1,116 real oxides, 2-40 atoms, 1,501-point spectra);
without them it records why it skipped. ``OPTABS_BENCH_QUICK=1``: 60 oxides.

``bench_database.py`` measures the graph stage on all 1,116 oxides and one epoch of the ``cpu``
preset with its one torch thread; this module adds:

- graph construction on all 1,116 oxides (60 in quick mode), structures/s, of the study's graph
  (``optabs.model.graphs.build_graphs``: k-nearest shells, undirected, 10 A, 10 neighbours, full
  three-body cutoff; worker processes on every core, and in one process), and in the same run of
  the builder it replaced (alignn's pure-PyTorch ``build_pure_torch_graph`` via jarvis, exactly 10
  neighbours per atom, one process, one thread), with the ratio new / previous;

and, on the first ``N_GRAPHS`` oxides:
- training: ``optabs.model.train.train`` with the ``cpu`` preset's architecture and batch size (4
  ALIGNN + 4 GCN layers, hidden 64, batch 4) for one epoch with 2 torch threads (80 % train):
  training graphs/s, to compare with the one-thread number (two threads gain ~20 % on an idle
  machine, and lose several-fold beside another busy process);
- inference: ``optabs.model.predict.predict`` graphs/s (batch 32, one thread);
- peak RSS of the process (MB) and the load average, since the machine may be shared.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from common import SHARED_DATA, alignn_slice, quick  # noqa: E402
from optabs.dataset import import_alignn  # noqa: E402
from optabs.grid import Grid  # noqa: E402
from optabs.model.graphs import build_graphs, default_workers, structures_of  # noqa: E402
from optabs.model.predict import predict  # noqa: E402
from optabs.model.settings import ModelSettings  # noqa: E402
from optabs.model.train import train  # noqa: E402

N_GRAPHS = 200
THREADS = 2
N_QUICK_STRUCTURES = 60


def _previous_builder(structures: dict, settings: ModelSettings) -> int:
    """The builder ``build_graphs`` used before the k-nearest shells (kept here only to compare
    rates): pymatgen -> jarvis -> alignn's ``build_pure_torch_graph``, one process, one thread.
    Returns the number of graphs built."""
    from alignn.torch_graph_builder import build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    built = 0
    try:
        for structure in structures.values():
            try:
                build_pure_torch_graph(pmg_to_atoms(structure), two_body_cutoff=float(settings.cutoff),
                                       three_body_cutoff=float(settings.three_body_cutoff),
                                       max_neighbors=int(settings.max_neighbors), atom_features="cgcnn")
                built += 1
            except Exception:
                pass
    finally:
        torch.set_num_threads(old)
    return built


def _oxides(n: int | None) -> dict:
    """``{file stem: Structure}`` of the first ``n`` (all: None) shared oxides, in id_prop.csv order."""
    from pymatgen.core import Structure

    names = [row.split(",", 1)[0] for row in (SHARED_DATA / "id_prop.csv").read_text().splitlines() if row.strip()]
    return {Path(name).stem: Structure.from_file(SHARED_DATA / name) for name in names[:n]}


def _graph_rates(cpu: ModelSettings) -> dict:
    """Structures/s of the new builder (all cores, then one process) and of the previous one, same structures."""
    structures = _oxides(N_QUICK_STRUCTURES if quick() else None)
    n_atoms = [len(s) for s in structures.values()]
    n = len(structures)
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures, cpu)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_graphs(structures, cpu, workers=1)
    one_process = time.perf_counter() - t0
    t0 = time.perf_counter()
    previous_built = _previous_builder(structures, cpu)
    previous = time.perf_counter() - t0
    rate, previous_rate = n / seconds, n / previous
    atoms = sum(g.num_nodes for g, _ in graphs.values())
    return {
        "n_structures": n,
        "atoms_min_median_max": [min(n_atoms), sorted(n_atoms)[n // 2], max(n_atoms)],
        "builder": cpu.graph_key()["builder"],
        "workers": default_workers(),
        "failures": len(failures),
        "seconds": round(seconds, 2),
        "structures_per_s": round(rate, 1),
        "structures_per_s_one_process": round(n / one_process, 1),
        "edges_per_atom": round(sum(g.num_edges for g, _ in graphs.values()) / atoms, 2),
        "line_graph_edges_per_atom": round(sum(lg.num_edges for _, lg in graphs.values()) / atoms, 1),
        "previous_builder": {
            "builder": "alignn build_pure_torch_graph (exactly max_neighbors per atom), one process",
            "built": previous_built,
            "seconds": round(previous, 2),
            "structures_per_s": round(previous_rate, 1),
        },
        "ratio_new_to_previous": round(rate / previous_rate, 2),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run() -> dict:
    """The measurements as a JSON-ready dict (see the module docstring)."""
    if not SHARED_DATA.is_dir():
        return {"quick": quick(), "skipped": f"needs the shared oxides at {SHARED_DATA} (absent)"}
    warnings.simplefilter("ignore")
    out: dict = {"quick": quick(), "load_average_start": os.getloadavg()}
    grid = Grid()
    n_graphs = 60 if quick() else N_GRAPHS
    with tempfile.TemporaryDirectory() as tmp:
        dataset = import_alignn(alignn_slice(SHARED_DATA, n_graphs, Path(tmp) / "slice"), grid).dataset
    cpu = ModelSettings.preset("cpu", max_train_minutes=None)
    out["graphs"] = _graph_rates(cpu)
    graphs, _ = build_graphs(structures_of(dataset), cpu)

    out["training"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = ModelSettings.preset("cpu", epochs=1, threads=THREADS, max_train_minutes=None)
        result = train(dataset, graphs, settings, Path(tmp) / f"t{THREADS}")
        h = result.history
        out["training"][f"threads_{THREADS}"] = {
            "architecture": f"{settings.alignn_layers}+{settings.gcn_layers} layers, hidden {settings.hidden_features}",
            "n_parameters": result.n_parameters,
            "batch_size": settings.batch_size,
            "n_train": sum(v == "train" for v in result.split.values()),
            "epochs": 1,
            "graphs_per_s": [round(float(v), 1) for v in h.graphs_per_s],
            "epoch_seconds": [round(float(v), 2) for v in h.seconds],
        }
        ids = list(graphs)
        t0 = time.perf_counter()
        predict(result.model, graphs, ids, batch_size=32, threads=1)
        out["inference_graphs_per_s_1_thread"] = round(len(ids) / (time.perf_counter() - t0), 1)
    out["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    out["load_average_end"] = os.getloadavg()
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
