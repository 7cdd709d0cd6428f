"""Acquisition rules: which candidates to compute next, from a figure of merit's mean and sigma.

A figure of merit has a direction (``max``: larger is better, e.g. the visible-window
absorption; ``min``: smaller is better, e.g. the onset). Scores are oriented so that a larger
score is always picked first (``s = +1`` for max, ``-1`` for min):

``greedy``       s * mean                      (exploit the model)
``ucb``          s * mean + kappa * sigma      (upper confidence bound; kappa = 0 is greedy)
``uncertainty``  sigma                         (explore: the model's least sure candidates)
``random``       a seeded uniform draw         (the baseline every rule is compared with)

References: upper confidence bound as in Srinivas et al., ICML 2010 (GP-UCB); its use with
ensemble sigma for materials screening e.g. Lookman et al., npj Comput. Mater. 5, 21 (2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from optabs.errors import ConfigError

ACQUISITIONS = ("greedy", "ucb", "uncertainty", "random")


def acquisition_scores(
    rule: str, mean: np.ndarray, std: np.ndarray, direction: str = "max", kappa: float = 1.0, seed: int = 0
) -> np.ndarray:
    """(N,) scores of N candidates (larger = pick first) from their (N,) figure-of-merit ``mean`` and ``std``."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    if direction not in ("max", "min"):
        raise ConfigError(f"config key 'screen.merits': direction must be max or min, got {direction!r}")
    sign = 1.0 if direction == "max" else -1.0
    if rule == "greedy":
        return sign * mean
    if rule == "ucb":
        if not np.isfinite(kappa) or kappa < 0:
            raise ConfigError(f"config key 'screen.kappa': must be a number >= 0, got {kappa!r}")
        return sign * mean + kappa * std
    if rule == "uncertainty":
        return std.copy()
    if rule == "random":
        return np.asarray(np.random.default_rng(seed).random(mean.shape[0]), dtype=float)
    raise ConfigError(f"config key 'screen.acquisition': unknown rule {rule!r}; choose one of {', '.join(ACQUISITIONS)}")


def rank_order(ids: Sequence[str], scores: np.ndarray) -> np.ndarray:
    """Row indices from the best score down; NaN scores (no figure of merit) last; ties by material id."""
    scores = np.asarray(scores, dtype=float)
    key = np.where(np.isfinite(scores), -scores, np.inf)
    return np.lexsort((np.asarray(ids, dtype=object).astype(str), key))


def ranked(ids: Sequence[str], scores: np.ndarray) -> pd.DataFrame:
    """``material_id``, ``score``, ``rank`` (1 = pick first), best first."""
    order = rank_order(ids, scores)
    return pd.DataFrame({"material_id": np.asarray(ids, dtype=object)[order], "score": np.asarray(scores, float)[order],
                         "rank": np.arange(1, len(order) + 1)})
