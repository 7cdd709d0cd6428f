"""Chemistry of materials and clusters: cation coordination environments and per-cluster tables.

Which sites are cations is a question of oxidation state, not of element (S is a cation in a
sulfate, P in a phosphate): valences come from pymatgen's ``BVAnalyzer``, falling back to
``Composition.oxi_state_guesses()`` (common, then all oxidation states) and, last, to electronegativity (the most electronegative
element is the anion). The local environment of every cation site comes from matminer's
``CrystalNNFingerprint.from_preset("ops")`` -- the "tetrahedral CN_4" and "octahedral CN_6"
entries, which are CrystalNN's weight of that coordination number times the order parameter of
that motif (0..1) -- and the coordination number is CrystalNN's most likely one. The study
found its alkali vanadates and chromates this way (V/Cr in tetrahedral sites).

Speed: CrystalNN (a Voronoi tessellation per site) is the slow part. Each structure's
symmetry-equivalent sites (spglib, ``symprec`` 0.01 A) have the same environment, so only one
site of each orbit is computed and its values are copied to the others; of the fingerprint's
61 order parameters only the two used here are evaluated (same numbers as
``CrystalNNFingerprint.featurize``, see the tests). Structures are used as stored, without
oxidation-state decoration, as matminer is usually run (and as the study ran it).

Material level (:func:`material_environments`): the highest tetrahedral and octahedral score
over the cation sites, and the dominant environment: the larger of the two when it reaches
``min_score`` (0.5), else "other". The two scores are compared rather than one cut at a high
threshold because distorted octahedra score low (Al in corundum 0.63).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pymatgen.core import Composition, Element, Structure
from scipy import sparse

from optabs.errors import InputError
from optabs.interpret import UNKNOWN_ENV, edge_integral, element_matrix

__all__ = [
    "CATION_COLUMNS",
    "ENV_LABELS",
    "MATERIAL_ENV_COLUMNS",
    "ClusterChemistry",
    "EnvironmentSettings",
    "cation_environments",
    "cluster_chemistry",
    "dominant_environment",
    "element_sets",
    "material_environments",
    "oxidation_states",
]

log = logging.getLogger(__name__)

#: Dominant-environment labels (plus :data:`optabs.interpret.UNKNOWN_ENV` for failures).
ENV_LABELS: tuple[str, ...] = ("tetrahedral", "octahedral", "other")

#: Columns of :func:`cation_environments` (one row per cation site).
CATION_COLUMNS = ["site_index", "element", "oxidation_state", "coordination_number", "tetrahedral", "octahedral"]

#: Columns of :func:`material_environments` (one row per material):
#: ``tetrahedral_max``/``octahedral_max`` highest score over cation sites (NaN on failure);
#: ``tetrahedral_element``/``octahedral_element`` the element of the site holding it;
#: ``dominant_env`` one of :data:`ENV_LABELS` or "unknown"; ``cations``/``anions`` sorted element
#: lists; ``oxidation_method`` how valences were found (:func:`oxidation_states`);
#: ``error`` empty, or why the material has no environment.
MATERIAL_ENV_COLUMNS = [
    "material_id",
    "formula",
    "n_cation_sites",
    "tetrahedral_max",
    "octahedral_max",
    "tetrahedral_element",
    "octahedral_element",
    "dominant_env",
    "cations",
    "anions",
    "oxidation_method",
    "error",
]

TETRAHEDRAL_LABEL = "tetrahedral CN_4"
OCTAHEDRAL_LABEL = "octahedral CN_6"


@dataclass(frozen=True)
class EnvironmentSettings:
    """How environments are computed and labelled.

    ``min_score``: the dominant environment is "other" when neither the tetrahedral nor the
    octahedral score reaches it. ``symprec`` (A): tolerance for symmetry-equivalent sites
    (None: compute every site).
    """

    min_score: float = 0.5
    symprec: float | None = 0.01

    @classmethod
    def from_config(cls, cfg: dict | None) -> "EnvironmentSettings":
        return cls(**(cfg or {}))


# ---------------------------------------------------------------- one structure


def oxidation_states(structure: Structure) -> tuple[list[float], str]:
    """Per-site oxidation states and how they were found.

    ``BVAnalyzer().get_valences`` (bond valence, per site, method "bond_valence"); where it cannot
    assign valences, the first ``composition.oxi_state_guesses()`` (per element, from the common
    oxidation states: "oxi_state_guesses", then from all of them: "oxi_state_guesses_all"); where
    there is none, the most electronegative element gets -1 and every other +1
    ("electronegativity"; only the signs are used downstream).
    """
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [float(v) for v in BVAnalyzer().get_valences(structure)], "bond_valence"
    except ValueError:
        pass
    symbols = [site.specie.symbol for site in structure]
    for all_states, method in ((False, "oxi_state_guesses"), (True, "oxi_state_guesses_all")):
        # the common oxidation states first; then all of them (K3AuO holds Au(-1), an auride)
        guesses = structure.composition.oxi_state_guesses(all_oxi_states=all_states)
        if guesses:
            return [float(guesses[0][s]) for s in symbols], method
    chi = {s: Element(s).X for s in set(symbols)}
    most = max(chi.values())
    return [-1.0 if chi[s] == most else 1.0 for s in symbols], "electronegativity"


@functools.lru_cache(maxsize=1)
def _fingerprint():
    """matminer's "ops" CrystalNN fingerprint and its tetrahedral CN_4 / octahedral CN_6 order parameters."""
    from matminer.featurizers.site import CrystalNNFingerprint

    fp = CrystalNNFingerprint.from_preset("ops")
    ops = {}
    for cn, label in ((4, "tetrahedral"), (6, "octahedral")):
        ops[cn] = fp.ops[cn][fp.op_types[cn].index(label)]
    return fp, ops


def _weighted_op(structure: Structure, index: int, nndata, cn: int, op) -> float:
    """CrystalNNFingerprint's value for one motif: weight of CN ``cn`` times the motif's order parameter."""
    weight = nndata.cn_weights.get(cn, 0)
    if weight == 0:
        return 0.0
    neighbours = [d["site"] for d in nndata.cn_nninfo[cn]]
    value = op.get_order_parameters([structure[index], *neighbours], 0, indices_neighs=list(range(1, len(neighbours) + 1)))[0]
    return float(weight * (value or 0.0))


def _equivalent_sites(structure: Structure, symprec: float | None) -> NDArray[np.int64]:
    """For every site, the index of the representative site of its symmetry orbit (itself if none)."""
    if symprec is None:
        return np.arange(len(structure))
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        dataset = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
        equivalent = np.asarray(dataset.equivalent_atoms, dtype=np.int64)
        if equivalent.shape == (len(structure),):
            return equivalent
    except Exception:  # spglib can fail on odd cells; computing every site is always right
        pass
    return np.arange(len(structure))


def _cation_table(structure: Structure, symprec: float | None = 0.01) -> tuple[pd.DataFrame, str, list[str]]:
    """(cation table, oxidation method, anion elements) of one structure."""
    valences, method = oxidation_states(structure)
    symbols = [site.specie.symbol for site in structure]
    anions = sorted({s for s, v in zip(symbols, valences) if v < 0})
    cations = [i for i, v in enumerate(valences) if v > 0]
    fp, ops = _fingerprint()
    representative = _equivalent_sites(structure, symprec)
    computed: dict[int, tuple[int, float, float]] = {}
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns per site about undecorated structures
        for i in cations:
            rep = int(representative[i])
            if rep not in computed:
                nndata = fp.cnn.get_nn_data(structure, rep)
                cn = max(nndata.cn_weights, key=lambda c: nndata.cn_weights[c])  # CrystalNN.get_nn_info's choice
                computed[rep] = (
                    int(cn),
                    _weighted_op(structure, rep, nndata, 4, ops[4]),
                    _weighted_op(structure, rep, nndata, 6, ops[6]),
                )
            cn, tet, octa = computed[rep]
            rows.append((i, symbols[i], valences[i], cn, tet, octa))
    return pd.DataFrame(rows, columns=CATION_COLUMNS), method, anions


def cation_environments(structure: Structure | str, *, symprec: float | None = 0.01) -> pd.DataFrame:
    """One row per cation site of ``structure`` (a Structure or its JSON): :data:`CATION_COLUMNS`.

    ``site_index`` into the structure; ``oxidation_state`` as found by :func:`oxidation_states`;
    ``coordination_number`` CrystalNN's most likely CN; ``tetrahedral`` and ``octahedral`` the
    CrystalNNFingerprint "ops" scores "tetrahedral CN_4" and "octahedral CN_6" (0..1).
    Anion and neutral sites are not listed.
    """
    if isinstance(structure, str):
        structure = Structure.from_str(structure, fmt="json")
    return _cation_table(structure, symprec)[0]


def dominant_environment(tetrahedral: ArrayLike, octahedral: ArrayLike, min_score: float = 0.5) -> NDArray[np.object_]:
    """Label per material: "tetrahedral" or "octahedral" (the higher score, if >= ``min_score``),
    "other" (neither reaches it), "unknown" (a score is NaN)."""
    tet = np.asarray(tetrahedral, dtype=float)
    octa = np.asarray(octahedral, dtype=float)
    label = np.where(
        np.maximum(tet, octa) < min_score, "other", np.where(tet > octa, "tetrahedral", "octahedral")
    ).astype(object)
    label[np.isnan(tet) | np.isnan(octa)] = UNKNOWN_ENV
    return label


# ---------------------------------------------------------------- a dataset


def _material_row(material_id: str, formula: str, structure_json: str, settings: EnvironmentSettings) -> dict:
    row = {
        "material_id": material_id, "formula": formula, "n_cation_sites": 0,
        "tetrahedral_max": math.nan, "octahedral_max": math.nan,
        "tetrahedral_element": "", "octahedral_element": "", "dominant_env": UNKNOWN_ENV,
        "cations": [], "anions": [], "oxidation_method": "", "error": "",
    }
    try:
        structure = Structure.from_str(structure_json, fmt="json")
        table, method, anions = _cation_table(structure, settings.symprec)
    except Exception as exc:  # any failure is this material's: record it, the others go on
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(oxidation_method=method, anions=anions, cations=sorted(table["element"].unique().tolist()),
               n_cation_sites=len(table))
    if table.empty:
        row["error"] = "no cation sites (no site with a positive oxidation state)"
        return row
    it, io = table["tetrahedral"].idxmax(), table["octahedral"].idxmax()
    row.update(
        tetrahedral_max=float(table.at[it, "tetrahedral"]), octahedral_max=float(table.at[io, "octahedral"]),
        tetrahedral_element=table.at[it, "element"], octahedral_element=table.at[io, "element"],
    )
    row["dominant_env"] = dominant_environment(row["tetrahedral_max"], row["octahedral_max"], settings.min_score).item()
    return row


def _rows_chunk(items: list[tuple[str, str, str]], settings: EnvironmentSettings) -> list[dict]:
    return [_material_row(mid, formula, sj, settings) for mid, formula, sj in items]


def material_environments(
    dataset: pd.DataFrame, *, n_workers: int = 1, settings: EnvironmentSettings | None = None, chunk_size: int = 16
) -> pd.DataFrame:
    """Cation environments of every material of ``dataset``: :data:`MATERIAL_ENV_COLUMNS`.

    ``dataset`` needs ``material_id``, ``formula`` and ``structure`` (pymatgen JSON). A structure
    that fails (unreadable, CrystalNN error, no cations) gets NaN scores, ``dominant_env``
    "unknown" and the reason in ``error``, with a logged warning naming it; the rest go on.
    ``n_workers`` > 1 spreads materials over a process pool (``chunk_size`` materials a task).
    This is the slow step: about 0.1 s per material on one core (see benchmarks/bench_interpret.py).
    """
    settings = settings or EnvironmentSettings()
    missing = {"material_id", "formula", "structure"} - set(dataset.columns)
    if missing:
        raise InputError(f"material_environments: the dataset lacks columns {sorted(missing)}")
    items = list(zip(dataset["material_id"], dataset["formula"], dataset["structure"]))
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    start = time.perf_counter()
    rows: list[dict] = []
    if n_workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            for done in pool.map(_rows_chunk, chunks, [settings] * len(chunks)):
                rows.extend(done)
                _progress(len(rows), len(items), start)
    else:
        for chunk in chunks:
            rows.extend(_rows_chunk(chunk, settings))
            _progress(len(rows), len(items), start)
    table = pd.DataFrame(rows, columns=MATERIAL_ENV_COLUMNS)
    for row in table[table["error"] != ""].itertuples():
        log.warning("cation environments of %s (%s) not computed: %s", row.material_id, row.formula, row.error)
    log.info("cation environments of %d materials in %.1f s (%d failed)", len(table), time.perf_counter() - start,
             int((table["error"] != "").sum()))
    return table


def _progress(done: int, total: int, start: float) -> None:
    if done == total or done % 200 < 16:
        log.info("cation environments: %d/%d materials, %.1f s", done, total, time.perf_counter() - start)


def element_sets(formulas: Sequence[str]) -> list[frozenset[str]]:
    """The set of element symbols of every formula (each distinct formula parsed once)."""
    parsed = {f: frozenset(el.symbol for el in Composition(f).elements) for f in set(formulas)}
    return [parsed[f] for f in formulas]


# ---------------------------------------------------------------- clusters


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
    """

    summary: pd.DataFrame
    enrichment: pd.DataFrame
    ions: pd.DataFrame
    env_counts: pd.DataFrame
    score_hist: pd.DataFrame
    members: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame]) -> "ClusterChemistry":
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
    for col in ("cations", "anions"):
        merged[col] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in merged[col]]
    for col in ("tetrahedral_element", "octahedral_element"):
        merged[col] = merged[col].fillna("")
    return merged


def _counts(idx: NDArray[np.int64], n_clusters: int, membership: NDArray[np.bool_]) -> NDArray[np.int64]:
    """(C, E) how many members of each cluster have each column True."""
    onehot = sparse.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n_clusters, idx.size))
    return np.rint(onehot @ membership.astype(float)).astype(np.int64).reshape(n_clusters, membership.shape[1])


def _top(names: Sequence[str], counts: NDArray[np.int64], size: int, n: int = 3) -> str:
    order = np.argsort(-counts, kind="stable")[:n]
    return ", ".join(f"{names[j]} ({counts[j]}/{size})" for j in order if counts[j] > 0)


def cluster_chemistry(
    dataset: pd.DataFrame,
    labels,
    envs: pd.DataFrame | None,
    *,
    energy_ev: ArrayLike | None = None,
    floor: float = 2.0,
    edge_window_ev: float = 2.0,
    pseudo_count: float = 0.5,
    prior_materials: float = 1.0,
    score_bins: int = 10,
) -> ClusterChemistry:
    """Per-cluster chemistry and spectra statistics (see :class:`ClusterChemistry`).

    ``dataset``: the dataset table (``material_id``, ``formula``, ``log10_alpha``, ``onset_ev``;
    gap columns used where present). ``labels``: (M,) cluster labels in dataset order, or a table
    ``material_id``, ``cluster``. ``envs``: :func:`material_environments` (or None: every
    environment unknown). ``energy_ev``: the spectra's grid (default: the dataset Grid's).
    """
    from optabs.dataset import Grid, spectra_matrix

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
        "edge_integral_mean": g["edge_integral"].mean().to_numpy(), "edge_integral_median": g["edge_integral"].median().to_numpy(),
        "dft_gap_ev_min": g["dft_gap_ev"].min().to_numpy(), "corrected_gap_ev_min": g["corrected_gap_ev"].min().to_numpy(),
        "dft_direct_gap_ev_min": g["dft_direct_gap_ev"].min().to_numpy(),
        "tetrahedral_max_mean": g["tetrahedral_max"].mean().to_numpy(), "octahedral_max_mean": g["octahedral_max"].mean().to_numpy(),
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

    members = members.sort_values(["cluster", "onset_ev", "material_id"], kind="stable").reset_index(drop=True)
    return ClusterChemistry(summary, enrichment, ions, env_counts, score_hist, members)


def environments_stage(dataset_path, out_path, n_workers: int = 1) -> pd.DataFrame:
    """Cation environments of every dataset material (``environments.parquet``), batched."""
    from optabs.dataset import read_dataset
    from optabs.io import write_parquet

    envs = material_environments(read_dataset(dataset_path), n_workers=n_workers)
    write_parquet(out_path, envs)
    return envs
