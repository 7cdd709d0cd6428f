"""The ``spectra`` stage: pure array physics (dielectric function -> absorption spectrum) and its stage.

The physics lives in :mod:`~optabs.spectra.transforms` (Kramers-Kronig, scissor),
:mod:`~optabs.spectra.absorption` (alpha, log10 alpha, onsets, grids) and
:mod:`~optabs.spectra.corrected` (one material's pipeline), all re-exported here;
:mod:`optabs.spectra.stage` turns the DFT results into the spectra table.

Conventions used throughout:

- Energies are photon energies in eV, a 1-D array of shape ``(N,)``, non-negative and strictly
  increasing. Functions that need a uniform grid say so (the points may deviate from the ideal
  uniform positions by up to ``UNIFORM_TOLERANCE`` of a step, to accept grids read back from
  rounded text files).
- Dielectric data are energy-first: shape ``(N,)`` for one component or ``(N, k)`` for k components.
  A full tensor is ``(N, 6)`` in the order ``TENSOR_COMPONENTS`` = xx yy zz xy yz xz (or ``(N, 3, 3)``).
- The absorption coefficient is in cm^-1; spectra are stored as log10 of it, clipped below at a floor.

Every function validates its input and raises :class:`optabs.errors.InputError` naming the argument;
no function loops in Python over energy points.
"""

from __future__ import annotations

from optabs.grid import LOG10_ALPHA_FLOOR, ONSET_THRESHOLD, TENSOR_COMPONENTS, TENSOR_DIAGONAL
from optabs.spectra._checks import NEGATIVE_TOLERANCE, UNIFORM_TOLERANCE
from optabs.spectra.absorption import (
    HC_EV_CM,
    absorption_coefficient,
    edge_integral,
    edge_offset,
    energy_grid,
    f_sum,
    isotropic_average,
    log10_alpha,
    onset_energies,
    onset_energy,
    to_grid,
)
from optabs.spectra.corrected import CorrectedSpectrum, corrected_spectrum
from optabs.spectra.transforms import kramers_kronig, scissor

__all__ = [
    "HC_EV_CM",
    "LOG10_ALPHA_FLOOR",
    "NEGATIVE_TOLERANCE",
    "ONSET_THRESHOLD",
    "TENSOR_COMPONENTS",
    "TENSOR_DIAGONAL",
    "UNIFORM_TOLERANCE",
    "CorrectedSpectrum",
    "absorption_coefficient",
    "corrected_spectrum",
    "edge_integral",
    "edge_offset",
    "energy_grid",
    "f_sum",
    "isotropic_average",
    "kramers_kronig",
    "log10_alpha",
    "onset_energies",
    "onset_energy",
    "scissor",
    "to_grid",
]
