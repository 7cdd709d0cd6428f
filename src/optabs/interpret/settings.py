"""Settings of the interpret stage."""

from __future__ import annotations

from dataclasses import dataclass

from optabs.config import Settings


@dataclass(frozen=True)
class InterpretSettings(Settings):
    """How materials are clustered: ``n_clusters`` Ward clusters (the study: 96) of the model
    layer ``layer``'s features (the study: the first ALIGNN layer, ``alignn_0``), optionally
    ``standardize``d per feature first (the study did not)."""

    NAME = "interpret"

    n_clusters: int = 4
    layer: str = "alignn_0"
    standardize: bool = False

    def __post_init__(self) -> None:
        self.check_numbers("n_clusters", integer=True, minimum=1, inclusive=True)
        if not isinstance(self.layer, str) or not self.layer:
            raise self.invalid("layer", "the name of a model layer (e.g. alignn_0)")
