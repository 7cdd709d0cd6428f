"""Settings of the GPAW engine (:class:`GpawSettings`) and the process environment it wants.

Imports without gpaw: the Snakefile checks settings and builds job environments from here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from optabs.config import Settings

ENGINE_NAME = "gpaw"

#: Environment for one GPAW process (see :mod:`optabs.dft.gpaw` on threads).
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_GAP_METHODS = ("GLLB-SC", "none")
_XCS = ("PBEsol", "PBE")
_BROADENINGS = ("gaussian", "lorentzian")
_OPTICS_GRIDS = ("gamma", "shifted")
_INTEGRATIONS = ("momentum-tetrahedron", "tetrahedron", "point")
_EIGENSOLVERS = ("davidson", "ppcg", "rmm-diis")


def single_thread_env() -> dict[str, str]:
    """Environment variables for a GPAW process (one BLAS/OpenMP thread); merge into the rule's env."""
    return dict(THREAD_ENV)


def default_setups_dir() -> Path:
    """Where generated PBEsol datasets live unless ``GpawSettings.setups_dir`` says otherwise.

    ``$OPTABS_GPAW_SETUPS`` if set, else ``~/.cache/optabs/gpaw-setups``.
    """
    env = os.environ.get("OPTABS_GPAW_SETUPS")
    return Path(env) if env else Path.home() / ".cache" / "optabs" / "gpaw-setups"


@dataclass(frozen=True)
class GpawSettings(Settings):
    """Every knob of the GPAW chain. Energies in eV, k-point densities in points per Å⁻¹.

    k-point density follows ASE's ``kptdensity2monkhorstpack``: along reciprocal vector b_i
    (|b_i| = 2π/d_i, in Å⁻¹) the grid has ``ceil(kdensity * |b_i|)`` points (at least 1); the
    optics grid is Γ-centred (``optics_grid="gamma"``, the default) or, as before issue 16,
    rounded up to even so that it misses Γ (``"shifted"``). MgO (a = 4.212 Å, |b| = 2.58 Å⁻¹): density 2.0 -> 6x6x6, 3.0 -> 8x8x8.

    Empty bands for the optics step: ``max(empty_bands_per_atom * atoms, volume / volume_per_empty_band_a3)``
    above the occupied ones (one per 3 Å³: reaching 15 eV above the VBM took one empty band per
    4.7 Å³ in MgO, 4.6 in CdSe, 3.6 in ZnS and 3.4 in BaS, so one per 4 Å³ would mean a second
    optics step for the last two); the lowest energy of the highest converged band must lie at least
    ``min_band_top_ev`` above the valence-band maximum, else the band count grows
    (:func:`more_empty_bands`), at most ``max_band_retries`` times, and then the material fails:
    a spectrum silently missing transitions below its top energy would be wrong, not just less
    precise. Transitions above the top still add to ε1 at low energy (ε1(0) of MgO: 3.20 with 6
    empty bands, top 20 eV above the VBM; 3.21 with 7, the demo count; 3.28 with 16), hence the
    larger margin of "converged".

    Presets (:attr:`PRESETS`; ``GpawSettings.preset(name, **overrides)``, where overrides replace
    single fields):

    - ``"demo"``: PW 400 eV, ground-state k-density 2.0 (Γ-centred), optics 3.0 (Γ-centred,
      our own tetrahedra over GPAW's momentum matrix elements on a grid refined 2x, see
      :mod:`optabs.dft.gpaw.momentum`), Gaussian broadening 0.05 eV. For tests, laptops and
      screening; gaps within ~0.2 eV of converged (MgO 4.59 vs 4.78 eV PBE at 800 eV). The
      optics density was 2.2 while GPAW's tetrahedra ran on grids that hold the irreducible
      zone's vertices (often denser than asked); with our tetrahedra the grid is the plain one,
      and 2.2 left rutile and wurtzite edges unresolved while the refinement check passed
      (E5 demo − dense: TiO2 +0.22 eV on 4x4x5, CdS −0.17 on 4x4x3, SnO2 +0.32 on 3x3x5;
      at 3.0: +0.03 on 5x5x7, −0.05 on 6x6x3, +0.17 on 4x4x6). The optics grid also has at least
      700 k-points per atom (``kpoints_per_atom_nscf``, "KPPRA"): 3.0 gives the rocksalt
      chalcogenides 6x6x6, whose E5 then lay 0.13-0.19 eV above a grid twice as dense (BaO +0.19,
      CaS +0.16) while refining it moved E5 by only 0.03 (BaO): the coarse grid, not the
      interpolation, was short. 8x8x8: BaO +0.08, CaS +0.06. 7x7x7 (686 per atom) holds no X
      point, where their direct gap lies, so 700 is the smallest round number that takes them to
      8x8x8; small cells, cheap per k-point, are the ones it raises. The optics bands are converged to
      a residual of 1e-3 eV² per electron instead of GPAW's 4e-8 (``nscf_eigenstates``): ZnS
      (wurtzite) optics 55 -> 40 s at 1e-4 (1e-6: 48 s, 1e-5: 45 s); 1e-3 takes one or two
      Davidson iterations fewer than 1e-4 (SnO2 5x5x6: 11 -> 9, 33 -> 28 s; ZnO 7x7x4: 8 -> 7),
      and against 1e-4 the edges (onset, E5) do not move, ε2 changes by 1e-5 of its maximum, ε1 by
      < 1e-4 and the band energies by ≤ 5 meV (SnO2). The ground state and GLLB-SC converge
      to 1e-6 (``scf_eigenstates``) instead of 4e-8: anatase 32.8 -> 22.1 s, gap within 0.3 meV.
    - ``"converged"``: PW 800 eV, k-densities 3.5 / 5.0, 6 empty bands per atom and the highest
      band at least 25 eV above the VBM. For production spectra on a cluster; several times
      the cost of "demo". (ZnS: ε1(0) and the gap change by < 0.01 from 8^3 to 12^3 optics
      k-points and from 400 to 800 eV; the MgO gap moves by 0.2 eV from 400 to 800 eV.)
    """

    PRESETS: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "demo": dict(
            ecut_ev=400.0, kdensity_gs=2.0, kdensity_nscf=3.0, kpoints_per_atom_nscf=700.0, nscf_eigenstates=1e-3,
            scf_eigenstates=1e-6,
        ),
        "converged": dict(
            ecut_ev=800.0, kdensity_gs=3.5, kdensity_nscf=5.0, empty_bands_per_atom=6.0, min_band_top_ev=25.0
        ),
    }
    DEFAULT_PRESET: ClassVar[str | None] = "demo"
    PRESET_FIELD: ClassVar[str | None] = "preset_name"
    NAME: ClassVar[str] = "GPAW"

    preset_name: str = "custom"
    xc: str = "PBEsol"
    ecut_ev: float = 400.0
    kdensity_gs: float = 2.0
    kdensity_nscf: float = 3.0
    kpoints_per_atom_nscf: float = 0.0  # optics grid: at least this many k-points x atoms (KPPRA); 0 = off
    smearing_ev: float = 0.01  # Fermi-Dirac width of the ground state
    convergence_bands: str = "CBM+1"  # GPAW: converge bands up to CBM + 1 eV
    maxiter: int | None = None  # SCF iterations; None = GPAW's default
    empty_bands_per_atom: float = 3.0
    volume_per_empty_band_a3: float = 3.0
    min_band_top_ev: float = 15.0  # highest band must start this far above the VBM
    max_band_retries: int = 2
    nscf_eigenstates: float | None = None  # optics-step tolerance (eV^2 per electron); None = GPAW's 4e-8
    scf_eigenstates: float | None = None  # the same for the self-consistent steps (ground state, GLLB-SC)
    # GPAW's eigensolver of the optics bands (GPAW 26's default, "ppcg", stays for the ground state:
    # Davidson took 43 SCF iterations for La2O3 against 16; the optics step 15 % less time)
    nscf_eigensolver: str = "davidson"
    response_ecut_ev: float = 10.0  # plane-wave cutoff of the response function
    optics_grid: str = "gamma"  # "gamma": Γ-centred optics k-grid; "shifted": even, Γ-free (before issue 16)
    # Brillouin-zone integration of the optics step: "momentum-tetrahedron" (ours: linear tetrahedra
    # interpolating |p|², see optabs.dft.gpaw.momentum), or GPAW's response code: "tetrahedron", "point"
    integration: str = "momentum-tetrahedron"
    tetra_step_ev: float = 0.025  # energy bins of the momentum-tetrahedron integration (half of eta_ev)
    tetra_refinement: int = 2  # local cubic refinement of the optics grid before the tetrahedra (1, 2 or 4 per axis)
    tetra_fine_window_ev: float = 5.0  # only pairs within this of the lowest transition are refined
    # the refinement check: the edge (onset, E5) with and without refinement must agree within this,
    # else the optics grid is densified (x1.5 density), at most max_refinement_densifications times
    refinement_tolerance_ev: float = 0.15
    max_refinement_densifications: int = 1
    # a band-edge transition with a Kane energy below this (eV) is dipole-forbidden: the absorption
    # rises only with |p|² away from the edge point, which the grid must resolve, so the optics grid
    # is densified once (x1.5) as for a failed refinement check (SnO2; see optabs.dft.gpaw.steps); 0 = off.
    # Demo catalog: the rutiles SnO2, GeO2, TiO2 0.0000 (zero by symmetry); the weakest allowed
    # edges CeO2 (O 2p -> Ce 4f) 0.058, BaZrO3 0.58, La2O3 0.26; allowed s-p edges 3-15 eV
    forbidden_edge_kane_ev: float = 0.01
    edge_tolerance_ev: float = 0.1  # the optics grid may miss the ground-state direct gap by this much
    max_grid_densifications: int = 1  # optics-grid densifications (x1.5 density) before the material fails
    eta_ev: float = 0.05  # broadening: Gaussian σ ("gaussian") or Lorentzian η ("lorentzian")
    broadening: str = "gaussian"
    domega0_ev: float = 0.05  # frequency spacing at ω = 0 of GPAW's non-linear grid
    omega2_ev: float = 10.0  # frequency at which that spacing has doubled (GPAW's default)
    off_diagonal: bool = True  # compute xy yz xz from three more directions
    gap_method: str = "GLLB-SC"
    gllbsc_smearing_ev: float = 0.01
    setups_dir: str | None = None  # generated PBEsol datasets; None = default_setups_dir()
    threads: int = 1  # BLAS threads inside the process
    keep_wavefunctions: bool = False  # keep nscf.gpw (wave functions) after success

    def __post_init__(self) -> None:
        self.check_choice("xc", _XCS)
        self.check_choice("gap_method", _GAP_METHODS)
        self.check_choice("broadening", _BROADENINGS)
        self.check_choice("optics_grid", _OPTICS_GRIDS)
        self.check_choice("integration", _INTEGRATIONS)
        self.check_choice("nscf_eigensolver", _EIGENSOLVERS)
        if self.integration != "point" and self.optics_grid != "gamma":
            raise self.invalid("integration", "'point' with optics_grid 'shifted' (tetrahedra need a Γ-centred grid)")
        if self.integration == "momentum-tetrahedron" and self.broadening != "gaussian":
            raise self.invalid("broadening", "'gaussian' with integration 'momentum-tetrahedron'")
        self.check_numbers(
            "ecut_ev", "kdensity_gs", "kdensity_nscf", "smearing_ev", "empty_bands_per_atom",
            "volume_per_empty_band_a3", "min_band_top_ev", "response_ecut_ev", "eta_ev",
            "domega0_ev", "omega2_ev", "gllbsc_smearing_ev", "edge_tolerance_ev", "tetra_step_ev",
            "tetra_fine_window_ev", "refinement_tolerance_ev",
        )
        self.check_numbers("kpoints_per_atom_nscf", "forbidden_edge_kane_ev", inclusive=True)
        self.check_numbers("max_grid_densifications", integer=True, inclusive=True)
        self.check_choice("tetra_refinement", (1, 2, 4))
        self.check_numbers("max_refinement_densifications", integer=True, inclusive=True)
        self.check_numbers("maxiter", integer=True, minimum=1, inclusive=True, optional=True)
        self.check_numbers("nscf_eigenstates", "scf_eigenstates", optional=True)
        self.check_numbers("max_band_retries", integer=True, inclusive=True)
        self.check_numbers("threads", integer=True, minimum=1, inclusive=True)

    def resolved_setups_dir(self) -> Path:
        """The folder of generated PBEsol datasets: ``setups_dir`` or :func:`default_setups_dir`."""
        return Path(self.setups_dir) if self.setups_dir else default_setups_dir()
