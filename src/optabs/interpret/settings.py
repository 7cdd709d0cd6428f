"""Settings of the interpret stage."""

from __future__ import annotations

from dataclasses import dataclass

from optabs.config import Settings


@dataclass(frozen=True)
class InterpretSettings(Settings):
    """How materials are clustered: ``n_clusters`` Ward clusters (the study: 96) of the model
    layer ``layer``'s features (the study: the first ALIGNN layer, ``alignn_0``), optionally
    ``standardize``d per feature first (the study did not). ``sweep_k``: the K values at which
    every embedding layer and the raw spectra are clustered and compared (capped at the number of
    materials; the robustness check of the comparison). ``motif_q_max``: Benjamini-Hochberg q at
    which a cluster's motif counts as significant."""

    NAME = "interpret"

    n_clusters: int = 4
    layer: str = "alignn_0"
    standardize: bool = False
    sweep_k: tuple[int, ...] = (12, 24, 48, 96)
    motif_q_max: float = 0.01

    def __post_init__(self) -> None:
        self.check_numbers("n_clusters", integer=True, minimum=1, inclusive=True)
        ks = self.sweep_k
        if isinstance(ks, (str, bytes)) or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
            raise self.invalid("sweep_k", "a list of integers >= 1 (e.g. [12, 24, 48, 96])")
        object.__setattr__(self, "sweep_k", tuple(ks))
        if not 0 < self.motif_q_max <= 1:
            raise self.invalid("motif_q_max", "a q-value in (0, 1]")
        if not isinstance(self.layer, str) or not self.layer:
            raise self.invalid("layer", "the name of a model layer (e.g. alignn_0)")
