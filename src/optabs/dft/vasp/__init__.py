"""The production DFT engine: VASP, driven by pymatgen input sets and custodian.

The published method (optical spectra of oxides, after Takahashi, Kumagai, Oba et al.): PBEsol+U,
a relaxation, a dielectric-function run with many empty bands on a dense k-mesh, and the band gap
corrected by a non-self-consistent dielectric-dependent hybrid (nsc-dd) whose mixing is 1/eps_inf
of a DFPT run. Five VASP runs, each in its own folder under the material's work directory and each
run by custodian with the standard error handlers:

``relax``
    ``MPRelaxSet`` with GGA = PS and the +U map (Materials Project convention: the U table of the
    most electronegative element, i.e. only oxides and fluorides get a U; ``u_values`` is
    ``{"O": {...}, "F": {...}}``); ISIF = 3 (cell and ions), EDIFF = 1e-5,
    EDIFFG = -0.01 eV/A.
``bandgap``
    ``MPStaticSet`` on the relaxed cell: self-consistent PBEsol+U on a Gamma-centred mesh of
    ``scf_kpoints_density``, EDIFF = 1e-6, writing CHGCAR (for ``optics``) and WAVECAR (for
    ``hybrid``). Its total energy is the result's ``total_energy_ev``.
``optics``
    ``MPNonSCFSet(mode="uniform", optics=True)`` on the ``bandgap`` charge density (ICHARG = 11):
    LOPTICS, NBANDS = ceil(``nbands_factor`` x VASP's default NBANDS), CSHIFT, NEDOS, tetrahedron
    integration (ISMEAR = -5), ALGO = Normal, a Gamma-centred mesh of ``kpoints_density``.
    Gives eps(omega) and the PBEsol+U gap and direct gap of the spectrum.
``dfpt`` (only with ``nsc_dd`` and ``eps_inf_method = "dfpt"``, the default)
    ``MPStaticSet`` with LEPSILON, LRPA = .FALSE., LPEAD, IBRION = -1, NSW = 0, ISMEAR = 0
    (SIGMA 0.01 eV), no LOPTICS, on the relaxed cell and the optics mesh: the electronic
    (clamped-ion) dielectric tensor with local-field effects (Hartree and exchange-correlation),
    pymatgen's ``Vasprun.epsilon_static``. eps_inf = trace/3 of it.
``hybrid`` (only with ``nsc_dd``)
    One-shot PBE0-type hybrid on the ``bandgap`` orbitals. Not generated: the ``bandgap`` run's
    final INCAR, KPOINTS, POSCAR and POTCAR (after custodian's corrections) and its WAVECAR are
    copied, and only the hybrid tags change: LHFCALC, AEXX = 1/eps_inf, HFSCREEN = 0,
    LDAU = .FALSE. (exact exchange replaces the U), ALGO = Eigenval, NELM = 1, ISTART = 1,
    NBANDS = the ``bandgap`` run's, no ICHARG, LWAVE/LCHARG off. VASP re-diagonalises the hybrid
    Hamiltonian in the space of the PBEsol+U orbitals without updating them, so the eigenvalues
    are non-self-consistent hybrid eigenvalues; the mesh, cell, cutoff and band count are those of
    the WAVECAR it reads.

eps_inf for AEXX comes from ``eps_inf_method``: ``dfpt`` (default) is what dielectric-dependent
hybrids use (Skone, Govoni and Galli, PRB 89, 195112 (2014)); ``optics`` takes trace/3 of
Re eps(omega = 0) of the LOPTICS run, independent-particle PBEsol+U without local fields, typically
5-15 % larger (less exact exchange, a smaller gap opening). Both values are in ``gap_details``
(``eps_inf_dfpt``, ``eps_inf_optics``), with ``eps_inf_method`` and the ``eps_inf`` used.

The nsc-dd correction is applied as a shift measured on one set of orbitals:
``corrected_gap = dft_gap + (E_g[hybrid] - E_g[PBEsol+U])``, both E_g on the ``bandgap`` mesh
and orbitals, ``dft_gap`` from the ``optics`` run (the gap of the spectrum), so that downstream
scissor shifts move the spectrum by exactly the hybrid gap opening.

Spin: the relaxation starts ferromagnetic (MP MAGMOM); if its total magnetization is below
``NONMAGNETIC_MUB`` the later runs use ISPIN = 1 (``optics`` decides again from ``bandgap``, and
``dfpt`` follows ``optics``; ``hybrid`` keeps the ISPIN of the WAVECAR it reads).

POTCARs: pymatgen's MP choice of potentials from the PBE_54 set by default (``potcar_functional``),
found through pymatgen (``PMG_VASP_PSP_DIR`` in ``~/.pmgrc.yaml``) or in the library folder
``VaspSettings.potcar_dir`` when it is set. Every run's final INCAR and KPOINTS (custodian's
corrections included), the POTCAR titles and the corrections themselves go into the result's
``settings``; energies are on the scale ``vasp-PBEsol+U``.

Modules: :mod:`~optabs.dft.vasp.settings` (settings and constants), :mod:`~optabs.dft.vasp.helpers`
(pure helpers), :mod:`~optabs.dft.vasp.inputs` (input sets), :mod:`~optabs.dft.vasp.outputs`
(reading the outputs) and :mod:`~optabs.dft.vasp.engine` (running the steps).
"""

from optabs.dft.vasp.engine import VaspEngine
from optabs.dft.vasp.helpers import (
    dfpt_dielectric_constant,
    direct_gap_ev,
    electronic_dielectric_constant,
    hubbard_u_anion,
    hubbard_u_incar,
    nsc_dd_mixing,
    optics_nbands,
    standard_handlers,
    vasp_default_nbands,
)
from optabs.dft.vasp.inputs import (
    bandgap_input_set,
    dfpt_input_set,
    hybrid_incar,
    optics_input_set,
    relax_input_set,
    write_bandgap_inputs,
    write_dfpt_inputs,
    write_hybrid_inputs,
    write_optics_inputs,
    write_relax_inputs,
)
from optabs.dft.vasp.outputs import dielectric_arrays, read_vasprun
from optabs.dft.vasp.settings import (
    ENERGY_SCALE,
    EPS_INF_METHODS,
    GAP_METHOD,
    MP_U_VALUES,
    NONMAGNETIC_MUB,
    RELAX_EDIFF,
    RELAX_EDIFFG,
    SCF_EDIFF,
    STEPS,
    VaspSettings,
)

__all__ = [
    "ENERGY_SCALE",
    "EPS_INF_METHODS",
    "GAP_METHOD",
    "MP_U_VALUES",
    "NONMAGNETIC_MUB",
    "RELAX_EDIFF",
    "RELAX_EDIFFG",
    "SCF_EDIFF",
    "STEPS",
    "VaspEngine",
    "VaspSettings",
    "bandgap_input_set",
    "dfpt_dielectric_constant",
    "dfpt_input_set",
    "dielectric_arrays",
    "direct_gap_ev",
    "electronic_dielectric_constant",
    "hubbard_u_anion",
    "hubbard_u_incar",
    "hybrid_incar",
    "nsc_dd_mixing",
    "optics_input_set",
    "optics_nbands",
    "read_vasprun",
    "relax_input_set",
    "standard_handlers",
    "vasp_default_nbands",
    "write_bandgap_inputs",
    "write_dfpt_inputs",
    "write_hybrid_inputs",
    "write_optics_inputs",
    "write_relax_inputs",
]
