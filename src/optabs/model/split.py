"""The seeded train / validation / test split of the materials."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from optabs.model.settings import ModelSettings


def split_ids(ids: Sequence[str], settings: ModelSettings) -> dict[str, str]:
    """``{material_id: "train" | "val" | "test"}``, seeded by ``settings.seed``.

    The ids are sorted first, so the split depends only on the set of ids and the seed, never
    on their order. Sizes follow alignn: ``floor(val_fraction * n)`` validation and
    ``floor(test_fraction * n)`` test materials, the rest training; with 3 or more materials
    validation and test get at least one each (where their fraction is not zero).
    """
    ordered = sorted(set(ids))
    n = len(ordered)
    n_val = int(math.floor(settings.val_fraction * n + 1e-9))
    n_test = int(math.floor(settings.test_fraction * n + 1e-9))
    if n >= 3:
        n_val = max(n_val, 1 if settings.val_fraction > 0 else 0)
        n_test = max(n_test, 1 if settings.test_fraction > 0 else 0)
    order = np.random.default_rng(settings.seed).permutation(n)
    labels = np.full(n, "train", dtype=object)
    labels[order[:n_val]] = "val"
    labels[order[n_val : n_val + n_test]] = "test"
    return dict(zip(ordered, labels.tolist()))
