"""The replay engine: a material's spectrum from a spectra database instead of a calculation.

``dft.engine: replay`` looks a material up in a database in ALIGNN folder format (files
``POSCAR_<formula>_<mp-id>.vasp`` and ``id_prop.csv``, whose rows are the file name and 1,501
values of log10 alpha (cm^-1) on 0-15 eV, floored at 2.0) and returns a
:class:`~optabs.dft.DielectricResult` from which the spectra stage rebuilds that very spectrum.
It exists to compare active-learning strategies on a database whose answers are known; it is
never the default, and its results say ``engine: replay``.

How the spectrum becomes a dielectric function. The spectra stage ignores an engine's eps_real:
it rebuilds eps_real from eps_imag by Kramers-Kronig on its work grid, then takes alpha. So
eps_imag must be the one whose own Kramers-Kronig partner gives back the database's alpha:

1. kappa = alpha hc / (4 pi E) on the database grid (0 where log10 alpha is at the floor:
   "no absorption"), continued above 15 eV by kappa(15 eV) (15 / E)^3 (the high-frequency
   decay of the extinction coefficient), tapered to 0 at 30 eV: a kappa that jumps to 0 at the
   grid's top would make n diverge there.
2. n = 1 + KK(kappa): the complex refractive index n + i kappa is causal like eps, so
   eps = (n + i kappa)^2 (eps_real = n^2 - kappa^2, eps_imag = 2 n kappa) is a causal, passive
   (n > 0) dielectric function whose Kramers-Kronig pair holds up to the discretisation
   (log10 alpha within ~1e-4 of the database).
3. Newton-Krylov on n, with the spectra stage's own discrete Kramers-Kronig and
   :func:`~optabs.spectra.absorption.absorption_coefficient`, removes that discretisation error:
   the round trip is exact to ~1e-13 in log10 alpha on the study's grid.

The gap is the first energy with log10 alpha above the floor; dft and corrected gaps are both it
(``gap_method`` "replay"), so the spectra stage's scissor shifts nothing and zeroes only points
already at the floor. There is no total energy (NaN, ``energy_scale`` "replay"): use
``dataset.stability: none`` (or ``mp``, whose energies come from the documents).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Structure
from scipy.optimize import NoConvergence, newton_krylov

from optabs import __version__
from optabs.config import Settings
from optabs.dft.result import CalculationError, DielectricResult
from optabs.grid import LOG10_ALPHA_FLOOR, TENSOR_DIAGONAL, Grid
from optabs.spectra.absorption import HC_EV_CM, absorption_coefficient
from optabs.spectra.transforms import kramers_kronig

#: The database's grid (the ALIGNN format's: 0-15 eV, 1,501 points) and the top of the result's grid (eV).
DATABASE_GRID = Grid()
TOP_EV = 2.0 * DATABASE_GRID.e_max_ev
#: An isotropic tensor: the diagonal (xx yy zz) of TENSOR_COMPONENTS, no off-diagonal part.
ISOTROPIC = np.array(TENSOR_DIAGONAL, dtype=float)
#: Newton-Krylov tolerance on the relative error of alpha.
TOLERANCE = 1e-12


@dataclass(frozen=True)
class ReplaySettings(Settings):
    """``dft.replay``: ``dataset_dir``, the database folder (``id_prop.csv`` and the POSCARs)."""

    NAME: ClassVar[str] = "dft.replay"

    dataset_dir: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.dataset_dir, str) or not self.dataset_dir.strip():
            raise self.invalid("dataset_dir", "the folder of a spectra database (id_prop.csv and POSCARs)")
        if not (Path(self.dataset_dir) / "id_prop.csv").is_file():
            raise self.invalid("dataset_dir", "a folder holding id_prop.csv, but it has none")


def read_spectrum(dataset_dir: str | Path, material_id: str) -> tuple[str, np.ndarray]:
    """The file name and log10 alpha (shape (1501,)) of ``material_id`` in ``dataset_dir/id_prop.csv``.

    Ids match as the ``files`` source derives them from file names. Only the matching row is
    parsed. Raises :class:`CalculationError` if the material is not in the database.
    """
    from optabs.structures.files import material_id_from_filename

    path = Path(dataset_dir) / "id_prop.csv"
    with path.open() as fh:
        for line in fh:
            name, _, values = line.partition(",")
            if material_id_from_filename(Path(name.strip())) == material_id:
                spectrum = np.array(values.split(","), dtype=float)
                if spectrum.shape != (DATABASE_GRID.n_points,):
                    raise CalculationError(
                        f"{path}: the row of {name} has {spectrum.size} values, expected {DATABASE_GRID.n_points} (0-15 eV)",
                        stage="replay",
                    )
                return name.strip(), spectrum
    raise CalculationError(f"material {material_id} is not in the database {path}", stage="replay")


def dielectric_from_log10_alpha(log10_alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(energy_ev, eps_real, eps_imag)`` (each (M,), 0 to :data:`TOP_EV` eV) whose Kramers-Kronig
    alpha reproduces ``log10_alpha`` (the database's grid) after flooring; see the module docstring."""
    grid = DATABASE_GRID.energy_ev
    step = (grid[-1] - grid[0]) / (grid.size - 1)
    # exactly the spectra stage's work grid (optabs.spectra.corrected), so no interpolation changes a value
    energy = grid[0] + step * np.arange(int(round((TOP_EV - grid[0]) / step)) + 1)
    n_db = grid.size
    alpha = np.where(log10_alpha > LOG10_ALPHA_FLOOR, 10.0 ** log10_alpha, 0.0)
    kappa = np.zeros_like(energy)
    kappa[1:n_db] = alpha[1:] * HC_EV_CM / (4.0 * np.pi * energy[1:n_db])
    top = energy[n_db - 1]
    above = energy > top
    taper = np.cos(0.5 * np.pi * (energy[above] - top) / (TOP_EV - top)) ** 2
    kappa[above] = kappa[n_db - 1] * (top / energy[above]) ** 3 * taper
    target = np.where(kappa > 0.0, kappa, 1.0)

    def residual(n: np.ndarray) -> np.ndarray:
        eps_imag = 2.0 * n * kappa
        eps_real = kramers_kronig(energy, np.maximum(eps_imag, 0.0))
        k = absorption_coefficient(energy, eps_real, eps_imag) * HC_EV_CM / (4.0 * np.pi * np.maximum(energy, step))
        return np.where(kappa > 0.0, k / target - 1.0, 0.0)

    n = kramers_kronig(energy, kappa)
    if kappa.any():
        try:
            n = newton_krylov(residual, n, f_tol=TOLERANCE, maxiter=50)
        except NoConvergence as exc:  # keep the last iterate: close, and its error is recorded
            n = np.asarray(exc.args[0])
    eps_imag = 2.0 * n * kappa
    if (eps_imag < 0.0).any():
        raise CalculationError("the replayed spectrum needs a negative refractive index: no passive medium fits it",
                               stage="replay")
    return energy, kramers_kronig(energy, eps_imag), eps_imag


@dataclass
class ReplayEngine:
    """Replays spectra from a database (see the module docstring)."""

    settings: ReplaySettings
    name: str = "replay"

    def run(self, material_id: str, structure: Any, workdir: Path) -> DielectricResult:
        """The database's spectrum of ``material_id`` as a result; :class:`CalculationError` if absent."""
        file_name, log10_alpha = read_spectrum(self.settings.dataset_dir, material_id)
        energy, eps_real, eps_imag = dielectric_from_log10_alpha(log10_alpha)
        absorbing = log10_alpha > LOG10_ALPHA_FLOOR
        # the first absorbing point of the work grid itself, so "below the gap" is exactly the floored points
        gap = float(energy[np.argmax(absorbing)]) if absorbing.any() else float(DATABASE_GRID.e_max_ev)
        cell = structure if isinstance(structure, Structure) else Structure.from_dict(structure)
        return DielectricResult(
            material_id=material_id,
            engine=self.name,
            engine_version=__version__,
            structure=cell.as_dict(),
            energy_ev=energy,
            eps_real=eps_real[:, None] * ISOTROPIC,
            eps_imag=eps_imag[:, None] * ISOTROPIC,
            dft_gap_ev=gap,
            dft_direct_gap_ev=gap,
            corrected_gap_ev=gap,
            gap_method="replay",
            total_energy_ev=float("nan"),
            n_atoms=len(cell),
            energy_scale="replay",
            settings={"dataset_dir": str(self.settings.dataset_dir), "file": file_name},
            gap_details={"definition": f"first energy with log10 alpha > {LOG10_ALPHA_FLOOR}",
                         "absorbs": bool(absorbing.any())},
        )
