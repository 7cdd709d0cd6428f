"""Figures of merit of log10 alpha spectra, per ensemble member, with the ensemble's mean and spread.

A merit turns one spectrum (log10 of alpha in cm^-1 on the common grid, shape ``(..., G)``) into
one number; :func:`merit_values` is vectorised over all leading axes, so an ensemble's predictions
``(M, N, G)`` (members, materials, grid points) give ``(M, N)`` values, and :func:`ensemble_merits`
reduces them to a mean and a standard deviation per material.

Kinds (``screen.merits.<name>.kind`` in the config):

- ``onset``: the study's onset in eV (first grid energy where log10 alpha > the grid's onset
  threshold; :func:`optabs.spectra.onset_energies`); NaN where it is never exceeded. Lower is better.
- ``log10_alpha_at`` (``energy_ev``): log10 alpha at one energy, linearly interpolated on the grid.
- ``window_mean`` (``e_min_ev``, ``e_max_ev``): the mean of log10 alpha over the window, as the
  exact integral of the grid's piecewise-linear interpolant (trapezoid rule, window edges
  interpolated) divided by the window width; so a window narrower than a grid step is well defined.
- ``slme`` (``thickness_um``): the spectroscopic limited maximum efficiency in percent
  (Yu & Zunger, Phys. Rev. Lett. 108, 068701 (2012)), computed by :func:`slme_vectorised`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from optabs.errors import ConfigError, InputError
from optabs.grid import LOG10_ALPHA_FLOOR, ONSET_THRESHOLD, Grid
from optabs.spectra import onset_energies

#: The parameters each kind needs (all required; no other parameter is accepted).
MERIT_PARAMS: dict[str, tuple[str, ...]] = {
    "onset": (),
    "log10_alpha_at": ("energy_ev",),
    "window_mean": ("e_min_ev", "e_max_ev"),
    "slme": ("thickness_um",),
}
#: The direction a kind is ranked in when the definition gives none.
DEFAULT_DIRECTION: dict[str, str] = {"onset": "min", "log10_alpha_at": "max", "window_mean": "max", "slme": "max"}
#: ``screen.merits`` and ``screen.merit`` when the config has none (the schema's defaults).
DEFAULT_MERITS: dict[str, dict[str, Any]] = {
    "onset": {"kind": "onset"},
    "visible_mean": {"kind": "window_mean", "e_min_ev": 1.6, "e_max_ev": 3.3},
    "slme_1um": {"kind": "slme", "thickness_um": 1.0},
}
DEFAULT_RANKED_MERIT: str = "visible_mean"
#: Working temperature of the SLME in K (pymatgen's default, 20 C).
SLME_TEMPERATURE_K: float = 293.15


@dataclass(frozen=True)
class Merit:
    """One figure of merit: ``name`` (the config key and the column prefix), ``kind`` (one of
    :data:`MERIT_PARAMS`), its ``params`` (energies in eV, thickness in um) and the ranking
    ``direction`` (``"max"``: larger is better, ``"min"``: smaller is better)."""

    name: str
    kind: str
    params: dict[str, float] = field(default_factory=dict)
    direction: str = "max"

    @property
    def key(self) -> str:
        """The config key of the definition, as error messages name it."""
        return f"screen.merits.{self.name}"

    def check(self, grid: Grid) -> None:
        """Raise :class:`ConfigError` if an energy of the definition lies outside ``grid``'s energies."""
        lo, hi = grid.e_min_ev, grid.e_max_ev
        for name in ("energy_ev", "e_min_ev", "e_max_ev"):
            if name in self.params and not lo <= self.params[name] <= hi:
                raise ConfigError(
                    f"config key '{self.key}': {name} = {self.params[name]} eV lies outside the energy grid "
                    f"[{lo}, {hi}] eV; choose an energy on the grid"
                )


def _merit_from_definition(name: str, definition: Any) -> Merit:
    key = f"screen.merits.{name}"
    if not isinstance(definition, Mapping):
        raise ConfigError(f"config key '{key}': expected a mapping with a 'kind', got {definition!r}")
    kind = definition.get("kind")
    if kind not in MERIT_PARAMS:
        raise ConfigError(f"config key '{key}': unknown kind {kind!r}; known: {', '.join(MERIT_PARAMS)}")
    direction = definition.get("direction", DEFAULT_DIRECTION[kind])
    if direction not in ("max", "min"):
        raise ConfigError(f"config key '{key}': direction must be 'max' or 'min', got {direction!r}")
    needed = MERIT_PARAMS[kind]
    extra = sorted(set(definition) - set(needed) - {"kind", "direction"})
    if extra:
        takes = ", ".join(needed) or "no settings besides direction"
        raise ConfigError(f"config key '{key}': {', '.join(extra)} not used by kind {kind!r} (it takes {takes}); remove it")
    params: dict[str, float] = {}
    for param in needed:
        if param not in definition:
            raise ConfigError(f"config key '{key}': kind {kind!r} needs {param!r}, which is missing")
        value = definition[param]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"config key '{key}': {param} must be a finite number >= 0, got {value!r}")
        params[param] = float(value)
    if kind == "window_mean" and params["e_min_ev"] >= params["e_max_ev"]:
        raise ConfigError(f"config key '{key}': e_min_ev ({params['e_min_ev']}) must be below e_max_ev ({params['e_max_ev']})")
    if kind == "slme" and params["thickness_um"] <= 0:
        raise ConfigError(f"config key '{key}': thickness_um must be > 0, got {params['thickness_um']}")
    return Merit(name=name, kind=kind, params=params, direction=direction)


def merits_from_config(section: Mapping[str, Any]) -> list[Merit]:
    """The merits defined in the config's ``screen`` section (``section['merits']``), in config order.

    A section without ``merits`` gets :data:`DEFAULT_MERITS`. Raises :class:`ConfigError` whose
    message starts ``config key 'screen.merits.<name>':`` for an unknown kind, a missing or
    inapplicable parameter, a window with ``e_min_ev >= e_max_ev`` or a bad direction. Whether the
    energies lie on the grid needs the grid: :meth:`Merit.check`.
    """
    definitions = section.get("merits", DEFAULT_MERITS)
    if not isinstance(definitions, Mapping) or not definitions:
        raise ConfigError(f"config key 'screen.merits': expected a non-empty mapping name -> definition, got {definitions!r}")
    return [_merit_from_definition(str(name), definition) for name, definition in definitions.items()]


def ranked_merit(section: Mapping[str, Any]) -> Merit:
    """The merit the acquisition ranks on: the definition that ``screen.merit`` names.

    Raises :class:`ConfigError` starting ``config key 'screen.merit':`` if no merit of that name is defined.
    """
    name = section.get("merit", DEFAULT_RANKED_MERIT)
    merits = {merit.name: merit for merit in merits_from_config(section)}
    if name not in merits:
        raise ConfigError(f"config key 'screen.merit': {name!r} is not a merit defined under screen.merits ({', '.join(merits)})")
    return merits[name]


# ----------------------------------------------------------------------------------------------
# values


def _interpolation_weights(energy: NDArray[np.float64], at_ev: float) -> NDArray[np.float64]:
    """(G,) weights w with ``y @ w`` the linear interpolation of y at ``at_ev`` (inside the grid)."""
    i = int(np.clip(np.searchsorted(energy, at_ev, side="right") - 1, 0, energy.size - 2))
    s = (at_ev - energy[i]) / (energy[i + 1] - energy[i])
    weights = np.zeros_like(energy)
    weights[i], weights[i + 1] = 1.0 - s, s
    return weights


def _window_weights(energy: NDArray[np.float64], e_min: float, e_max: float) -> NDArray[np.float64]:
    """(G,) weights w with ``y @ w`` the integral over [e_min, e_max] of y's piecewise-linear interpolant."""
    left, right = energy[:-1], energy[1:]
    lo, hi = np.maximum(left, e_min), np.minimum(right, e_max)
    width = np.clip(hi - lo, 0.0, None)
    step = right - left
    # the interpolant's share of the segment's right point at lo and hi; the integral is width * mean
    s_lo, s_hi = (lo - left) / step, (hi - left) / step
    weights = np.zeros_like(energy)
    weights[:-1] += width * (2.0 - s_lo - s_hi) / 2.0
    weights[1:] += width * (s_lo + s_hi) / 2.0
    return weights


def merit_values(
    merit: Merit,
    energy_ev: ArrayLike,
    log10_alpha: ArrayLike,
    *,
    onset_threshold: float = ONSET_THRESHOLD,
    floor: float = LOG10_ALPHA_FLOOR,
) -> NDArray[np.float64]:
    """The merit of every spectrum in ``log10_alpha``.

    Args:
        merit: the definition.
        energy_ev: (G,) grid energies in eV, strictly increasing.
        log10_alpha: (..., G) log10(alpha / cm^-1) on that grid, e.g. (M, N, G) for an ensemble.
        onset_threshold: log10 alpha above which a spectrum absorbs (the grid's ``onset_threshold``).
        floor: the grid's ``log10_alpha_floor``; for ``slme``, values at or below it count as zero absorption.

    Returns:
        (...) values: eV for ``onset``, log10(alpha / cm^-1) for ``log10_alpha_at`` and ``window_mean``,
        percent for ``slme``.

    For ``slme`` a predicted spectrum carries no band gaps, so its onset (log10 alpha > ``onset_threshold``)
    serves as both the direct-allowed and the indirect gap: the radiative fraction is 1 and the value
    is the SLME's upper bound for that absorption. Absorption below the onset is cut off (as in the
    reference, pymatgen's ``slme`` with ``cut_off_absorbance_below_direct_allowed_gap=True``), and
    floored values above it count as zero, since the floor is a clip, not a measured alpha. A spectrum
    that never exceeds the threshold gets 0 %.
    """
    energy = np.asarray(energy_ev, dtype=float)
    values = np.asarray(log10_alpha, dtype=float)
    if energy.ndim != 1 or energy.size < 2 or values.ndim < 1 or values.shape[-1] != energy.size:
        raise InputError(f"merit '{merit.name}': log10_alpha {values.shape} must end with the grid's {energy.shape} points")
    lead = values.shape[:-1]
    if merit.kind == "log10_alpha_at":
        return values @ _interpolation_weights(energy, merit.params["energy_ev"])
    if merit.kind == "window_mean":
        e_min, e_max = merit.params["e_min_ev"], merit.params["e_max_ev"]
        return values @ _window_weights(energy, e_min, e_max) / (e_max - e_min)
    flat = values.reshape(-1, energy.size)
    if flat.shape[0] == 0:
        return np.zeros(lead)
    onset = onset_energies(energy, flat, onset_threshold)
    if merit.kind == "onset":
        return onset.reshape(lead)
    if merit.kind == "slme":
        alpha_cm = np.where(flat > floor, 10.0**flat, 0.0)
        thickness_m = merit.params["thickness_um"] * 1e-6
        return slme_vectorised(energy, alpha_cm, onset, thickness_m).reshape(lead)
    raise InputError(f"merit '{merit.name}': unknown kind {merit.kind!r}; known: {', '.join(MERIT_PARAMS)}")


def ensemble_merits(
    merits: Sequence[Merit],
    energy_ev: ArrayLike,
    predictions: ArrayLike,
    onset_threshold: float = ONSET_THRESHOLD,
    floor: float = LOG10_ALPHA_FLOOR,
    *,
    index: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Mean and spread over ensemble members of every merit, one row per material.

    Args:
        merits: the definitions (:func:`merits_from_config`).
        energy_ev: (G,) grid energies in eV.
        predictions: (M, N, G) log10(alpha / cm^-1) from M members for N materials.
        onset_threshold, floor: the grid's conventions (:func:`merit_values`).
        index: optional N row labels (e.g. material ids); 0..N-1 otherwise.

    Returns:
        N rows; columns ``<name>_mean`` and ``<name>_std`` per merit in the merit's unit, the standard
        deviation over members with ddof=0 (0 for a single member). A member's NaN (an onset never
        reached) makes that material's mean and std NaN.
    """
    values = np.asarray(predictions, dtype=float)
    if values.ndim != 3:
        raise InputError(f"predictions must have shape (members, materials, grid points), got {values.shape}")
    names = [merit.name for merit in merits]
    if len(set(names)) != len(names):
        raise InputError(f"merit names must be unique (they name the columns), got {names}")
    columns: dict[str, NDArray[np.float64]] = {}
    for merit in merits:
        per_member = merit_values(merit, energy_ev, values, onset_threshold=onset_threshold, floor=floor)
        columns[f"{merit.name}_mean"] = per_member.mean(axis=0)
        columns[f"{merit.name}_std"] = per_member.std(axis=0, ddof=0)
    return pd.DataFrame(columns, index=None if index is None else list(index))


# ----------------------------------------------------------------------------------------------
# SLME


@lru_cache(maxsize=1)
def _am15g() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """AM1.5G (ASTM G173 global tilt) as bundled with pymatgen: wavelengths in nm, irradiance in W m^-2 nm^-1."""
    with resources.files("pymatgen.analysis.solar").joinpath("am1.5G.dat").open() as handle:
        wavelength_nm, irradiance = np.loadtxt(handle, usecols=(0, 1), unpack=True, skiprows=2)
    return wavelength_nm, irradiance


def slme_vectorised(
    energy_ev: ArrayLike,
    alpha_cm: ArrayLike,
    gap_ev: ArrayLike,
    thickness_m: float | ArrayLike,
    temperature_k: float = SLME_TEMPERATURE_K,
) -> NDArray[np.float64]:
    """Spectroscopic limited maximum efficiency (percent) of N absorbers at once, radiative fraction 1.

    The SLME of Yu & Zunger (Phys. Rev. Lett. 108, 068701 (2012)) under AM1.5G at ``temperature_k``:
    absorptivity ``a(E) = 1 - exp(-2 alpha(E) L)`` (a back reflector doubles the path), short-circuit
    current ``J_sc = e * int a * Phi_sun``, radiative saturation current ``J_0 = e * pi * int a * Phi_bb(T)``
    and the maximum over V of ``V * (J_sc - J_0 (exp(eV/kT) - 1))`` over the incident power. It follows
    pymatgen's ``pymatgen.analysis.solar.slme.slme`` (the reference the tests compare with), with the
    direct-allowed gap equal to the indirect one: the same bundled AM1.5G table and its wavelength
    points, alpha interpolated onto them by the same not-a-knot cubic spline in wavelength, zero below
    the gap, Simpson's rule; the maximum power point is solved in closed form (Lambert W, by Newton's
    method) instead of pymatgen's 1 mV voltage scan. The one deliberate difference: beyond the ends of
    the energy grid alpha is held at the nearest end's value (pymatgen swaps the two ends); on grids
    covering 0.28-4.43 eV (the table's range) this never applies.

    Args:
        energy_ev: (G,) photon energies in eV, strictly increasing.
        alpha_cm: (N, G) absorption coefficient in cm^-1, >= 0.
        gap_ev: (N,) band gap in eV (absorption below it is discarded); NaN or <= 0 gives 0 %.
        thickness_m: film thickness in metres, a scalar or (N,).
        temperature_k: cell temperature in K.

    Returns:
        (N,) SLME in percent.
    """
    energy = np.asarray(energy_ev, dtype=float)
    alpha_m = np.atleast_2d(np.asarray(alpha_cm, dtype=float)) * 100.0
    gap = np.atleast_1d(np.asarray(gap_ev, dtype=float))
    thickness = np.broadcast_to(np.asarray(thickness_m, dtype=float), gap.shape)
    if alpha_m.shape != (gap.size, energy.size):
        raise InputError(f"slme_vectorised: alpha {alpha_m.shape}, gaps {gap.shape}, energy {energy.shape} do not match")
    # scipy here, not at the top: the workflow reads the merits' settings at every start
    from scipy import constants
    from scipy.integrate import simpson
    from scipy.interpolate import make_interp_spline

    c, h, k, e = constants.c, constants.h, constants.k, constants.e
    h_ev = h / e

    wavelength_nm, irradiance = _am15g()
    wavelength_m = wavelength_nm * 1e-9
    power_in = simpson(irradiance, x=wavelength_nm)  # W m^-2
    sun_flux = irradiance * wavelength_m / (h * c)  # photons s^-1 m^-2 nm^-1
    # black body photon flux per steradian, photons s^-1 m^-2 m^-1 sr^-1
    bb_flux = 2.0 * c / wavelength_m**4 / np.expm1(h * c / (wavelength_m * k * temperature_k))

    # the reference's wavelengths of the grid (its 1e-8 eV keeps E = 0 finite), ascending
    grid_nm = (c * h_ev / (energy + 1e-8) * 1e9)[::-1]
    spline = make_interp_spline(grid_nm, alpha_m[:, ::-1].T, k=3)
    inside = (wavelength_nm >= grid_nm[0]) & (wavelength_nm <= grid_nm[-1])
    alpha_sun = np.where(
        inside[None, :],
        spline(np.clip(wavelength_nm, grid_nm[0], grid_nm[-1])).T,
        np.where(wavelength_nm[None, :] < grid_nm[0], alpha_m[:, -1:], alpha_m[:, :1]),
    )  # (N, L) m^-1
    with np.errstate(divide="ignore", invalid="ignore"):
        above_gap = wavelength_nm[None, :] < (1e9 * c * h_ev / gap)[:, None]
    alpha_sun = np.where(above_gap, alpha_sun, 0.0)
    absorbed = -np.expm1(-2.0 * alpha_sun * thickness[:, None])

    j_sc = e * simpson(sun_flux * absorbed, x=wavelength_nm, axis=-1)  # A m^-2
    j_0 = e * np.pi * simpson(bb_flux * absorbed, x=wavelength_m, axis=-1)
    return 100.0 * _max_power(j_sc, j_0, k * temperature_k / e) / power_in


def _max_power(j_sc: NDArray[np.float64], j_0: NDArray[np.float64], thermal_v: float) -> NDArray[np.float64]:
    """(N,) maximum of ``V (J_sc - J_0 (exp(V/V_t) - 1))`` over V >= 0, in W m^-2; 0 where J_sc <= 0.

    With x = V/V_t, dP/dV = 0 gives (1 + x) exp(1 + x) = e (1 + J_sc/J_0), i.e. 1 + x = W(e (1 + J_sc/J_0)),
    and there P = V_t (J_sc + J_0) x^2 / (1 + x). w = 1 + x solves w + ln w = 1 + ln(1 + J_sc/J_0) = L,
    solved by Newton's method from w = L - ln L in log space, so J_sc/J_0 ~ 1e50 cannot overflow.
    """
    good = (j_sc > 0) & (j_0 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        big_l = 1.0 + np.logaddexp(0.0, np.log(np.where(good, j_sc, 1.0)) - np.log(np.where(good, j_0, 1.0)))
    w = big_l - np.log(big_l)
    for _ in range(8):
        w = w - (w + np.log(w) - big_l) / (1.0 + 1.0 / w)
    x = w - 1.0
    return np.where(good, thermal_v * (j_sc + j_0) * x**2 / (1.0 + x), 0.0)


def merit_function(settings: Any, grid: Grid) -> Any:
    """``spectra (..., G) -> (...)`` values of the ranked merit (``settings.merit`` of a
    :class:`~optabs.screen.settings.ScreenSettings`) with ``grid``'s onset threshold and floor."""
    merit = ranked_merit({"merit": settings.merit, "merits": dict(settings.merits)})
    merit.check(grid)

    def values(spectra: ArrayLike) -> NDArray[np.float64]:
        return merit_values(merit, grid.energy_ev, spectra, onset_threshold=grid.onset_threshold,
                            floor=grid.log10_alpha_floor)

    return values
