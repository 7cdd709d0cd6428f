"""ε from GPAW's own response code (``integration="tetrahedron"`` or ``"point"``, ``gpaw.response.df``).

The demo's default integration, our tetrahedra over GPAW's momentum matrix elements, is in
:mod:`optabs.dft.gpaw.steps` (:func:`~optabs.dft.gpaw.steps.converged_optics`); these modes
remain for comparison and for the shifted-grid setting (``"point"``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optabs.dft.gpaw.broadening import TENSOR_DIRECTIONS, UNBROADENED_ETA_EV, gaussian_broadening, tensor_from_directions
from optabs.dft.gpaw.errors import GpawCalculationError
from optabs.dft.gpaw.paw_transform import direct_paw_transforms
from optabs.dft.gpaw.settings import GpawSettings
from optabs.dft.gpaw.steps import _Dielectric, _OpticsBands, _step


def integration_kwargs(integration: str, ibz_vertices: bool) -> dict[str, Any]:
    """GPAW ``DielectricFunction`` arguments for ``integration`` ("tetrahedron" or "point").

    GPAW's tetrahedra run on the irreducible zone only where the k-grid holds every vertex of it
    (``ibz_vertices``, see :func:`~optabs.dft.gpaw.structure.optics_kpoint_grid`); otherwise on
    the full zone (``qsymmetry=False``), which works on any grid and costs several times more
    (CdSe 4x4x2: 35 s against 4 s of point integration).
    """
    if integration == "tetrahedron":
        return {"integrationmode": "tetrahedron integration", "qsymmetry": bool(ibz_vertices)}
    return {"integrationmode": "point integration"}


def _directional_eps(
    bands: _OpticsBands, s: GpawSettings, log: Path, ibz_vertices: bool
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """GPAW's frequencies (eV) and the independent-particle ε along each direction of the tensor."""
    from gpaw.response.df import DielectricFunction

    eta = UNBROADENED_ETA_EV if s.broadening == "gaussian" else s.eta_ev
    df = DielectricFunction(
        str(bands.gpw),
        # a fresh dict: GPAW writes the default upper limit (omegamax) into it
        frequencies={"type": "nonlinear", "domega0": s.domega0_ev, "omega2": s.omega2_ev},
        eta=eta,
        ecut=s.response_ecut_ev,
        nbands=bands.nbands,
        intraband=False,
        hilbert=True,
        txt=str(log),
        **integration_kwargs(s.integration, ibz_vertices),
    )
    names = list(TENSOR_DIRECTIONS) if s.off_diagonal else ["x", "y", "z"]
    eps_d = {}
    for name in names:
        # (without local-field effects, with them); the IP tensor is the first
        eps_no_lfe, _ = df.get_dielectric_function(direction=list(TENSOR_DIRECTIONS[name]), filename=None)
        eps_d[name] = np.asarray(eps_no_lfe, dtype=complex)
    return np.asarray(df.get_frequencies(), dtype=float), eps_d


def _dielectric(material_id: str, bands: _OpticsBands, s: GpawSettings, log: Path) -> _Dielectric:
    bands.calc = None  # GPAW's response code reads the gpw file itself: no second copy in memory
    with _step(material_id, "dielectric", log), direct_paw_transforms():
        try:
            energy, eps_d = _directional_eps(bands, s, log, bands.ibz_vertices)
        except ValueError as exc:
            # GPAW's own vertex check can disagree with the grid search for a cell a hair off
            # its ideal symmetry (the Materials Project's Na2O: angles 59.99999°): integrate
            # over the full zone instead, and say so in the result
            if not (bands.ibz_vertices and "vertices of the IBZ" in str(exc)):
                raise
            bands.ibz_vertices = False
            energy, eps_d = _directional_eps(bands, s, log, False)
    if s.broadening == "gaussian":
        # before assembling: each directional ε tends to 1 at high energy, as the broadening assumes
        eps_d = {name: gaussian_broadening(energy, eps, s.eta_ev) for name, eps in eps_d.items()}
    tensor = tensor_from_directions(eps_d, s.off_diagonal)
    if energy[-1] < 15.0:
        raise GpawCalculationError(
            f"{material_id}: the frequency grid ends at {energy[-1]:.1f} eV < 15 eV; too few bands", log, "dielectric"
        )
    return _Dielectric(energy_ev=energy, eps=tensor, omegamax_ev=float(energy[-1]))
