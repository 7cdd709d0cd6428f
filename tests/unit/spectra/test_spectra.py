"""optabs.spectra: every expected value comes from an analytic formula or hand arithmetic, never from the code."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optabs import spectra
from optabs.errors import InputError

# Lorentz oscillator eps = 1 + f / (E0^2 - E^2 - i gamma E): an exact Kramers-Kronig pair.
F, E0, GAMMA = 10.0, 4.0, 0.5


def lorentz(energy: np.ndarray, f: float = F, e0: float = E0, gamma: float = GAMMA) -> tuple[np.ndarray, np.ndarray]:
    """(eps_real - 1, eps_imag) of a Lorentz oscillator, analytic."""
    denominator = (e0**2 - energy**2) ** 2 + (gamma * energy) ** 2
    return f * (e0**2 - energy**2) / denominator, f * gamma * energy / denominator


@pytest.fixture(scope="module")
def wide_grid() -> np.ndarray:
    # 0-50 eV in 0.01 eV: eps_imag of the oscillator has fallen to ~4e-5 at 50 eV (f gamma / E^3)
    return np.linspace(0.0, 50.0, 5001)


def gaussian(energy: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-((energy - centre) ** 2) / (2.0 * sigma**2))


def tauc_lorentz(energy: np.ndarray, gap: float, amplitude: float = 60.0, e0: float = 5.0, width: float = 2.0):
    """Jellison-Modine Tauc-Lorentz eps_imag: 0 below the gap, (E - Eg)^2 rise above it."""
    e = np.where(energy > gap, energy, 1.0)
    value = amplitude * e0 * width * (e - gap) ** 2 / (((e**2 - e0**2) ** 2 + width**2 * e**2) * e)
    return np.where(energy > gap, value, 0.0)


# ----------------------------------------------------------------------------------------------
# Kramers-Kronig
# ----------------------------------------------------------------------------------------------


def test_kramers_kronig_lorentz_oscillator_matches_analytic(wide_grid):
    real_minus_one, imag = lorentz(wide_grid)
    expected = 1.0 + real_minus_one
    result = spectra.kramers_kronig(wide_grid, imag)

    away = (np.abs(wide_grid - E0) > 3 * GAMMA) & (wide_grid < 20.0)
    relative = np.abs(result - expected)[away] / np.abs(expected)[away]
    assert relative.max() < 1e-2  # the requirement; measured: 4e-5
    assert relative.max() < 1e-3
    # Through the resonance too (|eps_real - 1| peaks at f / (2 gamma E0) ~ 2.6): second-order accurate.
    assert np.abs(result - expected)[wide_grid < 20.0].max() < 5e-3  # measured: 1.0e-3
    # Static limit: eps_real(0) = 1 + f / E0^2 = 1 + 10 / 16 = 1.625
    assert result[0] == pytest.approx(1.625, rel=1e-3)


def test_kramers_kronig_converges_at_second_order():
    # Halving the step should divide the error by ~4 (exact integration of the linear interpolant).
    errors = []
    for step in (0.02, 0.01):
        energy = np.arange(0.0, 50.0 + step / 2, step)
        real_minus_one, imag = lorentz(energy)
        result = spectra.kramers_kronig(energy, imag)
        errors.append(np.abs(result - 1.0 - real_minus_one)[energy < 20.0].max())
    assert 3.0 < errors[0] / errors[1] < 5.0


def test_kramers_kronig_grid_not_starting_at_zero():
    # eps_imag is taken as 0 below the first point; the oscillator's eps_imag there is small (< 0.12 below 0.3 eV)
    energy = np.linspace(0.3, 50.0, 4971)
    real_minus_one, imag = lorentz(energy)
    result = spectra.kramers_kronig(energy, imag)
    inner = (energy > 0.5) & (energy < 20.0)
    assert np.abs(result - 1.0 - real_minus_one)[inner].max() < 5e-3


def test_kramers_kronig_columns_equal_separate_calls(wide_grid):
    _, base = lorentz(wide_grid)
    _, second = lorentz(wide_grid, f=3.0, e0=7.0, gamma=1.0)
    stacked = np.column_stack([base, second, 0.5 * base + second])
    together = spectra.kramers_kronig(wide_grid, stacked)
    for column in range(stacked.shape[1]):
        alone = spectra.kramers_kronig(wide_grid, stacked[:, column])
        np.testing.assert_allclose(together[:, column], alone, rtol=0, atol=1e-12)
    assert together.shape == stacked.shape


def test_kramers_kronig_off_diagonal_gets_no_vacuum_term_and_may_be_negative(wide_grid):
    real_minus_one, imag = lorentz(wide_grid)
    off_imag = -0.1 * imag  # an off-diagonal component: signed, no "1 +"
    tensor = np.column_stack([imag, imag, imag, off_imag, off_imag, np.zeros_like(imag)])
    result = spectra.kramers_kronig(wide_grid, tensor, diagonal=spectra.TENSOR_DIAGONAL)
    away = (np.abs(wide_grid - E0) > 3 * GAMMA) & (wide_grid < 20.0)
    np.testing.assert_allclose(result[away, 0], 1.0 + real_minus_one[away], rtol=1e-3)
    np.testing.assert_allclose(result[away, 3], -0.1 * real_minus_one[away], rtol=1e-3)
    np.testing.assert_array_equal(result[:, 5], 0.0)  # eps_imag = 0 -> eps_real = 0, not 1
    # a single bool applies to all components
    np.testing.assert_allclose(
        spectra.kramers_kronig(wide_grid, tensor, diagonal=False), result - spectra.TENSOR_DIAGONAL, atol=1e-12
    )
    with pytest.raises(InputError, match="negative"):
        spectra.kramers_kronig(wide_grid, off_imag)  # diagonal=True by default


def test_kramers_kronig_rejects_bad_input(wide_grid):
    _, imag = lorentz(wide_grid)
    with pytest.raises(InputError, match="not a uniform grid"):
        spectra.kramers_kronig(np.geomspace(0.01, 50.0, 5001), imag)
    with pytest.raises(InputError, match="diagonal must be"):
        spectra.kramers_kronig(wide_grid, np.column_stack([imag, imag]), diagonal=[True, False, False])
    with pytest.raises(InputError, match="rows"):
        spectra.kramers_kronig(wide_grid, imag[:-1])
    # round-off negatives (1e-12 on a peak of ~5) are accepted
    spectra.kramers_kronig(wide_grid, np.where(imag < 1e-3, -1e-12, imag))


@pytest.mark.parametrize(
    ("energy", "eps_imag", "message"),
    [
        ([0.0, 1.0, 2.0], [0.0, np.nan, 1.0], "NaN or inf"),
        ([0.0, 1.0, 2.0], [0.0, np.inf, 1.0], "NaN or inf"),
        ([-1.0, 0.0, 1.0], [0.0, 1.0, 1.0], "negative energies"),
        ([0.0, 1.0, 2.0], [0.0, -0.5, 1.0], "negative beyond round-off"),
        ([], [], "empty"),
        ([0.0, 1.0, 2.0], [], "empty"),
        ([0.0, 1.0, 2.0], [0.0, 1.0], "rows but the energy axis has 3"),
        ([0.0, 2.0, 1.0], [0.0, 1.0, 1.0], "not strictly increasing"),
        ([0.0, 1.0, 1.0], [0.0, 1.0, 1.0], "not strictly increasing"),
        ([0.0, np.nan, 2.0], [0.0, 1.0, 1.0], "NaN or inf"),
    ],
)
def test_bad_input_raises_input_error(energy, eps_imag, message):
    energy, eps_imag = np.asarray(energy, dtype=float), np.asarray(eps_imag, dtype=float)
    with pytest.raises(InputError, match=message):
        spectra.kramers_kronig(energy, eps_imag)
    if "negative beyond" not in message:  # the scissor does not check signs (off-diagonals)
        with pytest.raises(InputError, match=message):
            spectra.scissor(energy, eps_imag, 0.5)
        with pytest.raises(InputError, match=message):
            spectra.absorption_coefficient(energy, eps_imag, eps_imag)
        with pytest.raises(InputError, match=message):
            spectra.f_sum(energy, eps_imag)


# ----------------------------------------------------------------------------------------------
# Scissor
# ----------------------------------------------------------------------------------------------


def test_scissor_zero_is_identity():
    energy = np.linspace(0.0, 15.0, 1501)
    eps = np.column_stack([gaussian(energy, 5.0, 1.0), 3.0 * gaussian(energy, 8.0, 2.0), np.full_like(energy, 0.7)])
    result = spectra.scissor(energy, eps, 0.0)
    np.testing.assert_allclose(result, eps, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spectra.scissor(energy, eps[:, 1], 0.0), eps[:, 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("shift", [1.0, -1.0])
def test_scissor_conserves_f_sum(shift):
    energy = np.linspace(0.0, 15.0, 1501)
    # Gaussian at 6 eV, sigma 1: negligible at 0 and 15 eV before and after a 1 eV shift.
    eps = gaussian(energy, 6.0, 1.0)
    # analytic f-sum: int E exp(-(E - mu)^2 / 2 sigma^2) dE = mu sigma sqrt(2 pi) = 6 * 2.5066283 = 15.039770
    assert spectra.f_sum(energy, eps) == pytest.approx(6.0 * math.sqrt(2.0 * math.pi), rel=1e-6)
    shifted = spectra.scissor(energy, eps, shift)
    assert spectra.f_sum(energy, shifted) == pytest.approx(6.0 * math.sqrt(2.0 * math.pi), rel=1e-2)


def test_scissor_zero_below_shift_and_onset_moves_up():
    energy = np.linspace(0.0, 15.0, 1501)
    step = 0.01
    flat = np.ones_like(energy)
    shifted = spectra.scissor(energy, flat, 2.0)
    np.testing.assert_array_equal(shifted[energy < 2.0], 0.0)
    # above the shift: 1 * (E - 2) / E, e.g. at E = 4 eV: 2 / 4 = 0.5
    assert shifted[400] == pytest.approx(0.5, rel=1e-12)

    step_like = np.where(energy >= 3.0 - step / 2, 1.0, 0.0)  # 0 below 3 eV, 1 from 3 eV on
    shifted = spectra.scissor(energy, step_like, 1.5)
    first = energy[np.argmax(shifted > 0.0)]
    assert 4.5 - step <= first <= 4.5 + step  # the edge moved from 3.0 to 3.0 + 1.5 eV


def test_scissor_negative_shift_moves_down_and_zero_fills_the_top():
    energy = np.linspace(0.0, 15.0, 1501)
    step_like = np.where(energy >= 3.0 - 0.005, 1.0, 0.0)
    shifted = spectra.scissor(energy, step_like, -1.0)
    first = energy[np.argmax(shifted > 0.0)]
    assert 2.0 - 0.01 <= first <= 2.0 + 0.01
    # at E = 5 eV: eps(6) * 6 / 5 = 1.2
    assert shifted[500] == pytest.approx(1.2, rel=1e-12)
    assert shifted[0] == 0.0
    np.testing.assert_array_equal(shifted[energy > 14.0 + 1e-9], 0.0)  # source beyond the data


def test_scissor_gap_zeroes_the_subgap_tail():
    energy = np.linspace(0.0, 15.0, 1501)
    eps = np.column_stack([np.ones_like(energy), 2.0 * np.ones_like(energy)])
    shifted = spectra.scissor(energy, eps, 1.0, gap_ev=3.0)
    np.testing.assert_array_equal(shifted[energy < 3.0 - 1e-9], 0.0)
    # at E = 3 eV: 2 * (3 - 1) / 3 = 1.3333
    assert shifted[300, 1] == pytest.approx(4.0 / 3.0, rel=1e-12)
    with pytest.raises(InputError, match="shift_ev"):
        spectra.scissor(energy, eps, np.nan)


# ----------------------------------------------------------------------------------------------
# Absorption coefficient, log10, onset
# ----------------------------------------------------------------------------------------------


def test_absorption_coefficient_hand_values():
    energy = np.array([1.0, 2.0, 3.0])
    eps_real = np.array([-3.0, 4.0, 4.0])
    eps_imag = np.array([4.0, 3.0, 1e-8])
    alpha = spectra.absorption_coefficient(energy, eps_real, eps_imag)
    # E = 2, eps = 4 + 3i: |eps| = 5, kappa = sqrt((5 - 4) / 2) = 0.70710678;
    # alpha = 4 pi kappa E / hc = 12.56637061 * 0.70710678 * 2 / 1.23984198e-4 = 17.77153175 / 1.23984198e-4
    #       = 1.4333707e5 cm^-1
    assert alpha[1] == pytest.approx(1.4333707e5, rel=1e-6)
    # E = 1, eps = -3 + 4i: |eps| = 5, kappa = sqrt((5 + 3) / 2) = 2; alpha = 12.56637061 * 2 * 1 / 1.23984198e-4
    #       = 25.13274123 / 1.23984198e-4 = 2.0270923e5 cm^-1
    assert alpha[0] == pytest.approx(2.0270923e5, rel=1e-6)
    # E = 3, eps = 4 + 1e-8 i (weak absorption; |eps| - eps_real = 1.25e-17 is below the round-off of 4):
    # kappa = eps2 / (2 n), n = sqrt((|eps| + 4) / 2) = 2 -> kappa = 2.5e-9;
    # alpha = 12.56637061 * 2.5e-9 * 3 / 1.23984198e-4 = 9.42477796e-8 / 1.23984198e-4 = 7.6016e-4 cm^-1
    assert alpha[2] == pytest.approx(7.6016e-4, rel=1e-4)


def test_absorption_coefficient_columns_and_shape_checks():
    energy = np.array([1.0, 2.0])
    real = np.array([[4.0, -3.0], [4.0, 4.0]])
    imag = np.array([[3.0, 4.0], [3.0, 3.0]])
    alpha = spectra.absorption_coefficient(energy, real, imag)
    assert alpha.shape == (2, 2)
    # column 0 at E = 2 is the 1.4333707e5 case above; at E = 1 it is half of it
    assert alpha[1, 0] == pytest.approx(1.4333707e5, rel=1e-6)
    assert alpha[0, 0] == pytest.approx(1.4333707e5 / 2, rel=1e-6)
    with pytest.raises(InputError, match="must match"):
        spectra.absorption_coefficient(energy, real, imag[:, :1])


def test_log10_alpha_floor():
    result = spectra.log10_alpha(np.array([0.0, -5.0, 1e4, 50.0, 1e6]))
    np.testing.assert_allclose(result, [2.0, 2.0, 4.0, 2.0, 6.0])
    np.testing.assert_allclose(spectra.log10_alpha(np.array([0.0, 50.0]), floor=1.0), [1.0, math.log10(50.0)])
    with pytest.raises(InputError, match="NaN"):
        spectra.log10_alpha(np.array([1.0, np.nan]))


def test_onset_of_step_is_exact_to_grid_spacing():
    energy = np.linspace(0.0, 15.0, 1501)
    log_alpha = np.where(energy > 3.004, 4.0, 2.0)  # first point above the step: 3.01 eV
    assert spectra.onset_energy(energy, log_alpha) == pytest.approx(3.01, abs=1e-9)
    # strictly greater: a plateau exactly at the threshold does not count
    plateau = np.where(energy > 2.0, 2.5, 2.0)
    plateau[energy > 7.0] = 2.6
    assert spectra.onset_energy(energy, plateau) == pytest.approx(7.01, abs=1e-9)
    assert spectra.onset_energy(energy, np.full_like(energy, 2.5)) is None
    assert spectra.onset_energy(energy, log_alpha, threshold=5.0) is None


def test_batched_onsets_agree_with_scalar():
    energy = np.linspace(0.0, 15.0, 1501)
    steps = [1.0, 3.337, 14.99, 20.0]  # the last never exceeds
    batch = np.stack([np.where(energy > s, 3.0, 2.0) for s in steps])
    batch[0, 700:] = 2.0  # a spectrum that rises and falls back
    onsets = spectra.onset_energies(energy, batch, 2.5)
    assert onsets.shape == (4,)
    for row, onset in zip(batch, onsets, strict=True):
        scalar = spectra.onset_energy(energy, row, 2.5)
        if scalar is None:
            assert math.isnan(onset)
        else:
            assert onset == scalar
    np.testing.assert_allclose(onsets[:3], [1.01, 3.34, 15.0], atol=1e-9)
    with pytest.raises(InputError, match="one spectrum per row"):
        spectra.onset_energies(energy, batch.T)
    with pytest.raises(InputError, match=r"\(N,\)"):
        spectra.onset_energy(energy, batch.T)


# ----------------------------------------------------------------------------------------------
# Averages, grids, sums
# ----------------------------------------------------------------------------------------------


def test_isotropic_average_of_voigt_and_matrix_forms():
    voigt = np.array([[1.0, 2.0, 6.0, 9.0, 9.0, 9.0], [3.0, 3.0, 3.0, -1.0, 0.0, 0.0]])
    matrix = np.array(
        [
            [[1.0, 9.0, 9.0], [9.0, 2.0, 9.0], [9.0, 9.0, 6.0]],
            [[3.0, -1.0, 0.0], [-1.0, 3.0, 0.0], [0.0, 0.0, 3.0]],
        ]
    )
    # (1 + 2 + 6) / 3 = 3, (3 + 3 + 3) / 3 = 3
    np.testing.assert_allclose(spectra.isotropic_average(voigt), [3.0, 3.0])
    np.testing.assert_allclose(spectra.isotropic_average(matrix), [3.0, 3.0])
    np.testing.assert_allclose(spectra.isotropic_average(voigt[:, :3]), [3.0, 3.0])
    with pytest.raises(InputError, match="shape"):
        spectra.isotropic_average(np.ones((4, 5)))


def test_energy_grid_and_to_grid():
    grid = spectra.energy_grid()
    assert grid.shape == (1501,)
    assert grid[0] == 0.0 and grid[-1] == 15.0
    assert grid[1] - grid[0] == pytest.approx(0.01)

    coarse = np.array([0.0, 0.5, 2.0, 20.0])
    values = np.column_stack([3.0 * coarse + 1.0, -coarse])  # linear: interpolation is exact
    on_grid = spectra.to_grid(coarse, values, grid)
    np.testing.assert_allclose(on_grid[:, 0], 3.0 * grid + 1.0, atol=1e-12)
    np.testing.assert_allclose(on_grid[:, 1], -grid, atol=1e-12)

    short = np.array([0.0, 5.0, 10.0])
    with pytest.raises(InputError, match="beyond the data"):
        spectra.to_grid(short, short, grid)
    padded = spectra.to_grid(short, short, grid, extrapolate="zero")
    np.testing.assert_allclose(padded[grid <= 10.0], grid[grid <= 10.0], atol=1e-12)
    np.testing.assert_array_equal(padded[grid > 10.0 + 1e-9], 0.0)
    with pytest.raises(InputError, match="e_min < e_max"):
        spectra.energy_grid(5.0, 1.0)


def test_f_sum_of_triangle():
    energy = np.array([0.0, 1.0, 2.0])
    # trapezoid of E * eps = [0, 1 * 2, 2 * 0] -> 0.5 * (0 + 2) + 0.5 * (2 + 0) = 2
    assert spectra.f_sum(energy, np.array([0.0, 2.0, 0.0])) == pytest.approx(2.0)
    np.testing.assert_allclose(spectra.f_sum(energy, np.array([[0.0, 0.0], [2.0, 4.0], [0.0, 0.0]])), [2.0, 4.0])


# ----------------------------------------------------------------------------------------------
# The one-call pipeline
# ----------------------------------------------------------------------------------------------


def test_corrected_spectrum_onset_near_corrected_gap():
    energy = np.linspace(0.0, 20.0, 2001)  # the DFT data reach above the output grid
    dft_gap, corrected_gap = 2.0, 3.0
    base = tauc_lorentz(energy, dft_gap)
    tensor = np.column_stack([base, 1.1 * base, 0.9 * base, 0.01 * base, -0.01 * base, 0.0 * base])
    grid = spectra.energy_grid()
    result = spectra.corrected_spectrum(energy, tensor, dft_gap, corrected_gap, grid)

    for array in (result.eps_real, result.eps_imag, result.alpha_per_cm, result.log10_alpha):
        assert array.shape == grid.shape
    np.testing.assert_array_equal(result.energy_ev, grid)
    assert result.log10_alpha.min() >= 2.0
    np.testing.assert_array_equal(result.log10_alpha[grid < corrected_gap - 1e-9], 2.0)
    np.testing.assert_array_equal(result.eps_imag[grid < corrected_gap - 1e-9], 0.0)
    # eps2 rises as (E - Eg)^2. At 3.1 eV the shifted eps2 = base(2.1) * 2.1 / 3.1
    # = [600 * 0.1^2 / ((2.1^2 - 25)^2 + 4 * 2.1^2) / 2.1] * 2.1 / 3.1 = 6 / 441.6 / 3.1 = 4.38e-3; with
    # eps_real ~ 4.3 (n ~ 2.07) kappa ~ 4.38e-3 / (2 * 2.07) = 1.06e-3 and alpha ~ 4 pi * 1.06e-3 * 3.1 / 1.24e-4
    # ~ 3.3e2 > 10^2.5 = 316: the onset is ~3.1 eV, and certainly within 0.2 eV of the corrected gap
    assert result.onset_ev is not None
    assert corrected_gap <= result.onset_ev <= corrected_gap + 0.2
    # the isotropic eps2 is the mean of the diagonal, 1.0 * base, shifted: at E = 6 eV it is
    # base(5) * 5 / 6 (scissor factor (E - shift) / E)
    assert result.eps_imag[600] == pytest.approx(tauc_lorentz(np.array([5.0]), dft_gap)[0] * 5.0 / 6.0, rel=1e-3)
    # eps_real is positive and ~ static value well below the gap
    assert result.eps_real[100] > 1.0

    with_floor = spectra.corrected_spectrum(energy, tensor, dft_gap, corrected_gap, grid, floor=1.0)
    assert with_floor.log10_alpha.min() == 1.0


@pytest.mark.parametrize("dft_step_ev", [0.1, 0.37])
def test_no_absorption_below_the_corrected_gap_on_a_coarse_dft_grid(dft_step_ev):
    # A DFT grid coarser than the output grid (0.1 eV, as a VASP NEDOS grid; 0.37 eV, worse) whose
    # points do not fall on the corrected gap: the linear ramp from the last zero point below the
    # gap to the first point above it must not put eps2 (or alpha) into the gap.
    energy = np.arange(0.0, 20.0 + dft_step_ev, dft_step_ev)
    dft_gap, corrected_gap = 2.03, 3.17
    base = tauc_lorentz(energy, dft_gap)
    grid = spectra.energy_grid()
    result = spectra.corrected_spectrum(energy, base, dft_gap, corrected_gap, grid)
    below = grid < corrected_gap
    assert below.sum() == 317  # 0.00 ... 3.16 eV
    np.testing.assert_array_equal(result.eps_imag[below], 0.0)
    np.testing.assert_array_equal(result.alpha_per_cm[below], 0.0)
    np.testing.assert_array_equal(result.log10_alpha[below], 2.0)
    # above the gap the shifted absorption is there, and the onset follows the corrected gap
    assert result.eps_imag[grid >= corrected_gap + 0.5].min() > 0.0
    assert result.onset_ev is not None and corrected_gap <= result.onset_ev <= corrected_gap + 0.3


def test_corrected_spectrum_rejects_short_data_and_bad_gaps():
    energy = np.linspace(0.0, 15.0, 1501)
    base = tauc_lorentz(energy, 3.0)
    grid = spectra.energy_grid()
    with pytest.raises(InputError, match="covers only up to"):
        spectra.corrected_spectrum(energy, base, 3.0, 2.5, grid)  # negative shift loses the top 0.5 eV
    with pytest.raises(InputError, match="corrected_gap_ev"):
        spectra.corrected_spectrum(energy, base, 3.0, -1.0, grid)
    with pytest.raises(InputError, match="first axis"):
        spectra.corrected_spectrum(energy, np.ones((10, 6)), 3.0, 3.5, grid)
    result = spectra.corrected_spectrum(energy, base, 3.0, 3.0, grid)  # no shift, data exactly on the grid
    np.testing.assert_allclose(result.eps_imag, base, atol=1e-12)


def test_edge_offset_measures_the_onset_against_the_corrected_direct_gap():
    # The CdSe row: corrected spectrum starting 1.32 eV above its corrected direct gap.
    # DFT gap 0.53 (direct, at Γ), corrected 1.60: the corrected direct gap is 1.60 as well.
    offsets = spectra.edge_offset([2.92, 1.62, math.nan], [0.53, 0.53, 1.0], [0.53, 0.53, 1.2], [1.60, 1.60, 2.0])
    np.testing.assert_allclose(offsets[:2], [1.32, 0.02], atol=1e-12)
    assert math.isnan(offsets[2])
    # an indirect material: the direct gap lies 0.4 eV above the fundamental one, and so does the edge
    assert spectra.edge_offset(3.4, 2.0, 2.4, 3.0) == pytest.approx(0.0)
