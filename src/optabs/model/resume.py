"""The resume state of a training run: what a killed, timed-out or preempted run continues from.

:func:`optabs.model.train.train` writes ``<outdir>/resume.pt`` (:data:`RESUME_FILE`) atomically
after every completed epoch, beside the best checkpoint but apart from it, and removes it when
training ends normally. It is not a declared output of the ``model_train`` rule, so Snakemake
(``--rerun-incomplete``, or a retry of the job) deletes ``checkpoint.pt`` and ``history.csv`` of
a killed job but never this file, and the rerun continues after its epoch.

The file (torch format, plain tensors and data, read with ``weights_only=True``) holds
``format`` (:data:`RESUME_FORMAT`), ``fingerprint`` (:func:`fingerprint`), ``epoch`` (the last
completed one, 1-based), ``elapsed_s`` (training wall time so far, summed over the runs),
``history`` (one ``history.csv`` row per completed epoch), ``best_epoch`` / ``best_score`` /
``best_state`` (the best epoch so far, its score and its weights: enough to rewrite
``checkpoint.pt``), ``model`` / ``optimizer`` / ``scheduler`` (state dicts after the epoch;
``scheduler`` None without one) and ``rng`` (:func:`rng_states`). Written per epoch it costs
about the size of four copies of the weights (weights, best weights, AdamW's two moments).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optabs.grid import Grid
from optabs.io import atomic_path
from optabs.model.settings import ModelSettings

log = logging.getLogger(__name__)

RESUME_FORMAT = "optabs-resume-1"
RESUME_FILE = "resume.pt"

#: Settings that may change between a killed run and its resumption: they change how fast it
#: trains (or when it gives up), not what it computes. A CPU run is bitwise identical to an
#: uninterrupted one only with the same ``threads`` (torch's reductions depend on it).
RUNTIME_SETTINGS = frozenset({"threads", "device", "max_train_minutes", "ensemble"})


def fingerprint(
    settings: ModelSettings, network: Mapping[str, Any], grid: Grid | None, n_grid: int, split: Mapping[str, str],
    material_ids: Sequence[str], targets: torch.Tensor, structures: Sequence[str] | None,
) -> dict[str, Any]:
    """What must be the same for a run to continue another's training (plain data, compared with ==).

    The training settings (all but :data:`RUNTIME_SETTINGS`: ``epochs`` among them, because the
    one-cycle schedule spans all epochs), the graph key (builder version and graph settings),
    alignn's network configuration (``network``, its ``model_dump()``), the grid and number of
    spectrum points, the split's sizes and a SHA-256 of it, and a SHA-256 of the training data:
    the ``material_ids``, their ``targets`` (float32 spectra, one row per id) and their
    ``structures`` (JSON strings, one per id; None when the dataset has none), taken in id order.
    """
    # In the order of the ids: training sorts them, so the dataset's row order does not matter.
    order = sorted(range(len(material_ids)), key=lambda i: material_ids[i])
    data = hashlib.sha256()
    data.update(json.dumps([material_ids[i] for i in order]).encode())
    data.update(targets.detach().cpu()[order].contiguous().numpy().tobytes())
    if structures is not None:
        for i in order:
            data.update(hashlib.sha256(str(structures[i]).encode()).digest())
    counts = {f"n_{part}": sum(v == part for v in split.values()) for part in ("train", "val", "test")}
    return {
        "format": RESUME_FORMAT,
        "settings": {k: v for k, v in settings.to_dict().items() if k not in RUNTIME_SETTINGS},
        "graphs": settings.graph_key(),
        "network": dict(network),
        "grid": grid.to_dict() if grid is not None else None,
        "n_grid": int(n_grid),
        **counts,
        "split": hashlib.sha256(json.dumps(sorted(split.items())).encode()).hexdigest(),
        "data": data.hexdigest(),
    }


def differences(stored: Any, expected: Mapping[str, Any]) -> list[str]:
    """Names of the fingerprint entries that differ (settings by name, e.g. ``settings.epochs``)."""
    if not isinstance(stored, Mapping):
        return ["fingerprint"]
    names = []
    for key in sorted(set(stored) | set(expected)):
        a, b = stored.get(key), expected.get(key)
        if key == "settings" and isinstance(a, Mapping) and isinstance(b, Mapping):
            names += [f"settings.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            names.append(key)
    return names


def rng_states(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random state training may draw from: torch's CPU generator (initial weights, dropout),
    CUDA's (when training on CUDA), Python's ``random``, numpy's global one, and ``generator``
    (the batch order)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss),
                  "gauss": float(gauss)},
        "batch_order": generator.get_state(),
    }


def restore_rng(states: Mapping[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Put back the states of :func:`rng_states` (CUDA's only when this run, too, is on CUDA
    with as many devices)."""
    numpy_state = (states["numpy"]["kind"], np.asarray(states["numpy"]["keys"], dtype=np.uint32),
                   states["numpy"]["pos"], states["numpy"]["has_gauss"], states["numpy"]["gauss"])
    python_state = states["python"]
    torch_state, order_state = states["torch"], states["batch_order"]
    cuda = states.get("cuda")
    # Every entry is looked up before anything is set, so a file missing one changes no state.
    generator.set_state(order_state)
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    if device.type == "cuda" and cuda is not None and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_resume(path: Path, payload: Mapping[str, Any]) -> None:
    """Write a resume state (see the module docstring; ``format`` is added) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": RESUME_FORMAT, **payload}, tmp)


def load_resume(path: Path, expected: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resume state at ``path`` if there is one written with the ``expected`` fingerprint.

    None when there is no file, and also (with a warning naming the file and why) when it cannot
    be read or was written by a run with another fingerprint: training then starts afresh and
    overwrites it after its first epoch.
    """
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != RESUME_FORMAT:
            raise ValueError(f"not an optabs resume file (format {RESUME_FORMAT})")
    except Exception as exc:
        log.warning("resume file %s ignored: it cannot be read (%s: %s); training starts from epoch 1",
                    path, type(exc).__name__, exc)
        return None
    changed = differences(payload.get("fingerprint"), expected)
    if changed:
        log.warning("resume file %s ignored: it was written by a training with other %s; training starts from epoch 1",
                    path, ", ".join(changed))
        return None
    return payload
