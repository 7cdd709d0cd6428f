"""Checkpoints of a trained network: weights, alignn configuration, settings, split and grid.

A checkpoint (``checkpoint.pt``, torch format with plain tensors and data) holds ``format``,
``state_dict``, ``config`` (alignn's), ``settings`` (:class:`ModelSettings` as a dict),
``split``, ``n_grid``, ``grid`` (:meth:`optabs.grid.Grid.to_dict` of the grid the spectra were
on; None, or absent in older checkpoints, when training was not given one), ``epoch`` and ``loss``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from optabs.errors import InputError
from optabs.grid import Grid
from optabs.io import atomic_path
from optabs.model.network import new_model
from optabs.model.settings import ModelSettings

CHECKPOINT_FORMAT = "optabs-alignn-1"


def save_checkpoint(
    path: Path, state_dict: Mapping[str, torch.Tensor], config: Any, settings: ModelSettings, split: Mapping[str, str],
    n_grid: int, epoch: int, loss: float, grid: Grid | None = None,
) -> None:
    """Write the checkpoint of the weights ``state_dict`` at ``epoch`` (validation ``loss``) to ``path``, atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": config.model_dump(),
        "settings": settings.to_dict(),
        "split": dict(split),
        "n_grid": int(n_grid),
        "grid": grid.to_dict() if grid is not None else None,
        "epoch": int(epoch),
        "loss": float(loss),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dictionary (see the module docstring); InputError naming the file if unreadable."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not an optabs ALIGNN checkpoint")
        return payload
    except Exception as exc:
        raise InputError(f"model checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); retrain the model") from exc


def stored_grid(payload: Mapping[str, Any]) -> Grid | None:
    """The grid a checkpoint's model was trained on, or None if it stores none (older checkpoints)."""
    grid = payload.get("grid")
    return Grid(**grid) if grid else None


def model_from_checkpoint(payload: Mapping[str, Any], device: str | None = None) -> tuple[Any, ModelSettings, dict[str, str]]:
    """``(model, settings, split)`` from a checkpoint dictionary (see :func:`load_model`)."""
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePureConfig

    settings = ModelSettings(**payload["settings"])
    if device is not None:
        settings = dataclasses.replace(settings, device=device)
    model = new_model(ALIGNNAtomWisePureConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.to(settings.torch_device()).eval()
    return model, settings, dict(payload["split"])


def load_model(checkpoint_path: str | Path, device: str | None = None) -> tuple[Any, ModelSettings, dict[str, str]]:
    """``(model, settings, split)`` from a checkpoint written by :func:`optabs.model.train.train`.

    The model is in eval mode on ``device`` (default: the settings' device, "auto" = CUDA when
    visible). Predictions equal those of the trained model exactly.
    """
    return model_from_checkpoint(load_checkpoint(checkpoint_path), device)
