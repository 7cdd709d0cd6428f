"""The model stage: crystal graphs, ALIGNN training and prediction, baselines, metrics, embeddings.

The network is alignn's pure-PyTorch ``ALIGNNAtomWisePure`` (DGL cannot be installed next to
current torch), set up as the study's multi-output spectrum model: cgcnn atom features (92),
one linear head with ``output_features`` = the grid length (1,501 log10 alpha values), MSE
loss, AdamW and a one-cycle learning-rate schedule. Everything here is plain functions on
tables, graphs and arrays; the workflow scripts only read and write files.

Units and shapes used throughout: spectra are log10 alpha (alpha in cm^-1) on the dataset's
energy grid, arrays ``(materials, n_grid)``; energies in eV; cutoffs in angstrom.

Graphs
    ``build_graphs`` -> ``{material_id: (g, lg)}`` (alignn ``TorchGraph`` pairs: the k-nearest
    atom graph and its line graph), cached on disk by ``cached_graphs`` / ``save_graphs`` /
    ``load_graphs`` under a key made of the graph settings.
Training
    ``train(dataset, graphs, settings, outdir)`` writes ``checkpoint.pt`` (the best epoch by
    validation loss) and ``history.csv``; ``load_model`` / ``predict`` read it back.
Evaluation
    ``evaluate`` puts ALIGNN, the mean-spectrum baseline and a composition baseline (both fitted
    on the same training split) side by side on the test split (``metrics.json``).
Embeddings
    ``embeddings`` gives per-layer, per-material mean atom features (the study clustered these).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import time
import types
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from optabs.dataset import onsets, spectra_matrix
from optabs.errors import ConfigError, InputError
from optabs.io import atomic_path, write_csv
from optabs.model_settings import ModelSettings

log = logging.getLogger(__name__)

#: Per-material MAE (log10 alpha units) under which a prediction counts as good (the threshold
#: the comparison with the study reports).
GOOD_MAE = 0.14
#: cgcnn atom feature length (alignn's ``atom_features="cgcnn"``).
ATOM_INPUT_FEATURES = 92
CHECKPOINT_FORMAT = "optabs-alignn-1"

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "seconds", "graphs_per_s"]

Graph = tuple[Any, Any]  # (TorchGraph atom graph, TorchGraph line graph)


# ============================================================================ graphs


def _build_one(structure: Any, settings: ModelSettings) -> Graph:
    """(g, lg) of one pymatgen Structure (alignn's pure-PyTorch builder)."""
    from alignn.torch_graph_builder import build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    g, lg = build_pure_torch_graph(
        pmg_to_atoms(structure),
        two_body_cutoff=float(settings.cutoff),
        three_body_cutoff=float(settings.three_body_cutoff),
        max_neighbors=int(settings.max_neighbors),
        atom_features="cgcnn",
    )
    if g.num_edges == 0:
        raise ValueError(f"no neighbours within {settings.cutoff} A")
    return g, lg


def build_graphs(structures: Mapping[str, Any], settings: ModelSettings) -> tuple[dict[str, Graph], list[tuple[str, str]]]:
    """Graphs of ``{material_id: pymatgen Structure}``.

    Returns ``(graphs, failures)``: ``{material_id: (g, lg)}`` for every structure that could be
    built and ``[(material_id, reason), ...]`` for those that could not (logged; the rest go on).
    """
    graphs: dict[str, Graph] = {}
    failures: list[tuple[str, str]] = []
    old_threads = torch.get_num_threads()
    # The builder's tensors are tiny: a second thread only adds contention (7 instead of
    # ~200 structures/s measured beside another busy process).
    torch.set_num_threads(1)
    try:
        for material_id, structure in structures.items():
            try:
                graphs[material_id] = _build_one(structure, settings)
            except Exception as exc:  # one bad structure must not stop the others
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("graph of %s could not be built: %s", material_id, reason)
                failures.append((material_id, reason))
    finally:
        torch.set_num_threads(old_threads)
    return graphs, failures


def structure_fingerprint(structure: Any) -> str:
    """A short hash of a structure's lattice, species and coordinates (rounded to 1e-6)."""
    h = hashlib.sha1()
    h.update(np.round(structure.lattice.matrix, 6).tobytes())
    h.update("|".join(site.species_string for site in structure).encode())  # disordered sites too
    h.update(np.round(structure.frac_coords % 1.0, 6).tobytes())
    return h.hexdigest()[:16]


def _graph_to_dict(pair: Graph) -> dict[str, Any]:
    g, lg = pair
    # The line graph's node data are the parent's edge data; not stored twice.
    return {
        "num_nodes": int(g.num_nodes),
        "src": g.src,
        "dst": g.dst,
        "ndata": dict(g.ndata),
        "edata": dict(g.edata),
        "lg_src": lg.src,
        "lg_dst": lg.dst,
        "lg_edata": dict(lg.edata),
    }


def _graph_from_dict(d: Mapping[str, Any]) -> Graph:
    from alignn.torch_graph_builder import TorchGraph

    g = TorchGraph(num_nodes=int(d["num_nodes"]), src=d["src"], dst=d["dst"], ndata=dict(d["ndata"]), edata=dict(d["edata"]))
    lg = TorchGraph(
        num_nodes=g.num_edges,
        src=d["lg_src"],
        dst=d["lg_dst"],
        ndata={"r": g.edata["r"], "images": g.edata["images"]},
        edata=dict(d["lg_edata"]),
    )
    return g, lg


def save_graphs(
    graphs: Mapping[str, Graph], path: str | Path, settings: ModelSettings, fingerprints: Mapping[str, str] | None = None
) -> None:
    """Write graphs to a cache file (torch format, plain tensors), keyed by the graph settings.

    ``fingerprints``: optional ``{material_id: structure_fingerprint}`` so that a later
    :func:`cached_graphs` rebuilds a material whose structure changed.
    """
    payload = {
        "key": settings.graph_key(),
        "fingerprints": dict(fingerprints or {}),
        "graphs": {mid: _graph_to_dict(pair) for mid, pair in graphs.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or not {"key", "graphs"} <= set(payload):
            raise ValueError("not an optabs graph cache")
        return payload
    except Exception as exc:
        raise InputError(
            f"graph cache {path} cannot be read ({type(exc).__name__}: {exc}); delete it and rerun to rebuild the graphs"
        ) from exc


def load_graphs(path: str | Path, settings: ModelSettings) -> dict[str, Graph] | None:
    """Graphs from a cache file, or None if the file is absent or was built with other graph
    settings (stale). Raises :class:`InputError` naming the file if it is corrupt."""
    path = Path(path)
    if not path.is_file():
        return None
    payload = _read_cache(path)
    if payload["key"] != settings.graph_key():
        log.info("graph cache %s was built with %s, not %s: stale", path, payload["key"], settings.graph_key())
        return None
    try:
        return {mid: _graph_from_dict(d) for mid, d in payload["graphs"].items()}
    except Exception as exc:
        raise InputError(f"graph cache {path} is corrupt ({type(exc).__name__}: {exc}); delete it and rerun") from exc


def cached_graphs(
    structures: Mapping[str, Any], path: str | Path, settings: ModelSettings
) -> tuple[dict[str, Graph], list[tuple[str, str]]]:
    """:func:`build_graphs` through the cache at ``path``: graphs of unchanged structures built
    with the same graph settings are reused, the rest are built and the cache is rewritten.

    Returns ``(graphs, failures)`` for exactly the ids in ``structures``.
    """
    path = Path(path)
    fingerprints = {mid: structure_fingerprint(s) for mid, s in structures.items()}
    reused: dict[str, Graph] = {}
    old_fp: dict[str, str] = {}
    if path.is_file():
        payload = _read_cache(path)
        if payload["key"] == settings.graph_key():
            old_fp = payload.get("fingerprints", {})
            try:
                reused = {
                    mid: _graph_from_dict(d)
                    for mid, d in payload["graphs"].items()
                    if mid in fingerprints and old_fp.get(mid) == fingerprints[mid]
                }
            except Exception as exc:
                raise InputError(f"graph cache {path} is corrupt ({type(exc).__name__}: {exc}); delete it and rerun") from exc
        else:
            log.info("graph cache %s was built with %s: rebuilding with %s", path, payload["key"], settings.graph_key())
    todo = {mid: s for mid, s in structures.items() if mid not in reused}
    built, failures = build_graphs(todo, settings) if todo else ({}, [])
    log.info("graphs: %d reused from %s, %d built, %d failed", len(reused), path, len(built), len(failures))
    graphs = {mid: (reused.get(mid) or built[mid]) for mid in structures if mid in reused or mid in built}
    if built or set(old_fp) != set(graphs):
        save_graphs(graphs, path, settings, {mid: fingerprints[mid] for mid in graphs})
    return graphs, failures


def structures_of(dataset: pd.DataFrame) -> dict[str, Any]:
    """``{material_id: pymatgen Structure}`` from the dataset table's ``structure`` JSON column."""
    from pymatgen.core import Structure

    return {row.material_id: Structure.from_str(row.structure, fmt="json") for row in dataset.itertuples(index=False)}


# ============================================================================ split


def split_ids(ids: Sequence[str], settings: ModelSettings) -> dict[str, str]:
    """``{material_id: "train" | "val" | "test"}``, seeded by ``settings.seed``.

    The ids are sorted first, so the split depends only on the set of ids and the seed, never
    on their order. Sizes follow alignn: ``floor(val_fraction * n)`` validation and
    ``floor(test_fraction * n)`` test materials, the rest training; with 3 or more materials
    validation and test get at least one each (where their fraction is not zero).
    """
    ordered = sorted(set(ids))
    n = len(ordered)
    n_val = int(math.floor(settings.val_fraction * n + 1e-9))
    n_test = int(math.floor(settings.test_fraction * n + 1e-9))
    if n >= 3:
        n_val = max(n_val, 1 if settings.val_fraction > 0 else 0)
        n_test = max(n_test, 1 if settings.test_fraction > 0 else 0)
    order = np.random.default_rng(settings.seed).permutation(n)
    labels = np.full(n, "train", dtype=object)
    labels[order[:n_val]] = "val"
    labels[order[n_val : n_val + n_test]] = "test"
    return dict(zip(ordered, labels.tolist()))


# ============================================================================ training


@dataclass
class TrainResult:
    """What :func:`train` did. ``history`` has one row per epoch (see ``history.csv``);
    ``model`` is the network with the best epoch's weights (those in ``checkpoint``), in eval mode."""

    checkpoint: Path
    history: pd.DataFrame
    split: dict[str, str]
    best_epoch: int
    best_val_loss: float
    n_parameters: int
    seconds: float
    stopped_early: bool = False
    missing_graphs: list[str] = field(default_factory=list)
    model: Any = None


def model_config(settings: ModelSettings, n_grid: int):
    """alignn's ``ALIGNNAtomWisePureConfig`` for a spectrum of ``n_grid`` points.

    Changed from alignn's defaults (see RECIPES): cgcnn inputs (92), no per-atom multiplication
    of the output (its default breaks batches of more than one), no force computation (same
    output, ~1.8x slower), identity link (``log`` shares one bias over all outputs), no
    bond-length penalty (it only enters the unused energy).
    """
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePureConfig

    return ALIGNNAtomWisePureConfig(
        name="alignn_atomwise_pure",
        alignn_layers=settings.alignn_layers,
        gcn_layers=settings.gcn_layers,
        atom_input_features=ATOM_INPUT_FEATURES,
        edge_input_features=settings.edge_input_features,
        triplet_input_features=settings.triplet_input_features,
        embedding_features=settings.embedding_features,
        hidden_features=settings.hidden_features,
        output_features=n_grid,
        energy_mult_natoms=False,
        calculate_gradient=False,
        link="identity",
        use_penalty=False,
        three_body_cutoff=float(settings.three_body_cutoff),
    )


def _new_model(config):
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure

    return ALIGNNAtomWisePure(config)


@contextmanager
def _torch_runtime(settings: ModelSettings, deterministic: bool = True) -> Iterator[torch.device]:
    """Threads and deterministic kernels for the block; the process's previous state is restored."""
    device = settings.torch_device()
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cuda":
        # cuBLAS needs this for deterministic matmuls; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(settings.threads)
    if deterministic:
        # On CPU every op used here has a deterministic kernel; on CUDA warn rather than fail.
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    try:
        yield device
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


def _batches(ids: Sequence[str], batch_size: int) -> Iterator[list[str]]:
    for start in range(0, len(ids), batch_size):
        yield list(ids[start : start + batch_size])


def _batch(graphs: Mapping[str, Graph], ids: Sequence[str], device: torch.device):
    from alignn.torch_graph_builder import batch_torch_graph_pairs

    g, lg = batch_torch_graph_pairs([graphs[i] for i in ids])
    if device.type != "cpu":
        g, lg = g.to(device), lg.to(device)
    return g, lg


def _forward(model, g, lg) -> torch.Tensor:
    out = model((g, lg, None))["out"]
    return out if out.dim() == 2 else out.unsqueeze(0)


def _param_groups(model) -> list[dict[str, Any]]:
    # alignn's group_decay: no weight decay on biases and normalisation parameters.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if ("bias" in name or "bn" in name or "norm" in name) else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(
    dataset: pd.DataFrame, graphs: Mapping[str, Graph], settings: ModelSettings, outdir: str | Path
) -> TrainResult:
    """Train ALIGNN on ``dataset`` (its ``material_id`` and ``log10_alpha`` columns).

    Materials without a graph are skipped (logged, listed in the result). The split is
    :func:`split_ids` over the materials with graphs. Each epoch goes over every training graph
    once in a seeded random order (the last, smaller batch included); the validation loss is
    the MSE over all validation spectra points. The checkpoint of the best validation epoch
    (the training loss if there is no validation set) is written to ``outdir/checkpoint.pt``;
    ``outdir/history.csv`` gets ``epoch, train_loss, val_loss, seconds, graphs_per_s`` (losses
    are mean squared errors in (log10 alpha)^2, seconds the epoch's wall time, graphs/s the
    training throughput). CPU runs are bitwise reproducible for a given seed and thread count.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    missing = [mid for mid in dataset.material_id if mid not in graphs]
    if missing:
        log.warning("%d materials have no graph and are left out of training: %s", len(missing), ", ".join(missing[:20]))
    data = dataset[dataset.material_id.isin(list(graphs))].reset_index(drop=True)
    if len(data) == 0:
        raise InputError("no material of the dataset has a graph: nothing to train on")
    Y = torch.as_tensor(spectra_matrix(data), dtype=torch.float32)
    n_grid = Y.shape[1]
    row = {mid: i for i, mid in enumerate(data.material_id)}
    split = split_ids(list(data.material_id), settings)
    train_ids = sorted(m for m, s in split.items() if s == "train")
    val_ids = sorted(m for m, s in split.items() if s == "val")
    log.info("split: %d train, %d val, %d test", len(train_ids), len(val_ids), sum(s == "test" for s in split.values()))

    t_start = time.perf_counter()
    with _torch_runtime(settings) as device:
        torch.manual_seed(settings.seed)
        config = model_config(settings, n_grid)
        model = _new_model(config).to(device)
        if settings.output_bias_from_mean:
            with torch.no_grad():
                model.fc.bias.copy_(Y[[row[m] for m in train_ids]].mean(0))
        n_parameters = sum(p.numel() for p in model.parameters())
        log.info("ALIGNN %d+%d layers, hidden %d: %d parameters on %s", settings.alignn_layers,
                 settings.gcn_layers, settings.hidden_features, n_parameters, device)
        optimizer = torch.optim.AdamW(_param_groups(model), lr=settings.learning_rate, weight_decay=settings.weight_decay)
        steps_per_epoch = math.ceil(len(train_ids) / settings.batch_size)
        total_steps = steps_per_epoch * settings.epochs
        if settings.scheduler == "onecycle":
            pct = 0.3 if settings.warmup_steps is None else min(settings.warmup_steps / total_steps, 0.5)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=settings.learning_rate, total_steps=total_steps, pct_start=pct
            )
        else:
            scheduler = None
        generator = torch.Generator().manual_seed(settings.seed)
        val_batches = [
            (_batch(graphs, ids, device), Y[[row[m] for m in ids]].to(device))
            for ids in _batches(val_ids, settings.batch_size)
        ]

        history, best = [], (math.inf, 0)
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        stopped_early = False
        checkpoint = outdir / "checkpoint.pt"
        for epoch in range(1, settings.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = [train_ids[i] for i in torch.randperm(len(train_ids), generator=generator).tolist()]
            sum_loss = 0.0
            for ids in _batches(order, settings.batch_size):
                g, lg = _batch(graphs, ids, device)
                target = Y[[row[m] for m in ids]].to(device)
                loss = torch.nn.functional.mse_loss(_forward(model, g, lg), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                sum_loss += float(loss.detach()) * len(ids)
            t_train = time.perf_counter() - t0
            train_loss = sum_loss / len(train_ids)
            val_loss = _loss(model, val_batches) if val_batches else math.nan
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            "seconds": seconds, "graphs_per_s": len(train_ids) / t_train})
            if not math.isfinite(train_loss):
                raise ConfigError(
                    f"training diverged: training loss {train_loss} at epoch {epoch}; lower model setting 'learning_rate' "
                    f"(now {settings.learning_rate})"
                )
            score = val_loss if val_batches else train_loss
            if score < best[0]:
                best = (score, epoch)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                _save_checkpoint(checkpoint, model, config, settings, split, n_grid, epoch, score)
            write_csv(outdir / "history.csv", pd.DataFrame(history, columns=HISTORY_COLUMNS))
            log.info("epoch %d/%d: train %.4f val %.4f (%.1f s, %.1f graphs/s)%s", epoch, settings.epochs,
                     train_loss, val_loss, seconds, len(train_ids) / t_train, " best" if best[1] == epoch else "")
            elapsed_min = (time.perf_counter() - t_start) / 60
            if settings.max_train_minutes is not None and elapsed_min > settings.max_train_minutes and epoch < settings.epochs:
                log.warning("stopping after epoch %d of %d: %.1f min spent, budget max_train_minutes=%s",
                            epoch, settings.epochs, elapsed_min, settings.max_train_minutes)
                stopped_early = True
                break
        model.load_state_dict(best_state)
        model.eval()
    history_df = pd.DataFrame(history, columns=HISTORY_COLUMNS)
    return TrainResult(
        checkpoint=checkpoint, history=history_df, split=split, best_epoch=best[1], best_val_loss=best[0],
        n_parameters=n_parameters, seconds=time.perf_counter() - t_start, stopped_early=stopped_early,
        missing_graphs=missing, model=model,
    )


def _loss(model, batches) -> float:
    """Mean squared error over every point of every spectrum in ``batches``."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for (g, lg), target in batches:
            total += float(torch.sum((_forward(model, g, lg) - target) ** 2))
            count += target.numel()
    return total / count


def _save_checkpoint(path: Path, model, config, settings: ModelSettings, split, n_grid: int, epoch: int, loss: float) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config.model_dump(),
        "settings": settings.to_dict(),
        "split": dict(split),
        "n_grid": int(n_grid),
        "epoch": int(epoch),
        "loss": float(loss),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dictionary (see :func:`train`); InputError naming the file if unreadable."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an optabs ALIGNN checkpoint")
        return payload
    except Exception as exc:
        raise InputError(f"model checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); retrain the model") from exc


def load_model(checkpoint_path: str | Path, device: str | None = None):
    """``(model, settings, split)`` from a checkpoint written by :func:`train`.

    The model is in eval mode on ``device`` (default: the settings' device, "auto" = CUDA when
    visible). Predictions equal those of the trained model exactly.
    """
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePureConfig

    payload = load_checkpoint(checkpoint_path)
    settings = ModelSettings(**payload["settings"])
    if device is not None:
        settings = dataclasses.replace(settings, device=device)
    model = _new_model(ALIGNNAtomWisePureConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(settings.torch_device()).eval()
    return model, settings, dict(payload["split"])


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def predict(
    model, graphs: Mapping[str, Graph], ids: Sequence[str], batch_size: int = 32, threads: int | None = 1
) -> np.ndarray:
    """(len(ids), n_grid) predicted log10 alpha of the materials ``ids`` (float64).

    Batching does not change the result beyond float rounding (per-atom layer norms, per-graph
    mean pooling). ``threads``: torch CPU threads for the call (None: leave as is; see
    :class:`ModelSettings` for why one is the default).
    """
    device = next(model.parameters()).device
    model.eval()
    out = []
    with _threads(threads), torch.no_grad():
        for chunk in _batches(list(ids), batch_size):
            g, lg = _batch(graphs, chunk, device)
            out.append(_forward(model, g, lg).cpu().numpy())
    n_grid = model.fc.out_features
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n_grid))


def predictions_table(ids: Sequence[str], split: Mapping[str, str], predictions: np.ndarray) -> pd.DataFrame:
    """``predictions.parquet``: material_id, split, log10_alpha_pred (list[float] on the grid)."""
    return pd.DataFrame(
        {
            "material_id": list(ids),
            "split": [split.get(m, "") for m in ids],
            "log10_alpha_pred": [list(map(float, p)) for p in predictions],
        }
    )


# ============================================================================ baselines


class MeanSpectrumBaseline:
    """Predicts the training set's mean spectrum for every material."""

    def __init__(self, train_Y: np.ndarray):
        self.mean = np.asarray(train_Y, dtype=float).mean(axis=0)

    def predict(self, formulas: Sequence[str]) -> np.ndarray:
        """(len(formulas), n_grid); the formulas are ignored."""
        return np.tile(self.mean, (len(formulas), 1))


def mean_spectrum_baseline(train_Y: np.ndarray) -> MeanSpectrumBaseline:
    """The mean-spectrum baseline fitted on ``train_Y`` (n_train, n_grid)."""
    return MeanSpectrumBaseline(train_Y)


def composition_features(formulas: Sequence[str]) -> np.ndarray:
    """(n, 138) composition descriptors: matminer's Magpie ``ElementProperty`` (132: statistics
    of elemental properties over the formula) and ``Stoichiometry`` (6 p-norms of the atomic
    fractions). NaN where an element lacks a property (imputed by the baseline)."""
    from matminer.featurizers.composition import ElementProperty, Stoichiometry
    from pymatgen.core import Composition

    featurizers = [ElementProperty.from_preset("magpie"), Stoichiometry()]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for formula in formulas:
            comp = Composition(formula)
            values: list[float] = []
            for f in featurizers:
                try:
                    values.extend(f.featurize(comp))
                except Exception:  # an element without data: imputed later
                    values.extend([math.nan] * len(f.feature_labels()))
            rows.append(values)
    return np.asarray(rows, dtype=float).reshape(len(formulas), -1)


class CompositionBaseline:
    """Composition-only baseline: Magpie + stoichiometry features (mean-imputed, standardised)
    -> extremely randomised trees (200, leaves of >= 2 materials) -> the spectrum.

    The spectra are first projected on their leading ``n_components`` principal components
    (fitted on the training spectra; 20 keep 99.8 % of the variance of the 1,116 shared oxides,
    reconstruction MAE 0.014) so that the trees predict a short smooth code rather than 1,501
    correlated points; the prediction is mapped back to the grid. On the shared oxides' test
    split (seed 123) this was the best of the fast choices tried: test MAE 0.166 (mean 0.375
    for the mean spectrum) against 0.175 for a random forest, 0.20 for 5-nearest neighbours or
    an RBF kernel ridge and 0.22 for ridge regression; fitting takes a few seconds.
    """

    def __init__(self, train_formulas: Sequence[str], train_Y: np.ndarray, n_components: int = 20,
                 n_estimators: int = 200, seed: int = 123):
        from sklearn.decomposition import PCA
        from sklearn.ensemble import ExtraTreesRegressor
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        train_Y = np.asarray(train_Y, dtype=float)
        X = composition_features(train_formulas)
        self.pca = None
        codes = train_Y
        if len(train_Y) > 1:
            self.pca = PCA(n_components=min(n_components, len(train_Y) - 1, train_Y.shape[1]), random_state=seed)
            codes = self.pca.fit_transform(train_Y)
        self.model = make_pipeline(
            SimpleImputer(strategy="mean", keep_empty_features=True),
            StandardScaler(),
            ExtraTreesRegressor(n_estimators=n_estimators, min_samples_leaf=2, random_state=seed, n_jobs=1),
        )
        self.model.fit(X, codes)

    def predict(self, formulas: Sequence[str]) -> np.ndarray:
        """(len(formulas), n_grid) predicted log10 alpha."""
        codes = self.model.predict(composition_features(formulas))
        codes = codes.reshape(len(formulas), -1)
        return self.pca.inverse_transform(codes) if self.pca is not None else codes


def composition_baseline(train_formulas: Sequence[str], train_Y: np.ndarray, **kwargs: Any) -> CompositionBaseline:
    """The composition baseline (:class:`CompositionBaseline`) fitted on the training split."""
    return CompositionBaseline(train_formulas, train_Y, **kwargs)


# ============================================================================ metrics


def per_material_mae(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(M,) mean absolute error over the grid of each material (log10 alpha units)."""
    return np.mean(np.abs(np.atleast_2d(y_true) - np.atleast_2d(y_pred)), axis=1)


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def spectrum_metrics(y_true: np.ndarray, y_pred: np.ndarray, energy_ev: np.ndarray, threshold: float = 2.5) -> dict[str, Any]:
    """Spectrum and onset metrics of (M, n_grid) predictions against the truth.

    ``mae_q25``, ``mae_median``, ``mae_q75``, ``mae_mean``: quartiles and mean of the
    per-material MAE (log10 alpha); ``frac_mae_below_0.14``: share of materials with MAE < 0.14.
    Onsets use the dataset's definition (:func:`optabs.dataset.onsets`: the first grid energy
    with log10 alpha > ``threshold``); materials where either onset is undefined are left out
    of ``onset_r2`` and ``onset_mae_ev`` and counted in ``n_onset_undefined``. Undefined values
    (no materials, fewer than two onsets) are None, so the dict is valid JSON.
    """
    y_true, y_pred = np.atleast_2d(np.asarray(y_true, float)), np.atleast_2d(np.asarray(y_pred, float))
    if y_true.shape != y_pred.shape:
        raise InputError(f"spectrum_metrics: truth {y_true.shape} and prediction {y_pred.shape} differ in shape")
    mae = per_material_mae(y_true, y_pred) if len(y_true) else np.zeros(0)
    # onsets() only needs the grid's energies and threshold; the same function as the dataset's.
    grid = types.SimpleNamespace(energy_ev=np.asarray(energy_ev, float), onset_threshold=float(threshold))
    on_true = onsets(grid, y_true) if len(y_true) else np.zeros(0)
    on_pred = onsets(grid, y_pred) if len(y_true) else np.zeros(0)
    ok = np.isfinite(on_true) & np.isfinite(on_pred)
    r2 = math.nan
    if ok.sum() >= 2:
        ss_res = np.sum((on_true[ok] - on_pred[ok]) ** 2)
        ss_tot = np.sum((on_true[ok] - on_true[ok].mean()) ** 2)
        r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    q25, q50, q75 = np.percentile(mae, [25, 50, 75]) if len(mae) else (math.nan,) * 3
    return {
        "n_materials": int(len(mae)),
        "mae_mean": _none_if_nan(mae.mean() if len(mae) else math.nan),
        "mae_q25": _none_if_nan(q25),
        "mae_median": _none_if_nan(q50),
        "mae_q75": _none_if_nan(q75),
        f"frac_mae_below_{GOOD_MAE}": _none_if_nan(np.mean(mae < GOOD_MAE) if len(mae) else math.nan),
        "onset_r2": _none_if_nan(r2),
        "onset_mae_ev": _none_if_nan(np.mean(np.abs(on_true[ok] - on_pred[ok])) if ok.any() else math.nan),
        "n_onset": int(ok.sum()),
        "n_onset_undefined": int((~ok).sum()),
    }


@dataclass
class Evaluation:
    """``metrics``: the ``metrics.json`` structure; ``per_material``: one row per material with a
    split (material_id, formula, split, mae_alignn, mae_mean_spectrum, mae_composition,
    onset_ev, onset_alignn_ev)."""

    metrics: dict[str, Any]
    per_material: pd.DataFrame


def evaluate(
    dataset: pd.DataFrame,
    split: Mapping[str, str],
    alignn_predictions: np.ndarray,
    energy_ev: np.ndarray,
    threshold: float = 2.5,
    seed: int = 123,
) -> Evaluation:
    """ALIGNN against the two baselines, all scored on the test split.

    ``alignn_predictions``: (len(dataset), n_grid), row i the prediction of dataset row i
    (rows of materials not in ``split``, e.g. without a graph, are ignored). The baselines are
    fitted on the training materials of the same ``split``.

    ``metrics`` = ``{"n_train", "n_val", "n_test", "alignn": {...}, "mean_spectrum": {...},
    "composition": {...}}`` with :func:`spectrum_metrics` dicts.
    """
    Y = spectra_matrix(dataset)
    P = np.asarray(alignn_predictions, dtype=float)
    if P.shape != Y.shape:
        raise InputError(f"evaluate: predictions {P.shape} do not match the dataset's spectra {Y.shape}")
    labels = np.array([split.get(m, "") for m in dataset.material_id])
    tr, te = labels == "train", labels == "test"
    if not tr.any():
        raise InputError("evaluate: the split has no training materials to fit the baselines on")
    formulas = list(dataset.formula)
    mean_model = mean_spectrum_baseline(Y[tr])
    comp_model = composition_baseline([f for f, t in zip(formulas, tr) if t], Y[tr], seed=seed)
    has = labels != ""
    preds = {
        "alignn": P,
        "mean_spectrum": mean_model.predict(formulas),
        "composition": comp_model.predict(formulas),
    }
    metrics: dict[str, Any] = {"n_train": int(tr.sum()), "n_val": int((labels == "val").sum()), "n_test": int(te.sum())}
    for name, pred in preds.items():
        metrics[name] = spectrum_metrics(Y[te], pred[te], energy_ev, threshold)
    grid = types.SimpleNamespace(energy_ev=np.asarray(energy_ev, float), onset_threshold=float(threshold))
    per_material = pd.DataFrame(
        {
            "material_id": dataset.material_id.to_numpy()[has],
            "formula": np.asarray(formulas, dtype=object)[has],
            "split": labels[has],
            **{f"mae_{name}": per_material_mae(Y[has], pred[has]) for name, pred in preds.items()},
            "onset_ev": onsets(grid, Y[has]),
            "onset_alignn_ev": onsets(grid, P[has]),
        }
    )
    return Evaluation(metrics, per_material)


# ============================================================================ embeddings


def embedding_layers(model) -> list[str]:
    """Layer names in forward order: alignn_0.., gcn_0.., readout."""
    return ([f"alignn_{i}" for i in range(len(model.alignn_layers))]
            + [f"gcn_{i}" for i in range(len(model.gcn_layers))] + ["readout"])


def embeddings(
    model, graphs: Mapping[str, Graph], ids: Sequence[str], batch_size: int = 32, threads: int | None = 1
) -> pd.DataFrame:
    """Per-material, per-layer mean atom features.

    Columns: ``material_id``, ``layer`` (``alignn_0``.., ``gcn_0``.., ``readout``), ``vector``
    (list of ``hidden_features`` floats). A layer's vector is its atom (node) output averaged
    over the material's atoms (forward hooks on ``model.alignn_layers[i]`` /
    ``model.gcn_layers[i]``, whose output[0] is (atoms in batch, hidden)). ``readout`` is the
    input of the final linear layer ``model.fc``: alignn pools the last layer's atom features by
    their mean over each material (``scatter_mean``), so readout is the pooled vector the
    spectrum is a linear function of (it coincides with the last GCN layer's mean; with no GCN
    layers, with the last ALIGNN layer's). Rows are ordered by material, then layer.
    ``threads``: torch CPU threads for the call (None: leave as is).
    """
    from alignn.models.alignn_atomwise_pure import scatter_mean

    device = next(model.parameters()).device
    names = embedding_layers(model)
    modules = list(model.alignn_layers) + list(model.gcn_layers)
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in zip(names, modules):
        handles.append(module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out[0])))
    handles.append(model.fc.register_forward_pre_hook(lambda _m, inp: captured.__setitem__("readout", inp[0])))
    rows = []
    model.eval()
    try:
        with _threads(threads), torch.no_grad():
            for chunk in _batches(list(ids), batch_size):
                captured.clear()
                g, lg = _batch(graphs, chunk, device)
                _forward(model, g, lg)
                batch_id = g.node_batch_id
                pooled = {
                    name: (captured[name] if name == "readout" else scatter_mean(captured[name], batch_id, g.batch_size))
                    .cpu()
                    .numpy()
                    for name in names
                }
                for b, mid in enumerate(chunk):
                    for name in names:
                        rows.append((mid, name, pooled[name][b].astype(float).tolist()))
    finally:
        for h in handles:
            h.remove()
    return pd.DataFrame(rows, columns=["material_id", "layer", "vector"])


# ============================================================================ workflow stage entry points
# Each reads the stage's inputs from files, calls the functions above and writes atomically.


def graphs_stage(dataset_path: str | Path, settings: ModelSettings, cache_path: str | Path, manifest_path: str | Path) -> None:
    """Build (or reuse from ``cache_path``) every dataset material's graph; write a manifest
    (JSON: graph settings, ids, failures) that later rules depend on."""
    from optabs.dataset import read_dataset
    from optabs.io import write_json

    dataset = read_dataset(dataset_path)
    graphs, failures = cached_graphs(structures_of(dataset), cache_path, settings)
    log.info("%d graphs, %d failures (cache %s)", len(graphs), len(failures), cache_path)
    write_json(
        manifest_path,
        {"key": settings.graph_key(), "cache": str(cache_path), "material_ids": sorted(graphs),
         "failures": [{"material_id": m, "reason": r} for m, r in failures]},
    )


def _stage_graphs(dataset: pd.DataFrame, cache_path: str | Path, settings: ModelSettings) -> dict[str, Graph]:
    graphs = load_graphs(cache_path, settings)
    if graphs is None:
        raise InputError(f"graph cache {cache_path} is missing or was built with other settings; rerun rule model_graphs")
    return {m: graphs[m] for m in dataset.material_id if m in graphs}


def train_stage(dataset_path: str | Path, cache_path: str | Path, settings: ModelSettings, outdir: str | Path) -> TrainResult:
    """Train on the dataset's graphs; writes ``outdir/checkpoint.pt`` and ``outdir/history.csv``."""
    from optabs.dataset import read_dataset

    dataset = read_dataset(dataset_path)
    return train(dataset, _stage_graphs(dataset, cache_path, settings), settings, outdir)


def evaluate_stage(
    dataset_path: str | Path,
    cache_path: str | Path,
    checkpoint_path: str | Path,
    grid: Any,
    predictions_path: str | Path,
    metrics_path: str | Path,
    per_material_path: str | Path,
    parity_png: str | Path,
    worst_png: str | Path,
) -> dict[str, Any]:
    """Predict every material, score ALIGNN and both baselines on the test split, draw the figures."""
    from optabs.dataset import read_dataset, spectra_matrix
    from optabs.io import write_json, write_parquet
    from optabs.report import onset_parity_figure, worst_by_quartile_figure

    dataset = read_dataset(dataset_path)
    model, settings, split = load_model(checkpoint_path)
    graphs = _stage_graphs(dataset, cache_path, settings)
    ids = [m for m in dataset.material_id if m in graphs]
    pred = predict(model, graphs, ids)
    full = spectra_matrix(dataset).copy()
    row = {m: i for i, m in enumerate(dataset.material_id)}
    for i, m in enumerate(ids):
        full[row[m]] = pred[i]
    evaluation = evaluate(dataset, split, full, grid.energy_ev, grid.onset_threshold, settings.seed)
    write_parquet(predictions_path, predictions_table(ids, split, pred))
    write_parquet(per_material_path, evaluation.per_material)
    write_json(metrics_path, evaluation.metrics)
    test = evaluation.per_material[evaluation.per_material.split == "test"]
    onset_parity_figure(test.onset_ev.to_numpy(), test.onset_alignn_ev.to_numpy(), parity_png)
    test_rows = [row[m] for m in test.material_id]
    worst_by_quartile_figure(
        grid.energy_ev, spectra_matrix(dataset)[test_rows], full[test_rows], test.mae_alignn.to_numpy(),
        list(test.material_id), worst_png,
    )
    return evaluation.metrics


def embeddings_stage(dataset_path: str | Path, cache_path: str | Path, checkpoint_path: str | Path, out_path: str | Path) -> None:
    """Per-layer mean atom features of every material (``embeddings.parquet``)."""
    from optabs.dataset import read_dataset
    from optabs.io import write_parquet

    dataset = read_dataset(dataset_path)
    model, settings, _ = load_model(checkpoint_path)
    graphs = _stage_graphs(dataset, cache_path, settings)
    write_parquet(out_path, embeddings(model, graphs, [m for m in dataset.material_id if m in graphs]))


def predict_structures(
    checkpoint_path: str | Path, structures_dir: str | Path, grid: Any, out_dir: str | Path, out_parquet: str | Path
) -> pd.DataFrame:
    """Predicted spectra for a folder of CIF/POSCAR files, written in the dataset's formats:
    an ALIGNN folder (``out_dir``: POSCARs + ``id_prop.csv``) and a dataset-style parquet table.
    Unreadable files and structures without a graph are logged by name and skipped."""
    from optabs.dataset import DATASET_COLUMNS, export_alignn, onsets, write_dataset
    from optabs.structures.files import load_folder

    candidates, problems = load_folder(structures_dir)
    for p in problems:
        log.warning("skipped %s: %s", p["source_ref"], p["detail"])
    model, settings, _ = load_model(checkpoint_path)
    structures = {c.material_id: c.structure for c in candidates}
    graphs, failures = build_graphs(structures, settings)
    for m, reason in failures:
        log.warning("no graph for %s: %s", m, reason)
    ids = [c.material_id for c in candidates if c.material_id in graphs]
    if not ids:
        raise InputError(f"no structure in {structures_dir} could be predicted (see the log)")
    pred = predict(model, graphs, ids)
    if pred.shape[1] != grid.n_points:
        raise InputError(f"the model predicts {pred.shape[1]} points but the grid has {grid.n_points}: use the training config")
    table = pd.DataFrame(
        {
            "material_id": ids,
            "source_name": [next(c.source_ref for c in candidates if c.material_id == m) for m in ids],
            "formula": [structures[m].composition.reduced_formula for m in ids],
            "structure": [structures[m].to_json() for m in ids],
            "log10_alpha": [list(map(float, np.maximum(p, grid.log10_alpha_floor))) for p in pred],
            "onset_ev": onsets(grid, np.maximum(pred, grid.log10_alpha_floor)),
            "dft_gap_ev": np.nan,
            "corrected_gap_ev": np.nan,
            "e_above_hull_ev": np.nan,
            "engine": "predicted",
        }
    )[DATASET_COLUMNS]
    export_alignn(table, out_dir)
    write_dataset(out_parquet, table)
    return table
