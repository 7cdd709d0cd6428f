"""Core modules: the grid, material ids, the failure record, atomic folders."""

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from optabs.errors import InputError
from optabs.failures import FAILURE_COLUMNS, Failure, read_failures, write_failures
from optabs.grid import LOG10_ALPHA_FLOOR, ONSET_THRESHOLD, TENSOR_COMPONENTS, Grid
from optabs.ids import MATERIAL_ID_PATTERN, check_material_id, safe_material_id
from optabs.io import atomic_directory


def test_grid_defaults_are_the_study_grid():
    grid = Grid()
    energy = grid.energy_ev
    # The study: log10 alpha on 0-15 eV in 1,501 points (0.01 eV), floor 2, onset at 10^2.5 cm^-1.
    assert energy.shape == (1501,) and energy[0] == 0.0 and energy[-1] == 15.0
    assert np.allclose(np.diff(energy), 0.01)
    assert (grid.log10_alpha_floor, grid.onset_threshold) == (2.0, 2.5) == (LOG10_ALPHA_FLOOR, ONSET_THRESHOLD)
    assert TENSOR_COMPONENTS == ("xx", "yy", "zz", "xy", "yz", "xz")


def test_constants_are_defined_once():
    import optabs.spectra as spectra

    assert spectra.TENSOR_COMPONENTS is TENSOR_COMPONENTS
    assert spectra.LOG10_ALPHA_FLOOR == LOG10_ALPHA_FLOOR and spectra.ONSET_THRESHOLD == ONSET_THRESHOLD


def test_material_ids():
    assert safe_material_id("Ba3Si2(B3O8)2_mp-1019526") == "Ba3Si2_B3O8_2_mp-1019526"
    check_material_id("mp-1265")
    with pytest.raises(InputError, match="not safe"):
        check_material_id("a/b", where="x.cif")
    common = (Path(__file__).resolve().parents[2] / "rules" / "common.smk").read_text()
    assert "material_id=MATERIAL_ID_PATTERN" in common  # the wildcard constraint uses the one pattern
    assert re.fullmatch(MATERIAL_ID_PATTERN, "mp-1265") and not re.fullmatch(MATERIAL_ID_PATTERN, "-x")


def test_failures_round_trip_and_concatenate(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_failures(a, [Failure("mp-1", "structures", "excluded_element", "H"), Failure("mp-2", "structures", "space_group_p1")])
    write_failures(b, [])
    assert b.read_text().strip() == ",".join(FAILURE_COLUMNS)
    table = read_failures([a, b])
    assert list(table.columns) == FAILURE_COLUMNS
    assert table.to_dict("records") == [
        {"material_id": "mp-1", "stage": "structures", "reason": "excluded_element", "detail": "H"},
        {"material_id": "mp-2", "stage": "structures", "reason": "space_group_p1", "detail": ""},
    ]
    assert read_failures([]).empty


def test_a_file_that_is_not_a_failures_table_is_named(tmp_path):
    bad = tmp_path / "rejected.csv"
    pd.DataFrame({"material_id": ["x"], "criterion": ["y"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="rejected.csv is not a failures table"):
        read_failures([bad])


def test_atomic_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1" and oct(os.stat(target).st_mode & 0o777) == "0o755"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise RuntimeError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # the old folder is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # and nothing half-written is left beside it
    with atomic_directory(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
