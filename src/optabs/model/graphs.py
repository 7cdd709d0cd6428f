"""Crystal graphs: alignn's k-nearest atom graph and its line graph, and their cache on disk.

``build_graphs`` -> ``{material_id: (g, lg)}`` (alignn ``TorchGraph`` pairs); ``cached_graphs``
reuses the graphs of unchanged structures from a cache file keyed by the graph settings
(:meth:`ModelSettings.graph_key`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from optabs.errors import InputError
from optabs.io import atomic_path
from optabs.model.settings import ModelSettings

log = logging.getLogger(__name__)

Graph = tuple[Any, Any]  # (TorchGraph atom graph, TorchGraph line graph)


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
