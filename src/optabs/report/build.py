"""Build the static report from tables in memory: :func:`build_report`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optabs.errors import InputError
from optabs.failures import FAILURE_COLUMNS
from optabs.grid import Grid
from optabs.io import atomic_directory
from optabs.plots import ClusterSpectraPlot, ScoreHistogramPlot
from optabs.report.pages import _cluster_page, _index_body, cluster_page_name
from optabs.report.screening import SCREENING_PAGE, read_screen, screening_page, screening_section

log = logging.getLogger(__name__)


def _as_chemistry(chemistry):
    from optabs.interpret.chemistry import ClusterChemistry

    if isinstance(chemistry, ClusterChemistry):
        return chemistry
    if isinstance(chemistry, Mapping):
        return ClusterChemistry.from_tables(chemistry)
    raise InputError(f"chemistry must be a ClusterChemistry or a dict of its tables, not {type(chemistry).__name__}")


def build_report(
    outdir: str | os.PathLike,
    *,
    dataset: pd.DataFrame,
    clusters: pd.DataFrame,
    comparison: Mapping | None,
    chemistry,
    metrics: Mapping | None = None,
    predictions: pd.DataFrame | None = None,
    failures: pd.DataFrame | None = None,
    title: str = "optabs report",
    linkage: ArrayLike | None = None,
    grid=None,
    sweep: pd.DataFrame | None = None,
    motif_q_max: float = 0.01,
    screen_dir: str | os.PathLike | None = None,
) -> Path:
    """Write the static report into ``outdir`` (replaced atomically); returns ``outdir/index.html``.

    ``dataset``: the dataset table. ``clusters``: ``material_id``, ``cluster`` (the feature
    clusters), optionally ``cluster_spectra`` (clusters of the raw spectra). ``comparison``:
    :func:`optabs.interpret.compare_clusterings`. ``chemistry``: :class:`optabs.interpret.ClusterChemistry`
    (or a dict of its tables). ``metrics``: the model stage's metrics (scalars and one dict per
    model), ``predictions``: ``material_id``, ``split``, ``log10_alpha_pred`` (the test split is
    shown where there is one), ``failures``: ``material_id``, ``stage``, ``reason``, ``detail``
    (:func:`optabs.failures.read_failures`) -- each optional. ``linkage``: the Ward linkage matrix
    whose leaves are the rows of ``clusters`` in order (:attr:`optabs.interpret.ClusterResult.linkage`);
    without it there is no dendrogram.
    ``grid``: the energy grid (default :class:`optabs.grid.Grid` with the spectra's length).
    ``sweep``: :func:`optabs.interpret.sweep.clustering_sweep` (the K-and-layer section; none:
    the section says so). ``motif_q_max``: the q at which the cluster pages call a motif significant.
    ``screen_dir``: the screen stage's folder (``results/screen``; :func:`optabs.report.screening.read_screen`):
    a Screening section on the overview and ``screening.html``; None: neither.
    """
    from optabs.dataset import spectra_matrix

    start = time.perf_counter()
    outdir = Path(outdir)
    chem = _as_chemistry(chemistry)
    if failures is not None and not set(FAILURE_COLUMNS) <= set(failures.columns):
        raise InputError(f"failures table needs columns {FAILURE_COLUMNS} (see optabs.failures); has {list(failures.columns)}")
    if not {"material_id", "cluster"} <= set(clusters.columns):
        raise InputError(f"clusters table needs material_id and cluster columns; has {list(clusters.columns)}")
    missing = set(dataset["material_id"]) - set(clusters["material_id"])
    if missing:
        raise InputError(f"no cluster for {len(missing)} dataset materials, e.g. {sorted(missing)[:5]}")
    by_id = clusters.set_index("material_id")
    labels = by_id.loc[dataset["material_id"], "cluster"].to_numpy()
    spectra = spectra_matrix(dataset)
    grid = grid or Grid(n_points=spectra.shape[1])
    energy = grid.energy_ev
    if energy.size != spectra.shape[1]:
        raise InputError(f"grid has {energy.size} points, the spectra {spectra.shape[1]}")
    cluster_ids = np.unique(labels).tolist()
    unknown = sorted(set(cluster_ids) - set(chem.summary["cluster"].tolist()))
    if unknown:
        raise InputError(f"the chemistry tables have no cluster {unknown[:5]}: rebuild them from the same clusters table")
    screen = read_screen(screen_dir) if screen_dir is not None else None

    with atomic_directory(outdir) as tmp:
        img = tmp / "img"
        img.mkdir()
        index = _index_body(
            title=title, dataset=dataset, clusters=clusters, labels=labels, spectra=spectra, energy=energy,
            cluster_ids=cluster_ids, comparison=comparison, chem=chem, metrics=metrics, predictions=predictions,
            failures=failures, linkage=linkage, img=img, grid=grid, sweep=sweep,
            screening=screening_section(screen) if screen is not None else "",
        )
        (tmp / "index.html").write_text(index, encoding="utf-8")
        if screen is not None:
            (tmp / SCREENING_PAGE).write_text(screening_page(screen, img, cluster_ids), encoding="utf-8")

        dataset_mean = spectra.mean(axis=0)
        env_share = chem.env_counts.drop_duplicates("dominant_env").set_index("dominant_env")["frac_dataset"]
        env_overall = ", ".join(f"{k} {100 * v:.0f}%" for k, v in env_share.items() if v > 0)
        members = chem.members
        if "cluster_spectra" in clusters.columns:
            members = members.merge(clusters[["material_id", "cluster_spectra"]], on="material_id", how="left")
        if "stability" in dataset.columns:
            members = members.merge(dataset[["material_id", "stability"]], on="material_id", how="left")
        member_cols = ["material_id", "formula", "onset_ev", "edge_integral", "dominant_env", "tetrahedral_max",
                       "octahedral_max", "tetrahedral_element", "octahedral_element"]
        member_cols += ["stability"] if "stability" in members.columns else []
        member_cols += ["cluster_spectra"] if "cluster_spectra" in members.columns else []
        member_headers = {"onset_ev": "onset (eV)", "edge_integral": "edge integral", "dominant_env": "environment",
                          "tetrahedral_max": "max tet.", "octahedral_max": "max oct.", "tetrahedral_element": "tet. site",
                          "octahedral_element": "oct. site", "cluster_spectra": "spectra cluster"}
        grouped = dict(tuple(members.groupby("cluster", sort=True)))
        plot = ClusterSpectraPlot(energy, dataset_mean)
        tet = chem.score_hist[chem.score_hist["score"] == "tetrahedral"]
        tet_by_cluster = dict(tuple(tet.groupby("cluster", sort=True)))
        first = tet_by_cluster[cluster_ids[0]]
        hist = ScoreHistogramPlot(first["bin_lo"], first["bin_hi"], first["frac_dataset"])
        for position, c in enumerate(cluster_ids):
            rows = labels == c
            plot.draw(spectra[rows], img / f"cluster_{c}.png", title=f"Cluster {c}: {int(rows.sum())} materials")
            hist.draw(tet_by_cluster[c]["frac_cluster"], img / f"tet_hist_{c}.png", title=f"Cluster {c}")
            frame = grouped[c][member_cols].rename(columns=member_headers)
            (tmp / cluster_page_name(c)).write_text(
                _cluster_page(c, position, cluster_ids, chem, frame, env_overall, motif_q_max), encoding="utf-8"
            )
    log.info("report of %d materials, %d clusters written to %s in %.1f s", len(dataset), len(cluster_ids), outdir,
             time.perf_counter() - start)
    return outdir / "index.html"


