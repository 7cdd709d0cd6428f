"""The common energy grid and the conventions of a stored spectrum, defined once.

Every stage that writes or reads log10 alpha spectra uses :class:`Grid`: the photon energies
(eV) the spectra are sampled on, the floor they are clipped at and the threshold that defines
the absorption onset. A model checkpoint stores its grid (:meth:`Grid.to_dict`), so predicting
with it needs no grid options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from optabs.config import Settings

#: Order of the six independent components of a symmetric dielectric tensor.
TENSOR_COMPONENTS: tuple[str, ...] = ("xx", "yy", "zz", "xy", "yz", "xz")
#: Which of ``TENSOR_COMPONENTS`` are diagonal.
TENSOR_DIAGONAL: tuple[bool, ...] = (True, True, True, False, False, False)
#: The study's spectra are log10(alpha / cm^-1) clipped below at 2.0 ...
LOG10_ALPHA_FLOOR: float = 2.0
#: ... and the onset is the lowest energy where log10 alpha first exceeds 2.5.
ONSET_THRESHOLD: float = 2.5


@dataclass(frozen=True)
class Grid(Settings):
    """The common uniform energy grid (eV) and the log10 alpha conventions.

    Defaults are the study's: 0-15 eV in 1,501 points (0.01 eV steps), log10(alpha / cm^-1)
    clipped below at :data:`LOG10_ALPHA_FLOOR`, onset where it first exceeds :data:`ONSET_THRESHOLD`.
    """

    NAME = "spectra"

    e_min_ev: float = 0.0
    e_max_ev: float = 15.0
    n_points: int = 1501
    log10_alpha_floor: float = LOG10_ALPHA_FLOOR
    onset_threshold: float = ONSET_THRESHOLD

    def __post_init__(self) -> None:
        self.check_numbers("e_min_ev", inclusive=True)
        self.check_numbers("e_max_ev", minimum=self.e_min_ev)
        self.check_numbers("n_points", integer=True, minimum=2, inclusive=True)
        self.check_numbers("log10_alpha_floor", "onset_threshold", minimum=None)

    @property
    def energy_ev(self) -> NDArray[np.float64]:
        """(n_points,) energies in eV."""
        return np.linspace(self.e_min_ev, self.e_max_ev, self.n_points)
