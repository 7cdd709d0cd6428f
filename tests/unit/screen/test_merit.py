"""optabs.screen.merit: expected values come from analytic spectra, pymatgen's slme (the reference
implementation) or the published Shockley-Queisser limit, never from the code under test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pymatgen.analysis.solar.slme import slme as pymatgen_slme

from optabs.errors import ConfigError, InputError
from optabs.grid import Grid
from optabs.screen.merit import (
    Merit,
    ensemble_merits,
    merit_values,
    merits_from_config,
    ranked_merit,
    slme_vectorised,
)

GRID = Grid()
ENERGY = GRID.energy_ev  # 0-15 eV, 0.01 eV steps
STEP = ENERGY[1] - ENERGY[0]
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


def step_alpha(gap: float, alpha_cm: float) -> np.ndarray:
    """alpha (cm^-1) of an ideal absorber: alpha_cm at and above the gap, 0 below."""
    return np.where(ENERGY >= gap - 1e-9, alpha_cm, 0.0)


def reference_slme(alpha_cm: np.ndarray, gap: float, thickness_m: float) -> float:
    """pymatgen's SLME (percent) with the direct gap equal to the indirect one (radiative fraction 1)."""
    return pymatgen_slme(ENERGY, alpha_cm, gap, gap, thickness=thickness_m, absorbance_in_inverse_centimeters=True)


def merit(kind: str, name: str = "m", **params: float) -> Merit:
    return merits_from_config({"merits": {name: {"kind": kind, **params}}})[0]


# ----------------------------------------------------------------------------------------------
# SLME


@pytest.mark.parametrize("gap", [1.1, 1.34])
def test_slme_of_a_thick_step_absorber_matches_pymatgen(gap):
    alpha = step_alpha(gap, 1e6)
    ours = slme_vectorised(ENERGY, alpha[None, :], [gap], 1e-3)[0]
    assert ours == pytest.approx(reference_slme(alpha, gap, 1e-3), rel=0.01)


def test_slme_of_a_thick_step_absorber_reaches_the_shockley_queisser_limit():
    # Ruhle, Solar Energy 130, 139 (2016): the detailed-balance limit under AM1.5G is 33.7 % at
    # Eg = 1.34 eV (its maximum) and about 33 % at 1.1 eV; a 1 mm film with alpha = 1e6 cm^-1 absorbs
    # everything above the gap, so the SLME is that limit (at 293.15 K instead of 300 K).
    at_134 = slme_vectorised(ENERGY, step_alpha(1.34, 1e6)[None, :], [1.34], 1e-3)[0]
    at_110 = slme_vectorised(ENERGY, step_alpha(1.10, 1e6)[None, :], [1.10], 1e-3)[0]
    assert at_134 == pytest.approx(33.7, abs=1.0)
    assert at_110 == pytest.approx(33.0, abs=1.0)
    assert at_110 < at_134


def varied_absorbers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20 absorbers: step and Tauc-like sqrt(E - Eg) edges, gaps 0.8-3 eV, films 0.1-10 um."""
    rng = np.random.default_rng(7)
    gaps = np.round(rng.uniform(0.8, 3.0, 20), 2)
    thickness_m = 10.0 ** rng.uniform(-7.0, -5.0, 20)
    strength = 10.0 ** rng.uniform(3.0, 6.0, 20)
    alphas = []
    for i, (gap, a0) in enumerate(zip(gaps, strength)):
        if i % 2:
            alphas.append(step_alpha(gap, a0))
        else:
            alphas.append(np.where(ENERGY > gap, a0 * np.sqrt(np.clip(ENERGY - gap, 0.0, None)), 0.0))
    return np.array(alphas), gaps, thickness_m


def test_slme_vectorised_matches_pymatgen_on_varied_absorbers():
    alphas, gaps, thickness_m = varied_absorbers()
    expected = np.array([reference_slme(a, g, t) for a, g, t in zip(alphas, gaps, thickness_m)])
    assert expected.min() > 0.1  # the set spans weak to strong absorbers, none trivially zero
    np.testing.assert_allclose(slme_vectorised(ENERGY, alphas, gaps, thickness_m), expected, rtol=0.005)


def test_slme_grows_with_thickness_and_saturates_at_the_thick_film_limit():
    weak = step_alpha(1.5, 1e3)  # absorption length 10 um
    thicknesses = np.array([0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]) * 1e-6
    values = slme_vectorised(ENERGY, np.tile(weak, (thicknesses.size, 1)), np.full(thicknesses.size, 1.5), thicknesses)
    assert np.all(np.diff(values[:4]) > 0)  # up to 10 absorption lengths it still grows ...
    assert np.all(np.diff(values) >= 0)
    # 1 mm and 10 mm both absorb everything above the gap: the value of a strong thick absorber
    strong_thick = reference_slme(step_alpha(1.5, 1e6), 1.5, 1e-3)
    assert values[-2] == pytest.approx(strong_thick, rel=0.005)
    assert values[-1] == pytest.approx(strong_thick, rel=0.005)
    assert values[0] < 0.1 * strong_thick


def test_slme_merit_uses_the_onset_as_gap_and_ignores_floored_values():
    # log10 alpha: at the floor (2.0) below 1.8 eV, then a rising edge; a 1 eV-wide dip back to the floor
    log10_alpha = np.where(ENERGY < 1.8, 2.0, 2.0 + 2.0 * np.sqrt(np.clip(ENERGY - 1.8, 0.0, None)))
    log10_alpha = np.where((ENERGY > 3.0) & (ENERGY < 3.5), 2.0, log10_alpha)
    onset = ENERGY[np.argmax(log10_alpha > GRID.onset_threshold)]  # first point above 2.5: 1.87 eV
    alpha = np.where(log10_alpha > GRID.log10_alpha_floor, 10.0**log10_alpha, 0.0)
    expected = reference_slme(alpha, onset, 1e-6)
    got = merit_values(merit("slme", thickness_um=1.0), ENERGY, log10_alpha[None, :])
    assert got[0] == pytest.approx(expected, rel=0.005)


def test_slme_of_a_spectrum_that_never_absorbs_is_zero():
    flat = np.full((2, ENERGY.size), GRID.log10_alpha_floor)
    np.testing.assert_array_equal(merit_values(merit("slme", thickness_um=1.0), ENERGY, flat), [0.0, 0.0])


# ----------------------------------------------------------------------------------------------
# the other kinds


def test_window_mean_of_a_spectrum_constant_inside_the_window_is_that_constant():
    spectrum = np.where((ENERGY > 1.5) & (ENERGY < 3.4), 4.25, 2.0)  # different outside the window
    value = merit_values(merit("window_mean", e_min_ev=1.6, e_max_ev=3.3), ENERGY, spectrum)
    assert value == pytest.approx(4.25, abs=1e-12)


def test_window_mean_of_a_line_is_its_value_at_the_window_centre():
    # the mean of a + b E over [lo, hi] is a + b (lo + hi) / 2, also for edges between grid points
    value = merit_values(merit("window_mean", e_min_ev=1.603, e_max_ev=3.3071), ENERGY, 2.0 + 0.5 * ENERGY)
    assert value == pytest.approx(2.0 + 0.5 * (1.603 + 3.3071) / 2.0, abs=1e-12)


@pytest.mark.parametrize("at_ev", [2.0, 2.003, 0.0, 15.0])
def test_log10_alpha_at_interpolates_a_line_exactly(at_ev):
    value = merit_values(merit("log10_alpha_at", energy_ev=at_ev), ENERGY, 1.5 + 0.3 * ENERGY)
    assert value == pytest.approx(1.5 + 0.3 * at_ev, abs=1e-12)


def test_onset_of_a_step_at_2_ev_is_2_ev_within_one_grid_step():
    spectrum = np.where(ENERGY >= 2.0 - 1e-9, 5.0, 2.0)
    assert abs(merit_values(merit("onset"), ENERGY, spectrum) - 2.0) <= STEP


def test_values_have_the_leading_shape_of_the_predictions():
    rng = np.random.default_rng(1)
    predictions = 2.0 + 3.0 * rng.random((3, 4, ENERGY.size))
    for m in merits_from_config({"merits": {"o": {"kind": "onset"}, "s": {"kind": "slme", "thickness_um": 1.0},
                                            "a": {"kind": "log10_alpha_at", "energy_ev": 2.0},
                                            "w": {"kind": "window_mean", "e_min_ev": 1.6, "e_max_ev": 3.3}}}):  # fmt: skip
        assert merit_values(m, ENERGY, predictions).shape == (3, 4)
    assert merit_values(merit("onset"), ENERGY, predictions[0, 0]).shape == ()


# ----------------------------------------------------------------------------------------------
# ensembles


def test_ensemble_spread_is_zero_for_identical_members_and_one_for_c_and_c_plus_2():
    spectrum = np.where(ENERGY >= 1.0, 3.0, 2.0)
    identical = np.broadcast_to(spectrum, (4, 2, ENERGY.size))
    apart = np.stack([np.stack([spectrum, spectrum]), np.stack([spectrum + 2.0, spectrum + 2.0])])  # (2, 2, G)
    merits = [merit("window_mean", e_min_ev=1.6, e_max_ev=3.3), merit("log10_alpha_at", "a2", energy_ev=2.0)]
    same = ensemble_merits(merits, ENERGY, identical, GRID.onset_threshold, GRID.log10_alpha_floor)
    assert list(same.columns) == ["m_mean", "m_std", "a2_mean", "a2_std"]
    np.testing.assert_array_equal(same.filter(like="_std").to_numpy(), 0.0)
    spread = ensemble_merits(merits[:1], ENERGY, apart, GRID.onset_threshold, GRID.log10_alpha_floor, index=["a", "b"])
    assert list(spread.index) == ["a", "b"]
    np.testing.assert_allclose(spread["m_mean"], [4.0, 4.0])
    np.testing.assert_allclose(spread["m_std"], [1.0, 1.0])


def test_ensemble_of_one_member_has_zero_spread_and_one_row_per_material():
    predictions = np.broadcast_to(np.where(ENERGY >= 2.0 - 1e-9, 5.0, 2.0), (1, 3, ENERGY.size))
    table = ensemble_merits(merits_from_config({}), ENERGY, predictions, GRID.onset_threshold, GRID.log10_alpha_floor)
    assert len(table) == 3
    assert set(table.columns) == {f"{n}_{s}" for n in ("onset", "visible_mean", "slme_1um") for s in ("mean", "std")}
    np.testing.assert_array_equal(table.filter(like="_std").to_numpy(), 0.0)


# ----------------------------------------------------------------------------------------------
# config


def test_definitions_and_directions_from_the_config():
    section = {
        "merit": "a2",
        "merits": {
            "onset": {"kind": "onset"},
            "a2": {"kind": "log10_alpha_at", "energy_ev": 2.0},
            "low": {"kind": "window_mean", "e_min_ev": 1.0, "e_max_ev": 2.0, "direction": "min"},
        },
    }
    merits = merits_from_config(section)
    assert [(m.name, m.kind, m.direction) for m in merits] == [
        ("onset", "onset", "min"),
        ("a2", "log10_alpha_at", "max"),
        ("low", "window_mean", "min"),
    ]
    assert merits[2].params == {"e_min_ev": 1.0, "e_max_ev": 2.0}
    assert ranked_merit(section) == merits[1]


def test_defaults_are_the_schemas():
    screen = yaml.safe_load(SCHEMA.read_text())["properties"]["screen"]["properties"]
    assert {m.name for m in merits_from_config({})} == set(screen["merits"]["default"])
    assert ranked_merit({}).name == screen["merit"]["default"]


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        ({"kind": "log10_alpha_at"}, "needs 'energy_ev'"),
        ({"kind": "window_mean", "e_min_ev": 3.0, "e_max_ev": 1.6}, "must be below"),
        ({"kind": "window_mean", "e_min_ev": 2.0, "e_max_ev": 2.0}, "must be below"),
        ({"kind": "colour"}, "unknown kind"),
        ({"kind": "onset", "direction": "up"}, "direction"),
        ({"kind": "slme", "thickness_um": 0.0}, "thickness_um"),
        ({"kind": "onset", "energy_ev": 2.0}, "energy_ev"),
    ],
)
def test_bad_definitions_name_the_key(definition, words):
    with pytest.raises(ConfigError, match=rf"^config key 'screen\.merits\.bad': .*{words}"):
        merits_from_config({"merits": {"bad": definition}})


@pytest.mark.parametrize(
    "definition", [{"kind": "window_mean", "e_min_ev": 1.6, "e_max_ev": 16.0}, {"kind": "log10_alpha_at", "energy_ev": 20.0}]
)
def test_energies_outside_the_grid_name_the_key(definition):
    (defined,) = merits_from_config({"merits": {"far": definition}})
    with pytest.raises(ConfigError, match=r"^config key 'screen\.merits\.far': .*outside the energy grid"):
        defined.check(GRID)
    merit("window_mean", e_min_ev=1.6, e_max_ev=3.3).check(GRID)  # inside: no error


def test_ensemble_rejects_two_merits_of_one_name():
    twice = [merit("onset"), merit("log10_alpha_at", energy_ev=2.0)]
    with pytest.raises(InputError, match="'m'"):
        ensemble_merits(twice, ENERGY, np.full((1, 1, ENERGY.size), 3.0))


def test_ranking_on_an_undefined_merit_names_the_key():
    with pytest.raises(ConfigError, match=r"^config key 'screen\.merit': 'slme_5um' is not a merit defined"):
        ranked_merit({"merit": "slme_5um", "merits": {"onset": {"kind": "onset"}}})
