"""Crystal graphs of many structures, built on all cores, and their cache on disk.

``build_graphs`` -> ``{material_id: (g, lg)}`` (alignn ``TorchGraph`` pairs of the study's
k-nearest-shell graph, :mod:`optabs.model.crystal_graph`); ``cached_graphs`` reuses the graphs
of unchanged structures from a cache file keyed by the builder and the graph settings
(:meth:`ModelSettings.graph_key`).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import logging
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from optabs.errors import InputError
from optabs.io import atomic_path
from optabs.model.crystal_graph import GraphArrays, graph_arrays, torch_graph
from optabs.model.settings import ModelSettings

log = logging.getLogger(__name__)

Graph = tuple[Any, Any]  # (TorchGraph atom graph, TorchGraph line graph)

#: Fewer structures than this are built in this process: a pool's start costs more than it saves.
MIN_PARALLEL = 64


def _build_one(structure: Any, settings: ModelSettings) -> GraphArrays:
    """The graph arrays of one pymatgen Structure (raises ``ValueError`` naming what is wrong)."""
    if not structure.is_ordered:
        raise ValueError("the structure has disordered (partially occupied) sites; a crystal graph needs one element per site")
    return graph_arrays(
        structure.lattice.matrix,
        structure.frac_coords,
        np.array([site.specie.Z for site in structure], dtype=np.int64),
        max_neighbors=int(settings.max_neighbors),
        cutoff=float(settings.cutoff),
        shell_tolerance=float(settings.shell_tolerance),
        three_body_cutoff=float(settings.three_body_cutoff),
    )


def _build_many(structures: Sequence[Any], settings: ModelSettings) -> list[GraphArrays | str]:
    """Graph arrays of each structure, or the reason it failed (one failure never stops the rest)."""
    out: list[GraphArrays | str] = []
    for structure in structures:
        try:
            out.append(_build_one(structure, settings))
        except Exception as exc:  # one bad structure must not stop the others
            out.append(f"{type(exc).__name__}: {exc}")
    return out


# A worker's share of the job, set once per worker process (inherited, not pickled, under fork).
_WORK: tuple[Sequence[Any], ModelSettings] | None = None


def _init_worker(structures: Sequence[Any], settings: ModelSettings) -> None:
    global _WORK
    _WORK = (structures, settings)
    # Tiny arrays: a second thread per process only adds contention.
    torch.set_num_threads(1)


def _compact(result: GraphArrays | str) -> GraphArrays | str:
    """``result`` with the float32 / int32 arrays the torch graph needs (half the bytes to send back)."""
    if isinstance(result, str):
        return result
    return dataclasses.replace(
        result, r=result.r.astype(np.float32), cos=result.cos.astype(np.float32),
        lg_src=result.lg_src.astype(np.int32), lg_dst=result.lg_dst.astype(np.int32),
    )


def _build_range(start: int, stop: int) -> list[GraphArrays | str]:
    assert _WORK is not None, "worker not initialised"
    structures, settings = _WORK
    return [_compact(result) for result in _build_many(structures[start:stop], settings)]


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _build_parallel(structures: Sequence[Any], settings: ModelSettings, workers: int) -> list[GraphArrays | str]:
    """:func:`_build_many` in ``workers`` processes, in chunks (a few per worker to balance the load)."""
    # The first structure is built here: that loads the lazily loaded modules and tables once,
    # before the fork, instead of once in every worker.
    head = _build_many(structures[:1], settings)
    n = len(structures)
    size = max(1, min(256, -(-(n - 1) // (4 * workers))))
    ranges = [(start, min(start + size, n)) for start in range(1, n, size)]
    # fork: workers inherit the structures and the imported modules (spawn would re-import
    # pymatgen and torch in each worker, ~2 s, as long as the whole job).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    results: dict[tuple[int, int], list[GraphArrays | str]] = {}
    try:
        with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                    initargs=(structures, settings)) as pool:
            futures = {pool.submit(_build_range, *span): span for span in ranges}
            for future in cf.as_completed(futures):
                results[futures[future]] = future.result()
    except cf.process.BrokenProcessPool as exc:
        # A worker died (killed from outside; crystal_graph refuses searches that would exhaust
        # memory): build what is missing here.
        log.warning("graph worker process died (%s); building the remaining %d chunk(s) in this process",
                    exc, len(ranges) - len(results))
        for start, stop in ranges:
            if (start, stop) not in results:
                results[(start, stop)] = _build_many(structures[start:stop], settings)
    return head + [item for span in ranges for item in results[span]]


def build_graphs(
    structures: Mapping[str, Any], settings: ModelSettings, workers: int | None = None
) -> tuple[dict[str, Graph], list[tuple[str, str]]]:
    """Graphs of ``{material_id: pymatgen Structure}``.

    Returns ``(graphs, failures)``: ``{material_id: (g, lg)}`` (in the order of ``structures``)
    for every structure that could be built and ``[(material_id, reason), ...]`` for those that
    could not (logged; the rest go on). ``workers``: processes (default: every core this process
    may use); fewer than :data:`MIN_PARALLEL` structures are built in this process.
    """
    ids = list(structures)
    items = [structures[mid] for mid in ids]
    workers = default_workers() if workers is None else max(1, int(workers))
    old_threads = torch.get_num_threads()
    # The torch work here (tensors from the arrays) is tiny: a second thread only adds contention
    # (alignn's builder made 7 instead of ~200 structures/s with two threads beside a busy process).
    torch.set_num_threads(1)
    try:
        if workers > 1 and len(items) >= MIN_PARALLEL:
            built = _build_parallel(items, settings, min(workers, len(items)))
        else:
            built = _build_many(items, settings)
        graphs: dict[str, Graph] = {}
        failures: list[tuple[str, str]] = []
        for mid, result in zip(ids, built):
            if isinstance(result, str):
                log.warning("graph of %s could not be built: %s", mid, result)
                failures.append((mid, result))
            else:
                graphs[mid] = torch_graph(result)
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
