"""VASP inputs of the five steps (relax, bandgap, optics, dfpt, hybrid) and writing them to disk.

The first four are pymatgen input sets generated from the structure; the hybrid is not
generated: it is the bandgap run's final inputs (custodian's corrections included) with the
hybrid tags changed (:func:`write_hybrid_inputs`).
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from pymatgen.core import SETTINGS, Structure
from pymatgen.io.vasp.inputs import Incar, VaspInput
from pymatgen.io.vasp.sets import MPNonSCFSet, MPRelaxSet, MPStaticSet, VaspInputSet

from optabs.dft.vasp.helpers import hubbard_u_incar, nsc_dd_mixing, optics_nbands
from optabs.dft.vasp.settings import DFPT_SIGMA, RELAX_EDIFF, RELAX_EDIFFG, SCF_EDIFF, VaspSettings
from optabs.errors import InputError

_EXPECTED_WARNINGS = (
    # We choose the POTCAR set on purpose (PBE_54 by default, MP's yaml says PBE).
    "Overriding the POTCAR functional",
)


def _as_structure(structure: Structure | Mapping[str, Any]) -> Structure:
    s = structure.copy() if isinstance(structure, Structure) else Structure.from_dict(dict(structure))
    if not s.is_ordered:
        raise InputError(f"VASP needs an ordered structure; {s.composition.reduced_formula} has partial occupancies")
    s.remove_oxidation_states()
    return s


@contextlib.contextmanager
def _pymatgen_context(settings: VaspSettings) -> Iterator[None]:
    """Use ``settings.potcar_dir`` as pymatgen's POTCAR library and hide the warnings we expect."""
    missing = object()
    previous = SETTINGS.get("PMG_VASP_PSP_DIR", missing)
    if settings.potcar_dir is not None:
        SETTINGS["PMG_VASP_PSP_DIR"] = settings.potcar_dir
    try:
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        if previous is missing:
            SETTINGS.pop("PMG_VASP_PSP_DIR", None)
        else:
            SETTINGS["PMG_VASP_PSP_DIR"] = previous


def _incar(structure: Structure, settings: VaspSettings, **step_tags: Any) -> dict[str, Any]:
    """PBEsol (GGA = PS) + U, the step's tags, then the user's overrides."""
    return {"GGA": "PS", **hubbard_u_incar(structure, settings.u_values), **step_tags, **settings.incar_overrides}


def _potcar_functional(settings: VaspSettings) -> Any:
    """The POTCAR set; pymatgen types it as a Literal of the names ``VaspSettings`` already checks."""
    return settings.potcar_functional


def _static_set(structure: Structure, settings: VaspSettings, incar: dict[str, Any]) -> MPStaticSet:
    """A static run with ``incar`` on the Gamma-centred mesh of ``scf_kpoints_density``."""
    density: Any = settings.scf_kpoints_density  # pymatgen annotates an int; any positive number works
    return MPStaticSet(
        structure,
        reciprocal_density=density,
        force_gamma=True,
        user_incar_settings=incar,
        user_potcar_functional=_potcar_functional(settings),
    )


def relax_input_set(structure: Structure, settings: VaspSettings) -> MPRelaxSet:
    """The relaxation: ``MPRelaxSet`` with PBEsol + U, EDIFF and EDIFFG of the method."""
    structure = _as_structure(structure)
    return MPRelaxSet(
        structure,
        user_incar_settings=_incar(structure, settings, EDIFF=RELAX_EDIFF, EDIFFG=RELAX_EDIFFG),
        user_potcar_functional=_potcar_functional(settings),
    )


def bandgap_input_set(structure: Structure, settings: VaspSettings, *, ispin: int = 2) -> MPStaticSet:
    """The self-consistent PBEsol+U static run that writes WAVECAR and CHGCAR."""
    structure = _as_structure(structure)
    tags = {"ISPIN": ispin, "EDIFF": SCF_EDIFF, "LWAVE": True, "LCHARG": True, "LORBIT": None}
    return _static_set(structure, settings, _incar(structure, settings, **tags))


def optics_input_set(structure: Structure, settings: VaspSettings, *, ispin: int = 2) -> MPNonSCFSet:
    """The LOPTICS run; needs the POTCARs (NELECT sets NBANDS): call inside :func:`_pymatgen_context`."""
    structure = _as_structure(structure)
    tags = {
        "ISPIN": ispin,
        "CSHIFT": settings.cshift,
        "NEDOS": settings.nedos,
        "ALGO": "Normal",  # Davidson: robust for the many empty bands
        "EDIFF": SCF_EDIFF,
        "LORBIT": None,
    }
    input_set = MPNonSCFSet(
        structure,
        mode="uniform",
        optics=True,
        nedos=settings.nedos,
        reciprocal_density=settings.kpoints_density,
        force_gamma=True,
        user_incar_settings=_incar(structure, settings, **tags),
        user_potcar_functional=_potcar_functional(settings),
    )
    n_ions = len(cast(Structure, input_set.structure))
    nbands = optics_nbands(input_set.nelect, n_ions, settings.nbands_factor, ispin == 2)
    input_set.user_incar_settings = {**input_set.user_incar_settings, "NBANDS": nbands}
    return input_set


def dfpt_input_set(structure: Structure, settings: VaspSettings, *, ispin: int = 2) -> MPStaticSet:
    """The DFPT run for eps_inf: the electronic (clamped-ion) dielectric tensor with local fields.

    pymatgen's ``MPStaticSet(lepsilon=True)`` (the Materials Project's dielectric runs) sets
    LEPSILON, LPEAD = .TRUE., IBRION = 8 and NSW = 1; IBRION = 8 adds the ionic (phonon) response,
    which eps_inf does not contain, so this run keeps LEPSILON and LPEAD with IBRION = -1, NSW = 0:
    the VASP wiki (LEPSILON) says LEPSILON alone "determines the static ion-clamped dielectric
    matrix ... with and without local field effects", and (LRPA) that LRPA = .FALSE. includes the
    changes of the exchange-correlation potential as well as the Hartree one, reported as
    "MACROSCOPIC STATIC DIELECTRIC TENSOR (including local field effects in DFT)" (vasprun.xml:
    ``epsilon``, pymatgen's ``Vasprun.epsilon_static``). Gaussian smearing ISMEAR = 0 with
    SIGMA = 0.01 eV as in the wiki's LEPSILON example (linear response of an insulator; no
    tetrahedra). No LOPTICS and no extra bands: DFPT needs only the occupied states. It runs
    self-consistently on the optics k-mesh (``kpoints_density``), so that its eps_inf and the
    LOPTICS Re eps(0) differ by the local fields and not by the mesh.
    """
    structure = _as_structure(structure)
    tags = {
        "ISPIN": ispin,
        "LEPSILON": True,
        "LRPA": False,
        "LPEAD": True,
        "IBRION": -1,
        "NSW": 0,
        "ISMEAR": 0,
        "SIGMA": DFPT_SIGMA,
        "EDIFF": SCF_EDIFF,
        "LWAVE": False,
        "LCHARG": False,
        "LORBIT": None,
    }
    density: Any = settings.kpoints_density
    return MPStaticSet(
        structure,
        reciprocal_density=density,
        force_gamma=True,
        user_incar_settings=_incar(structure, settings, **tags),
        user_potcar_functional=_potcar_functional(settings),
    )


def hybrid_incar(bandgap_incar: Mapping[str, Any], *, eps_inf: float, nbands: int) -> Incar:
    """The one-shot nsc-dd hybrid's INCAR: the bandgap run's final INCAR with only the hybrid tags changed.

    LHFCALC, AEXX = 1/eps_inf, HFSCREEN = 0 (PBE0-type), ALGO = Eigenval, NELM = 1, ISTART = 1
    (the bandgap WAVECAR), NBANDS = ``nbands`` (the bandgap run's, written out because VASP chose
    it), no WAVECAR/CHGCAR written, no ICHARG (a density file is not read) and no +U: exact
    exchange takes the place of the U. Everything else (ENCUT, PREC, LREAL, ISYM, ISPIN, MAGMOM,
    EDIFF, the user's overrides, custodian's corrections) stays as the bandgap run had it.
    """
    incar = {k: v for k, v in dict(bandgap_incar).items() if not k.startswith("LDAU") and k != "ICHARG"}
    incar.update(
        LDAU=False,
        LHFCALC=True,
        AEXX=nsc_dd_mixing(eps_inf),
        HFSCREEN=0.0,
        ALGO="Eigenval",
        NELM=1,
        ISTART=1,
        NBANDS=int(nbands),
        LWAVE=False,
        LCHARG=False,
    )
    return Incar(incar)


def _write(make_set: Callable[[], VaspInputSet], settings: VaspSettings, directory: str | Path) -> VaspInput:
    with _pymatgen_context(settings):
        vasp_input = make_set().get_input_set()
        vasp_input.write_input(str(directory), make_dir_if_not_present=True)
    return vasp_input


def write_relax_inputs(structure: Structure, settings: VaspSettings, directory: str | Path) -> VaspInput:
    """Write INCAR, KPOINTS, POSCAR, POTCAR of the relaxation into ``directory``."""
    return _write(lambda: relax_input_set(structure, settings), settings, directory)


def write_bandgap_inputs(
    structure: Structure, settings: VaspSettings, directory: str | Path, *, ispin: int = 2
) -> VaspInput:
    """Write the self-consistent PBEsol+U static run (CHGCAR and WAVECAR for the later steps)."""
    return _write(lambda: bandgap_input_set(structure, settings, ispin=ispin), settings, directory)


def write_optics_inputs(
    structure: Structure,
    settings: VaspSettings,
    directory: str | Path,
    *,
    ispin: int = 2,
    chgcar: str | Path | None = None,
) -> VaspInput:
    """Write the LOPTICS run (ICHARG = 11); ``chgcar``, the bandgap run's CHGCAR, is copied in."""
    vasp_input = _write(lambda: optics_input_set(structure, settings, ispin=ispin), settings, directory)
    if chgcar is not None:
        shutil.copyfile(chgcar, Path(directory) / "CHGCAR")
    return vasp_input


def write_dfpt_inputs(
    structure: Structure, settings: VaspSettings, directory: str | Path, *, ispin: int = 2
) -> VaspInput:
    """Write the DFPT (LEPSILON) run for eps_inf into ``directory``."""
    return _write(lambda: dfpt_input_set(structure, settings, ispin=ispin), settings, directory)


HYBRID_COPIED = ("KPOINTS", "POSCAR", "POTCAR", "WAVECAR")


def write_hybrid_inputs(bandgap_dir: str | Path, directory: str | Path, *, eps_inf: float, nbands: int) -> Incar:
    """Write the nsc-dd hybrid run from the bandgap run's final inputs; returns its INCAR.

    KPOINTS, POSCAR, POTCAR and WAVECAR are copied from ``bandgap_dir`` as they are after the run
    (custodian's corrections included), so the hybrid reads the WAVECAR with the mesh, cell, cutoff
    and band count that wrote it; the INCAR is :func:`hybrid_incar` of the bandgap's INCAR.
    ``nbands``: the bandgap run's NBANDS (its vasprun.xml). Raises :class:`InputError` naming a
    missing file.
    """
    bandgap_dir, directory = Path(bandgap_dir), Path(directory)
    for name in ("INCAR", *HYBRID_COPIED):
        if not (bandgap_dir / name).is_file():
            raise InputError(f"the hybrid step starts from the bandgap run's {name}, but {bandgap_dir / name} is missing")
    incar = hybrid_incar(Incar.from_file(str(bandgap_dir / "INCAR")), eps_inf=eps_inf, nbands=nbands)
    directory.mkdir(parents=True, exist_ok=True)
    for name in HYBRID_COPIED:
        shutil.copyfile(bandgap_dir / name, directory / name)
    incar.write_file(str(directory / "INCAR"))
    return incar
