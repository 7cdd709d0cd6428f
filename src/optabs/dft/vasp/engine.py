"""The VASP engine: relax -> bandgap -> optics -> hybrid, each step run by custodian."""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from custodian.custodian import Custodian, CustodianError, ValidationError
from custodian.vasp.jobs import VaspJob
from custodian.vasp.validators import VasprunXMLValidator
from pymatgen.io.vasp.inputs import Incar, Poscar
from pymatgen.io.vasp.outputs import UnconvergedVASPWarning, Vasprun

from optabs.dft.result import DielectricResult
from optabs.dft.vasp.helpers import (
    _step_error,
    direct_gap_ev,
    electronic_dielectric_constant,
    nsc_dd_mixing,
    standard_handlers,
)
from optabs.dft.vasp.inputs import (
    _as_structure,
    write_bandgap_inputs,
    write_hybrid_inputs,
    write_optics_inputs,
    write_relax_inputs,
)
from optabs.dft.vasp.outputs import _kpoints_record, _total_magnetization, dielectric_arrays, read_vasprun
from optabs.dft.vasp.settings import ENERGY_SCALE, GAP_METHOD, NONMAGNETIC_MUB, VaspSettings
from optabs.errors import ConfigError, InputError


@contextlib.contextmanager
def _custodian_log(path: Path) -> Iterator[None]:
    """Send custodian's own log lines to ``path`` while a step runs."""
    logger = logging.getLogger("custodian")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


class VaspEngine:
    """Structure -> :class:`DielectricResult` with VASP (see :mod:`optabs.dft.vasp` for the method)."""

    name = "vasp"

    def __init__(self, settings: VaspSettings | None = None):
        self.settings = settings or VaspSettings()

    def run(self, material_id: str, structure: Any, workdir: str | Path) -> DielectricResult:
        """Run relax -> bandgap -> optics -> hybrid in ``workdir/<step>``.

        Each step folder is emptied first: a rerun never reads the outputs of an earlier attempt.
        Raises :class:`CalculationError` (naming the step, the file and the log) on a failure worth
        recording, :class:`ConfigError` when the VASP command cannot be started at all.
        """
        s = self.settings
        workdir = Path(workdir)
        try:
            structure = _as_structure(structure)
        except InputError as exc:
            raise InputError(f"{material_id}: {exc}") from exc
        timings: dict[str, float] = {}
        corrections: dict[str, list[dict[str, Any]]] = {}
        ispins: dict[str, int] = {}

        def step_dir(step: str) -> Path:
            d = workdir / step
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
            return d

        def run_step(step: str, directory: Path) -> Vasprun:
            start = time.perf_counter()
            corrections[step] = self._run_custodian(material_id, step, directory)
            timings[step] = time.perf_counter() - start
            return read_vasprun(directory / "vasprun.xml", material_id=material_id, step=step)

        ispin = 2
        if s.relax:
            d = step_dir("relax")
            write_relax_inputs(structure, s, d)
            ispins["relax"] = ispin
            relaxed = run_step("relax", d)
            structure = relaxed.final_structure
            ispin = 1 if _total_magnetization(d) < NONMAGNETIC_MUB else 2

        d_gap = step_dir("bandgap")
        write_bandgap_inputs(structure, s, d_gap, ispin=ispin)
        ispins["bandgap"] = ispin
        vr_gap = run_step("bandgap", d_gap)
        # The later steps read its CHGCAR and WAVECAR: give them its POSCAR to the last digit.
        structure = Poscar.from_file(str(d_gap / "POSCAR")).structure
        gap_ispin = int(vr_gap.parameters.get("ISPIN", ispin))
        optics_ispin = 1 if gap_ispin == 1 or _total_magnetization(d_gap) < NONMAGNETIC_MUB else 2

        d_opt = step_dir("optics")
        write_optics_inputs(structure, s, d_opt, ispin=optics_ispin, chgcar=self._needed(d_gap / "CHGCAR", material_id))
        ispins["optics"] = optics_ispin
        vr_opt = run_step("optics", d_opt)
        try:
            energy, eps_real, eps_imag = dielectric_arrays(vr_opt)
        except KeyError as exc:
            raise _step_error(
                f"{material_id}: VASP step 'optics': {d_opt / 'vasprun.xml'} has no <dielectricfunction> "
                f"(was LOPTICS = .TRUE. in {d_opt / 'INCAR'}?)",
                "optics",
                d_opt / "vasp.out",
            ) from exc
        dft_gap, dft_direct_gap = self._gaps(vr_opt, material_id, "optics", d_opt)
        eps_inf, eps_inf_diagonal = electronic_dielectric_constant(energy, eps_real)
        pbesol_gap_scf, _ = self._gaps(vr_gap, material_id, "bandgap", d_gap)

        gap_details: dict[str, Any] = {
            "method": GAP_METHOD if s.nsc_dd else "none",
            "dft_gap_source": "optics run eigenvalues (PBEsol+U, optics k-mesh)",
            "eps_inf": eps_inf,
            "eps_inf_diagonal": eps_inf_diagonal.tolist(),
            "eps_inf_source": "trace/3 of Re eps(omega=0) of the LOPTICS run (independent particles, no local fields)",
            "pbesol_gap_bandgap_mesh_ev": pbesol_gap_scf,
        }
        corrected_gap = dft_gap
        if s.nsc_dd:
            if not (math.isfinite(eps_inf) and eps_inf > 1.0):
                raise _step_error(
                    f"{material_id}: VASP step 'hybrid' needs eps_inf > 1 for AEXX = 1/eps_inf, but the optics run "
                    f"{d_opt / 'vasprun.xml'} gives eps_inf = {eps_inf}",
                    "hybrid",
                    d_opt / "vasp.out",
                )
            d_hyb = step_dir("hybrid")
            write_hybrid_inputs(
                structure,
                s,
                d_hyb,
                eps_inf=eps_inf,
                nbands=int(vr_gap.parameters["NBANDS"]),
                ispin=gap_ispin,
                wavecar=self._needed(d_gap / "WAVECAR", material_id),
            )
            ispins["hybrid"] = gap_ispin
            vr_hyb = run_step("hybrid", d_hyb)
            hybrid_gap, hybrid_direct_gap = self._gaps(vr_hyb, material_id, "hybrid", d_hyb)
            delta = hybrid_gap - pbesol_gap_scf
            corrected_gap = dft_gap + delta
            gap_details.update(
                aexx=nsc_dd_mixing(eps_inf),
                hfscreen=0.0,
                hybrid_gap_ev=hybrid_gap,
                hybrid_direct_gap_ev=hybrid_direct_gap,
                delta_ev=delta,
                formula="corrected_gap = dft_gap + (hybrid_gap - pbesol_gap_bandgap_mesh), "
                "both on the bandgap mesh and PBEsol+U orbitals (ALGO=Eigenval, NELM=1)",
            )

        record = {
            **s.to_dict(),
            "steps": list(timings),
            "ispin": ispins,
            "incar": {step: dict(Incar.from_file(str(workdir / step / "INCAR"))) for step in timings},
            "kpoints": {step: _kpoints_record(workdir / step / "KPOINTS") for step in timings},
            "potcar": list(vr_gap.potcar_symbols),
            "custodian_corrections": corrections,
        }
        return DielectricResult(
            material_id=material_id,
            engine=self.name,
            engine_version=str(vr_opt.vasp_version),
            structure=structure.as_dict(),
            energy_ev=energy,
            eps_real=eps_real,
            eps_imag=eps_imag,
            dft_gap_ev=dft_gap,
            dft_direct_gap_ev=dft_direct_gap,
            corrected_gap_ev=corrected_gap,
            gap_method=GAP_METHOD if s.nsc_dd else "none",
            total_energy_ev=float(vr_gap.final_energy),
            n_atoms=len(structure),
            energy_scale=ENERGY_SCALE,
            settings=record,
            gap_details=gap_details,
            timings_s=timings,
        )

    @staticmethod
    def _needed(path: Path, material_id: str) -> Path:
        """``path``, which the next step reads; a step that did not write it is a calculation error."""
        if not path.is_file():
            raise _step_error(
                f"{material_id}: VASP step '{path.parent.name}' finished without writing {path}, "
                "which the next step reads",
                path.parent.name,
                path.parent / "vasp.out",
            )
        return path

    @staticmethod
    def _gaps(vasprun: Vasprun, material_id: str, step: str, directory: Path) -> tuple[float, float]:
        """(gap, direct gap) in eV from the eigenvalues and occupations."""
        try:
            band_properties: Any = vasprun.eigenvalue_band_properties
            eigenvalues: Any = vasprun.eigenvalues
            gap = float(band_properties[0])
            direct = direct_gap_ev(eigenvalues, vasprun.occu_tol)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _step_error(
                f"{material_id}: VASP step '{step}': no usable eigenvalues in {directory / 'vasprun.xml'} ({exc})",
                step,
                directory / "vasp.out",
            ) from exc
        if not (math.isfinite(gap) and math.isfinite(direct)):
            raise _step_error(
                f"{material_id}: VASP step '{step}': {directory / 'vasprun.xml'} has no empty bands above the "
                "occupied ones, so no gap; raise NBANDS",
                step,
                directory / "vasp.out",
            )
        return gap, direct

    def _run_custodian(self, material_id: str, step: str, directory: Path) -> list[dict[str, Any]]:
        """Run VASP in ``directory`` under custodian; returns the corrections custodian made."""
        s = self.settings
        # auto_gamma=False: always run the command from the settings, never a guessed vasp_gam.
        job = VaspJob(vasp_cmd=list(s.command), auto_gamma=False, auto_npar=False)
        custodian = Custodian(
            standard_handlers(step),
            [job],
            validators=[VasprunXMLValidator()],
            max_errors=s.max_errors,
            polling_time_step=s.polling_time_s,
            monitor_freq=s.monitor_freq,
            directory=str(directory),
        )
        log = directory / "vasp.out"
        journal = directory / Custodian.LOG_FILE
        where = f"{material_id}: VASP step '{step}' in {directory}"
        try:
            with _custodian_log(directory / "custodian.log"), warnings.catch_warnings():
                if step == "hybrid":  # NELM = 1 by design; pymatgen calls that unconverged
                    warnings.simplefilter("ignore", UnconvergedVASPWarning)
                run_log = custodian.run()
        except ValidationError as exc:
            raise _step_error(
                f"{where}: {directory / 'vasprun.xml'} is missing, truncated or unreadable "
                f"(custodian's {type(exc.validator).__name__}); VASP output in {log}, custodian record in {journal}",
                step,
                log,
            ) from exc
        except CustodianError as exc:
            raise _step_error(
                f"{where} failed: {type(exc).__name__}: {exc.message} Corrections tried are in {journal}; "
                f"VASP output in {log}",
                step,
                log,
            ) from exc
        except FileNotFoundError as exc:
            raise ConfigError(
                f"cannot start VASP with command {s.command} ({exc}); set the VASP 'command' setting "
                "to how VASP is launched on this machine, e.g. 'srun vasp_std'"
            ) from exc
        # A handler that does not raise on an unrecoverable error ends the run quietly: check the record.
        if run_log and (run_log[-1].get("handler") is not None or run_log[-1].get("nonzero_return_code")):
            raise _step_error(
                f"{where} stopped on an unrecoverable error ({type(run_log[-1]['handler']).__name__}); "
                f"see {journal} and {log}",
                step,
                log,
            )
        return [
            {
                "handler": type(corr["handler"]).__name__,
                "errors": [str(e) for e in corr.get("errors", [])],
                "actions": corr.get("actions"),
            }
            for entry in run_log
            for corr in entry.get("corrections", [])
        ]
