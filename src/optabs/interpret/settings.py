"""Settings of the interpret stage."""

from __future__ import annotations

from dataclasses import dataclass

from optabs.config import Settings
from optabs.errors import ConfigError


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
        if isinstance(self.n_clusters, bool) or not isinstance(self.n_clusters, int) or self.n_clusters < 1:
            raise ConfigError(f"interpret setting 'n_clusters' must be a positive integer, got {self.n_clusters!r}")
        if not isinstance(self.layer, str) or not self.layer:
            raise ConfigError(f"interpret setting 'layer' must name a model layer (e.g. alignn_0), got {self.layer!r}")
