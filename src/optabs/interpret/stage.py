"""The interpret stage's entry points: cation environments, then clusters, comparison and chemistry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from optabs.chemistry import element_sets, material_environments
from optabs.dataset import read_dataset, spectra_matrix
from optabs.errors import InputError
from optabs.failures import Failure, write_failures
from optabs.grid import Grid
from optabs.interpret.chemistry import cluster_chemistry
from optabs.interpret.clustering import feature_matrix, ward_clusters
from optabs.interpret.compare import compare_clusterings
from optabs.interpret.settings import InterpretSettings
from optabs.interpret.sweep import best_space, clustering_sweep, embedding_spaces
from optabs.io import atomic_directory, atomic_path, write_json, write_parquet

ENVIRONMENTS_STAGE = "interpret (environments)"


def environments_stage(
    dataset_path: str | Path, out_path: str | Path, failures_path: str | Path | None = None, n_workers: int = 1
) -> pd.DataFrame:
    """Cation environments of every dataset material (``environments.parquet``), batched.

    A material whose environment could not be computed keeps its row (``dominant_env``
    "unknown", the reason in ``error``) and gets a :class:`~optabs.failures.Failure` in
    ``failures_path``, so the report lists it.
    """
    envs = material_environments(read_dataset(dataset_path), n_workers=n_workers)
    if failures_path is not None:
        failed = envs[envs["error"] != ""]
        write_failures(
            failures_path,
            [Failure(row.material_id, ENVIRONMENTS_STAGE, "no cation environment", row.error) for row in failed.itertuples()],
        )
    write_parquet(out_path, envs)
    return envs


def interpret_stage(
    dataset_path: str | Path,
    embeddings_path: str | Path,
    environments_path: str | Path,
    *,
    settings: InterpretSettings,
    grid: Grid,
    clusters_path: str | Path,
    linkage_path: str | Path,
    comparison_path: str | Path,
    chemistry_dir: str | Path,
    sweep_path: str | Path | None = None,
) -> dict:
    """Ward clusters of the chosen layer's embeddings and of the raw spectra, their comparison and the per-cluster chemistry.

    Writes ``clusters.parquet`` (material_id, cluster, cluster_spectra), the linkage (``.npy``),
    ``comparison.json`` and one parquet per chemistry table in ``chemistry_dir`` (the motif
    statistics among them). ``sweep_path``: the robustness sweep (``sweep.parquet``,
    :func:`optabs.interpret.sweep.clustering_sweep`): every embedding layer and the raw spectra
    at each K of ``settings.sweep_k``; ``comparison.json`` then also holds the feature space with
    the most chemically homogeneous clusters at each K (``best_by_k``). K larger than the number
    of materials is an :class:`InputError`.
    """
    layer, k = settings.layer, settings.n_clusters
    dataset = read_dataset(dataset_path)
    emb = pd.read_parquet(embeddings_path)
    layers = sorted(set(emb.layer))
    if layer not in layers:
        raise InputError(f"config key 'interpret.layer': {layer!r} is not in {embeddings_path} (layers: {', '.join(layers)})")
    dataset = dataset[dataset.material_id.isin(set(emb.material_id))].reset_index(drop=True)
    ids = list(dataset.material_id)
    if k > len(ids):
        raise InputError(
            f"config key 'interpret.n_clusters': K={k} is larger than the number of materials ({len(ids)}); lower it"
        )
    envs = pd.read_parquet(environments_path)
    spectra = spectra_matrix(dataset)
    by_features = ward_clusters(feature_matrix(emb, layer, ids), k, standardize=settings.standardize)
    by_spectra = ward_clusters(spectra, k)
    env_of = dict(zip(envs.material_id, envs.dominant_env))
    comparison = compare_clusterings(
        spectra, element_sets(list(dataset.formula)), [env_of.get(m) for m in ids],
        by_features.labels, by_spectra.labels, names=(f"embeddings:{layer}", "spectra"),
    )
    comparison.update({"layer": layer, "k": k, "standardized": settings.standardize})
    sweep = None
    if sweep_path is not None:
        sweep = clustering_sweep(
            spectra, embedding_spaces(emb, ids), element_sets(list(dataset.formula)), [env_of.get(m) for m in ids],
            settings.sweep_k, standardize=settings.standardize,
        )
        comparison["best_by_k"] = {
            str(kk): _jsonable(best_space(sweep, kk)) for kk in sorted(set(sweep.k))
            if sweep[sweep.k == kk].chemical_homogeneity.notna().any()
        }
    clusters = by_features.table(ids)
    clusters["cluster_spectra"] = by_spectra.labels
    chem = cluster_chemistry(
        dataset, clusters[["material_id", "cluster"]], envs, energy_ev=grid.energy_ev, floor=grid.log10_alpha_floor,
        motif_q_max=settings.motif_q_max,
    )
    with atomic_directory(chemistry_dir) as tmp:
        for name, table in chem.tables().items():
            write_parquet(tmp / f"{name}.parquet", table)
    with atomic_path(linkage_path) as tmp_path, open(tmp_path, "wb") as fh:
        np.save(fh, by_features.linkage)
    if sweep is not None and sweep_path is not None:
        write_parquet(sweep_path, sweep)
    write_json(comparison_path, comparison)
    write_parquet(clusters_path, clusters)
    return comparison


def _jsonable(row: dict) -> dict:
    """A sweep row with numpy scalars as plain Python numbers and NaN as None (valid JSON)."""
    out = {}
    for key, value in row.items():
        value = value.item() if hasattr(value, "item") else value
        out[key] = None if isinstance(value, float) and not np.isfinite(value) else value
    return out
