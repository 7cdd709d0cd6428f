"""The production DFT engine: VASP, driven by pymatgen input sets and custodian.

The published method (optical spectra of oxides, after Takahashi, Kumagai, Oba et al.): PBEsol+U,
a relaxation, a dielectric-function run with many empty bands on a dense k-mesh, and the band gap
corrected by a non-self-consistent dielectric-dependent hybrid (nsc-dd). Four VASP runs, each in
its own folder under the material's work directory and each run by custodian with the standard
error handlers:

``relax``
    ``MPRelaxSet`` with GGA = PS and the +U map; ISIF = 3 (cell and ions), EDIFF = 1e-5,
    EDIFFG = -0.01 eV/A.
``bandgap``
    ``MPStaticSet`` on the relaxed cell: self-consistent PBEsol+U on a Gamma-centred mesh of
    ``scf_kpoints_density``, EDIFF = 1e-6, writing CHGCAR (for ``optics``) and WAVECAR (for
    ``hybrid``). Its total energy is the result's ``total_energy_ev``.
``optics``
    ``MPNonSCFSet(mode="uniform", optics=True)`` on the ``bandgap`` charge density (ICHARG = 11):
    LOPTICS, NBANDS = ceil(``nbands_factor`` x VASP's default NBANDS), CSHIFT, NEDOS, tetrahedron
    integration (ISMEAR = -5), ALGO = Normal, a Gamma-centred mesh of ``kpoints_density``.
    Gives eps(omega) and the PBEsol+U gap and direct gap of the spectrum.
``hybrid`` (only with ``nsc_dd``)
    One-shot PBE0-type hybrid on the ``bandgap`` orbitals: LHFCALC, AEXX = 1/eps_inf,
    HFSCREEN = 0, GGA = PS (semilocal part PBEsol), LDAU = .FALSE. (exact exchange replaces the U),
    ALGO = Eigenval, NELM = 1, ISTART = 1 with the ``bandgap`` WAVECAR, same mesh, NBANDS and ISPIN.
    VASP re-diagonalises the hybrid Hamiltonian in the space of the PBEsol+U orbitals without
    updating them, so the eigenvalues are non-self-consistent hybrid eigenvalues.

eps_inf is the electronic (clamped-ion) dielectric constant of the ``optics`` run:
trace/3 of Re eps(omega = 0) from LOPTICS, i.e. independent-particle PBEsol+U without local-field
effects (no extra LEPSILON run). The nsc-dd correction is applied as a shift measured on one set
of orbitals: ``corrected_gap = dft_gap + (E_g[hybrid] - E_g[PBEsol+U])``, both E_g on the
``bandgap`` mesh and orbitals, ``dft_gap`` from the ``optics`` run (the gap of the spectrum), so
that downstream scissor shifts move the spectrum by exactly the hybrid gap opening.

Spin: the relaxation starts ferromagnetic (MP MAGMOM); if its total magnetization is below
``NONMAGNETIC_MUB`` the later runs use ISPIN = 1 (``optics`` decides again from ``bandgap``;
``hybrid`` must match the WAVECAR it reads).

POTCARs: pymatgen's MP choice of potentials from the PBE_54 set by default (``potcar_functional``),
found through pymatgen (``PMG_VASP_PSP_DIR`` in ``~/.pmgrc.yaml``) or in the library folder
``VaspSettings.potcar_dir`` when it is set. Every run's final INCAR and KPOINTS (custodian's
corrections included), the POTCAR titles and the corrections themselves go into the result's
``settings``; energies are on the scale ``vasp-PBEsol+U``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from custodian.custodian import Custodian, CustodianError, ValidationError
from custodian.vasp.handlers import (
    FrozenJobErrorHandler,
    IncorrectSmearingHandler,
    LargeSigmaHandler,
    MeshSymmetryErrorHandler,
    NonConvergingErrorHandler,
    PositiveEnergyErrorHandler,
    PotimErrorHandler,
    StdErrHandler,
    UnconvergedErrorHandler,
    VaspErrorHandler,
)
from custodian.vasp.jobs import VaspJob
from custodian.vasp.validators import VasprunXMLValidator
from pymatgen.core import SETTINGS, Element, Structure
from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar, Potcar, VaspInput
from pymatgen.io.vasp.outputs import Oszicar, UnconvergedVASPWarning, Vasprun
from pymatgen.io.vasp.sets import MPNonSCFSet, MPRelaxSet, MPStaticSet, VaspInputSet

from optabs.dft import CalculationError, DielectricResult
from optabs.config import reject_unknown_keys
from optabs.errors import ConfigError, InputError

STEPS = ("relax", "bandgap", "optics", "hybrid")
ENERGY_SCALE = "vasp-PBEsol+U"
GAP_METHOD = "nsc-dd-hybrid"

# Materials Project U values (eV) for the d elements the chemistry criteria allow; the same
# numbers as LDAUU for oxides in pymatgen's MPRelaxSet.yaml (checked by a test). Mn, Fe, Co and
# Ni also have MP U values but are excluded by the criteria.
MP_U_VALUES: dict[str, float] = {"V": 3.25, "Cr": 3.7, "Mo": 4.38, "W": 6.2}

NONMAGNETIC_MUB = 0.05  # |total magnetization| per cell below which a run is treated as non-magnetic
RELAX_EDIFFG = -0.01  # eV/A: converge forces, not only the energy, before the optics
RELAX_EDIFF = 1e-5  # eV: forces accurate enough for EDIFFG (MP's 5e-5 eV/atom is for energies)
SCF_EDIFF = 1e-6  # eV: the bandgap orbitals and density feed the optics and hybrid steps

_EXPECTED_WARNINGS = (
    # We choose the POTCAR set on purpose (PBE_54 by default, MP's yaml says PBE).
    "Overriding the POTCAR functional",
    # ALGO = Eigenval with LHFCALC is the non-self-consistent hybrid; pymatgen only knows SCF hybrids.
    "Hybrid functionals only support Algo",
)


@dataclass
class VaspSettings:
    """Everything that defines a VASP optics calculation; defaults follow the published method.

    ``command``: how VASP is launched (list or shell-like string, e.g. ``"srun vasp_std"``).
    ``u_values``: Hubbard U in eV per element (Dudarev, on d states; f states for f elements),
    applied to the elements present. ``nbands_factor``: NBANDS of the optics run over VASP's default
    NBANDS. ``kpoints_density``: optics k-mesh in k-points per reciprocal-space volume (A^-3),
    pymatgen's ``reciprocal_density``; ``scf_kpoints_density`` the same for the bandgap and hybrid
    runs. ``cshift``: complex shift (Lorentzian broadening) in eV. ``nedos``: points of the
    dielectric-function energy grid. ``max_errors``: custodian corrections allowed per run.
    ``potcar_functional``: pymatgen's POTCAR set name. ``potcar_dir``: POTCAR library folder
    (pymatgen's PMG_VASP_PSP_DIR layout); None uses pymatgen's own setting. ``incar_overrides``:
    INCAR tags set in every run, meant for parallelisation (KPAR, NCORE); they are recorded with
    the result. ``polling_time_s`` and ``monitor_freq``: custodian's polling interval (s) and the
    number of polls between checks by monitoring handlers.
    """

    command: list[str] | str = "vasp_std"
    u_values: dict[str, float] = field(default_factory=lambda: dict(MP_U_VALUES))
    nbands_factor: float = 3.0
    kpoints_density: float = 400.0
    scf_kpoints_density: float = 100.0
    cshift: float = 0.1
    nedos: int = 3001
    max_errors: int = 5
    potcar_functional: str = "PBE_54"
    potcar_dir: str | None = None
    relax: bool = True
    nsc_dd: bool = True
    incar_overrides: dict[str, Any] = field(default_factory=dict)
    polling_time_s: float = 10.0
    monitor_freq: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.command, str):
            self.command = shlex.split(self.command)
        self.command = [str(part) for part in self.command]
        if not self.command:
            raise ConfigError("VASP setting 'command' is empty; set it to how VASP is launched, e.g. 'srun vasp_std'")
        self.u_values = {str(el): float(u) for el, u in dict(self.u_values).items()}
        for el, u in self.u_values.items():
            if not Element.is_valid_symbol(el):
                raise ConfigError(f"VASP setting 'u_values' has {el!r}, which is not an element symbol")
            if not math.isfinite(u) or u < 0:
                raise ConfigError(f"VASP setting 'u_values' has U = {u} eV for {el}; U must be >= 0")
        positive = {
            "nbands_factor": self.nbands_factor,
            "kpoints_density": self.kpoints_density,
            "scf_kpoints_density": self.scf_kpoints_density,
            "cshift": self.cshift,
            "polling_time_s": self.polling_time_s,
        }
        for key, value in positive.items():
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"VASP setting {key!r} must be a positive number, got {value!r}")
        if self.nbands_factor < 1:
            raise ConfigError(
                f"VASP setting 'nbands_factor' must be >= 1 (more bands than VASP's default), got {self.nbands_factor}"
            )
        for key in ("nedos", "max_errors", "monitor_freq"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"VASP setting {key!r} must be a positive integer, got {value!r}")
        if self.potcar_functional not in Potcar.FUNCTIONAL_CHOICES:
            raise ConfigError(
                f"VASP setting 'potcar_functional' is {self.potcar_functional!r}; "
                f"choose one of {', '.join(Potcar.FUNCTIONAL_CHOICES)}"
            )
        if self.potcar_dir is not None:
            self.potcar_dir = str(self.potcar_dir)
        self.incar_overrides = dict(self.incar_overrides)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VaspSettings:
        """Settings from a config mapping; an unknown key raises :class:`ConfigError` naming it."""
        reject_unknown_keys(cls, d, "dft.vasp")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- pure helpers


def _step_error(message: str, step: str, log_path: str | Path) -> CalculationError:
    """A :class:`CalculationError` that also names the step (read into ``FailureRecord.stage``)."""
    exc = CalculationError(message, log_path=log_path)
    exc.stage = step
    return exc


def vasp_default_nbands(nelect: float, n_ions: int, total_magmom: float = 0.0, spin_polarized: bool = False) -> int:
    """The NBANDS VASP picks when none is given (main.F; the same formula as custodian's
    ``VaspErrorHandler._default_nbands``): max(NINT(NELECT+2)/2 + max(NIONS/2, 3), INT(0.6 NELECT)),
    plus floor((sum(MAGMOM)+1)/2) when spin-polarized (VASP's default MAGMOM is 1 per ion)."""
    nbands = max(int(nelect + 2.5) // 2 + max(n_ions // 2, 3), int(0.6 * nelect))
    if spin_polarized:
        nbands += max(int((total_magmom + 1) // 2), 0)
    return nbands


def optics_nbands(nelect: float, n_ions: int, nbands_factor: float, spin_polarized: bool = False) -> int:
    """NBANDS of the optics run: ``nbands_factor`` times VASP's default, rounded up.

    The optics run writes no MAGMOM (the density comes from CHGCAR), so the default VASP would use
    counts 1 muB per ion when spin-polarized.
    """
    default = vasp_default_nbands(nelect, n_ions, total_magmom=float(n_ions), spin_polarized=spin_polarized)
    return int(math.ceil(nbands_factor * default))


def hubbard_u_incar(structure: Structure, u_values: Mapping[str, float]) -> dict[str, Any]:
    """INCAR tags of the +U map for the elements present (Dudarev, LDAUTYPE = 2).

    Element-keyed dicts, which pymatgen's input sets turn into per-species lists in POSCAR order
    (0 for species without U). No element with U > 0 present: ``{"LDAU": False}``.
    """
    present = {el.symbol for el in structure.composition.elements}
    u = {el: float(v) for el, v in u_values.items() if el in present and v > 0}
    if not u:
        return {"LDAU": False}
    return {
        "LDAU": True,
        "LDAUTYPE": 2,
        "LDAUU": u,
        "LDAUL": {el: 3 if Element(el).block == "f" else 2 for el in u},
        "LDAUJ": {el: 0.0 for el in u},
        "LDAUPRINT": 1,
    }


def nsc_dd_mixing(eps_inf: float) -> float:
    """Exact-exchange fraction AEXX = 1/eps_inf of the dielectric-dependent hybrid."""
    if not (math.isfinite(eps_inf) and eps_inf > 1.0):
        raise InputError(f"eps_inf must be a finite number > 1 for AEXX = 1/eps_inf, got {eps_inf}")
    return 1.0 / eps_inf


def electronic_dielectric_constant(energy_ev: np.ndarray, eps_real: np.ndarray) -> tuple[float, np.ndarray]:
    """eps_inf = trace/3 of Re eps(omega = 0), and the diagonal (xx, yy, zz).

    ``energy_ev`` (N,) increasing from 0, ``eps_real`` (N, 6) in the order xx yy zz xy yz xz.
    """
    energy_ev = np.asarray(energy_ev, dtype=float)
    eps_real = np.asarray(eps_real, dtype=float)
    diagonal = np.array([np.interp(0.0, energy_ev, eps_real[:, axis]) for axis in range(3)])
    return float(diagonal.mean()), diagonal


def direct_gap_ev(eigenvalues: Mapping[Any, np.ndarray], occu_tol: float = 1e-8) -> float:
    """Smallest vertical gap (same k-point, same spin) in eV; 0 for a metal.

    ``eigenvalues``: pymatgen's ``Vasprun.eigenvalues``, per spin an array (n_kpoints, n_bands, 2)
    of (energy, occupation). Returns inf when no k-point has both occupied and empty bands.
    """
    gaps = []
    for arr in eigenvalues.values():
        energy, occupation = arr[..., 0], arr[..., 1]
        vbm = np.where(occupation > occu_tol, energy, -np.inf).max(axis=1)
        cbm = np.where(occupation <= occu_tol, energy, np.inf).min(axis=1)
        gaps.append(np.min(cbm - vbm))
    gap = float(min(gaps))
    return max(gap, 0.0) if math.isfinite(gap) else gap


def standard_handlers(step: str) -> list:
    """custodian's standard VASP handler set (as atomate2 uses it) for one step.

    The hybrid step leaves out ``UnconvergedErrorHandler``: NELM = 1 is how it is non-self-consistent,
    and pymatgen counts a run that used all NELM electronic steps as unconverged.
    """
    handlers = [
        VaspErrorHandler(),
        MeshSymmetryErrorHandler(),
        UnconvergedErrorHandler(),
        NonConvergingErrorHandler(),
        PotimErrorHandler(),
        PositiveEnergyErrorHandler(),
        FrozenJobErrorHandler(),
        StdErrHandler(),
        LargeSigmaHandler(),
        IncorrectSmearingHandler(),
    ]
    if step == "hybrid":
        handlers = [h for h in handlers if not isinstance(h, UnconvergedErrorHandler)]
    return handlers


# ---------------------------------------------------------------- input sets


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


def relax_input_set(structure: Structure, settings: VaspSettings) -> MPRelaxSet:
    structure = _as_structure(structure)
    return MPRelaxSet(
        structure,
        user_incar_settings=_incar(structure, settings, EDIFF=RELAX_EDIFF, EDIFFG=RELAX_EDIFFG),
        user_potcar_functional=settings.potcar_functional,
    )


def bandgap_input_set(structure: Structure, settings: VaspSettings, *, ispin: int = 2) -> MPStaticSet:
    structure = _as_structure(structure)
    tags = {"ISPIN": ispin, "EDIFF": SCF_EDIFF, "LWAVE": True, "LCHARG": True, "LORBIT": None}
    return MPStaticSet(
        structure,
        reciprocal_density=settings.scf_kpoints_density,
        force_gamma=True,
        user_incar_settings=_incar(structure, settings, **tags),
        user_potcar_functional=settings.potcar_functional,
    )


def optics_input_set(structure: Structure, settings: VaspSettings, *, ispin: int = 2) -> MPNonSCFSet:
    """Needs the POTCARs (NELECT sets NBANDS): call inside :func:`_pymatgen_context`."""
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
        user_potcar_functional=settings.potcar_functional,
    )
    nbands = optics_nbands(input_set.nelect, len(input_set.structure), settings.nbands_factor, ispin == 2)
    input_set.user_incar_settings = {**input_set.user_incar_settings, "NBANDS": nbands}
    return input_set


def hybrid_input_set(
    structure: Structure, settings: VaspSettings, *, eps_inf: float, nbands: int, ispin: int = 2
) -> MPStaticSet:
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
    return MPStaticSet(
        structure,
        reciprocal_density=settings.scf_kpoints_density,
        force_gamma=True,
        user_incar_settings=incar,
        user_potcar_functional=settings.potcar_functional,
    )


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


# ---------------------------------------------------------------- outputs


def read_vasprun(path: str | Path, *, material_id: str = "", step: str = "") -> Vasprun:
    """Parse ``vasprun.xml``; a missing, truncated or corrupt file raises :class:`CalculationError` naming it."""
    path = Path(path)
    log = path.parent / "vasp.out"
    where = f"{material_id}: VASP step '{step}'" if step else (material_id or "VASP")
    if not path.is_file():
        raise _step_error(f"{where} wrote no {path}; see {log}", step, log)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnconvergedVASPWarning)  # the hybrid step has NELM = 1 by design
            return Vasprun(str(path), parse_dos=False, parse_potcar_file=False)
    except Exception as exc:  # lxml, ValueError, KeyError, ...: every parse failure means an unusable file
        raise _step_error(
            f"{where}: cannot parse {path} ({type(exc).__name__}: {exc}); the file is truncated or corrupt. "
            f"See {log}; delete the work directory to rerun.",
            step,
            log,
        ) from exc


def dielectric_arrays(vasprun: Vasprun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy (N,) in eV and Re, Im eps (N, 6) in our order xx yy zz xy yz xz.

    VASP writes xx yy zz xy yz zx; the tensor is symmetric, so zx is xz and the columns map 1:1.
    Raises KeyError when the run wrote no dielectric function.
    """
    energy, real, imag = vasprun.dielectric
    return np.asarray(energy, dtype=float), np.asarray(real, dtype=float), np.asarray(imag, dtype=float)


def _total_magnetization(directory: Path) -> float:
    """|total magnetization| (muB per cell) of the last ionic step in OSZICAR; 0 for ISPIN = 1."""
    try:
        steps = Oszicar(str(directory / "OSZICAR")).ionic_steps
    except (OSError, ValueError, IndexError, KeyError):
        return 0.0
    return abs(float(steps[-1].get("mag", 0.0))) if steps else 0.0


def _kpoints_record(path: Path) -> dict[str, Any]:
    kpoints = Kpoints.from_file(str(path))
    return {
        "style": kpoints.style.name,
        "kpts": [list(map(float, k)) for k in kpoints.kpts],
        "shift": list(map(float, kpoints.kpts_shift)),
        "comment": kpoints.comment,
    }


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


# ---------------------------------------------------------------- the engine


class VaspEngine:
    """Structure -> :class:`DielectricResult` with VASP (see the module docstring for the method)."""

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
            gap = float(vasprun.eigenvalue_band_properties[0])
            direct = direct_gap_ev(vasprun.eigenvalues, vasprun.occu_tol)
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
