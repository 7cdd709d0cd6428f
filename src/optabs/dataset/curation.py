"""Curation: which computed materials enter the dataset (stable, gap above a minimum)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from optabs.config import Settings
from optabs.dataset.table import DATASET_COLUMNS, DROPPED_COLUMNS, dropped_row


@dataclass(frozen=True)
class Curation(Settings):
    """Which materials enter the dataset: stable within ``e_above_hull_max_ev`` (eV/atom) and
    with a DFT gap of at least ``min_gap_ev`` (eV)."""

    NAME = "dataset"

    e_above_hull_max_ev: float = 0.0
    min_gap_ev: float = 0.3


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


def curate(spectra: pd.DataFrame, curation: Curation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dataset (:data:`DATASET_COLUMNS`) and the dropped table (:data:`DROPPED_COLUMNS`)."""
    spectra = spectra.copy()
    spectra["e_above_hull_ev"] = (
        energies_above_hull(list(spectra.formula), spectra.energy_per_atom_ev.to_numpy(), list(spectra.energy_scale))
        if len(spectra)
        else []
    )
    unstable = spectra.e_above_hull_ev > curation.e_above_hull_max_ev + 1e-8
    small_gap = spectra.dft_gap_ev < curation.min_gap_ev
    dropped = []
    for row in spectra[unstable].itertuples():
        dropped.append(
            dropped_row(row.material_id, row.formula, "unstable",
                  f"{row.e_above_hull_ev:.3f} eV/atom above the hull > {curation.e_above_hull_max_ev}")
        )
    for row in spectra[small_gap].itertuples():
        dropped.append(
            dropped_row(row.material_id, row.formula, "small_gap", f"DFT gap {row.dft_gap_ev:.3f} eV < {curation.min_gap_ev} eV")
        )
    kept = spectra[~unstable & ~small_gap].copy()
    kept["source_name"] = kept.material_id
    return kept[DATASET_COLUMNS].reset_index(drop=True), pd.DataFrame(dropped, columns=DROPPED_COLUMNS)
