"""ε2 from GPAW's momentum matrix elements by our own linear tetrahedra (``integration="momentum-tetrahedron"``).

GPAW gives the bands and the momentum matrix elements p_nm(k) = ⟨n k| −i∇ |m k⟩ (plane waves plus
the PAW corrections, ``gpaw.nlopt.matrixel.get_mml``) at the irreducible points of the Γ-centred
optics grid. Per irreducible point, the tensor M_αβ = Re[p^α_vc p^β_cv] of every (valence,
conduction) pair is

1. averaged over degenerate levels (:func:`degenerate_average`): within a level the eigensolver's
   basis, and so how |p|² splits among its states, is arbitrary;
2. averaged over the crystal's point group (:func:`symmetrize`). The final tensor is
   Σ_K w_K M(K) over the full zone with scalar tetrahedron weights w_K, and M(K) = R M(k) Rᵀ for
   the rotation R taking k to K; the group average of R M Rᵀ is that of M, so a symmetrised M
   unfolds to the full zone unchanged and the tensor comes out with the crystal's symmetry;
3. written in an orthonormal basis of the symmetric tensors the group leaves invariant
   (:func:`invariant_basis`: 1 component for a cubic crystal, 2 for hexagonal/tetragonal/trigonal,
   3 orthorhombic, 4 monoclinic, 6 triclinic), so only those are integrated.

Transition energies and these components are then refined onto a grid ``refinement`` times
denser along each axis by local cubic interpolation (:func:`cubic_refine`) and integrated by
:func:`optabs.dft.tetrahedron.interband_eps_imag`, which interpolates them linearly within each
tetrahedron and divides by ω² at the photon energy.

Why refine, and why locally (demo preset, uncorrected PBEsol, E5 = first log10 α > 5, in eV):
the linear interpolation of a convex Δε(k) lies above it, so on a coarse grid the joint density
of states near a Γ edge comes too late. Global (FFT) interpolation instead rings at band
crossings and kinks and, where a light band's valley is narrower than the grid spacing, puts the
edge far too early; local cubic interpolation is exact for cubic polynomials and keeps a kink's
disturbance to its neighbours.

============  =========  ========  ============  =============  =================
material      grid       linear    FFT x2        cubic x2       dense (same grid)
============  =========  ========  ============  =============  =================
MgO           6x6x6      5.83      5.33          5.61           5.32 (21x21x21)
MgO           9x9x9      5.44      5.32          5.33
ZnSe          5x5x5      2.65      2.08          2.63           2.76 (13x13x13)
ZnSe          7x7x7      2.78      2.68          2.69
============  =========  ========  ============  =============  =================

Where refining the grid still moves the edge (onset or E5) by more than the engine's tolerance,
the grid does not resolve it and the engine densifies it (:func:`~optabs.dft.gpaw.steps.converged_optics`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from optabs.dft.tetrahedron import grid_order, interband_eps_imag

#: Bohr radius in Å (CODATA 2018, as in ASE's ``units.Bohr``).
BOHR_A = 0.5291772109

# (α, β) of the six tensor components xx yy zz xy yz xz, and their weights in an orthonormal
# basis of symmetric 3x3 matrices (off-diagonal basis matrices (e_ab + e_ba)/√2)
_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2))
_NORM = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])


def cartesian_rotations(rotation_scc: np.ndarray, cell_cv: np.ndarray) -> np.ndarray:
    """(S, 3, 3) Cartesian rotations of k-vectors for GPAW's scaled rotations (U k_scaled = k'_scaled).

    ``cell_cv``: rows the lattice vectors. With B = 2π (cell⁻¹)ᵀ (rows b_i), k_cart = Bᵀ k_scaled,
    so R = Bᵀ U B⁻ᵀ. Raises ValueError if one is not orthogonal (a cell that does not have the
    symmetry GPAW used).
    """
    recip = 2 * np.pi * np.linalg.inv(np.asarray(cell_cv, dtype=float)).T
    rot = np.einsum("ab,sbc,cd->sad", recip.T, np.asarray(rotation_scc, dtype=float), np.linalg.inv(recip.T))
    err = np.abs(np.einsum("sab,sac->sbc", rot, rot) - np.eye(3)).max() if len(rot) else 0.0
    if err > 1e-6:
        raise ValueError(f"a symmetry operation is not a rotation in Cartesian coordinates (error {err:.1e})")
    return rot


def _to_matrix(components: np.ndarray) -> np.ndarray:
    """(..., 6) xx yy zz xy yz xz -> (..., 3, 3) symmetric."""
    out = np.zeros((*components.shape[:-1], 3, 3))
    for comp, (a, b) in enumerate(_PAIRS):
        out[..., a, b] = components[..., comp]
        out[..., b, a] = components[..., comp]
    return out


def symmetrize(components: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(..., 6) symmetric tensors averaged over the rotations (S, 3, 3): (1/S) Σ R T Rᵀ, as (..., 6)."""
    sym = np.einsum("sab,...bc,sdc->...ad", rotations, _to_matrix(components), rotations) / len(rotations)
    return np.stack([sym[..., a, b] for a, b in _PAIRS], axis=-1)


def invariant_basis(rotations: np.ndarray) -> np.ndarray:
    """(6, d) orthonormal basis of the symmetric tensors the rotations leave unchanged.

    Coordinates xx yy zz √2xy √2yz √2xz (orthonormal for the Frobenius product).
    """
    unit = np.eye(6) / _NORM  # basis tensors in xx..xz components
    projector = symmetrize(unit, rotations) * _NORM  # (6, 6): row i = image of basis tensor i
    values, vectors = np.linalg.eigh((projector + projector.T) / 2)
    return vectors[:, values > 0.5]


def _group_average(energies: np.ndarray, tolerance_ev: float) -> np.ndarray:
    """(n, n) matrix averaging over groups of degenerate levels (``energies`` ascending, within ``tolerance_ev``)."""
    group = np.concatenate([[0], np.cumsum(np.diff(energies) > tolerance_ev)])
    same = group[:, None] == group[None, :]
    return same / same.sum(axis=1, keepdims=True)


def degenerate_average(matrix: np.ndarray, valence_ev: np.ndarray, conduction_ev: np.ndarray,
                       tolerance_ev: float = 1e-3) -> np.ndarray:
    """Average (k, v, c, ...) matrix elements over degenerate valence and conduction levels at each k.

    Only a degenerate level's sum is physical; interpolating the eigensolver's arbitrary split
    between grid points would make the result depend on it. ``valence_ev`` (k, v),
    ``conduction_ev`` (k, c), each row ascending.
    """
    out = np.empty_like(matrix)
    for k in range(len(matrix)):
        av = _group_average(valence_ev[k], tolerance_ev)
        ac = _group_average(conduction_ev[k], tolerance_ev)
        out[k] = np.einsum("vw,wd...,cd->vc...", av, matrix[k], ac)
    return out


def cubic_refine(values: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """(K, ...) values on the periodic ``size`` grid (flat order) -> (8K, ...) on the grid twice as dense.

    New points halfway between grid points along each axis by local 4-point (cubic Lagrange)
    interpolation, (−f[i−1] + 9 f[i] + 9 f[i+1] − f[i+2]) / 16, exact for cubic polynomials;
    unlike Fourier interpolation a kink (a band crossing) only disturbs its neighbours.
    """
    grid = values.reshape(*size, *values.shape[1:])
    for axis, n in enumerate(size):
        if n == 1:
            grid = np.repeat(grid, 2, axis=axis)
            continue
        f0, f1 = grid, np.roll(grid, -1, axis=axis)
        mid = (9.0 * (f0 + f1) - np.roll(grid, 1, axis=axis) - np.roll(grid, -2, axis=axis)) / 16.0
        grid = np.stack([f0, mid], axis=axis + 1).reshape(*grid.shape[:axis], 2 * n, *grid.shape[axis + 1 :])
    return grid.reshape(-1, *values.shape[1:])


def momentum_matrix(calc: Any, nbands: int) -> np.ndarray:
    """(k, 3, n, n) momentum matrix elements p^α_nm of the first ``nbands`` bands (atomic units) at the irreducible points.

    GPAW's own ``gpaw.nlopt.matrixel.get_mml``: every pair of bands. The engine needs only the
    (valence, conduction) block, :func:`momentum_block`; this one is its reference in the tests.
    """
    from ase.utils.timing import Timer
    from gpaw.nlopt.adapters import CollinearGSInfo
    from gpaw.nlopt.matrixel import get_mml

    class _Quiet(Timer):
        def write(self, out: Any = None) -> None:  # get_mml prints its timings otherwise
            pass

    with _silent_stdout():  # its progress bar writes to the sys.stdout of import time
        return np.asarray(get_mml(CollinearGSInfo(calc), slice(0, nbands), 0, timer=_Quiet()))


def momentum_block(calc: Any, n_occupied: int, nbands: int) -> np.ndarray:
    """(k, 3, v, c) p^α_vc = ⟨v k| −i∇ |c k⟩ (atomic units) between the occupied and the next empty bands.

    v runs over the ``n_occupied`` lowest bands, c over bands ``n_occupied`` to ``nbands`` − 1, at
    each irreducible point of ``calc`` (plane-wave mode, one spin). The same matrix elements as
    GPAW's ``get_mml`` (plane waves: Ω Σ_G u*_v(G) (k + G) u_c(G); PAW: −i Σ_a Σ_ij P*_vi
    ⟨φ_i|∇|φ_j⟩ − ⟨φ̃_i|∇|φ̃_j⟩ P_cj), but only this block, as matrix products: a quarter of the
    pairs, and BLAS instead of a three-operand einsum (ZnO, 11x11x6: 3.2 s -> 0.3 s).
    """
    from gpaw.nlopt.adapters import CollinearGSInfo

    gs = CollinearGSInfo(calc)
    valence, conduction = slice(0, n_occupied), slice(n_occupied, nbands)
    out = []
    for wfs in gs.ibzwfs:
        k_plus_g, u_nG = gs.get_plane_wave_coefficients(wfs, slice(0, nbands), 0)  # (G, 3), (n, G)
        u_v, u_c = u_nG[valence], u_nG[conduction]
        p = np.stack([(u_v.conj() * k_plus_g[:, a]) @ u_c.T for a in range(3)]) * gs.ucvol  # (3, v, c)
        projections = gs.get_wave_function_projections(wfs, slice(0, nbands), 0)
        for p_ni, nabla_iiv in zip(projections.values(), gs.nabla_aiiv, strict=True):
            p_ni = np.asarray(p_ni)
            p -= 1j * np.einsum("vi,ija,cj->avc", p_ni[valence].conj(), nabla_iiv, p_ni[conduction], optimize=True)
        out.append(p)
    return np.array(out)


@contextlib.contextmanager
def _silent_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null for the duration (Python's and C's writes alike)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def refine(values: np.ndarray, size: tuple[int, int, int], factor: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    """:func:`cubic_refine` applied until the grid is ``factor`` (1, 2, 4, ...) times denser; (values, new size)."""
    while factor > 1:
        values, size, factor = cubic_refine(values, size), (2 * size[0], 2 * size[1], 2 * size[2]), factor // 2
    return values, size


def pair_components(calc: Any, eig: np.ndarray, n_occupied: int) -> np.ndarray:
    """(k, v, c, 6) Re[p^α p^β*] (atomic units) of every (valence, conduction) pair, averaged over degenerate levels.

    ``eig`` (k, n): the band energies (eV) of ``calc`` at its irreducible points, the first n
    bands; valence bands are the ``n_occupied`` lowest.
    """
    p_vc = momentum_block(calc, n_occupied, eig.shape[1])  # (k, 3, v, c)
    components = np.stack([(p_vc[:, a] * p_vc[:, b].conj()).real for a, b in _PAIRS], axis=-1)
    return degenerate_average(components, eig[:, :n_occupied], eig[:, n_occupied:])


def calculator_edge_strength(calc: Any, n_occupied: int, n_conduction: int = 8) -> dict[str, float]:
    """:func:`edge_strength` from the wave functions ``calc`` holds (a ground state just computed).

    The lowest ``n_conduction`` empty bands only: the edge transition needs the lowest one and its
    degenerate partners. The ground state's grid is coarser than the optics grid, but it is
    Γ-centred and the edge points of the demo catalog (Γ; X of the rocksalts on their even grids)
    lie on both, so the optics step can start on the grid a forbidden edge needs
    (:func:`~optabs.dft.gpaw.steps.converged_optics`).
    """
    n_k = len(calc.get_ibz_k_points())
    nbands = min(n_occupied + n_conduction, len(calc.get_eigenvalues(kpt=0, spin=0)))
    eig = np.array([calc.get_eigenvalues(kpt=k, spin=0) for k in range(n_k)])[:, :nbands]
    return edge_strength(eig, pair_components(calc, eig, n_occupied), n_occupied)


def momentum_eps_imag(
    gpw: Path | Any, n_occupied: int, nbands: int, step_ev: float, refinements: tuple[int, ...] = (2,),
    fine_window_ev: float = 5.0,
) -> tuple[np.ndarray, dict[int, np.ndarray], dict[str, Any]]:
    """Uniform energies (eV), ε2 (E, 6) per grid refinement, and a record, from the optics bands in ``gpw``.

    ``gpw``: a gpw file with the wave functions, or the GPAW calculator that holds them (the
    optics step's own, which spares reading the file back: ZnO 11x11x6, 49 MB, 1-2 s; the
    same ε2 to 1e-13). Transitions from every occupied band to every converged empty band
    (``nbands`` in all); the grid runs from 0 in steps of ``step_ev`` to 1 eV above the largest
    transition energy. ``refinements``: the factors (1, 2, 4, ...) by which the optics grid is
    refined (:func:`cubic_refine`) before the tetrahedra, one ε2 each. Only the pairs whose
    transitions come within ``fine_window_ev`` of the smallest one (the absorption edge) are
    refined; the rest, which shape the spectrum well above the edge and ε1 through their weight,
    are integrated on the optics grid itself (ZnO: 14 of 288 pairs refined).
    """
    from gpaw import GPAW

    calc = GPAW(str(gpw), txt=None, parallel={"domain": 1, "band": 1}) if isinstance(gpw, str | Path) else gpw
    ibz = calc.dft.ibzwfs.ibz
    n1, n2, n3 = (int(n) for n in ibz.bz.size_c)
    size = (n1, n2, n3)
    cell_cv = np.asarray(calc.atoms.cell, dtype=float)
    rotations = cartesian_rotations(ibz.symmetries.rotation_scc, cell_cv)
    basis = invariant_basis(rotations)  # (6, d)
    eig = np.array([calc.get_eigenvalues(kpt=k, spin=0) for k in range(len(ibz))])[:, :nbands]
    components = pair_components(calc, eig, n_occupied)  # (k, v, c, 6)
    nv, nc = components.shape[1], components.shape[2]
    coefficients = (symmetrize(components, rotations) * _NORM) @ basis  # (k, v, c, d)

    bz2ibz = np.asarray(ibz.bz2ibz_K)[np.argsort(grid_order(ibz.bz.kpt_Kc, size))]  # flat grid order
    delta = (eig[:, None, n_occupied:] - eig[:, :n_occupied, None]).reshape(len(eig), nv * nc)[bz2ibz]  # (K, P)
    values = coefficients.reshape(len(eig), nv * nc, -1)[bz2ibz]  # (K, P, d)
    energy = np.arange(0.0, float(delta.max()) + 1.0 + step_ev, step_ev)
    volume = abs(np.linalg.det(cell_cv)) / BOHR_A**3
    recip = np.linalg.inv(cell_cv).T
    # pairs that reach within fine_window_ev of the lowest transition: the absorption edge
    fine = delta.min(axis=0) < delta.min() + fine_window_ev
    high = np.zeros((len(energy), basis.shape[1]))
    if (~fine).any():
        high = interband_eps_imag(delta[:, ~fine], values[:, ~fine], size, volume, energy, reciprocal_cell=recip,
                                  point_class=bz2ibz)
    eps2 = {}
    for factor in refinements:
        refined_delta, refined_size = refine(delta[:, fine], size, factor)
        refined_values, _ = refine(values[:, fine], size, factor)
        # on the optics grid itself the values unfold from the irreducible points: tetrahedra
        # related by symmetry are integrated once (the refined points have no such labels)
        eps_d = high + interband_eps_imag(refined_delta, refined_values, refined_size, volume, energy,
                                          reciprocal_cell=recip, point_class=bz2ibz if factor == 1 else None)
        eps2[factor] = (eps_d @ basis.T) / _NORM  # (E, 6)
    record = {
        **edge_strength(eig, components, n_occupied),
        "kpts_full_zone": len(delta), "kpts_irreducible": len(ibz), "symmetries": len(rotations),
        "invariant_components": int(basis.shape[1]), "transitions": nv * nc,
        "refined_transitions": int(fine.sum()), "fine_window_ev": fine_window_ev, "step_ev": step_ev,
    }
    return energy, eps2, record


#: Hartree in eV (CODATA 2018, as in ASE's ``units.Hartree``).
HARTREE_EV = 27.211386245988


def edge_strength(eig: np.ndarray, components: np.ndarray, n_occupied: int) -> dict[str, float]:
    """The smallest direct gap (eV) and the Kane energy (eV) of its transition.

    ``eig`` (k, n) band energies in eV at the irreducible points, ``components`` (k, v, c, 6)
    Re[p^α p^β*] (atomic units) of the (valence, conduction) pairs, already averaged over
    degenerate levels (:func:`degenerate_average`). At the point with the smallest direct gap,
    the pair (highest valence, lowest conduction band) has the Kane energy E_P = 2 |p|²/m_e,
    with |p|² = tr M = Σ_α |p^α|², per state of the degenerate levels; in Hartree atomic units
    E_P = 2 tr M Ha. For a cubic Γ15 -> Γ1 edge (valence X, Y, Z; conduction S) this is Kane's
    2 |⟨S|p_x|X⟩|²/m_e, of order 20 eV for allowed edges (GaAs 28.8, Vurgaftman et al., J. Appl.
    Phys. 89, 5815 (2001)); a dipole-forbidden one, such as rutile SnO2's Γ edge (Fröhlich et
    al., PRL 41, 1750 (1978)), has E_P = 0 by symmetry.
    """
    direct = eig[:, n_occupied] - eig[:, n_occupied - 1]
    k = int(np.argmin(direct))
    trace = float(components[k, n_occupied - 1, 0, :3].sum())
    return {"edge_direct_gap_ev": round(float(direct[k]), 4), "edge_kane_energy_ev": round(2.0 * trace * HARTREE_EV, 4)}


def uncorrected_edges(energy_ev: np.ndarray, eps: np.ndarray) -> tuple[float | None, float | None]:
    """(onset, E5) in eV of the isotropic, uncorrected absorption: first log10 α (cm⁻¹) above 2.5 and above 5.

    ``energy_ev`` (N,) and ``eps`` (N, 6) complex tensor xx yy zz xy yz xz.
    """
    from optabs.spectra.absorption import absorption_coefficient, log10_alpha, onset_energy

    average = eps[:, :3].mean(axis=1)
    spectrum = log10_alpha(absorption_coefficient(energy_ev, average.real, np.clip(average.imag, 0.0, None)))
    return onset_energy(energy_ev, spectrum), onset_energy(energy_ev, spectrum, 5.0)
