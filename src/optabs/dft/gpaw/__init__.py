"""The embedded DFT engine: GPAW (open source, plane waves + PAW), structure -> :class:`DielectricResult`.

The chain, per material (each step writes its GPAW text log into ``workdir``):

1. ``gs.txt``: ground state, plane waves, Γ-centred k-grid (``kdensity_gs``), Fermi-Dirac
   occupations of small width, ``convergence={'bands': 'CBM+1'}`` (GPAW otherwise converges only
   the occupied bands, so its conduction-band minimum and gap can be wrong: BaS 3.45 instead of
   2.13 eV). Gives the total energy and the band edges.
2. ``nscf.txt``: non-self-consistent step at fixed density on the optics k-grid
   (``kdensity_nscf``) with enough empty bands. The grid is **Γ-centred** and the dielectric
   step integrates with **tetrahedra** (``optics_grid="gamma"``), chosen by measurement (issue
   16; demo preset, uncorrected PBEsol spectra, onset = first log10 α > 2.5, E5 = first
   log10 α > 5). The default, ``integration="momentum-tetrahedron"``, is our own tetrahedron
   integration over GPAW's momentum matrix elements (:mod:`~optabs.dft.gpaw.momentum`; it
   interpolates |p|², not the pair densities, and refines the grid locally, with a check that
   densifies a grid that does not resolve the edge); ``"tetrahedron"`` is GPAW's response code on
   a grid that holds every vertex of the irreducible zone (:func:`optics_kpoint_grid`), as
   measured here before it:

   - The shifted (Γ-free) grid used before misses the band edge wherever the direct gap sits at Γ:
     CdSe's 4x4x2 shifted grid has a 2.41 eV direct gap against 0.53 eV at Γ, its onset lay at
     1.86 eV; ZnO's 6x6x4 shifted grid 1.55 against 0.59 eV (onset 1.05 eV); Na2S 2.84 against
     2.33 eV, which put its E5 0.53 eV below the Materials Project reference (the Gaussian tail
     of the first, strong shifted-grid transitions).
   - A Γ-centred grid with point integration has the edge but puts the whole weight of Γ's
     strong transitions (oscillator strength ∝ 1/ω², small ω) into one line: CdSe ε1(0) 60.8 on
     4x4x2, ZnO 22.1 on 5x5x3; E5 collapses onto the gap.
   - Γ-centred with tetrahedron integration (linear interpolation of the band energies between
     the grid points) has the edge and spreads Γ's weight over the energies its tetrahedra span:
     ZnO 6x6x4 onset 0.63 eV, E5 1.41 eV against 0.59 and 1.28 eV on a dense 10x10x6 grid; ZnS
     8x8x8 E5 3.03 eV against 3.23 eV on 16x16x16; Na2S 4x4x4 E5 3.11 eV against the Materials
     Project's 3.26 eV (PBE; its gap is 0.11 eV above ours). On the irreducible zone it is cheap
     (ZnS 8x8x8: bands 6 s, dielectric 3 s; ZnO 6x6x4: 18 + 8 s against 31 + 6 s on the old
     shifted grid); on the full zone, where no vertex-holding grid exists, the dielectric step
     takes 2-9x the point integration.
   - What it does not fix: GPAW interpolates the pair densities, ∝ 1/Δε, linearly inside each
     tetrahedron, so on coarse grids a small direct gap at Γ still weighs too much away from the
     edge and ε1(0) comes out high for small-gap, dispersive materials: ZnO 9.8 on 6x6x4, 6.5 on
     10x10x6 (5.3 on the shifted grid that misses the edge); CdSe 17.9 on 6x6x2, 9.4 on 8x8x4.
     ZnS: 6.60 on 8x8x8, 6.51 on 16x16x16 (PBEsol). On the demo grids it put E5 0.5 eV early
     for ZnSe and CdS (2.17 against 2.70 eV on 24x24x24 for ZnSe). Our tetrahedra interpolate
     |p|² and divide by ω² at the photon energy, which removes most of that (same k-density 2.2:
     ZnSe 2.63, CdS 2.58 eV against 2.78 and 2.75 on grids twice as dense; ε1(0) of ZnO 5.5,
     CdSe 8.0).

   The guard (:func:`~optabs.dft.gpaw.steps.optics_with_guard`): the optics grid's smallest
   direct gap must lie within ``edge_tolerance_ev`` of the ground-state grid's; otherwise the grid
   is densified (``max_grid_densifications``) and then the material fails, never silently starting
   its spectrum late. Both gaps and their difference are in ``result.gap_details["optics_grid_guard"]``.
   The band gap is taken from both grids. A dipole-forbidden band edge (the rutiles' Γ edges)
   densifies the optics grid once more (:func:`~optabs.dft.gpaw.steps.converged_optics`).
3. ``df.txt``: with ``integration="momentum-tetrahedron"`` (default) a one-line record of the
   integration; ε2 from :func:`~optabs.dft.gpaw.momentum.momentum_eps_imag`, broadened by a
   Gaussian, ε1 from it by Kramers-Kronig (:func:`~optabs.dft.gpaw.steps.broadened_eps`).
   Otherwise ``gpaw.response.df.DielectricFunction`` in the independent-particle (RPA without
   local-field effects) approximation, no intraband (Drude) term, Hilbert transform on GPAW's
   non-linear frequency grid with its default upper limit (cutting it lowers ε1(0): MgO 3.06
   instead of 3.28). The macroscopic tensor is assembled from directional dielectric functions
   (see :func:`tensor_from_directions`). GPAW's Fourier-Bessel transform of the PAW pair-density
   corrections is replaced by direct radial quadrature (:func:`direct_paw_transforms`): its fast
   transform fails its own self-test for La's f channels (La2O3, "FFBT mismatch").
4. ``gllbsc.txt``: separate ground state with GLLB-SC (Kuisma et al., PRB 82, 115106 (2010)),
   whose Kohn-Sham gap plus derivative discontinuity is the corrected gap.

Broadening: on top of the tetrahedron integration a Gaussian of 0.05 eV smooths the kinks of the
linear interpolation (its tail reaches log10 α = 2.5 within ~0.05 eV of the gap). GPAW broadens
with a Lorentzian of half width η. Its tails decay as η/δ², so ε2 stays
well above zero deep inside the gap (MgO, η = 0.15 eV: ε2 = 0.016 at 2 eV and 0.07 at 4 eV with a
4.6 eV gap): read at α = 10^2.5 cm^-1, MgO's absorption onset would come out at 1.3 eV. The default
``broadening="gaussian"`` therefore runs the Hilbert transform with a negligible η
(:data:`UNBROADENED_ETA_EV`) and convolves ε1 and ε2 with a Gaussian of standard deviation
``eta_ev`` (:func:`gaussian_broadening`); convolution commutes with the Kramers-Kronig relations, so
the pair stays consistent, and ε2 below the gap falls off as exp(-δ²/2σ²). ``broadening="lorentzian"``
reproduces GPAW's own output.

PBEsol: GPAW ships no PBEsol PAW datasets. :func:`ensure_pbesol_setups` generates them with GPAW's
own generator (``gpaw dataset -f PBEsol -w X`` through its Python API) into ``setups_dir``,
matching the valence of the shipped PBE dataset (Mg, Ca, Sr, Ba, K, Rb, Cs, Ti, Zr, ... get their
semicore states, as the shipped ones have) plus per-element fixes (Zn). If an element cannot be
generated, the whole material falls back to PBE and the result says so
(``settings["xc"] == "PBE"``, ``settings["xc_fallback_reason"]``): a PBE spectrum of the right
structure is more useful than none, and mixing functionals within one material is not an option.
:func:`check_generated_setups` compares generated against shipped datasets (used by the tests,
not at run time).

Speed (issue 16, measured on this 2-core machine; ``bench_demo`` has the whole demo): GPAW is
built against FFTW (``resources/gpaw-siteconfig.py``; anatase TiO2 optics bands 42.0 -> 35.8 s,
its 27³ FFT grid, symmetrised from 18x18x27, is the cost); the optics bands use Davidson (PPCG,
GPAW 26's default, 40.4 s against 35.8 s for the same bands) while the ground state keeps PPCG
(Davidson needed 43 SCF iterations for La2O3 against 16); the SCF steps converge to 1e-6 eV² per
electron. In the dielectric step the momentum matrix elements are computed for the valence x
conduction block only, as matrix products (:func:`~optabs.dft.gpaw.momentum.momentum_block`,
equal to GPAW's ``get_mml`` to 1e-15; ZnO 4.0 -> 0.07 s), and tetrahedra whose corners unfold
from the same irreducible points are integrated once (identical result; ZnO 17.8 -> 10.6 s).
The Snakemake rule starts the largest cells first (``priority``), so that few cores finish together.

Threads: GPAW runs fastest here with one BLAS thread per process (MgO chain 13.9 s with 1 thread,
21.6 s with 2, 32.8 s with the default, worse beside another busy process); run materials side
by side instead. ``OPENBLAS_NUM_THREADS`` is read when the BLAS library loads, so a caller must set
it before numpy is imported: the Snakemake rule passes :func:`single_thread_env`. As a second
line of defence :meth:`GpawEngine.run` limits already-loaded BLAS pools with threadpoolctl.

The package imports without gpaw (settings, presets, :func:`single_thread_env`); gpaw is
imported lazily. Modules: :mod:`~optabs.dft.gpaw.settings`, :mod:`~optabs.dft.gpaw.setups`
(PAW datasets) and :mod:`~optabs.dft.gpaw.setup_check`, :mod:`~optabs.dft.gpaw.structure`
(atoms, k-points, band edges), :mod:`~optabs.dft.gpaw.broadening`,
:mod:`~optabs.dft.gpaw.paw_transform`, :mod:`~optabs.dft.gpaw.cache` (reuse of ``.gpw`` files),
:mod:`~optabs.dft.gpaw.steps` and :mod:`~optabs.dft.gpaw.engine`.
"""

from optabs.dft.gpaw.broadening import TENSOR_DIRECTIONS, UNBROADENED_ETA_EV, gaussian_broadening, tensor_from_directions
from optabs.dft.gpaw.engine import GpawEngine
from optabs.dft.gpaw.errors import GpawCalculationError, SetupGenerationError, gpaw_version
from optabs.dft.gpaw.paw_transform import direct_paw_transforms, rescaled_bessel_transform
from optabs.dft.gpaw.settings import ENGINE_NAME, THREAD_ENV, GpawSettings, default_setups_dir, single_thread_env
from optabs.dft.gpaw.setup_check import SetupCheck, check_generated_setups
from optabs.dft.gpaw.setups import (
    SETUP_OVERRIDES,
    dataset_valence,
    ensure_pbesol_setups,
    find_dataset,
    generator_options,
)
from optabs.dft.gpaw.structure import BandEdges, band_edges, kpoint_grid, merge_edges, more_empty_bands, structure_to_atoms

__all__ = [
    "ENGINE_NAME",
    "SETUP_OVERRIDES",
    "TENSOR_DIRECTIONS",
    "THREAD_ENV",
    "UNBROADENED_ETA_EV",
    "BandEdges",
    "GpawCalculationError",
    "GpawEngine",
    "GpawSettings",
    "SetupCheck",
    "SetupGenerationError",
    "band_edges",
    "check_generated_setups",
    "dataset_valence",
    "default_setups_dir",
    "direct_paw_transforms",
    "ensure_pbesol_setups",
    "find_dataset",
    "gaussian_broadening",
    "generator_options",
    "gpaw_version",
    "kpoint_grid",
    "merge_edges",
    "more_empty_bands",
    "rescaled_bessel_transform",
    "single_thread_env",
    "structure_to_atoms",
    "tensor_from_directions",
]
