"""From a pymatgen structure to GPAW's inputs and back: atoms, k-point grids and band edges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optabs.dft.gpaw.errors import GpawCalculationError

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms
    from pymatgen.core import Structure


def structure_to_atoms(material_id: str, structure: Structure) -> Atoms:
    """ASE Atoms of an ordered pymatgen Structure: species, positions, cell only.

    Site properties (magnetic moments, charges) are dropped on purpose: the chain is spin-paired
    and neutral. Raises :class:`GpawCalculationError` for disordered or overlapping structures.
    """
    from ase import Atoms

    if len(structure) == 0:
        raise GpawCalculationError(f"{material_id}: empty structure", stage="structure")
    if not structure.is_ordered:
        raise GpawCalculationError(
            f"{material_id}: disordered structure (partial occupancies); order it before the dft stage",
            stage="structure",
        )
    if len(structure) > 1:
        dist = structure.distance_matrix + np.eye(len(structure)) * 1e9
        if dist.min() < 0.5:
            raise GpawCalculationError(
                f"{material_id}: atoms closer than 0.5 Å ({dist.min():.3f} Å); the structure is broken",
                stage="structure",
            )
    if structure.volume <= 0:
        raise GpawCalculationError(f"{material_id}: non-positive cell volume", stage="structure")
    symbols = [site.specie.symbol for site in structure]
    atoms = Atoms(symbols=symbols, scaled_positions=structure.frac_coords, cell=structure.lattice.matrix, pbc=True)
    # Rotate to ASE's standard (lower-triangular, a along x) orientation: GPAW's text-log drawing
    # of the cell fails with "negative dimensions" for some rotated cells (BaSnO3's spglib
    # primitive cell). A rigid rotation changes no energy or gap; the tensor components are then
    # in this frame (the isotropic average used downstream is invariant).
    standard, _ = atoms.cell.standard_form()
    atoms.set_cell(standard, scale_atoms=True)
    if atoms.cell.handedness < 0:  # keep a right-handed cell
        atoms.set_cell(-atoms.cell, scale_atoms=True)
    return atoms


def kpoint_grid(atoms: Atoms, density: float, even: bool = False) -> tuple[int, int, int]:
    """Monkhorst-Pack grid size for ``density`` k-points per Å⁻¹ (ASE's convention, see GpawSettings)."""
    from ase.calculators.calculator import kptdensity2monkhorstpack

    n1, n2, n3 = (int(n) for n in kptdensity2monkhorstpack(atoms, kptdensity=density, even=even))
    return n1, n2, n3


def density_for_kpoints_per_atom(atoms: Atoms, kpoints_per_atom: float, density: float = 0.0) -> float:
    """The smallest k-density (points per Å⁻¹, at least ``density``) whose grid has ≥ ``kpoints_per_atom`` per atom.

    "k-points per reciprocal atom" (KPPRA): the grid's number of points times the atoms in the
    cell (pymatgen's ``Kpoints.automatic_density``, the Materials Project's 1000 for GGA). The
    grid follows :func:`kpoint_grid` (n_i = ⌈density·|b_i|⌉), so small cells, cheap per k-point,
    get denser grids than one density would give them. 0: ``density`` unchanged.
    """
    n_atoms = len(atoms)
    if kpoints_per_atom <= 0 or np.prod(kpoint_grid(atoms, density)) * n_atoms >= kpoints_per_atom:
        return density
    b = np.linalg.norm(atoms.cell.reciprocal(), axis=1) * 2 * np.pi  # |b_i| in 1/Å
    # the grid grows only where density·|b_i| passes an integer: try those densities in order
    top = int(np.ceil(kpoints_per_atom / n_atoms)) + 1
    steps = np.unique((np.arange(1, top + 1)[:, None] / b[None, :]).ravel() * (1 + 1e-9))
    for candidate in steps[steps > density]:
        if np.prod(kpoint_grid(atoms, float(candidate))) * n_atoms >= kpoints_per_atom:
            return float(candidate)
    raise AssertionError("unreachable: the last candidate has enough points")  # pragma: no cover


def optics_kpoint_grid(
    atoms: Atoms, density: float, optics_grid: str, ibz_vertices: bool = True
) -> tuple[tuple[int, int, int], bool]:
    """The optics k-grid for ``density`` (k-points per Å⁻¹), and whether it holds every vertex of the irreducible zone.

    ``"shifted"``: ASE's even grid (Γ-free), never with the vertices. ``"gamma"``: the smallest
    even, Γ-centred grid at least as dense as ASE's grid for ``density`` that contains every
    vertex of the irreducible Brillouin zone (GPAW's ``contains_ibz_vertices_predicate``): on it
    GPAW's tetrahedron integration can run on the irreducible zone (fcc MgO, ZnS: 8x8x8 at 2.2;
    wurtzite ZnO: 6x6x4; perovskites 4x4x4). Where no such grid exists within 8 more points per
    axis (anatase, rhombohedral NaScO2), the plain Γ-centred grid of ``density``, with the
    tetrahedra then spanning the full zone. ``ibz_vertices=False``: the plain Γ-centred grid of
    ``density`` (our own tetrahedra unfold to the full zone and need no vertices).
    """
    if optics_grid == "shifted":
        return kpoint_grid(atoms, density, even=True), False
    if not ibz_vertices:
        return kpoint_grid(atoms, density), False
    from itertools import product

    from gpaw.bztools import contains_ibz_vertices_predicate

    plain = kpoint_grid(atoms, density)
    # ASE's density sets the minimum, as for every other grid here (GPAW's own grid search reads
    # "density" as a real-space distance and gave zincblende ZnS 8x8x8 at 4.4, where ASE asks 9);
    # then the smallest even grid, up to 8 more points per axis, holding every vertex
    start = [n + n % 2 for n in plain]
    sizes = np.array(list(product(*(range(n, n + 9, 2) for n in start))))
    sizes = sizes[np.argsort(sizes.prod(axis=1), kind="stable")]
    try:
        ok = contains_ibz_vertices_predicate(sizes, atoms, gamma=True, tolerance=1e-5)
    except (AssertionError, RuntimeError, ValueError):
        return plain, False
    if not ok.any():
        return plain, False
    n1, n2, n3 = (int(n) for n in sizes[np.argmax(ok)])
    return (n1, n2, n3), True


@dataclass
class BandEdges:
    """Band edges (eV, GPAW's absolute scale) from eigenvalues on one or more k-grids."""

    vbm: float
    cbm: float
    direct_gap: float

    @property
    def gap(self) -> float:
        """CBM - VBM (eV); negative or 0 for a metal."""
        return self.cbm - self.vbm


def band_edges(eig_kn: np.ndarray, n_occupied: int) -> BandEdges:
    """Edges of eigenvalues ``eig_kn`` (k-points, bands; eV) with ``n_occupied`` filled bands."""
    occ, unocc = eig_kn[:, n_occupied - 1], eig_kn[:, n_occupied]
    return BandEdges(vbm=float(occ.max()), cbm=float(unocc.min()), direct_gap=float((unocc - occ).min()))


def merge_edges(*edges: BandEdges) -> BandEdges:
    """Edges over the union of several k-grids computed with the same density."""
    return BandEdges(
        vbm=max(e.vbm for e in edges), cbm=min(e.cbm for e in edges), direct_gap=min(e.direct_gap for e in edges)
    )


def same_grid_corrected_gap(dft_gap_ev: float, functional_gap_ev: float, corrected_gap_same_grid_ev: float) -> float:
    """The corrected gap (eV) as ``dft_gap + (corrected - functional)``, the shift measured on one k-grid.

    ``dft_gap_ev``: the gap the spectrum has (over the ground-state and optics grids);
    ``functional_gap_ev`` and ``corrected_gap_same_grid_ev``: the functional's (PBEsol) gap and
    the corrected (GLLB-SC) gap, both on the ground-state grid. Taking the corrected gap from one
    grid and the DFT gap from another would add the grids' difference to the shift; the VASP
    engine measures its hybrid shift on one mesh in the same way.
    """
    return float(dft_gap_ev + (corrected_gap_same_grid_ev - functional_gap_ev))


def more_empty_bands(n_empty: int, gap_ev: float, top_ev: float, target_ev: float) -> int:
    """Empty-band count expected to reach ``target_ev`` above the VBM when ``n_empty`` reached ``top_ev``.

    Free-electron-like counting above the conduction-band minimum, N(E) ∝ (E - CBM)^(3/2), plus
    10 %, and at least 1.5x the old count: one retry usually suffices.
    """
    ratio = ((target_ev - gap_ev) / max(top_ev - gap_ev, 1e-3)) ** 1.5
    return max(math.ceil(1.5 * n_empty), math.ceil(1.1 * n_empty * ratio))


def _eigenvalues(calc: Any) -> np.ndarray:
    """(k-points, bands) eigenvalues in eV of a spin-paired calculation."""
    nk = len(calc.get_ibz_k_points())
    return np.array([calc.get_eigenvalues(kpt=k, spin=0) for k in range(nk)])


def _n_occupied(material_id: str, calc: Any, log: Path) -> int:
    """Occupied bands of a spin-paired calculation; raises for spin polarisation or an odd electron count."""
    if calc.get_number_of_spins() != 1:
        raise GpawCalculationError(f"{material_id}: spin-polarised calculations are not supported", log, "ground_state")
    n_electrons = calc.get_number_of_electrons()
    n_pairs = n_electrons / 2
    if abs(n_pairs - round(n_pairs)) > 1e-6:
        raise GpawCalculationError(
            f"{material_id}: odd number of valence electrons ({n_electrons:g}); the spin-paired chain "
            "cannot describe it (a metal or a magnetic system)",
            log,
            "ground_state",
        )
    return int(round(n_pairs))
