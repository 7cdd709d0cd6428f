"""The network: alignn's pure-PyTorch ALIGNN set up as a spectrum model, batching and the forward pass."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from optabs.model.graphs import Graph
from optabs.model.settings import ModelSettings

#: cgcnn atom feature length (alignn's ``atom_features="cgcnn"``).
ATOM_INPUT_FEATURES = 92


def model_config(settings: ModelSettings, n_grid: int) -> Any:
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


def new_model(config: Any) -> Any:
    """A freshly initialised ``ALIGNNAtomWisePure`` of ``config`` (see :func:`model_config`)."""
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure

    return ALIGNNAtomWisePure(config)


def batches(ids: Sequence[str], batch_size: int) -> Iterator[list[str]]:
    """``ids`` in consecutive chunks of ``batch_size`` (the last one may be smaller)."""
    for start in range(0, len(ids), batch_size):
        yield list(ids[start : start + batch_size])


def batch(graphs: Mapping[str, Graph], ids: Sequence[str], device: torch.device) -> tuple[Any, Any]:
    """The graphs of ``ids`` as one batched (g, lg) pair on ``device``."""
    from alignn.torch_graph_builder import batch_torch_graph_pairs

    g, lg = batch_torch_graph_pairs([graphs[i] for i in ids])
    if device.type != "cpu":
        g, lg = g.to(device), lg.to(device)
    return g, lg


def forward(model: Any, g: Any, lg: Any) -> torch.Tensor:
    """(graphs in batch, n_grid) output of ``model`` on a batched (g, lg) pair."""
    out = model((g, lg, None))["out"]
    return out if out.dim() == 2 else out.unsqueeze(0)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """``n`` torch CPU threads for the block (None: leave as is); the previous number is restored."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
