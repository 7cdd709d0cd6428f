"""The GPAW engine: one material through the chain, structure -> :class:`DielectricResult`.

:meth:`GpawEngine._run` calls the steps in order (datasets, ground state, optics bands,
dielectric function, corrected gap) and assembles the result; the steps themselves are in
:mod:`optabs.dft.gpaw.steps`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optabs.dft.gpaw.broadening import UNBROADENED_ETA_EV
from optabs.dft.gpaw.cache import _cache_meta, _structure_key
from optabs.dft.gpaw.errors import GpawCalculationError, SetupGenerationError, _require_gpaw
from optabs.dft.gpaw.response import _dielectric
from optabs.dft.gpaw.settings import ENGINE_NAME, GpawSettings
from optabs.dft.gpaw.setups import _dataset_record, _has_dataset, ensure_pbesol_setups
from optabs.dft.gpaw.steps import (
    _Dielectric,
    _gllbsc_gap,
    _ground_state,
    _GroundState,
    _OpticsBands,
    converged_optics,
    optics_with_guard,
)
from optabs.dft.gpaw.structure import kpoint_grid, same_grid_corrected_gap, structure_to_atoms
from optabs.dft.result import DielectricResult

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms
    from pymatgen.core import Structure

# The package's logger: the engine's log lines keep the name they had before the package split.
logger = logging.getLogger(__package__)


@contextlib.contextmanager
def _thread_limit(threads: int) -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=threads):
        yield


@dataclass
class _Material:
    """One material as the chain sees it once its datasets are settled."""

    material_id: str
    structure: Structure
    atoms: Atoms
    elements: list[str]
    xc: str  # the functional it runs with: PBE where PBEsol datasets could not be generated
    fallback_reason: str
    setups: dict[str, dict[str, Any]]
    kpts_gs: tuple[int, int, int]


class GpawEngine:
    """The embedded engine: ``GpawEngine(GpawSettings.preset("demo")).run(id, structure, workdir)``."""

    name = ENGINE_NAME

    def __init__(self, settings: GpawSettings | None = None):
        self.settings = settings if settings is not None else GpawSettings.preset("demo")

    def run(self, material_id: str, structure: Structure, workdir: str | Path) -> DielectricResult:
        """Compute one material in ``workdir`` (created); raise :class:`CalculationError` on failure.

        Cached ground state (``gs.gpw``) and optics wave functions (``nscf.gpw``) are reused when
        they were written with the same structure and settings.
        """
        gpaw = _require_gpaw()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        with _thread_limit(self.settings.threads):
            return self._run(gpaw, material_id, structure, workdir)

    def _run(self, gpaw: Any, material_id: str, structure: Structure, workdir: Path) -> DielectricResult:
        """The chain, step by step, each timed; see :mod:`optabs.dft.gpaw` for what each step does."""
        s = self.settings
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        atoms = structure_to_atoms(material_id, structure)
        elements = sorted(set(atoms.get_chemical_symbols()))
        logs = {name: workdir / f"{name}.txt" for name in ("gs", "nscf", "df", "gllbsc")}

        t0 = time.perf_counter()
        xc, fallback_reason, setups = self._datasets(material_id, elements)
        timings["setups"] = time.perf_counter() - t0

        kpts_gs = kpoint_grid(atoms, s.kdensity_gs)
        m = _Material(material_id, structure, atoms, elements, xc, fallback_reason, setups, kpts_gs)
        base_key = self._base_key(gpaw, m)

        t0 = time.perf_counter()
        gs = _ground_state(material_id, atoms, xc, s, kpts_gs, base_key, workdir / "gs.gpw", logs["gs"])
        # A metal in this functional still gets its (interband) spectrum, with gap 0 and no gap
        # correction: curation then drops it for its gap, as the study did (gap >= 0.3 eV).
        if gs.metallic:
            logger.warning("%s: no band gap in %s (VBM %.3f eV >= CBM %.3f eV): metallic, gap set to 0, "
                           "no gap correction, interband spectrum only", material_id, xc, gs.edges.vbm, gs.edges.cbm)
        timings["ground_state"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if s.integration == "momentum-tetrahedron":
            bands, guard, diel = converged_optics(
                material_id, atoms, gs, s, base_key, workdir / "nscf.gpw", logs, timings
            )
            check = diel.details["refinement_check"]
            if not check["passed"]:
                logger.warning("%s: the optics grid %s does not resolve the edge: refining it moves the edge by "
                               "%.2f eV (tolerance %.2f eV)", material_id, list(bands.kpts), check["difference_ev"],
                               check["tolerance_ev"])
        else:
            bands, guard = optics_with_guard(material_id, atoms, gs, s, base_key, workdir / "nscf.gpw", logs["nscf"])
            timings["nscf"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            diel = _dielectric(material_id, bands, s, logs["df"])
            timings["dielectric"] = time.perf_counter() - t0

        gap_method, corrected, gap_details = self._corrected_gap(m, gs, bands, logs["gllbsc"], timings)
        gap_details["optics_grid_guard"] = guard
        timings["total"] = time.perf_counter() - t_start

        if not s.keep_wavefunctions:
            for path in (bands.gpw, _cache_meta(bands.gpw)):
                path.unlink(missing_ok=True)
        return self._result(gpaw, m, gs, bands, diel, gap_method, corrected, gap_details, timings)

    def _datasets(self, material_id: str, elements: list[str]) -> tuple[str, str, dict[str, dict[str, Any]]]:
        """The functional the material runs with, why it differs from the requested one, and its datasets.

        PBEsol datasets are generated when missing; if that fails, the material runs with PBE.
        """
        s = self.settings
        xc, fallback_reason = s.xc, ""
        if s.xc == "PBEsol":
            try:
                ensure_pbesol_setups(elements, s.resolved_setups_dir())
            except SetupGenerationError as exc:
                xc, fallback_reason = "PBE", f"PBEsol dataset generation failed: {exc}"
        try:
            setups = {el: _dataset_record(el, xc) for el in elements}
        except (RuntimeError, OSError) as exc:
            raise GpawCalculationError(
                f"{material_id}: no {xc} PAW dataset for one of {elements}: {exc}", stage="setups"
            ) from exc
        return xc, fallback_reason, setups

    def _base_key(self, gpaw: Any, m: _Material) -> dict[str, Any]:
        """What the ground state depends on (its cache fingerprint); the optics bands add to it."""
        s = self.settings
        return {
            "structure": _structure_key(m.atoms),
            "xc": m.xc,
            "setups": {el: rec["sha256"] for el, rec in m.setups.items()},
            "gpaw": gpaw.__version__,
            "ecut_ev": s.ecut_ev,
            "smearing_ev": s.smearing_ev,
            "convergence_bands": s.convergence_bands,
            "scf_eigenstates": s.scf_eigenstates,
            "kpts_gs": m.kpts_gs,
        }

    def _corrected_gap(
        self, m: _Material, gs: _GroundState, bands: _OpticsBands, log: Path, timings: dict[str, float]
    ) -> tuple[str, float, dict[str, Any]]:
        """(gap method, corrected gap, gap details): GLLB-SC where possible, else the uncorrected gap."""
        s = self.settings
        material_id, xc, edges, edges_gs, edges_nscf = m.material_id, m.xc, bands.edges, gs.edges, bands.edges_nscf
        t0 = time.perf_counter()
        gap_details: dict[str, Any] = {
            "dft_xc": xc,
            "vbm_ev": edges.vbm,
            "cbm_ev": edges.cbm,
            "gap_ground_state_grid_ev": edges_gs.gap,
            "gap_nscf_grid_ev": edges_nscf.gap,
            "direct_gap_ground_state_grid_ev": edges_gs.direct_gap,
            "direct_gap_nscf_grid_ev": edges_nscf.direct_gap,
        }
        gap_method = s.gap_method
        no_gllbsc = [el for el in m.elements if not _has_dataset(el, "GLLBSC")]
        if gs.metallic:
            gap_method = "none"
            gap_details["metallic"] = True
            gap_details["gap_method_note"] = f"no band gap in {xc}: gap 0, no correction"
        elif gap_method == "GLLB-SC" and no_gllbsc:
            # gpaw-data ships no GLLB-SC dataset for these (La, Ce, ...) and GPAW cannot generate
            # one: the result keeps the uncorrected gap and says so instead of failing.
            gap_method = "none"
            gap_details["gap_method_note"] = (
                f"GLLB-SC requested, but gpaw-data has no GLLB-SC dataset for {', '.join(no_gllbsc)}: "
                f"{xc} gap, uncorrected"
            )
            logger.warning("%s: %s", material_id, gap_details["gap_method_note"])
        if gap_method == "GLLB-SC":
            gllb = _gllbsc_gap(material_id, m.atoms, s, m.kpts_gs, log)
            corrected = same_grid_corrected_gap(max(edges.gap, 0.0), edges_gs.gap, gllb["gap_ev"])
            gap_details["gllbsc"] = gllb
            gap_details["delta_ev"] = gllb["gap_ev"] - edges_gs.gap
            gap_details["formula"] = (
                f"corrected_gap = dft_gap + (GLLB-SC gap - {xc} gap), both on the ground-state k-grid"
            )
            timings["gllbsc"] = time.perf_counter() - t0
        else:
            corrected = max(edges.gap, 0.0)
        return gap_method, corrected, gap_details

    def _settings_record(self, m: _Material, gs: _GroundState, bands: _OpticsBands, diel: _Dielectric) -> dict[str, Any]:
        """Every setting that produced the result, the ones the run chose (functional, bands) included."""
        s = self.settings
        return {
            **s.to_dict(),
            "xc": m.xc,
            "xc_requested": s.xc,
            "xc_fallback_reason": m.fallback_reason,
            "setups_dir": str(s.resolved_setups_dir()),
            "setups": m.setups,
            "kpts_gs": list(m.kpts_gs),
            "kpts_nscf": list(bands.kpts),
            "kpts_gs_gamma_centred": True,
            "kpts_nscf_gamma_centred": s.optics_grid == "gamma",
            "kpts_nscf_has_ibz_vertices": bands.ibz_vertices,
            "integration": s.integration + (
                (" (irreducible zone)" if bands.ibz_vertices else " (full zone)") if s.integration == "tetrahedron" else ""
            ),
            "integration_details": diel.details,
            "fft": "FFTW" if _have_fftw() else "numpy/scipy (GPAW built without FFTW: slower)",
            "n_occupied_bands": gs.n_occupied,
            "nbands_optics": bands.nbands,
            "band_top_above_vbm_ev": bands.band_top_ev,
            "band_attempts": bands.attempts,
            "omegamax_ev": diel.omegamax_ev,
            "n_frequencies": int(len(diel.energy_ev)),
            # GPAW's response code only (our tetrahedra have no Hilbert transform)
            **({} if s.integration == "momentum-tetrahedron" else {
                "hilbert_eta_ev": UNBROADENED_ETA_EV if s.broadening == "gaussian" else s.eta_ev}),
            "local_field_effects": False,
            "intraband": False,
            "off_diagonal_components": (
                "computed from mixed directions" if s.off_diagonal else "not computed (set to 0)"
            ),
            "ground_state_from_cache": gs.from_cache,
            "versions": _versions(),
        }

    def _result(
        self, gpaw: Any, m: _Material, gs: _GroundState, bands: _OpticsBands, diel: _Dielectric, gap_method: str,
        corrected: float, gap_details: dict[str, Any], timings: dict[str, float],
    ) -> DielectricResult:
        """The engine-neutral result of the finished chain."""
        settings = self._settings_record(m, gs, bands, diel)
        return DielectricResult(
            material_id=m.material_id,
            engine=ENGINE_NAME,
            engine_version=gpaw.__version__,
            structure=m.structure.as_dict(),
            energy_ev=diel.energy_ev,
            eps_real=diel.eps.real,
            eps_imag=diel.eps.imag,
            dft_gap_ev=max(bands.edges.gap, 0.0),
            dft_direct_gap_ev=max(bands.edges.direct_gap, 0.0),
            corrected_gap_ev=float(corrected),
            gap_method=gap_method,
            total_energy_ev=gs.total_energy_ev,
            n_atoms=len(m.atoms),
            energy_scale=f"gpaw-{m.xc}-pw{self.settings.ecut_ev:g}",
            settings=settings,
            gap_details=gap_details,
            timings_s=timings,
        )


def _versions() -> dict[str, str]:
    """Versions of the packages that shape the result ("" where one is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("gpaw", "gpaw-data", "ase", "numpy", "scipy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = ""
    return out


def _have_fftw() -> bool:
    """Whether GPAW was built with FFTW (``fftw = True`` in resources/gpaw-siteconfig.py).

    Without it GPAW's plane-wave FFTs run through scipy, 15 % slower in the optics step (anatase
    TiO2, 27³ grid: 42.0 s against 35.8 s).
    """
    from gpaw.fftw import have_fftw

    return bool(have_fftw())
