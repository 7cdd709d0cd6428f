"""Curation: which computed materials enter the dataset (stable, gap above a minimum).

Stability follows one policy, ``dataset.stability`` (:data:`STABILITY_POLICIES`):

- ``mp``: the Materials Project's own ``energy_above_hull`` from the fetched documents (the
  ``properties`` of ``kept.parquet``, with the database version they came from). Only for
  source ``mp``.
- ``local``: the hull of this workflow's own computed phases (:func:`energies_above_hull`).
  Its missing phases only raise the hull, so a material above it is certainly above the true
  hull and is dropped; a material on it whose chemical system has an element without a computed
  elemental phase (oxygen always: O2 is spin-polarised and filtered out) may only look stable,
  and is marked ``unknown``.
- ``none``: no stability cut (``unchecked``).
- ``auto`` (the default): ``mp`` where every material comes from the ``mp`` source, else ``local``.

Materials of ``unknown`` stability are kept, marked, unless ``drop_unknown`` is set.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from optabs.config import Settings
from optabs.dataset.table import DATASET_COLUMNS, DROPPED_COLUMNS, dropped_row
from optabs.errors import ConfigError

log = logging.getLogger(__name__)

#: Values of ``dataset.stability``; ``auto`` resolves to ``mp`` or ``local`` (:func:`stability_policy`).
STABILITY_POLICIES = ("auto", "mp", "local", "none")

#: Columns of the per-material source table curation reads from ``kept.parquet`` (:func:`source_stability`).
SOURCE_STABILITY_COLUMNS = ["material_id", "source", "mp_e_above_hull_ev", "mp_database_version"]


@dataclass(frozen=True)
class Curation(Settings):
    """Which materials enter the dataset: stable within ``e_above_hull_max_ev`` (eV/atom) by the
    ``stability`` policy (:data:`STABILITY_POLICIES`) and with a DFT gap of at least
    ``min_gap_ev`` (eV). ``drop_unknown``: drop materials whose stability the policy cannot
    judge instead of keeping them marked ``unknown``."""

    NAME = "dataset"

    e_above_hull_max_ev: float = 0.0
    min_gap_ev: float = 0.3
    stability: str = "auto"
    drop_unknown: bool = False

    def __post_init__(self) -> None:
        self.check_numbers("e_above_hull_max_ev", "min_gap_ev", inclusive=True)
        self.check_choice("stability", STABILITY_POLICIES)
        if not isinstance(self.drop_unknown, bool):
            raise self.invalid("drop_unknown", "true or false")


def stability_policy(stability: str, sources: list[str]) -> str:
    """The policy ``mp``, ``local`` or ``none`` for the configured ``stability`` and the sources
    of the curated materials: ``auto`` is ``mp`` when every one comes from the ``mp`` source
    (and there is at least one), else ``local``. ``mp`` for materials of another source raises
    :class:`ConfigError`: only the Materials Project's documents carry its energy above hull."""
    from_mp = bool(sources) and all(s == "mp" for s in sources)
    if stability == "auto":
        return "mp" if from_mp else "local"
    if stability == "mp" and sources and not from_mp:
        others = sorted(set(sources) - {"mp"})
        raise ConfigError(
            f"config key 'dataset': stability 'mp' needs materials from source 'mp', but some come from {others}; "
            "use stability: local (this workflow's own hull) or auto"
        )
    return stability


def source_stability(kept: pd.DataFrame) -> pd.DataFrame:
    """What the structures stage knows about each material's stability (:data:`SOURCE_STABILITY_COLUMNS`).

    ``kept``: the kept table (``material_id``, ``source``, ``properties`` JSON, see
    :mod:`optabs.structures`). For source ``mp`` the properties hold the Materials Project's
    ``energy_above_hull`` (eV/atom; NaN when the document had none) and ``database_version``;
    other sources give NaN and "".
    """
    rows = []
    for row in kept.itertuples(index=False):
        props = json.loads(row.properties) if row.source == "mp" else {}
        value = props.get("energy_above_hull")
        rows.append({
            "material_id": row.material_id,
            "source": row.source,
            "mp_e_above_hull_ev": math.nan if value is None else float(value),
            "mp_database_version": str(props.get("database_version") or ""),
        })
    return pd.DataFrame(rows, columns=SOURCE_STABILITY_COLUMNS)


def energies_above_hull(formulas: list[str], energies_per_atom: np.ndarray, scales: list[str]) -> np.ndarray:
    """Energy above the convex hull (eV/atom) of each material against the others.

    Built with pymatgen's ``PhaseDiagram`` over the computed materials, separately for each
    energy scale (only energies from the same engine and settings are comparable). Elements
    with no computed reference get a pseudo-reference 10 eV/atom above every computed energy, so
    the hull is the lower envelope of the computed compounds: e_above_hull says how far a
    material lies above a mix of the *computed* phases (a polymorph above a more stable one, a
    ternary above its computed binaries), never less stable than it is.
    """
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    energies = np.asarray(energies_per_atom, dtype=float)
    comps = [Composition(f) for f in formulas]
    out = np.full(len(formulas), math.nan)
    for scale in sorted(set(scales)):
        idx = [i for i, s in enumerate(scales) if s == scale]
        ceiling = float(np.max(energies[idx])) + 10.0
        # One small phase diagram per chemical system (the materials whose elements are a subset
        # of it): a single diagram over every element of a diverse set is a hull in ~20
        # dimensions, which qhull cannot build in reasonable time.
        systems: dict[frozenset, list[int]] = {}
        for i in idx:
            systems.setdefault(frozenset(comps[i].elements), []).append(i)
        for system, members in systems.items():
            within = [j for j in idx if frozenset(comps[j].elements) <= system]
            entries = {j: PDEntry(comps[j], energies[j] * comps[j].num_atoms) for j in within}
            have = {comps[j].elements[0] for j in within if len(comps[j].elements) == 1}
            refs = [PDEntry(Composition({el: 1}), ceiling) for el in sorted(system - have)]
            pd_ = PhaseDiagram(list(entries.values()) + refs)
            for i in members:
                # Never None here: every entry is on this diagram (pymatgen returns None only for foreign ones).
                out[i] = max(0.0, cast(float, pd_.get_e_above_hull(entries[i], allow_negative=True)))
    return out


def elements_without_reference(formulas: list[str], scales: list[str]) -> list[tuple[str, ...]]:
    """For each material, the elements of its formula (symbols, sorted) that have no computed
    elemental phase on its energy scale: where :func:`energies_above_hull` stands in a
    pseudo-reference, so that a material on that hull may only look stable."""
    from pymatgen.core import Composition

    comps = [Composition(f) for f in formulas]
    computed = {(scale, c.elements[0].symbol) for c, scale in zip(comps, scales) if len(c.elements) == 1}
    return [
        tuple(sorted(el.symbol for el in c.elements if (scale, el.symbol) not in computed))
        for c, scale in zip(comps, scales)
    ]


def curate(
    spectra: pd.DataFrame, curation: Curation, sources: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset (:data:`DATASET_COLUMNS`) and the dropped table (:data:`DROPPED_COLUMNS`).

    ``spectra``: the spectra table (:data:`optabs.spectra.stage.SPECTRA_COLUMNS`). ``sources``:
    :func:`source_stability` of the kept table; without it no material has a source or a
    Materials Project value (``auto`` is then ``local``, ``mp`` an error). In the dataset,
    ``e_above_hull_ev`` is the value the policy judged (the Materials Project's, the local
    hull's, NaN for ``none``), ``stability`` is ``stable``, ``unknown`` or ``unchecked``.
    """
    if sources is None:
        sources = pd.DataFrame(columns=SOURCE_STABILITY_COLUMNS)
    # ids as str on both sides: an empty table's column may come as float
    table = spectra.astype({"material_id": str}).merge(
        sources[SOURCE_STABILITY_COLUMNS].astype({"material_id": str}), on="material_id", how="left"
    )
    table["mp_e_above_hull_ev"] = table["mp_e_above_hull_ev"].astype(float)
    table["mp_database_version"] = table["mp_database_version"].fillna("").astype(str)
    policy = stability_policy(curation.stability, [s if isinstance(s, str) else "unknown" for s in table.source])
    tol = curation.e_above_hull_max_ev
    why_unknown = [""] * len(table)
    if policy == "mp":
        table["e_above_hull_ev"] = table.mp_e_above_hull_ev
        why_unknown = ["no energy_above_hull in its Materials Project document" if math.isnan(e) else ""
                       for e in table.e_above_hull_ev]
    elif policy == "local":
        table["e_above_hull_ev"] = (
            energies_above_hull(list(table.formula), table.energy_per_atom_ev.to_numpy(), list(table.energy_scale))
            if len(table)
            else []
        )
        missing = elements_without_reference(list(table.formula), list(table.energy_scale))
        why_unknown = [f"no computed reference for {', '.join(m)}: the local hull cannot judge it" if m else ""
                       for m in missing]
    else:
        table["e_above_hull_ev"] = math.nan
    table["mp_database_version"] = table.mp_database_version if policy == "mp" else ""
    unstable = table.e_above_hull_ev > tol + 1e-8
    unknown = pd.Series([bool(w) for w in why_unknown], index=table.index, dtype=bool) & ~unstable
    table["stability"] = np.where(unknown, "unknown", "stable" if policy != "none" else "unchecked")
    table["stability_policy"] = policy
    small_gap = table.dft_gap_ev < curation.min_gap_ev

    dropped = []
    for row in table[unstable].itertuples():
        if policy == "mp":
            version = f" (database {row.mp_database_version})" if row.mp_database_version else ""
            detail = f"Materials Project energy_above_hull {row.e_above_hull_ev:.3f} eV/atom{version} > {tol} eV/atom"
        else:
            detail = f"{row.e_above_hull_ev:.3f} eV/atom above the hull of the computed phases > {tol}"
        dropped.append(dropped_row(row.material_id, row.formula, "unstable", detail))
    if curation.drop_unknown:
        for row, why in zip(table.itertuples(), why_unknown):
            if unknown[row.Index]:
                dropped.append(dropped_row(row.material_id, row.formula, "stability_unknown", why))
    for row in table[small_gap].itertuples():
        dropped.append(
            dropped_row(row.material_id, row.formula, "small_gap", f"DFT gap {row.dft_gap_ev:.3f} eV < {curation.min_gap_ev} eV")
        )
    keep = ~unstable & ~small_gap & ~(unknown & curation.drop_unknown)
    kept = table[keep].copy()
    kept["source_name"] = kept.material_id
    _log_stability(policy, kept, [w for w, k in zip(why_unknown, keep) if k and w])
    return kept[DATASET_COLUMNS].reset_index(drop=True), pd.DataFrame(dropped, columns=DROPPED_COLUMNS)


def _log_stability(policy: str, kept: pd.DataFrame, why_unknown: list[str]) -> None:
    counts = kept.stability.value_counts().to_dict()
    log.info("stability policy %s: %s", policy, ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no material")
    for why, n in Counter(why_unknown).most_common():
        log.info("%d kept materials of unknown stability: %s", n, why)
