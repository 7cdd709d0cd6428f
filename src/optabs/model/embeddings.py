"""Per-layer, per-material mean atom features of a trained network (the study clustered these)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch

from optabs.model.graphs import Graph
from optabs.model.network import batch, batches, forward, torch_threads


def embedding_layers(model: Any) -> list[str]:
    """Layer names in forward order: alignn_0.., gcn_0.., readout."""
    return ([f"alignn_{i}" for i in range(len(model.alignn_layers))]
            + [f"gcn_{i}" for i in range(len(model.gcn_layers))] + ["readout"])


def embeddings(
    model: Any, graphs: Mapping[str, Graph], ids: Sequence[str], batch_size: int = 32, threads: int | None = 1,
    layers: Sequence[str] | None = None, spectra: list | None = None,
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
    ``threads``: torch CPU threads for the call (None: leave as is). ``layers``: only these layers'
    rows (default all). ``spectra``: a list that receives the model's output of each batch ((batch,
    n_grid) float64 arrays, in the order of ``ids``), so that a caller needing both gets them from
    one forward pass.
    """
    from alignn.models.alignn_atomwise_pure import scatter_mean

    device = next(model.parameters()).device
    names = embedding_layers(model)
    keep = names if layers is None else [n for n in names if n in set(layers)]
    modules = list(model.alignn_layers) + list(model.gcn_layers)
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in zip(names, modules):
        handles.append(module.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out[0])))
    handles.append(model.fc.register_forward_pre_hook(lambda _m, inp: captured.__setitem__("readout", inp[0])))
    rows = []
    model.eval()
    try:
        with torch_threads(threads), torch.no_grad():
            for chunk in batches(list(ids), batch_size):
                captured.clear()
                g, lg = batch(graphs, chunk, device)
                out = forward(model, g, lg)
                if spectra is not None:
                    spectra.append(out.cpu().numpy().astype(float))
                batch_id = g.node_batch_id
                pooled = {
                    name: (captured[name] if name == "readout" else scatter_mean(captured[name], batch_id, g.batch_size))
                    .cpu()
                    .numpy()
                    for name in keep
                }
                for b, mid in enumerate(chunk):
                    for name in keep:
                        rows.append((mid, name, pooled[name][b].astype(float).tolist()))
    finally:
        for h in handles:
            h.remove()
    return pd.DataFrame(rows, columns=["material_id", "layer", "vector"])
