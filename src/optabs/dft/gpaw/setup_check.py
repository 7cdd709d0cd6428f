"""Check the generator options of :func:`ensure_pbesol_setups` against GPAW's shipped PBE datasets.

For tests and new elements, not used at run time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from optabs.dft.gpaw.errors import _require_gpaw
from optabs.dft.gpaw.setups import _generate_dataset, _register_setup_path, _unregister_setup_path
from optabs.dft.gpaw.steps import _scf
from optabs.dft.gpaw.structure import _eigenvalues, _n_occupied, band_edges, kpoint_grid, structure_to_atoms

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure


@dataclass
class SetupCheck:
    """PBE band gaps of one structure with shipped and with regenerated PBE datasets (eV)."""

    formula: str
    elements: tuple[str, ...]
    gap_shipped_ev: float
    gap_generated_ev: float
    options: dict[str, dict] = field(default_factory=dict)

    @property
    def difference_ev(self) -> float:
        """Generated minus shipped gap (eV)."""
        return self.gap_generated_ev - self.gap_shipped_ev


def check_generated_setups(
    structure: Structure,
    workdir: str | Path,
    elements: Sequence[str] | None = None,
    ecut_ev: float = 400.0,
    kdensity: float = 2.0,
) -> SetupCheck:
    """Validate the generator options used for PBEsol datasets against GPAW's shipped PBE datasets.

    Generates *PBE* datasets for ``elements`` (default: all of the structure) with exactly the
    options :func:`ensure_pbesol_setups` uses, then computes the PBE band gap of ``structure`` once
    with those and once with the shipped ones. Agreement within ~0.15 eV means the options
    reproduce the shipped datasets' physics (semicore states, projectors); the PBEsol datasets
    differ from these only by the functional. For tests and new elements, not for run time.
    """
    _require_gpaw()
    atoms = structure_to_atoms("setup-check", structure)
    elements = tuple(sorted(set(elements or atoms.get_chemical_symbols())))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".setup-check-", dir=workdir))
    options: dict[str, dict] = {}
    try:
        for element in elements:
            _, _, options[element] = _generate_dataset(element, "PBE", tmp, tag="optabscheck")
        _register_setup_path(tmp)
        gaps = {}
        for label, setups in (("shipped", "paw"), ("generated", {el: "optabscheck" for el in elements})):
            log = workdir / f"setup-check-{label}.txt"
            calc = _scf(
                atoms, xc="PBE", ecut_ev=ecut_ev, kpts=kpoint_grid(atoms, kdensity), gamma=True,
                smearing_ev=0.01, convergence_bands="CBM+1", maxiter=None, txt=log, setups=setups,
            )
            edges = band_edges(_eigenvalues(calc), _n_occupied("setup-check", calc, log))
            gaps[label] = edges.gap
    finally:
        _unregister_setup_path(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return SetupCheck(
        formula=structure.composition.reduced_formula,
        elements=elements,
        gap_shipped_ev=gaps["shipped"],
        gap_generated_ev=gaps["generated"],
        options=options,
    )
