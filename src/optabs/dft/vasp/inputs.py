"""VASP input sets of the four steps (relax, bandgap, optics, hybrid) and writing them to disk."""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from pymatgen.core import SETTINGS, Structure
from pymatgen.io.vasp.inputs import VaspInput
from pymatgen.io.vasp.sets import MPNonSCFSet, MPRelaxSet, MPStaticSet, VaspInputSet

from optabs.dft.vasp.helpers import hubbard_u_incar, nsc_dd_mixing, optics_nbands
from optabs.dft.vasp.settings import RELAX_EDIFF, RELAX_EDIFFG, SCF_EDIFF, VaspSettings
from optabs.errors import InputError

_EXPECTED_WARNINGS = (
    # We choose the POTCAR set on purpose (PBE_54 by default, MP's yaml says PBE).
    "Overriding the POTCAR functional",
    # ALGO = Eigenval with LHFCALC is the non-self-consistent hybrid; pymatgen only knows SCF hybrids.
    "Hybrid functionals only support Algo",
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


def hybrid_input_set(
    structure: Structure, settings: VaspSettings, *, eps_inf: float, nbands: int, ispin: int = 2
) -> MPStaticSet:
    """The one-shot nsc-dd hybrid (AEXX = 1/eps_inf, ALGO = Eigenval, NELM = 1) without +U."""
    structure = _as_structure(structure)
    tags = {
        "LHFCALC": True,
        "AEXX": nsc_dd_mixing(eps_inf),
        "HFSCREEN": 0.0,  # unscreened: PBE0-type
        "ALGO": "Eigenval",
        "NELM": 1,
        "ISTART": 1,
        "NBANDS": int(nbands),
        "ISPIN": ispin,
        "EDIFF": SCF_EDIFF,
        "LWAVE": False,
        "LCHARG": False,
        "LORBIT": None,
    }
    incar = _incar(structure, settings, **tags)
    # Exact exchange takes the place of the U: no LDAU tags in the hybrid.
    incar = {k: v for k, v in incar.items() if not k.startswith("LDAU")} | {"LDAU": False}
    incar.update(settings.incar_overrides)
    return _static_set(structure, settings, incar)


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


def write_hybrid_inputs(
    structure: Structure,
    settings: VaspSettings,
    directory: str | Path,
    *,
    eps_inf: float,
    nbands: int,
    ispin: int = 2,
    wavecar: str | Path | None = None,
) -> VaspInput:
    """Write the nsc-dd hybrid run (AEXX = 1/eps_inf); ``wavecar``, the bandgap run's WAVECAR, is copied in.

    ``nbands`` and ``ispin`` must be those of the run that wrote the WAVECAR.
    """
    vasp_input = _write(
        lambda: hybrid_input_set(structure, settings, eps_inf=eps_inf, nbands=nbands, ispin=ispin),
        settings,
        directory,
    )
    if wavecar is not None:
        shutil.copyfile(wavecar, Path(directory) / "WAVECAR")
    return vasp_input
