"""Fixtures shared by the model tests: the ten-material toy dataset and its graphs (built once per module)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_model import make_dataset, tiny_settings

from optabs.model.graphs import build_graphs, structures_of


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    return make_dataset()


@pytest.fixture(scope="module")
def graphs(dataset):
    built, failures = build_graphs(structures_of(dataset), tiny_settings())
    assert failures == []
    return built
