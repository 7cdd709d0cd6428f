"""The embedded DFT engine: GPAW (open source, plane waves + PAW), structure -> :class:`DielectricResult`.

The chain, per material (each step writes its GPAW text log into ``workdir``):

1. ``gs.txt``: ground state, plane waves, Γ-centred k-grid (``kdensity_gs``), Fermi-Dirac
   occupations of small width, ``convergence={'bands': 'CBM+1'}`` (GPAW otherwise converges only
   the occupied bands, so its conduction-band minimum and gap can be wrong: BaS 3.45 instead of
   2.13 eV). Gives the total energy and the band edges.
2. ``nscf.txt``: non-self-consistent step at fixed density on a *shifted* (Γ-free, even)
   Monkhorst-Pack grid (``kdensity_nscf``) with enough empty bands. Γ-centred grids put spurious
   near-gap peaks into ε (ZnO ε1(0) 10.4 instead of ~5.3); the gap, which often sits at Γ, is
   therefore taken from both grids.
3. ``df.txt``: ``gpaw.response.df.DielectricFunction`` in the independent-particle (RPA without
   local-field effects) approximation, no intraband (Drude) term, Hilbert transform on GPAW's
   non-linear frequency grid with its default upper limit (cutting it lowers ε1(0): MgO 3.06
   instead of 3.28). The macroscopic tensor is assembled from directional dielectric functions
   (see :func:`tensor_from_directions`). GPAW's Fourier-Bessel transform of the PAW pair-density
   corrections is replaced by direct radial quadrature (:func:`direct_paw_transforms`): its fast
   transform fails its own self-test for La's f channels (La2O3, "FFBT mismatch").
4. ``gllbsc.txt``: separate ground state with GLLB-SC (Kuisma et al., PRB 82, 115106 (2010)),
   whose Kohn-Sham gap plus derivative discontinuity is the corrected gap.

Broadening: GPAW broadens with a Lorentzian of half width η. Its tails decay as η/δ², so ε2 stays
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
