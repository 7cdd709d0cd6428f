"""The comparison with the Materials Project reference spectra (issue 16, item 5).

The reading and the edge definitions are checked against the numbers the reference's own
``materials.csv`` lists (computed by whoever assembled it, not by this code); the slow test computes
three of the ten materials with the GPAW demo preset, uncorrected, and holds each to the issue's
per-material edge bound (|ΔE5| ≤ 0.3 eV) and to an MAE of log10 α (floored at 3) ≤ 0.12 once ours
carries the reference's Lorentzian broadening too (measured: 0.048, 0.034, 0.026).
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from optabs.errors import InputError
from optabs.filters import primitive_cell
from optabs.spectra import energy_grid, onset_energy
from optabs.spectra.reference import compare, floored_mae, read_reference, uncorrected_log10_alpha


def test_edges_read_from_the_spectra_match_the_listed_ones(mp_reference):
    refs = read_reference(mp_reference)
    assert len(refs) == 10
    grid = energy_grid()
    for ref in refs:
        assert onset_energy(grid, ref.log10_alpha, 5.0) == pytest.approx(ref.e5_ev, abs=0.006), ref.formula
        assert onset_energy(grid, ref.log10_alpha, 4.0) == pytest.approx(ref.e4_ev, abs=0.006), ref.formula
        assert ref.structure_path.is_file()


def test_a_spectrum_compared_with_itself_and_with_a_shifted_copy(mp_reference):
    ref = read_reference(mp_reference)[0]
    same = compare(ref.log10_alpha, ref)
    assert same["dE5"] == 0 and same["dE4"] == 0 and same["mae"] == 0
    shifted = np.concatenate([np.full(20, 2.0), ref.log10_alpha[:-20]])  # 0.2 eV later
    moved = compare(shifted, ref)
    assert moved["dE5"] == pytest.approx(0.2) and moved["dE4"] == pytest.approx(0.2) and moved["mae"] > 0


def test_floored_mae_ignores_differences_below_the_floor():
    a, b = np.array([2.0, 2.9, 4.0]), np.array([2.5, 2.0, 5.0])
    assert floored_mae(a, b) == pytest.approx(1.0 / 3)
    assert onset_energy(energy_grid()[:3], a, 5.0) is None


def test_a_broken_reference_folder_is_named(tmp_path, mp_reference):
    with pytest.raises(InputError, match="materials.csv"):
        read_reference(tmp_path)
    (tmp_path / "materials.csv").write_text((mp_reference / "materials.csv").read_text())
    (tmp_path / "id_prop.csv").write_text("POSCAR_Na2O_mp-2352.vasp,1,2,3\n")
    with pytest.raises(InputError, match="line 1: 3 values"):
        read_reference(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("formula", ["Na2O", "Na2S", "NaScO2"])
def test_gpaw_demo_matches_the_materials_project_edge(formula, mp_reference, tmp_path):
    gpaw = pytest.importorskip("gpaw", reason="GPAW is the embedded engine; `make setup` installs it")
    from optabs.dft.gpaw import GpawEngine, GpawSettings

    ref = next(r for r in read_reference(mp_reference) if r.formula == formula)
    settings = GpawSettings.preset("demo", gap_method="none")  # uncorrected, as the README asks
    # as the workflow's structures stage hands it on: spglib's primitive cell (symmetrised)
    structure = primitive_cell(Structure.from_file(ref.structure_path))
    result = GpawEngine(settings).run(ref.mp_id, structure, tmp_path)
    assert result.engine_version == gpaw.__version__
    from optabs.spectra.reference import lorentzian_broadening

    ours = uncorrected_log10_alpha(result.energy_ev, result.eps_imag, result.dft_gap_ev)
    numbers = compare(ours, ref)
    assert abs(numbers["dE5"]) <= 0.3, numbers
    # the spectra's shapes, with the reference's own broadening (a 0.1 eV CSHIFT Lorentzian) on
    # ours too: NaScO2's reference reaches 10^4 cm^-1 0.3 eV below its gap through those tails alone
    broadened = lorentzian_broadening(result.energy_ev, result.eps_imag, 0.1)
    same_broadening = compare(uncorrected_log10_alpha(result.energy_ev, broadened, result.dft_gap_ev), ref)
    assert same_broadening["mae"] <= 0.12, same_broadening


def test_lorentzian_broadening_of_a_gaussian_line_is_a_voigt_profile():
    # A Gaussian line at 3 eV (σ = 0.02 eV, area 1) broadened by a Lorentzian of η = 0.1 eV is a
    # Voigt profile (scipy's closed form); the mirror term at -3 eV adds < 1e-3 of the peak.
    from scipy.special import voigt_profile

    from optabs.spectra.reference import lorentzian_broadening

    energy = np.linspace(0.0, 10.0, 2501)
    sigma, eta = 0.02, 0.1
    line = np.exp(-((energy - 3.0) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    out = lorentzian_broadening(energy, np.stack([line, 2 * line], axis=1), eta)
    assert out.shape == (2501, 2)
    near = (energy > 2.0) & (energy < 4.0)
    expected = voigt_profile(energy - 3.0, sigma, eta) - voigt_profile(energy + 3.0, sigma, eta)
    np.testing.assert_allclose(out[near, 0], expected[near], rtol=5e-3)
    np.testing.assert_allclose(out[:, 1], 2 * out[:, 0])
