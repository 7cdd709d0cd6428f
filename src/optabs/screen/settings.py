"""Settings of the screen stage (config section ``screen``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optabs.config import Settings
from optabs.screen.acquisition import ACQUISITIONS

#: The figures of merit of a config that names none (schemas/config.schema.yaml has the same).
DEFAULT_MERITS: Mapping[str, Mapping[str, Any]] = {
    "onset": {"kind": "onset"},
    "visible_mean": {"kind": "window_mean", "e_min_ev": 1.6, "e_max_ev": 3.3},
    "slme_1um": {"kind": "slme", "thickness_um": 1.0},
}


@dataclass(frozen=True)
class ScreenSettings(Settings):
    """What is ranked and how (see :mod:`optabs.screen.acquisition` and :mod:`optabs.screen.merit`).

    ``merits``: name -> definition of every figure of merit computed for each candidate (per
    ensemble member: mean and sigma); ``merit``: the one the ``acquisition`` rule ranks on
    (``kappa``: the weight of sigma in ``ucb``). ``batch``: the shortlist's length, the DFT work
    of one active-learning round; ``rounds``: how many rounds (0: rank once). ``initial_fraction``:
    the seeded share of the filtered structures computed before round 1 (``seed`` seeds it and the
    ``random`` rule). ``candidates_dir``: an extra CIF/POSCAR folder of candidates. ``calibrate``:
    widen (or narrow) the ensemble's spread by the factor its validation split asks for, so that
    the sigma the ranking uses is calibrated (small deep ensembles are overconfident: on the
    1,116 oxides 5 members put 78.9 % of the test points inside +-2 sigma, and 95.5 % with the
    validation's factor 2.40; ``bench_calibration``).
    """

    NAME = "screen"

    merit: str = "visible_mean"
    merits: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_MERITS))
    acquisition: str = "ucb"
    kappa: float = 1.0
    batch: int = 5
    rounds: int = 0
    initial_fraction: float = 1.0
    seed: int = 0
    candidates_dir: str = ""
    calibrate: bool = True

    def __post_init__(self) -> None:
        from optabs.screen.merit import ranked_merit

        self.check_choice("acquisition", ACQUISITIONS)
        self.check_numbers("kappa", inclusive=True)
        self.check_numbers("batch", integer=True, minimum=1, inclusive=True)
        self.check_numbers("rounds", integer=True, inclusive=True)
        self.check_numbers("seed", integer=True, minimum=None)
        if not isinstance(self.calibrate, bool):
            raise self.invalid("calibrate", "true or false")
        if not 0 < self.initial_fraction <= 1:
            raise self.invalid("initial_fraction", "a share in (0, 1]")
        ranked_merit({"merit": self.merit, "merits": dict(self.merits)})
