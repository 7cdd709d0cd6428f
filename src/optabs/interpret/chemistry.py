"""Per-cluster chemistry: which elements, ions and cation environments make each cluster what it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from optabs.chemistry import ENV_LABELS, MATERIAL_ENV_COLUMNS, UNKNOWN_ENV, element_matrix, element_sets
from optabs.dataset import spectra_matrix
from optabs.errors import InputError
from optabs.grid import LOG10_ALPHA_FLOOR, Grid
from optabs.interpret.compare import cluster_indicator
from optabs.interpret.motifs import cluster_summaries, motif_enrichment
from optabs.spectra import edge_integral


@dataclass
class ClusterChemistry:
    """Per-cluster chemistry tables (all long format, one ``cluster`` column).

    - ``summary``: one row per cluster: ``cluster``, ``size``, onset statistics
      ``onset_ev_{mean,median,std,min,max}`` (eV), ``edge_integral_{mean,median}`` (decade*eV,
      :func:`optabs.interpret.edge_integral`), ``dft_gap_ev_min``, ``corrected_gap_ev_min``,
      ``dft_direct_gap_ev_min`` (NaN where the dataset has none), ``dominant_env`` (most common)
      and ``dominant_env_fraction``, ``tetrahedral_max_mean``, ``octahedral_max_mean``,
      ``top_cations``, ``top_anions`` (the three most common, "V (9/9), ..."), ``enriched`` (up to
      three elements in >= 2 members with ``log2_enrichment`` > 0.5, best first).
    - ``enrichment``: ``cluster``, ``element``, ``n_cluster`` (members containing it),
      ``n_dataset``, ``frac_cluster``, ``frac_dataset``; ``log2_enrichment``: log2 of the fold
      enrichment ``f / frac_dataset`` where ``f = (n_cluster + s * frac_dataset) / (size + s)`` is the
      cluster's frequency shrunk towards the dataset's by a prior worth ``s`` = ``prior_materials``
      (1) materials, so that one member of a small cluster does not make a large enrichment, and an
      element found everywhere (O in oxides) scores 0; ``log_odds``: the log odds ratio of the 2x2
      table cluster vs rest of the dataset with a pseudo-count of ``pseudo_count`` (0.5) in every
      cell (Haldane-Anscombe), 0 where the element is in every material (the table is degenerate).
      The log odds ratio reads small clusters of near-universal elements as depleted (9 of 9 vs
      1,106 of 1,107 gives -3.7), which is why the tables are ranked by ``log2_enrichment``.
      Only elements present in the cluster are listed.
    - ``ions``: ``cluster``, ``role`` (cation|anion), ``element``, ``n_cluster``, ``frac_cluster``, ``frac_dataset``.
    - ``env_counts``: ``cluster``, ``dominant_env``, ``n_cluster``, ``frac_cluster``, ``frac_dataset``.
    - ``score_hist``: ``cluster``, ``score`` (tetrahedral|octahedral), ``bin_lo``, ``bin_hi``,
      ``frac_cluster``, ``frac_dataset``: the distribution of the material's highest score, 0.1 bins.
    - ``members``: ``material_id``, ``formula``, ``cluster``, ``onset_ev``, ``edge_integral``,
      ``dft_gap_ev``, ``dominant_env``, ``tetrahedral_max``, ``octahedral_max``,
      ``tetrahedral_element``, ``octahedral_element``; by cluster, then onset.
    - ``motifs``: :func:`optabs.interpret.motifs.motif_enrichment` of the clusters: per cluster and
      motif ("V tetrahedral": a cation element in a site environment) or anion element, the
      counts, fold enrichment, one-sided hypergeometric p and Benjamini-Hochberg q over all tests.
      ``summary["motif_summary"]`` is each cluster's one-line reading of it
      (:func:`optabs.interpret.motifs.cluster_summaries`).
    """

    summary: pd.DataFrame
    enrichment: pd.DataFrame
    ions: pd.DataFrame
    env_counts: pd.DataFrame
    score_hist: pd.DataFrame
    members: pd.DataFrame
    motifs: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name (how they are written, one parquet each)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame]) -> ClusterChemistry:
        """Rebuild from :meth:`tables` (e.g. read back from the parquet files)."""
        missing = [f.name for f in fields(cls) if f.name not in tables]
        if missing:
            raise InputError(f"cluster chemistry tables missing: {missing}")
        return cls(**{f.name: tables[f.name] for f in fields(cls)})


def _align_labels(dataset: pd.DataFrame, labels) -> NDArray:
    if isinstance(labels, pd.DataFrame):
        column = "cluster" if "cluster" in labels.columns else [c for c in labels.columns if c != "material_id"][0]
        series = labels.set_index("material_id")[column]
        missing = set(dataset["material_id"]) - set(series.index)
        if missing:
            raise InputError(f"no cluster label for {len(missing)} materials, e.g. {sorted(missing)[:5]}")
        return series.loc[dataset["material_id"]].to_numpy()
    out = np.asarray(labels)
    if out.shape != (len(dataset),):
        raise InputError(f"{out.shape} labels for {len(dataset)} materials")
    return out


def _align_envs(dataset: pd.DataFrame, envs: pd.DataFrame | None) -> pd.DataFrame:
    base = pd.DataFrame({"material_id": dataset["material_id"].to_numpy()})
    if envs is None:
        envs = pd.DataFrame(columns=MATERIAL_ENV_COLUMNS)
    merged = base.merge(envs.drop(columns=["formula"], errors="ignore"), on="material_id", how="left")
    merged["dominant_env"] = merged["dominant_env"].fillna(UNKNOWN_ENV)
    if "motifs" not in merged.columns:  # environments computed before per-site motifs existed
        merged["motifs"] = [[] for _ in range(len(merged))]
    for col in ("cations", "anions", "motifs"):
        merged[col] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in merged[col]]
    for col in ("tetrahedral_element", "octahedral_element"):
        merged[col] = merged[col].fillna("")
    return merged


def _counts(idx: NDArray[np.int64], n_clusters: int, membership: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(C, E) how many members of each cluster have each column True."""
    counts = np.rint(cluster_indicator(idx, n_clusters) @ membership.astype(float)).astype(np.int64)
    return counts.reshape(n_clusters, membership.shape[1])


def _top(names: Sequence[str], counts: NDArray[np.int64], size: int, n: int = 3) -> str:
    order = np.argsort(-counts, kind="stable")[:n]
    return ", ".join(f"{names[j]} ({counts[j]}/{size})" for j in order if counts[j] > 0)


def cluster_chemistry(
    dataset: pd.DataFrame,
    labels,
    envs: pd.DataFrame | None,
    *,
    energy_ev: ArrayLike | None = None,
    floor: float = LOG10_ALPHA_FLOOR,
    edge_window_ev: float = 2.0,
    pseudo_count: float = 0.5,
    prior_materials: float = 1.0,
    score_bins: int = 10,
    motif_q_max: float = 0.01,
) -> ClusterChemistry:
    """Per-cluster chemistry and spectra statistics (see :class:`ClusterChemistry`).

    ``dataset``: the dataset table (``material_id``, ``formula``, ``log10_alpha``, ``onset_ev``;
    gap columns used where present). ``labels``: (M,) cluster labels in dataset order, or a table
    ``material_id``, ``cluster``. ``envs``: :func:`material_environments` (or None: every
    environment unknown). ``energy_ev``: the spectra's grid (default: the dataset Grid's).
    ``motif_q_max``: the q-value at which a motif counts as significant in ``summary``.
    """
    lab = _align_labels(dataset, labels)
    env = _align_envs(dataset, envs)
    clusters, idx = np.unique(lab, return_inverse=True)
    idx = idx.ravel()
    n_c, m = clusters.size, len(dataset)
    sizes = np.bincount(idx, minlength=n_c)

    energy = Grid().energy_ev if energy_ev is None else np.asarray(energy_ev, dtype=float)
    onset = dataset["onset_ev"].to_numpy(dtype=float)
    edge = edge_integral(energy, spectra_matrix(dataset), onset, window_ev=edge_window_ev, floor=floor)

    def col(name: str) -> NDArray[np.float64]:
        return dataset[name].to_numpy(dtype=float) if name in dataset.columns else np.full(m, np.nan)

    members = pd.DataFrame({
        "material_id": dataset["material_id"].to_numpy(), "formula": dataset["formula"].to_numpy(),
        "cluster": lab, "onset_ev": onset, "edge_integral": edge, "dft_gap_ev": col("dft_gap_ev"),
        "dominant_env": env["dominant_env"].to_numpy(), "tetrahedral_max": env["tetrahedral_max"].to_numpy(dtype=float),
        "octahedral_max": env["octahedral_max"].to_numpy(dtype=float),
        "tetrahedral_element": env["tetrahedral_element"].to_numpy(), "octahedral_element": env["octahedral_element"].to_numpy(),
    })

    # element enrichment: 2x2 table (cluster vs rest) per element, vectorised over (C, E)
    membership, elements = element_matrix(element_sets(list(dataset["formula"])))
    a = _counts(idx, n_c, membership).astype(float)
    total = membership.sum(axis=0).astype(float)
    b = sizes[:, None] - a
    c = total[None, :] - a
    d = (m - sizes)[:, None] - c
    p = pseudo_count
    log_odds = np.log((a + p) * (d + p)) - np.log((b + p) * (c + p))
    log_odds[:, total == m] = 0.0
    frac_dataset = total / m
    shrunk = (a + prior_materials * frac_dataset[None, :]) / (sizes[:, None] + prior_materials)
    with np.errstate(divide="ignore", invalid="ignore"):
        log2_enrichment = np.log2(shrunk / frac_dataset[None, :])
    ci, ei = np.nonzero(a > 0)
    enrichment = pd.DataFrame({
        "cluster": clusters[ci], "element": np.asarray(elements, dtype=object)[ei], "n_cluster": a[ci, ei].astype(int),
        "n_dataset": total[ei].astype(int), "frac_cluster": a[ci, ei] / sizes[ci], "frac_dataset": frac_dataset[ei],
        "log2_enrichment": log2_enrichment[ci, ei], "log_odds": log_odds[ci, ei],
    }).sort_values(["cluster", "log2_enrichment", "n_cluster", "element"], ascending=[True, False, False, True],
                   kind="stable").reset_index(drop=True)

    # cations and anions (by oxidation state, from the environments table)
    ion_frames, top_ions = [], {}
    for role, column in (("cation", "cations"), ("anion", "anions")):
        mat, names = element_matrix(env[column].tolist())
        counts = _counts(idx, n_c, mat)
        overall = mat.sum(axis=0)
        ci, ei = np.nonzero(counts > 0)
        ion_frames.append(pd.DataFrame({
            "cluster": clusters[ci], "role": role, "element": np.asarray(names, dtype=object)[ei],
            "n_cluster": counts[ci, ei], "frac_cluster": counts[ci, ei] / sizes[ci], "frac_dataset": overall[ei] / m,
        }))
        top_ions[role] = [_top(names, counts[k], sizes[k]) for k in range(n_c)]
    ions = pd.concat(ion_frames, ignore_index=True).sort_values(
        ["cluster", "role", "n_cluster", "element"], ascending=[True, False, False, True], kind="stable"
    ).reset_index(drop=True)

    # dominant environments and score distributions, against the dataset
    env_names = [*ENV_LABELS, UNKNOWN_ENV]
    env_code = pd.Categorical(members["dominant_env"], categories=env_names).codes
    env_mat = np.eye(len(env_names), dtype=bool)[np.where(env_code < 0, len(env_names) - 1, env_code)]
    env_n = _counts(idx, n_c, env_mat)
    env_counts = pd.DataFrame({
        "cluster": np.repeat(clusters, len(env_names)), "dominant_env": env_names * n_c,
        "n_cluster": env_n.ravel(), "frac_cluster": (env_n / sizes[:, None]).ravel(),
        "frac_dataset": np.tile(env_mat.sum(axis=0) / m, n_c),
    })
    edges = np.linspace(0.0, 1.0, score_bins + 1)
    hist_frames = []
    for score in ("tetrahedral", "octahedral"):
        values = members[f"{score}_max"].to_numpy()
        known = np.isfinite(values)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, score_bins - 1)
        onehot = np.zeros((m, score_bins), dtype=bool)
        onehot[np.flatnonzero(known), bins[known]] = True
        per = _counts(idx, n_c, onehot)
        n_known = np.maximum(per.sum(axis=1, keepdims=True), 1)
        overall = onehot.sum(axis=0) / max(int(known.sum()), 1)
        hist_frames.append(pd.DataFrame({
            "cluster": np.repeat(clusters, score_bins), "score": score,
            "bin_lo": np.tile(edges[:-1], n_c), "bin_hi": np.tile(edges[1:], n_c),
            "frac_cluster": (per / n_known).ravel(), "frac_dataset": np.tile(overall, n_c),
        }))
    score_hist = pd.concat(hist_frames, ignore_index=True)

    # summary: one row per cluster
    g = members.assign(
        corrected_gap_ev=col("corrected_gap_ev"), dft_direct_gap_ev=col("dft_direct_gap_ev")
    ).groupby("cluster", sort=True)
    summary = pd.DataFrame({
        "cluster": clusters, "size": sizes,
        "onset_ev_mean": g["onset_ev"].mean().to_numpy(), "onset_ev_median": g["onset_ev"].median().to_numpy(),
        "onset_ev_std": g["onset_ev"].std(ddof=0).to_numpy(), "onset_ev_min": g["onset_ev"].min().to_numpy(),
        "onset_ev_max": g["onset_ev"].max().to_numpy(),
        "edge_integral_mean": g["edge_integral"].mean().to_numpy(),
        "edge_integral_median": g["edge_integral"].median().to_numpy(),
        "dft_gap_ev_min": g["dft_gap_ev"].min().to_numpy(), "corrected_gap_ev_min": g["corrected_gap_ev"].min().to_numpy(),
        "dft_direct_gap_ev_min": g["dft_direct_gap_ev"].min().to_numpy(),
        "tetrahedral_max_mean": g["tetrahedral_max"].mean().to_numpy(),
        "octahedral_max_mean": g["octahedral_max"].mean().to_numpy(),
    })
    known_env = env_n[:, : len(ENV_LABELS)]
    best = known_env.argmax(axis=1)
    summary["dominant_env"] = np.where(known_env.max(axis=1) > 0, np.asarray(ENV_LABELS, dtype=object)[best], UNKNOWN_ENV)
    summary["dominant_env_fraction"] = known_env.max(axis=1) / sizes
    summary["top_cations"] = top_ions["cation"]
    summary["top_anions"] = top_ions["anion"]
    at_least = np.minimum(2, sizes[np.searchsorted(clusters, enrichment["cluster"])])
    top_enriched = enrichment[(enrichment["n_cluster"] >= at_least) & (enrichment["log2_enrichment"] > 0.5)]
    enriched = top_enriched.groupby("cluster", sort=True).head(3).groupby("cluster")["element"].agg(", ".join)
    summary["enriched"] = summary["cluster"].map(enriched).fillna("")

    motifs = motif_enrichment(lab, env["motifs"].tolist(), element_sets=element_sets(list(dataset["formula"])))
    lines = cluster_summaries(motifs, motif_q_max, clusters=clusters.tolist())
    summary["motif_summary"] = [lines[c] for c in clusters.tolist()]

    members = members.sort_values(["cluster", "onset_ev", "material_id"], kind="stable").reset_index(drop=True)
    return ClusterChemistry(summary, enrichment, ions, env_counts, score_hist, members, motifs)
