"""Settings of the VASP engine (:class:`VaspSettings`) and the constants of the published method."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymatgen.core import Element
from pymatgen.io.vasp.inputs import Potcar

from optabs.config import Settings
from optabs.errors import ConfigError

STEPS = ("relax", "bandgap", "optics", "dfpt", "hybrid")
ENERGY_SCALE = "vasp-PBEsol+U"
GAP_METHOD = "nsc-dd-hybrid"

# Materials Project U values (eV) for the d elements the chemistry criteria allow, per anion as
# in pymatgen's MPRelaxSet.yaml (LDAUU, checked by a test): the U applies only to oxides and
# fluorides, i.e. when O or F is the most electronegative element (the rule of pymatgen's input
# sets). Mn, Fe, Co and Ni also have MP U values but are excluded by the criteria.
_MP_U_METALS = {"V": 3.25, "Cr": 3.7, "Mo": 4.38, "W": 6.2}
MP_U_VALUES: dict[str, dict[str, float]] = {"O": dict(_MP_U_METALS), "F": dict(_MP_U_METALS)}
EPS_INF_METHODS = ("dfpt", "optics")

NONMAGNETIC_MUB = 0.05  # |total magnetization| per cell below which a run is treated as non-magnetic
RELAX_EDIFFG = -0.01  # eV/A: converge forces, not only the energy, before the optics
RELAX_EDIFF = 1e-5  # eV: forces accurate enough for EDIFFG (MP's 5e-5 eV/atom is for energies)
SCF_EDIFF = 1e-6  # eV: the bandgap orbitals and density feed the optics and hybrid steps
DFPT_SIGMA = 0.01  # eV, Gaussian smearing (ISMEAR = 0) of the DFPT run, as in the VASP wiki's LEPSILON example


@dataclass(frozen=True)
class VaspSettings(Settings):
    """Everything that defines a VASP optics calculation; defaults follow the published method.

    ``command``: the VASP executable (list or shell-like string, e.g. ``"vasp_std"``); the workflow
    puts the job's MPI launcher before it (:func:`optabs.dft.stage.job_settings`).
    ``u_values``: Hubbard U in eV (Dudarev, on d states; f states for f elements) per anion, then
    per element, as the Materials Project gives them: ``{"O": {"V": 3.25}, "F": {...}}``. A
    compound gets the U of the table of its most electronegative element (O: oxides, F:
    fluorides), on the elements present; sulfides, selenides and the rest get none. The flat form
    ``{"V": 3.25}`` is rejected (it would put U on sulfides too). ``eps_inf_method``: where the
    eps_inf of the hybrid's AEXX = 1/eps_inf comes from: ``"dfpt"`` (a LEPSILON run, electronic
    dielectric tensor with local-field effects) or ``"optics"`` (Re eps(0) of the LOPTICS run,
    independent particles). ``nbands_factor``: NBANDS of the optics run over VASP's default
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

    NAME: ClassVar[str] = "dft.vasp"

    command: list[str] | str = "vasp_std"
    u_values: dict[str, dict[str, float]] = field(default_factory=lambda: {a: dict(u) for a, u in MP_U_VALUES.items()})
    eps_inf_method: str = "dfpt"
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
        command = shlex.split(self.command) if isinstance(self.command, str) else self.command
        object.__setattr__(self, "command", [str(part) for part in command])
        if not self.command:
            raise ConfigError("VASP setting 'command' is empty; set it to how VASP is launched, e.g. 'vasp_std'")
        object.__setattr__(self, "u_values", _nested_u_values(self.u_values))
        self.check_choice("eps_inf_method", EPS_INF_METHODS)
        self.check_numbers("kpoints_density", "scf_kpoints_density", "cshift", "polling_time_s")
        # at least VASP's default band count: the optics need more empty bands, never fewer
        self.check_numbers("nbands_factor", minimum=1, inclusive=True)
        self.check_numbers("nedos", "max_errors", "monitor_freq", integer=True, minimum=1, inclusive=True)
        self.check_choice("potcar_functional", Potcar.FUNCTIONAL_CHOICES)
        if self.potcar_dir is not None:
            object.__setattr__(self, "potcar_dir", str(self.potcar_dir))
        object.__setattr__(self, "incar_overrides", dict(self.incar_overrides))


def _nested_u_values(u_values: Any) -> dict[str, dict[str, float]]:
    """``{anion: {element: U}}`` checked and as plain floats; the flat ``{element: U}`` form is an error."""
    if not isinstance(u_values, Mapping):
        raise ConfigError(f"VASP setting 'u_values': expected {{anion: {{element: U in eV}}}}, got {u_values!r}")
    flat = {k: v for k, v in u_values.items() if not isinstance(v, Mapping)}
    if flat:
        raise ConfigError(
            f"VASP setting 'u_values' has the flat form {flat!r}; U is applied per anion as the Materials "
            "Project does (oxides and fluorides only), so write it nested, e.g. "
            "u_values: {O: {V: 3.25, Cr: 3.7}, F: {V: 3.25, Cr: 3.7}}, or u_values: {} for no U"
        )
    out: dict[str, dict[str, float]] = {}
    for anion, table in u_values.items():
        anion = str(anion)
        if not Element.is_valid_symbol(anion):
            raise ConfigError(f"VASP setting 'u_values' has the anion {anion!r}, which is not an element symbol")
        out[anion] = {}
        for el, u in table.items():
            el = str(el)
            if not Element.is_valid_symbol(el):
                raise ConfigError(f"VASP setting 'u_values.{anion}' has {el!r}, which is not an element symbol")
            try:
                value = float(u)
            except (TypeError, ValueError):
                raise ConfigError(f"VASP setting 'u_values.{anion}' has U = {u!r} for {el}; expected a number") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"VASP setting 'u_values.{anion}' has U = {value} eV for {el}; U must be >= 0")
            out[anion][el] = value
    return out
