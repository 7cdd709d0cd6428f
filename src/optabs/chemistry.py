"""Chemistry of single materials: oxidation states, cation coordination environments, element sets.

Per-cluster tables built from these live in :mod:`optabs.interpret.chemistry`.

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

Site level: every cation site is labelled "tetrahedral" or "octahedral" -- the higher of its two
scores when it reaches ``min_score`` (0.5) -- else "other" (:func:`dominant_environment`; the
``environment`` column of :func:`cation_environments`). The two scores are compared rather than
one cut at a high threshold because distorted octahedra score low (Al in corundum 0.63).

Material level (:func:`material_environments`): ``dominant_env`` is the multiplicity-weighted
majority of the site labels -- every cation site of the cell counts once, so a symmetry orbit
weighs by its multiplicity (the same shares in any cell), and the two tetrahedral Mg and four
octahedral Al of spinel's primitive cell make MgAl2O4 octahedral (:func:`majority_environment`,
which also states the tie rule). An earlier rule compared the best tetrahedral score over all
sites with the best octahedral score over all sites; as ideal tetrahedra score about 1 and real
octahedra 0.6-0.9, one tetrahedral site was enough, and every silicate, phosphate, sulfate and
spinel came out "tetrahedral" (forsterite Mg2SiO4, whose Mg are octahedral, included). The
highest tetrahedral and octahedral scores over the sites (``tetrahedral_max``,
``octahedral_max``) are still reported: the study plotted the tetrahedral one. Per material there
are also the site counts per label and ``motifs``, the distinct "<element> <environment>" pairs
(e.g. "V tetrahedral") that cluster motif statistics count. Large cations (alkali and
alkaline-earth metals, La, Pb, Bi: 7 to 12 O) and trigonal BO3 boron are "other", so a material
where they are most of the cations is "other" (Ba2SiO4, K2CrO4); its tetrahedral Si or Cr is in
``motifs``. On the 1,116 oxides of the shared dataset: 301 tetrahedral, 294 octahedral, 521
other (the max-against-max rule: 470, 434, 212).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pymatgen.core import Composition, Element, Structure

from optabs.config import Settings
from optabs.errors import InputError

__all__ = [
    "CATION_COLUMNS",
    "ENV_LABELS",
    "MATERIAL_ENV_COLUMNS",
    "EnvironmentSettings",
    "cation_environments",
    "dominant_environment",
    "majority_environment",
    "UNKNOWN_ENV",
    "element_matrix",
    "element_sets",
    "material_environments",
    "oxidation_states",
]

log = logging.getLogger(__name__)

#: Site-environment and dominant-environment labels (plus :data:`UNKNOWN_ENV` for failures).
ENV_LABELS: tuple[str, ...] = ("tetrahedral", "octahedral", "other")

#: The dominant-environment label of a material whose environment could not be computed;
#: such materials are left out of ``coordination_agreement``.
UNKNOWN_ENV = "unknown"

#: Columns of :func:`cation_environments` (one row per cation site).
CATION_COLUMNS = [
    "site_index", "element", "oxidation_state", "coordination_number", "tetrahedral", "octahedral", "environment"
]

#: Columns of :func:`material_environments` (one row per material):
#: ``tetrahedral_max``/``octahedral_max`` highest score over cation sites (NaN on failure);
#: ``tetrahedral_element``/``octahedral_element`` the element of the site holding it;
#: ``dominant_env`` one of :data:`ENV_LABELS` (majority of the site labels,
#: :func:`majority_environment`) or "unknown"; ``n_tetrahedral_sites``/``n_octahedral_sites``/
#: ``n_other_sites`` how many cation sites of the cell carry each label; ``motifs`` the sorted
#: distinct "<element> <environment>" strings of the cation sites (e.g. ["Mg octahedral",
#: "Si tetrahedral"]); ``cations``/``anions`` sorted element lists; ``oxidation_method`` how
#: valences were found (:func:`oxidation_states`); ``error`` empty, or why the material has no
#: environment (then NaN scores, "unknown", zero counts and no motifs).
MATERIAL_ENV_COLUMNS = [
    "material_id",
    "formula",
    "n_cation_sites",
    "tetrahedral_max",
    "octahedral_max",
    "tetrahedral_element",
    "octahedral_element",
    "dominant_env",
    "n_tetrahedral_sites",
    "n_octahedral_sites",
    "n_other_sites",
    "motifs",
    "cations",
    "anions",
    "oxidation_method",
    "error",
]

TETRAHEDRAL_LABEL = "tetrahedral CN_4"
OCTAHEDRAL_LABEL = "octahedral CN_6"


@dataclass(frozen=True)
class EnvironmentSettings(Settings):
    """How environments are computed and labelled.

    ``min_score``: a cation site is "other" when neither its tetrahedral nor its octahedral score
    reaches it. ``symprec`` (A): tolerance for symmetry-equivalent sites
    (None: compute every site).
    """

    NAME = "environments"

    min_score: float = 0.5
    symprec: float | None = 0.01


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


def _cation_table(
    structure: Structure, symprec: float | None = 0.01, min_score: float = 0.5
) -> tuple[pd.DataFrame, str, list[str]]:
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
    table = pd.DataFrame(rows, columns=CATION_COLUMNS[:-1])
    table["environment"] = dominant_environment(table["tetrahedral"], table["octahedral"], min_score)
    return table, method, anions


def cation_environments(
    structure: Structure | str, *, symprec: float | None = 0.01, min_score: float = 0.5
) -> pd.DataFrame:
    """One row per cation site of ``structure`` (a Structure or its JSON): :data:`CATION_COLUMNS`.

    ``site_index`` into the structure; ``oxidation_state`` as found by :func:`oxidation_states`;
    ``coordination_number`` CrystalNN's most likely CN; ``tetrahedral`` and ``octahedral`` the
    CrystalNNFingerprint "ops" scores "tetrahedral CN_4" and "octahedral CN_6" (0..1);
    ``environment`` the site's label, "tetrahedral" or "octahedral" (the higher score, if it
    reaches ``min_score``) or "other" (:func:`dominant_environment`).
    Anion and neutral sites are not listed; symmetry-equivalent sites each have their own row.
    """
    if isinstance(structure, str):
        structure = Structure.from_str(structure, fmt="json")
    return _cation_table(structure, symprec, min_score)[0]


def dominant_environment(tetrahedral: ArrayLike, octahedral: ArrayLike, min_score: float = 0.5) -> NDArray[np.object_]:
    """Label per pair of scores (per cation site): "tetrahedral" or "octahedral" (the higher score,
    if >= ``min_score``; equal scores give "octahedral"), "other" (neither reaches it), "unknown"
    (a score is NaN)."""
    tet = np.asarray(tetrahedral, dtype=float)
    octa = np.asarray(octahedral, dtype=float)
    label = np.where(
        np.maximum(tet, octa) < min_score, "other", np.where(tet > octa, "tetrahedral", "octahedral")
    ).astype(object)
    label[np.isnan(tet) | np.isnan(octa)] = UNKNOWN_ENV
    return label


def majority_environment(environment: ArrayLike, tetrahedral: ArrayLike, octahedral: ArrayLike) -> str:
    """A material's ``dominant_env``: the most common label among its cation sites.

    ``environment``: the label of every cation site of the cell (symmetry-equivalent sites each
    counted, so the count is the multiplicity-weighted one), one of :data:`ENV_LABELS`;
    ``tetrahedral``/``octahedral``: the sites' scores. No sites (or none with a known label):
    "unknown".

    Ties, decided in this order:

    - "tetrahedral" or "octahedral" beats "other" with as many sites (cubic perovskite ABO3, one
      12-coordinated A and one octahedral B, is "octahedral"; barite BaSO4 is "tetrahedral");
    - between "tetrahedral" and "octahedral" with as many sites, the label whose sites have the
      larger summed score wins (the tetrahedral score summed over the tetrahedral sites against
      the octahedral score summed over the octahedral sites: with equal counts, the better-formed
      polyhedra); an exact tie of the sums gives "octahedral", as equal scores do per site in
      :func:`dominant_environment`.
    """
    env = np.asarray(environment, dtype=object)
    tet = np.asarray(tetrahedral, dtype=float)
    octa = np.asarray(octahedral, dtype=float)
    counts = {label: int(np.count_nonzero(env == label)) for label in ENV_LABELS}
    best = max(counts.values())
    if best == 0:
        return UNKNOWN_ENV
    leaders = [label for label in ENV_LABELS if counts[label] == best]
    if leaders == ["other"]:
        return "other"
    if "tetrahedral" in leaders and "octahedral" in leaders:
        tet_sum = float(tet[env == "tetrahedral"].sum())
        oct_sum = float(octa[env == "octahedral"].sum())
        return "tetrahedral" if tet_sum > oct_sum else "octahedral"
    return "tetrahedral" if "tetrahedral" in leaders else "octahedral"


# ---------------------------------------------------------------- a dataset


def _material_row(material_id: str, formula: str, structure_json: str, settings: EnvironmentSettings) -> dict:
    row = {
        "material_id": material_id, "formula": formula, "n_cation_sites": 0,
        "tetrahedral_max": math.nan, "octahedral_max": math.nan,
        "tetrahedral_element": "", "octahedral_element": "", "dominant_env": UNKNOWN_ENV,
        "n_tetrahedral_sites": 0, "n_octahedral_sites": 0, "n_other_sites": 0, "motifs": [],
        "cations": [], "anions": [], "oxidation_method": "", "error": "",
    }
    try:
        structure = Structure.from_str(structure_json, fmt="json")
        table, method, anions = _cation_table(structure, settings.symprec, settings.min_score)
    except Exception as exc:  # any failure is this material's: record it, the others go on
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(oxidation_method=method, anions=anions, cations=sorted(table["element"].unique().tolist()),
               n_cation_sites=len(table))
    if table.empty:
        row["error"] = "no cation sites (no site with a positive oxidation state)"
        return row
    # the study's numbers: the best tetrahedral (octahedral) score of any cation site
    it, io = table["tetrahedral"].idxmax(), table["octahedral"].idxmax()
    row.update(
        tetrahedral_max=float(table.at[it, "tetrahedral"]), octahedral_max=float(table.at[io, "octahedral"]),
        tetrahedral_element=table.at[it, "element"], octahedral_element=table.at[io, "element"],
    )
    env = table["environment"]
    row.update(
        dominant_env=majority_environment(env, table["tetrahedral"], table["octahedral"]),
        n_tetrahedral_sites=int((env == "tetrahedral").sum()),
        n_octahedral_sites=int((env == "octahedral").sum()),
        n_other_sites=int((env == "other").sum()),
        motifs=sorted(set(table["element"] + " " + env)),
    )
    return row


def _rows_chunk(items: list[tuple[str, str, str]], settings: EnvironmentSettings) -> list[dict]:
    return [_material_row(mid, formula, sj, settings) for mid, formula, sj in items]


def material_environments(
    dataset: pd.DataFrame, *, n_workers: int = 1, settings: EnvironmentSettings | None = None, chunk_size: int = 16
) -> pd.DataFrame:
    """Cation environments of every material of ``dataset``: :data:`MATERIAL_ENV_COLUMNS`.

    ``dataset`` needs ``material_id``, ``formula`` and ``structure`` (pymatgen JSON). A structure
    that fails (unreadable, CrystalNN error, no cations) gets NaN scores, ``dominant_env``
    "unknown", zero site counts, no motifs and the reason in ``error``, with a logged warning
    naming it; the rest go on.
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


def element_matrix(element_sets: Sequence[Sequence[str] | frozenset[str]]) -> tuple[NDArray[np.bool_], list[str]]:
    """(M, E) bool matrix, True where material i contains element j; and the E element symbols (sorted)."""
    sets = [frozenset(s) for s in element_sets]
    elements = sorted(set().union(*sets)) if sets else []
    column = {el: j for j, el in enumerate(elements)}
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    cols = np.fromiter((column[el] for s in sets for el in s), dtype=np.int64, count=rows.size)
    out = np.zeros((len(sets), len(elements)), dtype=bool)
    out[rows, cols] = True
    return out, elements
