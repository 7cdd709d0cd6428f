"""The structures stage's split into computed now (kept.parquet) and screening candidates (candidates.parquet)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pymatgen.core import Lattice, Structure

from optabs.errors import InputError
from optabs.structures import CANDIDATE_COLUMNS, Candidate
from optabs.structures.stage import initial_share, run_structures_stage

CATALOG = Path(__file__).resolve().parents[3] / "resources" / "catalog.yaml"
CELL = Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def candidates(n: int) -> list[Candidate]:
    return [Candidate(material_id=f"m{i:03d}", structure=CELL, source="files", source_ref=f"m{i}") for i in range(n)]


@pytest.mark.parametrize(("n", "fraction", "n_now"), [(10, 0.3, 3), (10, 0.25, 2), (7, 0.5, 4), (10, 0.01, 1), (5, 1.0, 5)])
def test_the_share_computed_now_is_round_f_n_and_at_least_one(n, fraction, n_now):
    now, later = initial_share(candidates(n), fraction, seed=0)
    assert len(now) == n_now and len(later) == n - n_now
    assert {c.material_id for c in now} | {c.material_id for c in later} == {f"m{i:03d}" for i in range(n)}


def test_the_split_depends_on_the_ids_and_the_seed_only():
    pool = candidates(40)
    ids = lambda cs: {c.material_id for c in cs}  # noqa: E731
    now, _ = initial_share(pool, 0.25, seed=3)
    shuffled = pool[:]
    random.Random(1).shuffle(shuffled)
    assert ids(initial_share(shuffled, 0.25, seed=3)[0]) == ids(now)
    assert ids(initial_share(pool, 0.25, seed=3)[0]) == ids(now)
    assert ids(initial_share(pool, 0.25, seed=4)[0]) != ids(now)
    assert initial_share([], 0.5) == ([], [])
    with pytest.raises(InputError, match="screen.initial_fraction"):
        initial_share(pool, 0.0)


def test_large_catalog_cells_and_the_unchosen_share_are_candidates(tmp_path):
    filter_config = yaml.safe_load((CATALOG.parents[1] / "config.yaml").read_text())["filter"]
    paths = {
        name: tmp_path / f"{name}.{ext}"
        for name, ext in [
            ("kept", "parquet"),
            ("rejected", "csv"),
            ("candidates", "parquet"),
            ("all", "parquet"),
            ("none", "parquet"),
        ]
    }
    # everything computed: an empty candidates table, with the columns
    run_structures_stage("catalog", CATALOG, filter_config, paths["all"], paths["rejected"], candidates_path=paths["none"])
    every = set(pd.read_parquet(paths["all"]).material_id)
    empty = pd.read_parquet(paths["none"])
    assert empty.empty and list(empty.columns) == CANDIDATE_COLUMNS

    run_structures_stage(
        "catalog",
        CATALOG,
        filter_config,
        paths["kept"],
        paths["rejected"],
        catalog_max_sites=6,
        candidates_path=paths["candidates"],
        initial_fraction=0.5,
        seed=0,
    )
    kept, later = pd.read_parquet(paths["kept"]), pd.read_parquet(paths["candidates"])
    assert list(later.columns) == CANDIDATE_COLUMNS
    large = set(pd.read_csv(paths["rejected"]).query("criterion == 'catalog_max_sites'").material_id)
    assert large and large <= set(later.material_id)
    small = every - large
    assert len(kept) == max(1, round(0.5 * len(small))) and set(kept.material_id) <= small
    assert set(kept.material_id) | set(later.material_id) == every
    assert not set(kept.material_id) & set(later.material_id)
