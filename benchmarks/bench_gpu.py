"""ALIGNN on a GPU: the ``paper`` preset's throughput and epoch time (run on a GPU node).

Run: ``python benchmarks/bench_gpu.py DATASET_DIR OUT.json`` on a machine with CUDA, where
``DATASET_DIR`` is an ALIGNN spectra folder (the shared oxides: 1,116 real oxides, 2-40 atoms).
It is not part of ``make bench`` (CI and the development machine have no GPU); its last result
is kept in ``benchmarks/results-gpu.json`` and merged into the README table by ``run.py``.

What is measured, with the study's architecture and batch size (``paper`` preset: 4 ALIGNN + 4
GCN layers, hidden 64, batch 4, AdamW 1e-3, one-cycle):

- graph construction (structures/s, one CPU process);
- training on the GPU for ``EPOCHS`` epochs: graphs/s and wall time of each epoch (the first
  includes CUDA start-up), and the epoch time scaled to the study's 2,144 training graphs, to
  compare with its ~42 s per epoch on an A100 80GB (~51 graphs/s);
- the same at batch 16 and 64 (not the study's setting: how far a larger batch gets);
- inference and embedding extraction (graphs/s, batch 32), peak GPU memory.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import torch  # noqa: E402

from optabs.dataset import import_alignn  # noqa: E402
from optabs.grid import Grid  # noqa: E402
from optabs.model.embeddings import embeddings  # noqa: E402
from optabs.model.graphs import build_graphs, structures_of  # noqa: E402
from optabs.model.predict import predict  # noqa: E402
from optabs.model.settings import ModelSettings  # noqa: E402
from optabs.model.train import train  # noqa: E402

EPOCHS = 3
STUDY_TRAIN_GRAPHS = 2144
STUDY_EPOCH_SECONDS_A100 = 42.0


def _train(dataset, graphs, batch_size: int, epochs: int, tmp: Path) -> dict:
    settings = ModelSettings.preset("paper", epochs=epochs, batch_size=batch_size, device="cuda")
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
        "peak_gpu_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
    }, result.model


def run(dataset_dir: Path) -> dict:
    warnings.simplefilter("ignore")
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device visible"}
    out: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "study_reference": {"gpu": "NVIDIA A100 80GB", "train_graphs": STUDY_TRAIN_GRAPHS,
                            "epoch_seconds": STUDY_EPOCH_SECONDS_A100,
                            "graphs_per_s": round(STUDY_TRAIN_GRAPHS / STUDY_EPOCH_SECONDS_A100, 1)},
    }
    t0 = time.perf_counter()
    dataset = import_alignn(dataset_dir, Grid()).dataset
    out["import_seconds"] = round(time.perf_counter() - t0, 2)
    paper = ModelSettings.preset("paper")
    t0 = time.perf_counter()
    graphs, failures = build_graphs(structures_of(dataset), paper)
    seconds = time.perf_counter() - t0
    out["graphs"] = {"n": len(graphs), "failures": len(failures), "seconds": round(seconds, 2),
                     "structures_per_s": round(len(graphs) / seconds, 1)}
    out["training"] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size, epochs in ((4, EPOCHS), (16, 2), (64, 2)):
            out["training"][f"batch_{batch_size}"], model = _train(dataset, graphs, batch_size, epochs, Path(tmp))
            print(json.dumps(out["training"][f"batch_{batch_size}"]), flush=True)
        ids = list(graphs)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        predict(model, graphs, ids, batch_size=32, threads=None)
        torch.cuda.synchronize()
        out["inference_graphs_per_s"] = round(len(ids) / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        embeddings(model, graphs, ids, batch_size=32, threads=None)
        out["embeddings_graphs_per_s"] = round(len(ids) / (time.perf_counter() - t0), 1)
    return out


if __name__ == "__main__":
    result = run(Path(sys.argv[1]))
    text = json.dumps(result, indent=2)
    print(text)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text + "\n")
