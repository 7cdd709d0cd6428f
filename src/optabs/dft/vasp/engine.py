"""The VASP engine: relax -> bandgap -> optics -> dfpt -> hybrid, each step run by custodian."""

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

import numpy as np
from custodian.custodian import Custodian, CustodianError, ValidationError
from custodian.vasp.jobs import VaspJob
from custodian.vasp.validators import VasprunXMLValidator
from pymatgen.core import Structure
from pymatgen.io.vasp.inputs import Incar, Poscar
from pymatgen.io.vasp.outputs import UnconvergedVASPWarning, Vasprun

from optabs.dft.result import DielectricResult
from optabs.dft.vasp.helpers import (
    _step_error,
    dfpt_dielectric_constant,
    direct_gap_ev,
    electronic_dielectric_constant,
    standard_handlers,
)
from optabs.dft.vasp.inputs import (
    _as_structure,
    write_bandgap_inputs,
    write_dfpt_inputs,
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
        """Run relax -> bandgap -> optics -> dfpt -> hybrid in ``workdir/<step>``.

        Each step folder is emptied first: a rerun never reads the outputs of an earlier attempt.
        Raises :class:`CalculationError` (naming the step, the file and the log) on a failure worth
        recording, :class:`ConfigError` when the VASP command cannot be started at all.
        """
        try:
            structure = _as_structure(structure)
        except InputError as exc:
            raise InputError(f"{material_id}: {exc}") from exc
        chain = _Chain(self, material_id, Path(workdir))
        ispin = 2
        if self.settings.relax:
            structure, ispin = chain.relax(structure)
        structure, vr_gap, gap_ispin = chain.bandgap(structure, ispin)
        energy, eps_real, eps_imag, vr_opt = chain.optics(structure, vr_gap, gap_ispin)
        gap_details, (dft_gap, dft_direct_gap, corrected_gap) = chain.gaps(structure, vr_gap, vr_opt, energy, eps_real)
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
            gap_method=GAP_METHOD if self.settings.nsc_dd else "none",
            total_energy_ev=float(vr_gap.final_energy),
            n_atoms=len(structure),
            energy_scale=ENERGY_SCALE,
            settings=chain.record(vr_gap),
            gap_details=gap_details,
            timings_s=chain.timings,
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
                f"cannot start VASP with command {s.command} ({exc}); set config key 'dft.vasp.command' "
                "to the VASP executable on this machine (e.g. 'vasp_std', or its full path) and the rule's "
                "'mpi' resource to this machine's MPI launcher (srun, mpirun) or ''"
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


class _Chain:
    """One material's run through the VASP steps: their folders, timings, corrections and ISPIN."""

    def __init__(self, engine: VaspEngine, material_id: str, workdir: Path):
        self.engine, self.settings, self.material_id, self.workdir = engine, engine.settings, material_id, workdir
        self.timings: dict[str, float] = {}
        self.corrections: dict[str, list[dict[str, Any]]] = {}
        self.ispins: dict[str, int] = {}

    def folder(self, step: str) -> Path:
        """An empty ``workdir/<step>``: a rerun never reads an earlier attempt's outputs."""
        d = self.workdir / step
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def run_step(self, step: str, directory: Path, ispin: int) -> Vasprun:
        """Run one step under custodian (timed, corrections kept) and read its vasprun.xml."""
        self.ispins[step] = ispin
        start = time.perf_counter()
        self.corrections[step] = self.engine._run_custodian(self.material_id, step, directory)
        self.timings[step] = time.perf_counter() - start
        return read_vasprun(directory / "vasprun.xml", material_id=self.material_id, step=step)

    def relax(self, structure: Structure) -> tuple[Structure, int]:
        """Relax spin-polarized; returns the relaxed structure and the ISPIN its magnetization calls for."""
        d = self.folder("relax")
        write_relax_inputs(structure, self.settings, d)
        relaxed = self.run_step("relax", d, 2)
        return relaxed.final_structure, 1 if _total_magnetization(d) < NONMAGNETIC_MUB else 2

    def bandgap(self, structure: Structure, ispin: int) -> tuple[Structure, Vasprun, int]:
        """The self-consistent run whose density and orbitals the later steps read."""
        d = self.folder("bandgap")
        write_bandgap_inputs(structure, self.settings, d, ispin=ispin)
        vr_gap = self.run_step("bandgap", d, ispin)
        # The later steps read its CHGCAR and WAVECAR: give them its POSCAR to the last digit.
        structure = Poscar.from_file(str(d / "POSCAR")).structure
        return structure, vr_gap, int(vr_gap.parameters.get("ISPIN", ispin))

    def optics(self, structure: Structure, vr_gap: Vasprun, gap_ispin: int) -> tuple[Any, Any, Any, Vasprun]:
        """The LOPTICS run on the bandgap density: energies (eV) and the (N, 6) eps tensors."""
        d_gap, d_opt = self.workdir / "bandgap", self.folder("optics")
        optics_ispin = 1 if gap_ispin == 1 or _total_magnetization(d_gap) < NONMAGNETIC_MUB else 2
        chgcar = self.engine._needed(d_gap / "CHGCAR", self.material_id)
        write_optics_inputs(structure, self.settings, d_opt, ispin=optics_ispin, chgcar=chgcar)
        vr_opt = self.run_step("optics", d_opt, optics_ispin)
        try:
            energy, eps_real, eps_imag = dielectric_arrays(vr_opt)
        except KeyError as exc:
            raise _step_error(
                f"{self.material_id}: VASP step 'optics': {d_opt / 'vasprun.xml'} has no <dielectricfunction> "
                f"(was LOPTICS = .TRUE. in {d_opt / 'INCAR'}?)",
                "optics",
                d_opt / "vasp.out",
            ) from exc
        return energy, eps_real, eps_imag, vr_opt

    def gaps(
        self, structure: Structure, vr_gap: Vasprun, vr_opt: Vasprun, energy: Any, eps_real: Any
    ) -> tuple[dict[str, Any], tuple[float, float, float]]:
        """The gap details and (DFT gap, DFT direct gap, corrected gap) in eV, running dfpt and hybrid if asked."""
        d_gap, d_opt = self.workdir / "bandgap", self.workdir / "optics"
        dft_gap, dft_direct_gap = VaspEngine._gaps(vr_opt, self.material_id, "optics", d_opt)
        eps_optics, eps_optics_diagonal = electronic_dielectric_constant(energy, eps_real)
        pbesol_gap_scf, _ = VaspEngine._gaps(vr_gap, self.material_id, "bandgap", d_gap)
        gap_details: dict[str, Any] = {
            "method": GAP_METHOD if self.settings.nsc_dd else "none",
            "dft_gap_source": "optics run eigenvalues (PBEsol+U, optics k-mesh)",
            "eps_inf_optics": eps_optics,
            "eps_inf_optics_diagonal": eps_optics_diagonal.tolist(),
            "eps_inf_dfpt": None,
            "eps_inf_dfpt_tensor": None,
            "eps_inf_dfpt_no_local_fields": None,
            "pbesol_gap_bandgap_mesh_ev": pbesol_gap_scf,
        }
        method = self.settings.eps_inf_method if self.settings.nsc_dd else "optics"
        if method == "dfpt":
            eps_dfpt, tensor, eps_no_lf = self.dfpt(structure)
            gap_details.update(
                eps_inf_dfpt=eps_dfpt, eps_inf_dfpt_tensor=tensor.tolist(), eps_inf_dfpt_no_local_fields=eps_no_lf
            )
            eps_inf, diagonal = eps_dfpt, np.diag(tensor)
            source = (
                "trace/3 of the DFPT electronic dielectric tensor of the dfpt run (LEPSILON, LRPA = .FALSE.: "
                "clamped ions, local fields in DFT; vasprun.xml 'epsilon')"
            )
        else:
            eps_inf, diagonal = eps_optics, eps_optics_diagonal
            source = "trace/3 of Re eps(omega=0) of the LOPTICS run (independent particles, no local fields)"
        gap_details.update(
            eps_inf_method=method, eps_inf=eps_inf, eps_inf_diagonal=np.asarray(diagonal).tolist(), eps_inf_source=source
        )
        if not self.settings.nsc_dd:
            return gap_details, (dft_gap, dft_direct_gap, dft_gap)
        hybrid_gap, hybrid_direct_gap, aexx = self.hybrid(vr_gap, eps_inf, method)
        delta = hybrid_gap - pbesol_gap_scf
        gap_details.update(
            aexx=aexx,
            hfscreen=0.0,
            hybrid_gap_ev=hybrid_gap,
            hybrid_direct_gap_ev=hybrid_direct_gap,
            delta_ev=delta,
            formula="corrected_gap = dft_gap + (hybrid_gap - pbesol_gap_bandgap_mesh), "
            "both on the bandgap mesh and PBEsol+U orbitals (ALGO=Eigenval, NELM=1)",
        )
        return gap_details, (dft_gap, dft_direct_gap, dft_gap + delta)

    def dfpt(self, structure: Structure) -> tuple[float, Any, float | None]:
        """The DFPT (LEPSILON) run: eps_inf = trace/3, the 3x3 tensor, and trace/3 without local fields (or None)."""
        d = self.folder("dfpt")
        ispin = self.ispins.get("optics", 1)  # the magnetic state the optics step settled on
        write_dfpt_inputs(structure, self.settings, d, ispin=ispin)
        vr = self.run_step("dfpt", d, ispin)
        try:
            eps_inf, tensor = dfpt_dielectric_constant(vr.epsilon_static)
        except ValueError as exc:
            raise _step_error(
                f"{self.material_id}: VASP step 'dfpt': {d / 'vasprun.xml'} has no usable electronic dielectric "
                f"tensor <varray name=\"epsilon\"> ({exc}); was LEPSILON = .TRUE. in {d / 'INCAR'}?",
                "dfpt",
                d / "vasp.out",
            ) from exc
        try:
            eps_no_lf: float | None = dfpt_dielectric_constant(vr.epsilon_static_wolfe)[0]
        except ValueError:
            eps_no_lf = None  # informative only: VASP versions differ in writing it
        return eps_inf, tensor, eps_no_lf

    def hybrid(self, vr_gap: Vasprun, eps_inf: float, method: str) -> tuple[float, float, float]:
        """The non-self-consistent dielectric-dependent hybrid on the bandgap run's final inputs and WAVECAR.

        Returns (gap, direct gap, AEXX), the gaps in eV.
        """
        d_gap = self.workdir / "bandgap"
        source = self.workdir / ("dfpt" if method == "dfpt" else "optics")
        if not (math.isfinite(eps_inf) and eps_inf > 1.0):
            raise _step_error(
                f"{self.material_id}: VASP step 'hybrid' needs eps_inf > 1 for AEXX = 1/eps_inf, but the {method} run "
                f"{source / 'vasprun.xml'} gives eps_inf = {eps_inf}",
                "hybrid",
                source / "vasp.out",
            )
        self.engine._needed(d_gap / "WAVECAR", self.material_id)
        d_hyb = self.folder("hybrid")
        incar = write_hybrid_inputs(d_gap, d_hyb, eps_inf=eps_inf, nbands=int(vr_gap.parameters["NBANDS"]))
        vr_hyb = self.run_step("hybrid", d_hyb, int(incar.get("ISPIN", 1)))
        return (*VaspEngine._gaps(vr_hyb, self.material_id, "hybrid", d_hyb), float(incar["AEXX"]))

    def record(self, vr_gap: Vasprun) -> dict[str, Any]:
        """Every setting and input that produced the result, per step."""
        return {
            **self.settings.to_dict(),
            "steps": list(self.timings),
            "ispin": self.ispins,
            "incar": {step: dict(Incar.from_file(str(self.workdir / step / "INCAR"))) for step in self.timings},
            "kpoints": {step: _kpoints_record(self.workdir / step / "KPOINTS") for step in self.timings},
            "potcar": list(vr_gap.potcar_symbols),
            "custodian_corrections": self.corrections,
        }
