"""Training ALIGNN on the dataset's spectra: seeded split, AdamW, one-cycle schedule, best-epoch checkpoint.

Training resumes where it stopped. After every epoch the whole training state (weights,
optimiser, schedule, random states, history, best epoch and its weights) is written atomically
to ``outdir/resume.pt`` (:mod:`optabs.model.resume`), beside the best checkpoint but apart from
it. A run that finds one written with the same fingerprint (training settings, data, split,
grid) continues after its epoch instead of from epoch 1, so a job that is killed, cancelled,
timed out or preempted loses only the epoch it was in when Snakemake runs it again. The result
(best checkpoint, history) is that of an uninterrupted run: bitwise on CPU with the same number
of threads. The file is removed when training ends.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from optabs.dataset import spectra_matrix
from optabs.errors import ConfigError, InputError
from optabs.grid import Grid
from optabs.io import write_csv
from optabs.model.checkpoint import save_checkpoint
from optabs.model.graphs import Graph
from optabs.model.network import batch, batches, forward, model_config, new_model
from optabs.model.resume import RESUME_FILE, fingerprint, load_resume, restore_rng, rng_states, save_resume
from optabs.model.settings import ModelSettings
from optabs.model.split import split_ids

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "val_loss", "seconds", "graphs_per_s"]


@dataclass
class TrainResult:
    """What :func:`train` did. ``history`` has one row per epoch (see ``history.csv``);
    ``model`` is the network with the best epoch's weights (those in ``checkpoint``), in eval mode.
    ``resumed_after_epoch``: the last epoch of the resume state this run continued from (0: it
    started afresh); ``seconds`` is this run's wall time."""

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
    resumed_after_epoch: int = 0


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


def _param_groups(model) -> list[dict[str, Any]]:
    # alignn's group_decay: no weight decay on biases and normalisation parameters.
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if ("bias" in name or "bn" in name or "norm" in name) else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def train(
    dataset: pd.DataFrame, graphs: Mapping[str, Graph], settings: ModelSettings, outdir: str | Path,
    grid: Grid | None = None, split: Mapping[str, str] | None = None,
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
    ``grid``: the energy grid of the spectra, stored in the checkpoint so that prediction needs
    no grid options (its ``n_points`` must equal the spectra's length). ``split``: a given split
    (material_id -> train/val/test) instead of :func:`split_ids`; materials it does not name
    are trained on (active-learning rounds keep the first round's test set this way).
    Ensemble members (``settings.member``) share the split and differ in ``settings.member_seed``.

    Resuming: every epoch also writes ``outdir/resume.pt`` (see :mod:`optabs.model.resume`). If
    that file exists when training starts and its fingerprint matches (all settings but
    ``threads``, ``device`` and ``max_train_minutes``; the materials, their spectra and
    structures; the split; the grid), training continues after its epoch, first rewriting
    ``checkpoint.pt`` and ``history.csv`` as they were then; the result equals that of an
    uninterrupted run. A file that does not match or cannot be read is logged by name and
    ignored (training starts from epoch 1 and overwrites it). The file is removed when training
    ends (all epochs done, or stopped by ``max_train_minutes``, whose budget counts the training
    time of the runs before too).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    _remove_partial_writes(outdir)
    missing = [mid for mid in dataset.material_id if mid not in graphs]
    if missing:
        log.warning("%d materials have no graph and are left out of training: %s", len(missing), ", ".join(missing[:20]))
    data = dataset[dataset.material_id.isin(list(graphs))].reset_index(drop=True)
    if len(data) == 0:
        raise InputError("no material of the dataset has a graph: nothing to train on")
    Y = torch.as_tensor(spectra_matrix(data), dtype=torch.float32)
    n_grid = Y.shape[1]
    if grid is not None and grid.n_points != n_grid:
        raise InputError(f"the dataset's spectra have {n_grid} points but the grid has {grid.n_points}: use the dataset's config")
    row = {mid: i for i, mid in enumerate(data.material_id)}
    if split is None:
        split = split_ids(list(data.material_id), settings)
    else:
        split = {m: split.get(m, "train") for m in data.material_id}
    train_ids = sorted(m for m, s in split.items() if s == "train")
    val_ids = sorted(m for m, s in split.items() if s == "val")
    log.info("split: %d train, %d val, %d test", len(train_ids), len(val_ids), sum(s == "test" for s in split.values()))

    t_start = time.perf_counter()
    with _torch_runtime(settings) as device:
        config = model_config(settings, n_grid)
        train_mean = Y[[row[m] for m in train_ids]].mean(0) if settings.output_bias_from_mean else None
        total_steps = math.ceil(len(train_ids) / settings.batch_size) * settings.epochs
        model, optimizer, scheduler, generator = _start(settings, config, device, train_mean, total_steps)
        n_parameters = sum(p.numel() for p in model.parameters())
        log.info("ALIGNN %d+%d layers, hidden %d: %d parameters on %s", settings.alignn_layers,
                 settings.gcn_layers, settings.hidden_features, n_parameters, device)
        val_batches = [
            (batch(graphs, ids, device), Y[[row[m] for m in ids]].to(device))
            for ids in batches(val_ids, settings.batch_size)
        ]

        checkpoint, resume_path = outdir / "checkpoint.pt", outdir / RESUME_FILE
        expected = fingerprint(settings, config.model_dump(), grid, n_grid, split, list(data.material_id), Y,
                               list(data.structure) if "structure" in data else None)
        history: list[dict[str, Any]] = []
        best, best_state = (math.inf, 0), _copy(model.state_dict())
        done, elapsed_before = 0, 0.0
        state = load_resume(resume_path, expected)
        if state is not None:
            try:
                history, best, best_state, done, elapsed_before = _restore(state, model, optimizer, scheduler, generator,
                                                                           device)
            except Exception as exc:
                log.warning("resume file %s ignored: its state does not fit this model (%s: %s); training starts "
                            "from epoch 1", resume_path, type(exc).__name__, exc)
                model, optimizer, scheduler, generator = _start(settings, config, device, train_mean, total_steps)
                best_state = _copy(model.state_dict())
            else:
                log.info("resuming from %s: epoch %d of %d done (%.1f min), best epoch %d; going on with epoch %d",
                         resume_path, done, settings.epochs, elapsed_before / 60, best[1], done + 1)
                # Snakemake deletes the outputs of a killed job: put them back as they were then.
                if best[1] > 0:
                    save_checkpoint(checkpoint, best_state, config, settings, split, n_grid, best[1], best[0], grid)
                write_csv(outdir / "history.csv", pd.DataFrame(history, columns=HISTORY_COLUMNS))

        stopped_early = False
        for epoch in range(done + 1, settings.epochs + 1):
            elapsed_min = (elapsed_before + time.perf_counter() - t_start) / 60
            if settings.max_train_minutes is not None and epoch > 1 and elapsed_min > settings.max_train_minutes:
                log.warning("stopping after epoch %d of %d: %.1f min spent, budget max_train_minutes=%s",
                            epoch - 1, settings.epochs, elapsed_min, settings.max_train_minutes)
                stopped_early = True
                break
            t0 = time.perf_counter()
            model.train()
            order = [train_ids[i] for i in torch.randperm(len(train_ids), generator=generator).tolist()]
            sum_loss = 0.0
            for ids in batches(order, settings.batch_size):
                g, lg = batch(graphs, ids, device)
                target = Y[[row[m] for m in ids]].to(device)
                loss = torch.nn.functional.mse_loss(forward(model, g, lg), target)
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
                best_state = _copy(model.state_dict())
                save_checkpoint(checkpoint, best_state, config, settings, split, n_grid, epoch, score, grid)
            write_csv(outdir / "history.csv", pd.DataFrame(history, columns=HISTORY_COLUMNS))
            save_resume(resume_path, {
                "fingerprint": expected, "epoch": epoch, "elapsed_s": elapsed_before + time.perf_counter() - t_start,
                "history": history, "best_epoch": best[1], "best_score": best[0], "best_state": best_state,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": rng_states(generator, device),
            })
            log.info("epoch %d/%d: train %.4f val %.4f (%.1f s, %.1f graphs/s)%s", epoch, settings.epochs,
                     train_loss, val_loss, seconds, len(train_ids) / t_train, " best" if best[1] == epoch else "")
        model.load_state_dict(best_state)
        model.eval()
    resume_path.unlink(missing_ok=True)
    history_df = pd.DataFrame(history, columns=HISTORY_COLUMNS)
    return TrainResult(
        checkpoint=checkpoint, history=history_df, split=split, best_epoch=best[1], best_val_loss=best[0],
        n_parameters=n_parameters, seconds=time.perf_counter() - t_start, stopped_early=stopped_early,
        missing_graphs=missing, model=model, resumed_after_epoch=done,
    )


def _start(settings: ModelSettings, config: Any, device: torch.device, output_bias: torch.Tensor | None,
           total_steps: int) -> tuple[Any, torch.optim.Optimizer, Any, torch.Generator]:
    """The seeded initial state: ``(model, optimizer, scheduler or None, batch-order generator)``."""
    torch.manual_seed(settings.member_seed)
    model = new_model(config).to(device)
    if output_bias is not None:
        with torch.no_grad():
            model.fc.bias.copy_(output_bias)
    optimizer = torch.optim.AdamW(_param_groups(model), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = None
    if settings.scheduler == "onecycle":
        pct = 0.3 if settings.warmup_steps is None else min(settings.warmup_steps / total_steps, 0.5)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=settings.learning_rate, total_steps=total_steps, pct_start=pct
        )
    return model, optimizer, scheduler, torch.Generator().manual_seed(settings.member_seed)


def _restore(state: Mapping[str, Any], model: Any, optimizer: torch.optim.Optimizer, scheduler: Any,
             generator: torch.Generator, device: torch.device
             ) -> tuple[list[dict[str, Any]], tuple[float, int], dict[str, torch.Tensor], int, float]:
    """Load a resume state into the training objects; ``(history, (best score, best epoch),
    best weights, last epoch done, seconds spent)``. Raises on a state that does not fit."""
    done = int(state["epoch"])
    history = [dict(r) for r in state["history"]]
    if [r["epoch"] for r in history] != list(range(1, done + 1)):
        raise ValueError(f"its history does not list epochs 1-{done}")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    best_state = {k: v.to(device) for k, v in state["best_state"].items()}
    if {k: v.shape for k, v in best_state.items()} != shapes:
        raise ValueError("its best weights do not fit the network")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"], generator, device)
    return history, (float(state["best_score"]), int(state["best_epoch"])), best_state, done, float(state["elapsed_s"])


def _copy(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state_dict.items()}


def _remove_partial_writes(outdir: Path) -> None:
    """Temporary files that a killed run's atomic writes left behind (never read, but they add up)."""
    for name in ("checkpoint.pt", "history.csv", RESUME_FILE):
        for part in outdir.glob(f".{name}.*.part"):
            part.unlink(missing_ok=True)


def _loss(model, val_batches) -> float:
    """Mean squared error over every point of every spectrum in ``val_batches``."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for (g, lg), target in val_batches:
            total += float(torch.sum((forward(model, g, lg) - target) ** 2))
            count += target.numel()
    return total / count
