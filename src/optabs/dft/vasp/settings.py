"""Settings of the VASP engine (:class:`VaspSettings`) and the constants of the published method."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymatgen.core import Element
from pymatgen.io.vasp.inputs import Potcar

from optabs.config import Settings
from optabs.errors import ConfigError

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


@dataclass(frozen=True)
class VaspSettings(Settings):
    """Everything that defines a VASP optics calculation; defaults follow the published method.

    ``command``: the VASP executable (list or shell-like string, e.g. ``"vasp_std"``); the workflow
    puts the job's MPI launcher before it (:func:`optabs.dft.stage.job_settings`).
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

    NAME: ClassVar[str] = "dft.vasp"

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
        command = shlex.split(self.command) if isinstance(self.command, str) else self.command
        object.__setattr__(self, "command", [str(part) for part in command])
        if not self.command:
            raise ConfigError("VASP setting 'command' is empty; set it to how VASP is launched, e.g. 'vasp_std'")
        object.__setattr__(self, "u_values", {str(el): float(u) for el, u in dict(self.u_values).items()})
        for el, u in self.u_values.items():
            if not Element.is_valid_symbol(el):
                raise ConfigError(f"VASP setting 'u_values' has {el!r}, which is not an element symbol")
            if not math.isfinite(u) or u < 0:
                raise ConfigError(f"VASP setting 'u_values' has U = {u} eV for {el}; U must be >= 0")
        self.check_numbers("kpoints_density", "scf_kpoints_density", "cshift", "polling_time_s")
        # at least VASP's default band count: the optics need more empty bands, never fewer
        self.check_numbers("nbands_factor", minimum=1, inclusive=True)
        self.check_numbers("nedos", "max_errors", "monitor_freq", integer=True, minimum=1, inclusive=True)
        self.check_choice("potcar_functional", Potcar.FUNCTIONAL_CHOICES)
        if self.potcar_dir is not None:
            object.__setattr__(self, "potcar_dir", str(self.potcar_dir))
        object.__setattr__(self, "incar_overrides", dict(self.incar_overrides))
