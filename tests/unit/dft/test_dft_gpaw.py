"""The embedded GPAW engine (optabs.dft.gpaw): physics against published numbers, failures, caching.

Reference values (cited where used):

- Petousis et al., "High-throughput screening of inorganic compounds for the discovery of novel
  dielectric and optical materials", Sci. Data 4, 160134 (2017), doi:10.1038/sdata.2016.134
  (the Materials Project dielectric data): electronic dielectric constant ε∞ from PBE DFPT on the
  PBE-relaxed cell, MgO (mp-1265) 3.21, zinc-blende ZnS (mp-10695) 5.89. DFPT includes
  local-field effects, which lower ε∞; the engine computes the independent-particle ε (no local
  fields), so its values lie somewhat above these (measured with GPAW, demo k-points, 8 empty
  bands per atom, response cutoff 50 eV: ZnS, PBE, a = 5.45 Å: 6.29 without vs 5.65 with local
  fields; ZnS, PBEsol, a = 5.409 Å: 6.49 vs 5.84; MgO, PBEsol: 3.28 vs 3.14). The sulfide is
  therefore checked with PBE on a PBE-sized cell, the reference's functional and volume: PBEsol on
  the experimental cell gives 6.50, 10.4 % above the reference, almost all of it local fields.
- GLLB-SC: Kuisma et al., Phys. Rev. B 82, 115106 (2010); MgO's experimental gap is 7.8 eV and
  GLLB-SC gives about 8 eV (GPAW's documented procedure: 8.04 eV at 400 eV / 4x4x4, 8.28 eV at
  800 eV / 8x8x8). The test asks for 7-9 eV and for more than the PBEsol gap.

Run time with the demo preset on one core: ~1.5-2 minutes for the whole module.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest

gpaw = pytest.importorskip(
    "gpaw",
    reason="GPAW is not installed (apt-get install -y libxc-dev libopenblas-dev; "
    "GPAW_CONFIG=resources/gpaw-siteconfig.py pip install gpaw==26.7.0)",
)

from pymatgen.core import Lattice, Structure  # noqa: E402

from optabs.dft import CalculationError, DielectricResult, FailureRecord, read_result, write_result  # noqa: E402
from optabs.dft.gpaw import (  # noqa: E402
    GpawEngine,
    GpawSettings,
    SetupGenerationError,
    check_generated_setups,
    dataset_valence,
    ensure_pbesol_setups,
    find_dataset,
    gaussian_broadening,
    generator_options,
    kpoint_grid,
    more_empty_bands,
    single_thread_env,
    structure_to_atoms,
    tensor_from_directions,
)
from optabs.errors import ConfigError  # noqa: E402

PETOUSIS_EPS_INF = {"MgO": 3.21, "ZnS": 5.89}  # Sci. Data 4, 160134 (2017), PBE DFPT


def rocksalt(a: float, cation: str, anion: str) -> Structure:
    cell = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return cell.get_primitive_structure()


def zincblende(a: float, cation: str, anion: str) -> Structure:
    cell = Structure.from_spacegroup("F-43m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return cell.get_primitive_structure()


MGO = rocksalt(4.212, "Mg", "O")  # experimental lattice constant
# PBE-relaxed lattice constant (PBE overestimates the experimental 5.409 Å by ~0.8 %), so that
# functional and volume match Petousis et al.; what remains is the local-field effect.
ZNS_PBE = zincblende(5.45, "Zn", "S")


@pytest.fixture(scope="module")
def setups_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gpaw-setups")


@pytest.fixture(scope="module")
def demo(setups_dir) -> GpawSettings:
    return GpawSettings.preset("demo", setups_dir=str(setups_dir))


@pytest.fixture(scope="module")
def mgo(tmp_path_factory, demo) -> tuple[DielectricResult, Path]:
    workdir = tmp_path_factory.mktemp("MgO")
    return GpawEngine(demo).run("MgO", MGO, workdir), workdir


@pytest.fixture(scope="module")
def zns(tmp_path_factory, setups_dir) -> DielectricResult:
    settings = GpawSettings.preset("demo", setups_dir=str(setups_dir), xc="PBE", gap_method="none")
    return GpawEngine(settings).run("ZnS", ZNS_PBE, tmp_path_factory.mktemp("ZnS"))


# ---------------------------------------------------------------------------------------------
# Fast: settings, pure functions
# ---------------------------------------------------------------------------------------------


def test_tetrahedra_need_a_gamma_centred_grid():
    with pytest.raises(ConfigError, match="integration.*tetrahedra need a Γ-centred grid"):
        GpawSettings.preset("demo", optics_grid="shifted")


def test_presets_and_validation():
    demo = GpawSettings.preset("demo")
    assert (demo.ecut_ev, demo.kdensity_gs, demo.kdensity_nscf) == (400.0, 2.0, 3.0)
    assert (demo.response_ecut_ev, demo.eta_ev, demo.domega0_ev, demo.gap_method) == (10.0, 0.05, 0.05, "GLLB-SC")
    assert (demo.optics_grid, demo.integration, demo.edge_tolerance_ev) == ("gamma", "momentum-tetrahedron", 0.1)
    assert (demo.tetra_refinement, demo.refinement_tolerance_ev, demo.max_refinement_densifications) == (2, 0.15, 1)
    with pytest.raises(ConfigError, match="tetra_refinement"):
        GpawSettings.preset("demo", tetra_refinement=3)
    with pytest.raises(ConfigError, match="broadening"):
        GpawSettings.preset("demo", broadening="lorentzian")
    converged = GpawSettings.preset("converged")
    assert converged.ecut_ev > demo.ecut_ev and converged.kdensity_nscf > demo.kdensity_nscf
    assert GpawSettings.preset("demo", ecut_ev=300).ecut_ev == 300
    with pytest.raises(ConfigError, match="unknown GPAW preset"):
        GpawSettings.preset("fast")
    with pytest.raises(ConfigError, match="ecutt"):
        GpawSettings.preset("demo", ecutt=1)
    with pytest.raises(ConfigError, match="gap_method"):
        GpawSettings(gap_method="GW")
    with pytest.raises(ConfigError, match="eta_ev"):
        GpawSettings(eta_ev=0)
    with pytest.raises(ConfigError, match="nscf_eigenstates"):
        GpawSettings(nscf_eigenstates=-1e-6)
    assert (demo.nscf_eigensolver, demo.scf_eigenstates, converged.scf_eigenstates) == ("davidson", 1e-6, None)
    with pytest.raises(ConfigError, match="nscf_eigensolver"):
        GpawSettings(nscf_eigensolver="lanczos")
    assert demo.kpoints_per_atom_nscf == 700
    with pytest.raises(ConfigError, match="kpoints_per_atom_nscf"):
        GpawSettings(kpoints_per_atom_nscf=-1)


def test_single_thread_env():
    env = single_thread_env()
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1"
    env["OPENBLAS_NUM_THREADS"] = "8"  # a copy: callers may edit it
    assert single_thread_env()["OPENBLAS_NUM_THREADS"] == "1"


def test_kpoint_grid_follows_ase_density():
    atoms = structure_to_atoms("MgO", MGO)
    assert kpoint_grid(atoms, 2.0) == (6, 6, 6)  # |b| = 2.58 / Å
    assert kpoint_grid(atoms, 3.0, even=True) == (8, 8, 8)


@pytest.mark.parametrize("name", ["BaO", "SnO2", "CdS"])
def test_kpoints_per_atom_raise_the_optics_density_to_the_smallest_grid_that_has_them(name):
    from optabs.dft.gpaw.structure import density_for_kpoints_per_atom

    structures = {
        "BaO": rocksalt(5.54, "Ba", "O"),  # 2 atoms: 6x6x6 at 3.0 is 432 per atom
        "SnO2": Structure.from_spacegroup(  # rutile, 6 atoms: 4x4x6 at 3.0 is 576
            "P4_2/mnm", Lattice.tetragonal(4.74, 3.19), ["Sn", "O"], [[0, 0, 0], [0.307, 0.307, 0]]),
        "CdS": Structure.from_spacegroup(  # wurtzite, 4 atoms, 6x6x3 at 3.0
            "P6_3mc", Lattice.hexagonal(4.14, 6.72), ["Cd", "S"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.377]]),
    }
    atoms = structure_to_atoms(name, structures[name])
    n = len(atoms)
    density = density_for_kpoints_per_atom(atoms, 700, 3.0)
    grid = kpoint_grid(atoms, density)
    assert density >= 3.0 and np.prod(grid) * n >= 700
    assert np.prod(kpoint_grid(atoms, density * (1 - 1e-6))) * n < 700  # the smallest such density
    assert np.prod(kpoint_grid(atoms, 3.0)) * n < 700  # it did raise it
    assert density_for_kpoints_per_atom(atoms, 0, 3.0) == 3.0
    assert density_for_kpoints_per_atom(atoms, 10, 3.0) == 3.0  # already enough
    if name == "BaO":
        assert grid == (8, 8, 8)  # 7x7x7 = 686 per atom is not enough


def _gaussian_line(w: np.ndarray, w0: float, width: float, area: float) -> np.ndarray:
    """Causal ε = 1 + χ whose ε2 is a Gaussian line (std ``width``) at ±w0 of the given area.

    Faddeeva w(z) is analytic in the upper half-plane with Re w(x) = exp(-x²), so
    i c [w((ω-w0)/a) - w((ω+w0)/a)] is a Kramers-Kronig pair with odd Gaussian ε2.
    """
    from scipy.special import wofz

    a = np.sqrt(2) * width
    c = area / (width * np.sqrt(2 * np.pi))
    return 1 + 1j * c * (wofz((w - w0) / a) - wofz((w + w0) / a))


def test_gaussian_broadening_is_exact_for_gaussian_lines():
    """Broadening a Gaussian line by σ gives the Gaussian line of std sqrt(s0² + σ²), both parts."""
    w = np.concatenate([np.linspace(0, 10, 2001), np.linspace(10.05, 60, 500)])  # non-uniform, like GPAW's
    s0, sigma = 0.05, 0.15
    eps = _gaussian_line(w, 5.0, s0, area=3.0)
    out = gaussian_broadening(w, eps, sigma)
    exact = _gaussian_line(w, 5.0, np.hypot(s0, sigma), area=3.0)
    inside = w < 50  # the last few σ miss the part beyond the grid
    np.testing.assert_allclose(out[inside], exact[inside], atol=2e-3 * np.abs(exact.imag).max())
    assert out[0].imag == 0
    assert np.abs(out.imag[w < 5.0 - 5 * np.hypot(s0, sigma)]).max() < 1e-3
    both = gaussian_broadening(w, np.stack([eps, eps], axis=1), sigma)  # (N, k) column by column
    np.testing.assert_allclose(both[:, 1], out)


def test_tensor_from_directions_recovers_off_diagonals():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 3, 3)) + 1j * rng.normal(size=(5, 3, 3))
    tensor = m + np.swapaxes(m, 1, 2)  # symmetric, 5 frequencies
    dirs = {"x": (1, 0, 0), "y": (0, 1, 0), "z": (0, 0, 1), "x+y": (1, 1, 0), "y+z": (0, 1, 1), "x+z": (1, 0, 1)}
    eps_d = {}
    for name, d in dirs.items():
        d = np.asarray(d, float) / np.linalg.norm(d)
        eps_d[name] = np.einsum("i,wij,j->w", d, tensor, d)
    out = tensor_from_directions(eps_d, off_diagonal=True)
    pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2)]  # xx yy zz xy yz xz
    expected = np.stack([tensor[:, i, j] for i, j in pairs], axis=1)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    assert np.all(tensor_from_directions(eps_d, off_diagonal=False)[:, 3:] == 0)


def test_more_empty_bands_grows_enough():
    assert more_empty_bands(10, 2.0, 12.0, 15.0) >= 15
    assert more_empty_bands(10, 2.0, 14.9, 15.0) == 15


def test_bad_structures_are_recorded_failures(tmp_path, demo):
    disordered = Structure(Lattice.cubic(4.2), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(CalculationError, match="disordered"):
        GpawEngine(demo).run("bad-1", disordered, tmp_path)
    overlapping = Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(CalculationError, match="closer than"):
        GpawEngine(demo).run("bad-2", overlapping, tmp_path)


# ---------------------------------------------------------------------------------------------
# PAW datasets
# ---------------------------------------------------------------------------------------------


def test_generator_options_match_shipped_valence():
    assert generator_options("Mg")["electrons"] == 10  # semicore, like Mg.PBE
    assert generator_options("Ba")["electrons"] == 10
    assert generator_options("O")["electrons"] == 6
    zn = generator_options("Zn")
    assert zn["electrons"] == 12 and zn["projectors"] == "4s,s,4p,p,3d,d" and zn["radius"] == "2.1"
    with pytest.raises(SetupGenerationError):
        generator_options("Xx")


def _generate_in(args):
    elements, directory = args
    return {el: str(p) for el, p in ensure_pbesol_setups(elements, directory).items()}


@pytest.mark.slow
def test_ensure_pbesol_setups_idempotent_and_found(tmp_path):
    paths = ensure_pbesol_setups(["Mg", "O", "Mg"], tmp_path)
    assert sorted(paths) == ["Mg", "O"]
    stamps = {el: p.stat().st_mtime_ns for el, p in paths.items()}
    assert dataset_valence(paths["Mg"]) == 10
    assert find_dataset("Mg", "PBEsol") == paths["Mg"]  # GPAW's own search finds them
    again = ensure_pbesol_setups(["O", "Mg"], tmp_path)
    assert {el: p.stat().st_mtime_ns for el, p in again.items()} == stamps
    assert (tmp_path / "logs" / "Mg.PBEsol.log").read_text().startswith("# gpaw dataset Mg -f PBEsol -e 10")
    assert not list(tmp_path.glob(".gen-*"))  # no temporary directories left behind


@pytest.mark.slow
def test_concurrent_generation_is_safe(tmp_path):
    """Two processes generating the same datasets at once both end with complete files."""
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_generate_in, [(["S", "Se"], tmp_path), (["Se", "S"], tmp_path)]))
    assert results[0] == results[1]
    for path in results[0].values():
        assert dataset_valence(Path(path)) == 6
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["S.PBEsol", "Se.PBEsol", "logs"]


@pytest.mark.slow
@pytest.mark.parametrize("structure", [MGO, zincblende(5.409, "Zn", "S")], ids=["MgO", "ZnS"])
def test_generated_setups_match_shipped_pbe(tmp_path, structure):
    """Generator options (Mg semicore, the Zn projector fix) reproduce the shipped PBE gaps."""
    check = check_generated_setups(structure, tmp_path)
    assert abs(check.difference_ev) < 0.15, check


# ---------------------------------------------------------------------------------------------
# Physics
# ---------------------------------------------------------------------------------------------


def _assert_dark_below_gap(result: DielectricResult, sigma: float) -> None:
    """ε2 < 1e-3 below gap - 3σ (Gaussian broadening σ: its tail there is < 1 % of ε2 near the edge)."""
    below = result.energy_ev < result.dft_gap_ev - 3 * sigma
    assert below.sum() > 10
    assert np.abs(result.eps_imag[below, :3]).max() < 1e-3
    # and it does absorb above the gap
    assert result.eps_imag[result.energy_ev < result.dft_gap_ev + 3.0, :3].max() > 0.1


@pytest.mark.slow
def test_mgo_spectrum(mgo, demo):
    result, workdir = mgo
    assert result.engine == "gpaw" and result.engine_version == gpaw.__version__
    assert result.settings["xc"] == "PBEsol" and result.energy_scale == "gpaw-PBEsol-pw400"
    assert result.energy_ev[0] == 0 and result.energy_ev[-1] >= 15
    assert 4.0 < result.dft_gap_ev < 5.2 and result.dft_direct_gap_ev >= result.dft_gap_ev - 1e-9
    _assert_dark_below_gap(result, demo.eta_ev)
    eps0 = result.eps_real[0]
    np.testing.assert_allclose(eps0[:3], eps0[0], rtol=1e-6)  # cubic
    assert np.abs(result.eps_real[:, 3:]).max() < 1e-6 and np.abs(result.eps_imag[:, 3:]).max() < 1e-6
    assert eps0[0] == pytest.approx(PETOUSIS_EPS_INF["MgO"], rel=0.10)
    for name in ("gs.txt", "nscf.txt", "df.txt", "gllbsc.txt"):
        assert (workdir / name).stat().st_size > 0
    assert not (workdir / "nscf.gpw").exists()  # wave functions dropped after success
    assert set(result.timings_s) >= {"ground_state", "nscf", "dielectric", "gllbsc", "total"}
    assert result.settings["setups"]["Mg"]["valence"] == 10
    assert result.settings["fft"] == "FFTW"  # the Makefile builds GPAW with resources/gpaw-siteconfig.py


@pytest.mark.slow
def test_the_demos_looser_tolerances_and_davidson_give_gpaws_default_gaps_and_bands(tmp_path):
    """The demo's SCF residual and Davidson optics bands at its residual against GPAW's defaults (4e-8, PPCG)."""
    from optabs.dft.gpaw.steps import _gllbsc_gap, _scf

    atoms = structure_to_atoms("MgO", MGO)
    demo = GpawSettings.preset("demo")
    assert demo.scf_eigenstates == 1e-6 and demo.nscf_eigenstates == 1e-3  # what this test checks
    gaps, calcs = {}, {}
    for name, eigenstates in {"demo": demo.scf_eigenstates, "gpaw": None}.items():
        calc = _scf(atoms, xc="PBE", ecut_ev=400.0, kpts=(4, 4, 4), gamma=True, smearing_ev=0.01,
                    convergence_bands="CBM+1", maxiter=None, txt=tmp_path / f"{name}.txt", eigenstates=eigenstates)
        homo, lumo = calc.get_homo_lumo()
        settings = GpawSettings.preset("demo", scf_eigenstates=eigenstates)
        gaps[name] = (lumo - homo, _gllbsc_gap("MgO", atoms, settings, (4, 4, 4), tmp_path / f"{name}-gllb.txt")["gap_ev"])
        calcs[name] = calc
    assert gaps["demo"][0] == pytest.approx(gaps["gpaw"][0], abs=2e-3)  # PBE gap, eV
    assert gaps["demo"][1] == pytest.approx(gaps["gpaw"][1], abs=5e-3)  # GLLB-SC gap, eV
    bands = {}
    for eigensolver, residual in (("davidson", demo.nscf_eigenstates), ("ppcg", None)):
        convergence = {"bands": 12} | ({"eigenstates": residual} if residual else {})
        nscf = calcs["gpaw"].fixed_density(kpts={"size": (6, 6, 6), "gamma": True}, nbands=16, eigensolver=eigensolver,
                                           convergence=convergence, txt=str(tmp_path / "nscf.txt"))
        bands[eigensolver] = np.array([nscf.get_eigenvalues(kpt=k) for k in range(len(nscf.get_ibz_k_points()))])[:, :12]
        assert type(nscf.dft.scf_loop.eigensolver).__name__.lower() == eigensolver
    # eV, 12 converged bands: well inside the 25 meV energy bins of the integration
    np.testing.assert_allclose(bands["davidson"], bands["ppcg"], atol=5e-3)


@pytest.mark.slow
def test_mgo_gllbsc_gap(mgo):
    result, _ = mgo
    assert result.gap_method == "GLLB-SC"
    gllb = result.gap_details["gllbsc"]
    assert gllb["ks_gap_ev"] + gllb["discontinuity_ev"] == pytest.approx(result.corrected_gap_ev)
    assert result.corrected_gap_ev > result.dft_gap_ev
    assert 7.0 < result.corrected_gap_ev < 9.0


@pytest.mark.slow
def test_zns_spectrum(zns):
    assert zns.settings["xc"] == "PBE" and zns.gap_method == "none"
    assert zns.corrected_gap_ev == zns.dft_gap_ev
    assert 1.5 < zns.dft_gap_ev < 2.5
    _assert_dark_below_gap(zns, 0.15)
    assert zns.eps_real[0, 0] == pytest.approx(PETOUSIS_EPS_INF["ZnS"], rel=0.10)


@pytest.mark.slow
def test_result_round_trips(mgo, tmp_path):
    result, _ = mgo
    write_result(tmp_path / "result.json", result)
    back = read_result(tmp_path / "result.json")
    assert isinstance(back, DielectricResult)
    for key in ("energy_ev", "eps_real", "eps_imag"):
        np.testing.assert_array_equal(getattr(back, key), getattr(result, key))
    for key in ("material_id", "engine", "engine_version", "dft_gap_ev", "corrected_gap_ev", "gap_method",
                "total_energy_ev", "energy_scale", "gap_details", "timings_s"):
        assert getattr(back, key) == getattr(result, key)
    assert back.settings == json.loads(json.dumps(result.settings))
    assert Structure.from_dict(back.structure) == MGO


# ---------------------------------------------------------------------------------------------
# Failures and caching
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unconverged_scf_raises_with_log(tmp_path, setups_dir):
    settings = GpawSettings.preset("demo", setups_dir=str(setups_dir), maxiter=1)
    with pytest.raises(CalculationError) as info:
        GpawEngine(settings).run("MgO-maxiter1", MGO, tmp_path)
    err = info.value
    assert "did not converge" in str(err) and err.stage == "ground_state"
    assert Path(err.log_path) == tmp_path / "gs.txt" and Path(err.log_path).exists()
    record = FailureRecord("MgO-maxiter1", "gpaw", str(err), err.stage, err.log_path)
    write_result(tmp_path / "result.json", record)
    assert read_result(tmp_path / "result.json").log_path == err.log_path


@pytest.mark.slow
def test_cached_ground_state_reused_and_corruption_named(mgo, demo, tmp_path):
    result, workdir = mgo
    intact = shutil.copytree(workdir, tmp_path / "intact")
    no_gllbsc = GpawSettings.preset("demo", setups_dir=demo.setups_dir, gap_method="none")
    again = GpawEngine(no_gllbsc).run("MgO", MGO, intact)
    assert again.settings["ground_state_from_cache"] is True
    assert again.total_energy_ev == result.total_energy_ev
    np.testing.assert_allclose(again.eps_imag, result.eps_imag, atol=1e-5)

    broken = shutil.copytree(workdir, tmp_path / "broken")
    gpw = broken / "gs.gpw"
    gpw.write_bytes(gpw.read_bytes()[: gpw.stat().st_size // 2])
    with pytest.raises(CalculationError, match="gs.gpw") as info:
        GpawEngine(demo).run("MgO", MGO, broken)
    assert Path(info.value.log_path) == gpw


@pytest.mark.slow
def test_falls_back_to_pbe_when_generation_fails(monkeypatch, tmp_path, setups_dir):
    import optabs.dft.gpaw.engine as engine_module

    def refuse(elements, directory=None):
        raise SetupGenerationError("no parameters for Mg (test)")

    monkeypatch.setattr(engine_module, "ensure_pbesol_setups", refuse)
    cheap = GpawSettings.preset(
        "demo", setups_dir=str(setups_dir), kdensity_gs=1.0, kdensity_nscf=1.5, ecut_ev=300, gap_method="none"
    )
    result = GpawEngine(cheap).run("MgO", MGO, tmp_path)
    assert result.settings["xc"] == "PBE" and result.settings["xc_requested"] == "PBEsol"
    assert "no parameters for Mg" in result.settings["xc_fallback_reason"]
    assert result.energy_scale == "gpaw-PBE-pw300"


@pytest.mark.slow
def test_missing_gllbsc_dataset_keeps_the_uncorrected_gap_and_says_so(monkeypatch, tmp_path, setups_dir):
    # gpaw-data ships no GLLB-SC dataset for La or Ce; pretend Mg has none either.
    import optabs.dft.gpaw.engine as engine_module

    real = engine_module._has_dataset
    monkeypatch.setattr(engine_module, "_has_dataset", lambda el, xc: False if el == "Mg" else real(el, xc))
    cheap = GpawSettings.preset("demo", setups_dir=str(setups_dir), kdensity_gs=1.0, kdensity_nscf=1.5, ecut_ev=300)
    result = GpawEngine(cheap).run("MgO", MGO, tmp_path)
    assert result.gap_method == "none"
    assert result.corrected_gap_ev == result.dft_gap_ev > 3.0
    assert "no GLLB-SC dataset for Mg" in result.gap_details["gap_method_note"]
    assert not (tmp_path / "gllbsc.txt").exists()


def test_real_la_and_ce_have_no_gllbsc_dataset():
    # why the branch above exists: if gpaw-data starts shipping them, La2O3/CeO2 get GLLB-SC
    from optabs.dft.gpaw.setups import _has_dataset

    assert _has_dataset("Mg", "GLLBSC") and _has_dataset("O", "GLLBSC")
    assert not _has_dataset("Ce", "GLLBSC")


@pytest.mark.slow
def test_a_metal_gets_an_interband_spectrum_with_gap_zero(tmp_path, setups_dir):
    # Rocksalt CdO (a = 4.695 Å) is a semimetal in PBE-type functionals (its 2.2 eV optical gap
    # is a GGA failure): the result says gap 0 instead of failing, and curation drops it later.
    cdo = rocksalt(4.695, "Cd", "O")
    cheap = GpawSettings.preset("demo", setups_dir=str(setups_dir), kdensity_gs=1.5, kdensity_nscf=1.5, ecut_ev=300)
    result = GpawEngine(cheap).run("CdO", cdo, tmp_path)
    assert result.dft_gap_ev == 0.0 and result.corrected_gap_ev == 0.0
    assert result.gap_method == "none" and result.gap_details["metallic"] is True
    assert result.energy_ev[-1] >= 15.0 and np.all(np.isfinite(result.eps_imag))


@pytest.mark.parametrize("l", [0, 1, 3, 6])
def test_rescaled_bessel_transform_matches_the_gaussian_closed_form(l):  # noqa: E741 (l: the angular momentum)
    # ∫0^∞ r^(l+2) exp(-r²) j_l(kr) dr = sqrt(π) k^l exp(-k²/4) / 2^(l+2), so for f = r^l exp(-r²)
    # the rescaled transform 4π/k^l ∫ r² j_l(kr) f dr is 4π sqrt(π) exp(-k²/4) / 2^(l+2), k = 0 included.
    from optabs.dft.gpaw import rescaled_bessel_transform

    r = 12.0 * np.linspace(0.0, 1.0, 4000) ** 2  # non-uniform, dense near 0 like a PAW radial grid
    k = np.array([[0.0, 1e-3, 0.3], [1.0, 2.5, 6.0]])
    got = rescaled_bessel_transform(k, l, r, r**l * np.exp(-(r**2)), chunk=2)
    expected = 4.0 * np.pi * np.sqrt(np.pi) * np.exp(-(k**2) / 4.0) / 2.0 ** (l + 2)
    assert got.shape == k.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)


def _lean_paw_dataset(element: str):
    from gpaw.response.paw import LeanPAWDataset
    from gpaw.setup import create_setup

    setup = create_setup(element, "PBE")
    return LeanPAWDataset(
        rgd=setup.rgd, l_j=setup.l_j, rcut_j=setup.rcut_j, phit_jg=setup.data.phit_jg, phi_jg=setup.data.phi_jg
    )


def _plane_waves(n: int = 24, kmax: float = 0.8) -> np.ndarray:
    """``n`` vectors |G+q| from 0 to ``kmax`` (1/bohr): the demo's 10 eV response cutoff is 0.86/bohr."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(n, 3))
    return directions / np.linalg.norm(directions, axis=1)[:, None] * np.linspace(0.0, kmax, n)[:, None]


def test_direct_paw_transforms_agree_with_gpaw_and_handle_lanthanum():
    # Where GPAW's fast Fourier-Bessel transform passes its own self-test (O), the direct quadrature
    # gives the same PAW pair-density corrections; for La (f partial waves) GPAW's transform fails
    # that self-test, which is why La2O3 had no spectrum, and the direct one gives finite values
    # that match GPAW's own reference integral.
    from gpaw.response.paw import calculate_pair_density_correction, fourier_bessel_transform

    from optabs.dft.gpaw import direct_paw_transforms

    qG_Gv = _plane_waves()
    fast = calculate_pair_density_correction(qG_Gv, pawdata=_lean_paw_dataset("O"))
    with direct_paw_transforms():
        direct = calculate_pair_density_correction(qG_Gv, pawdata=_lean_paw_dataset("O"))
    assert np.abs(direct - fast).max() <= 1e-3 * np.abs(fast).max()

    la = _lean_paw_dataset("La")
    l_j = np.asarray(la.l_j)
    assert 3 in l_j  # the f channel
    with pytest.raises(AssertionError, match="FFBT mismatch"):
        calculate_pair_density_correction(qG_Gv, pawdata=_lean_paw_dataset("La"))
    with direct_paw_transforms():
        q_la = calculate_pair_density_correction(qG_Gv, pawdata=la)
        j_f = int(np.flatnonzero(l_j == 3)[0])
        transform = la.dn_kspline(j_f, j_f, 6)
    assert np.all(np.isfinite(q_la))
    k = np.array([0.5, 2.0])
    reference = 4 * np.pi * fourier_bessel_transform(k, 6, la.rgd, la.get_pair_density_correction(j_f, j_f)) / k**6
    np.testing.assert_allclose(transform.map(k), reference, rtol=1e-4)  # both trapezoidal, on slightly different grids
    # the patch is undone on exit
    with pytest.raises(AssertionError, match="FFBT mismatch"):
        calculate_pair_density_correction(qG_Gv, pawdata=_lean_paw_dataset("La"))


@pytest.mark.slow
def test_la2o3_gets_a_spectrum(tmp_path, setups_dir):
    # La2O3 (mp-1968, P-3m1, experimental a = 3.938, c = 6.136 Å) failed in GPAW's response code
    # ("FFBT mismatch") before the direct transforms; gpaw-data has no La GLLB-SC dataset, so the
    # gap stays the PBEsol one (~3.8 eV at demo settings; Materials Project PBE 3.9 eV).
    la2o3 = Structure.from_spacegroup(
        "P-3m1", Lattice.hexagonal(3.938, 6.136), ["La", "O", "O"],
        [[1 / 3, 2 / 3, 0.2467], [1 / 3, 2 / 3, 0.6470], [0.0, 0.0, 0.0]],
    )
    cheap = GpawSettings.preset("demo", setups_dir=str(setups_dir), kdensity_gs=1.0, kdensity_nscf=1.2, ecut_ev=300)
    result = GpawEngine(cheap).run("La2O3", la2o3, tmp_path)
    assert isinstance(result, DielectricResult)
    assert 2.5 < result.dft_gap_ev < 5.0 and result.gap_method == "none"
    assert result.energy_ev[-1] >= 15.0 and np.all(np.isfinite(result.eps_real))
    eps_inf = result.eps_real[0, :3].mean()
    assert 3.5 < eps_inf < 6.5  # experiment ~4 (n ≈ 2.0); independent-particle DFT lies above


def test_the_gap_shift_is_measured_on_one_k_grid(monkeypatch, tmp_path):
    # The spectrum's DFT gap comes from the union of the ground-state and optics grids (here 1.00 eV,
    # the optics grid finding a lower CBM), GLLB-SC runs on the ground-state grid (2.50 eV there,
    # where PBEsol gives 1.20 eV). The shift is GLLB-SC - PBEsol on that one grid, +1.30 eV, so the
    # corrected gap is 2.30 eV; taking GLLB-SC's 2.50 eV as it is would shift by 1.50 eV.
    import optabs.dft.gpaw.engine as engine_module
    from optabs.dft.gpaw.engine import _Material
    from optabs.dft.gpaw.steps import _GroundState, _OpticsBands
    from optabs.dft.gpaw.structure import BandEdges, merge_edges, same_grid_corrected_gap

    assert same_grid_corrected_gap(1.0, 1.2, 2.5) == pytest.approx(2.3)
    monkeypatch.setattr(engine_module, "_has_dataset", lambda el, xc: True)
    gllbsc = {"gap_ev": 2.5, "ks_gap_ev": 1.3, "discontinuity_ev": 1.2}
    monkeypatch.setattr(engine_module, "_gllbsc_gap", lambda *args: gllbsc)
    edges_gs = BandEdges(vbm=0.0, cbm=1.2, direct_gap=1.4)
    edges_nscf = BandEdges(vbm=-0.1, cbm=1.0, direct_gap=1.5)
    gs = _GroundState(calc=None, total_energy_ev=-10.0, n_occupied=4, edges=edges_gs, from_cache=False)
    bands = _OpticsBands(tmp_path / "nscf.gpw", 12, edges_nscf, merge_edges(edges_gs, edges_nscf), 20.0, [], (6, 6, 6))
    m = _Material("MgO", MGO, None, ["Mg", "O"], "PBEsol", "", {}, (4, 4, 4))
    engine = GpawEngine(GpawSettings.preset("demo"))
    method, corrected, details = engine._corrected_gap(m, gs, bands, tmp_path / "g.txt", {})
    assert method == "GLLB-SC"
    assert bands.edges.gap == pytest.approx(1.0)
    assert corrected == pytest.approx(2.3) and details["delta_ev"] == pytest.approx(1.3)
    assert details["gap_ground_state_grid_ev"] == pytest.approx(1.2) and "ground-state k-grid" in details["formula"]


# ---------------------------------------------------------------------------------------------
# The optics-grid guard (issue 16): a grid that misses the band edge is densified or fails
# ---------------------------------------------------------------------------------------------


def _fake_optics(monkeypatch, direct_gaps_by_density):
    """Replace the GPAW optics step by one whose optics-grid direct gap depends on the density."""
    import optabs.dft.gpaw.steps as steps
    from optabs.dft.gpaw.structure import BandEdges

    calls = []

    def fake(material_id, atoms, gs, s, kpts, key, gpw, log, n_empty=None):
        density = s.kdensity_nscf if not calls else calls[-1][1] * 1.5
        calls.append((kpts, density, n_empty))
        edges = BandEdges(vbm=0.0, cbm=direct_gaps_by_density(density), direct_gap=direct_gaps_by_density(density))
        return steps._OpticsBands(gpw, 20, edges, gs.edges, 20.0, [], tuple(kpts))

    monkeypatch.setattr(steps, "_optics_bands", fake)
    return calls


def test_guard_fails_a_cdse_like_grid_naming_both_gaps(monkeypatch, tmp_path):
    # CdSe on the old shifted 4x4x2 grid: direct gap 2.41 eV there, 0.53 eV at Γ (measured). The
    # guard densifies once, still misses, and fails with both numbers instead of a late edge.
    from optabs.dft.gpaw.steps import _GroundState, optics_with_guard
    from optabs.dft.gpaw.structure import BandEdges

    calls = _fake_optics(monkeypatch, lambda density: 2.41 if density < 3 else 1.9)
    gs = _GroundState(None, -10.0, 9, BandEdges(vbm=0.0, cbm=0.53, direct_gap=0.53), False)
    s = GpawSettings.preset("demo", optics_grid="shifted", integration="point", max_grid_densifications=1)
    with pytest.raises(CalculationError) as err:
        optics_with_guard("mp-1070", MGO_ATOMS(), gs, s, {}, tmp_path / "nscf.gpw", tmp_path / "nscf.txt")
    message = str(err.value)
    assert "misses the band edge" in message and "1.900 eV" in message and "0.530 eV" in message
    assert len(calls) == 2 and calls[1][1] == pytest.approx(1.5 * s.kdensity_nscf)


def test_guard_densifies_until_the_edge_is_found_and_records_it(monkeypatch, tmp_path):
    from optabs.dft.gpaw.steps import _GroundState, optics_with_guard
    from optabs.dft.gpaw.structure import BandEdges

    calls = _fake_optics(monkeypatch, lambda density: 0.80 if density < 3 else 0.58)
    gs = _GroundState(None, -10.0, 9, BandEdges(vbm=0.0, cbm=0.53, direct_gap=0.53), False)
    s = GpawSettings.preset("demo", max_grid_densifications=2, kdensity_nscf=2.2)
    bands, guard = optics_with_guard("X", MGO_ATOMS(), gs, s, {}, tmp_path / "nscf.gpw", tmp_path / "nscf.txt")
    assert len(calls) == 2 and guard["passed"] is True
    assert guard["difference_ev"] == pytest.approx(0.05) and guard["tolerance_ev"] == 0.1
    assert [a["miss_ev"] for a in guard["attempts"]] == pytest.approx([0.27, 0.05])
    assert [c[2] for c in calls] == [None, 11]  # the denser grid starts with the bands the first needed


def MGO_ATOMS():
    from optabs.dft.gpaw.structure import structure_to_atoms

    return structure_to_atoms("MgO", MGO)


@pytest.mark.slow
def test_guard_on_real_grids_shifted_misses_gamma_finds_the_edge(tmp_path, setups_dir):
    # MgO's direct gap is at Γ. A coarse shifted optics grid (2x2x2, Γ-free) misses it by more than
    # 0.1 eV and the material fails; the Γ-centred grid of the same density has it exactly.
    cheap = dict(setups_dir=str(setups_dir), kdensity_gs=1.0, kdensity_nscf=0.8, ecut_ev=300, gap_method="none")
    shifted = GpawSettings.preset("demo", optics_grid="shifted", integration="point", max_grid_densifications=0, **cheap)
    with pytest.raises(CalculationError, match="misses the band edge"):
        GpawEngine(shifted).run("MgO", MGO, tmp_path / "shifted")
    result = GpawEngine(GpawSettings.preset("demo", integration="tetrahedron", **cheap)).run("MgO", MGO, tmp_path / "gamma")
    guard = result.gap_details["optics_grid_guard"]
    assert guard["passed"] and abs(guard["difference_ev"]) < 1e-6
    assert result.settings["kpts_nscf_gamma_centred"] is True
    # MgO (fcc): the Γ-centred grid holds the irreducible zone's vertices (K, U need 8 divisions)
    assert result.settings["kpts_nscf_has_ibz_vertices"] is True and result.settings["kpts_nscf"][0] % 8 == 0
    assert result.settings["integration"] == "tetrahedron (irreducible zone)"
    assert result.dft_direct_gap_ev == pytest.approx(guard["direct_gap_ground_state_grid_ev"])


# Our own tetrahedra over GPAW's momentum matrix elements (optabs.dft.gpaw.momentum)
# ---------------------------------------------------------------------------------------------


def _nscf_gpw(tmp_path: Path, structure: Structure, size: tuple[int, int, int], **nscf) -> tuple[Path, int]:
    """A cheap PBE ground state of ``structure``, its optics bands on the Γ-centred ``size`` grid, with wave functions."""
    from gpaw import GPAW, PW, FermiDirac

    atoms = structure_to_atoms("x", structure)
    atoms.calc = GPAW(mode=PW(300), xc="PBE", kpts={"size": (4, 4, 4), "gamma": True}, occupations=FermiDirac(0.01),
                      txt=str(tmp_path / "gs.txt"))
    atoms.get_potential_energy()
    n_occupied = round(atoms.calc.get_number_of_electrons() / 2)
    calc = atoms.calc.fixed_density(kpts={"size": size, "gamma": True}, nbands=n_occupied + 10,
                                    convergence={"bands": n_occupied + 8}, txt=str(tmp_path / "nscf.txt"), **nscf)
    gpw = tmp_path / f"nscf-{len(nscf)}.gpw"
    calc.write(str(gpw), mode="all")
    return gpw, n_occupied


@pytest.mark.slow
def test_our_valence_conduction_momentum_block_equals_gpaws_full_matrix(tmp_path):
    from gpaw import GPAW

    from optabs.dft.gpaw.momentum import momentum_block, momentum_matrix

    gpw, n_occ = _nscf_gpw(tmp_path, ZNS_PBE, (4, 4, 4))
    calc = GPAW(str(gpw), txt=None, parallel={"domain": 1, "band": 1})
    full = momentum_matrix(calc, n_occ + 8)  # GPAW's get_mml: every pair of bands
    block = momentum_block(calc, n_occ, n_occ + 8)
    assert block.shape == (len(full), 3, n_occ, 8)
    assert np.abs(full[:, :, :n_occ, n_occ:]).max() > 0.1  # allowed transitions are there
    np.testing.assert_allclose(block, full[:, :, :n_occ, n_occ:], atol=1e-10)


@pytest.mark.slow
def test_symmetrised_momentum_tensor_equals_a_calculation_without_symmetry(tmp_path):
    # Tetragonally strained MgO (c/a = 1.15): ε_xx = ε_yy != ε_zz. The irreducible-zone result,
    # symmetrised with the crystal's rotations, must equal the full-zone one computed without any
    # symmetry, averaged by hand over x and y: on this coarse grid the tetrahedra's shared
    # diagonal makes the unsymmetrised ε_xx and ε_yy differ by up to 7 % (measured).
    from optabs.dft.gpaw.momentum import momentum_eps_imag

    strained = Structure(Lattice.tetragonal(2.98, 2.98 * 1.15), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with_sym, n_occ = _nscf_gpw(tmp_path, strained, (6, 6, 5))
    without_sym, _ = _nscf_gpw(tmp_path, strained, (6, 6, 5), symmetry="off")
    e1, sym, record = momentum_eps_imag(with_sym, n_occ, n_occ + 8, 0.025, (1,))
    e2, nosym, record_off = momentum_eps_imag(without_sym, n_occ, n_occ + 8, 0.025, (1,))
    assert record["kpts_irreducible"] < record_off["kpts_irreducible"] == 180
    assert record["invariant_components"] == 2 and record_off["invariant_components"] == 6
    np.testing.assert_array_equal(e1, e2)
    a, b = gaussian_filter(sym[1]), gaussian_filter(nosym[1])
    scale = a[:, :3].max()
    assert np.abs(a[:, 0] - a[:, 2]).max() > 0.05 * scale  # the strain shows
    np.testing.assert_allclose(a[:, 0], a[:, 1], atol=1e-12)
    np.testing.assert_allclose(a[:, 0], (b[:, 0] + b[:, 1]) / 2, atol=0.01 * scale)
    np.testing.assert_allclose(a[:, 2], b[:, 2], atol=0.01 * scale)
    assert np.abs(a[:, 3:]).max() < 1e-12


def gaussian_filter(eps2: np.ndarray) -> np.ndarray:
    """ε2 (N, 6) on a 0.025 eV grid smoothed by a Gaussian of 0.1 eV, for comparing spectra point by point."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(eps2, 4.0, axis=0)


@pytest.mark.slow
def test_momentum_tetrahedra_agree_with_gpaws_own_response_on_a_dense_grid(tmp_path):
    # Two independent implementations of the same independent-particle ε on the same 16x16x16
    # grid: GPAW's response code (its tetrahedra) and ours. ε1(0) and the spectral weight
    # ∫ ω ε2 dω up to 20 eV agree within 3 %.
    from gpaw.response.df import DielectricFunction

    from optabs.dft.gpaw.momentum import momentum_eps_imag
    from optabs.dft.gpaw.steps import broadened_eps

    gpw, n_occ = _nscf_gpw(tmp_path, MGO, (16, 16, 16))
    energy, eps2, _ = momentum_eps_imag(gpw, n_occ, n_occ + 8, 0.025, (1,))
    ours = broadened_eps(energy, eps2[1], 0.05)
    df = DielectricFunction(str(gpw), frequencies={"type": "nonlinear", "domega0": 0.05}, eta=0.05, ecut=10,
                            nbands=n_occ + 8, intraband=False, hilbert=True, txt=str(tmp_path / "df.txt"),
                            integrationmode="tetrahedron integration")
    gpaw_eps, _ = df.get_dielectric_function(direction="x", filename=None)
    omega = np.asarray(df.get_frequencies())
    assert ours[0, 0].real == pytest.approx(gpaw_eps[0].real, rel=0.03)
    window = omega < 20.0
    gpaw_weight = np.trapezoid(omega[window] * gpaw_eps[window].imag, omega[window])
    mine = energy < 20.0
    assert np.trapezoid(energy[mine] * ours[mine, 0].imag, energy[mine]) == pytest.approx(gpaw_weight, rel=0.03)


@pytest.mark.slow
def test_refinement_check_densifies_a_grid_that_does_not_resolve_the_edge(tmp_path, setups_dir):
    # MgO on a 6x6x6 optics grid (k-density 2.2): refining the grid moves E5 by 0.2 eV (5.83 ->
    # 5.61 eV), more than the 0.15 eV tolerance, so the engine densifies: 1.5x the density gives
    # 9x9x9, kept even (10x10x10) so that it still holds X (on 9x9x9 E5 moved by 0.1 eV, 5.44 ->
    # 5.33; 5.32 on a 21x21x21 grid). No k-point floor: it would start at 8x8x8.
    settings = GpawSettings.preset(
        "demo", setups_dir=str(setups_dir), gap_method="none", kdensity_nscf=2.2, kpoints_per_atom_nscf=0
    )
    result = GpawEngine(settings).run("MgO", MGO, tmp_path)
    details = result.settings["integration_details"]
    attempts = details["refinement_attempts"]
    assert [a["kpts"] for a in attempts] == [[6, 6, 6], [10, 10, 10]]
    assert [a["passed"] for a in attempts] == [False, True]
    assert attempts[0]["difference_ev"] > 0.15 >= attempts[1]["difference_ev"]
    assert result.settings["kpts_nscf"] == [10, 10, 10] and details["refinement_check"]["passed"]
    assert attempts[1]["e5_ev"] == pytest.approx(details["refinement_check"]["e5_ev"])
    # MgO's Γ edge (O 2p -> Mg 3s) is dipole-allowed: no densification for a forbidden edge
    assert details["edge_kane_energy_ev"] > 5.0 and not any(a["forbidden_edge"] for a in attempts)


RUTILE_SNO2 = Structure.from_spacegroup(
    "P4_2/mnm", Lattice.tetragonal(4.737, 3.186), ["Sn", "O"], [[0, 0, 0], [0.307, 0.307, 0]]
)


@pytest.mark.slow
def test_kane_energy_finds_rutile_sno2s_dipole_forbidden_edge_and_mgos_allowed_one(tmp_path):
    # Independent: the parity selection rule. SnO2's direct gap at Γ (Γ3+ -> Γ1+, both even) is
    # dipole-forbidden (Fröhlich et al., PRL 41, 1750 (1978)); MgO's (Γ15 odd -> Γ1 even) allowed,
    # with a Kane energy of order 10-20 eV like other allowed edges.
    from optabs.dft.gpaw.momentum import momentum_eps_imag

    found = {}
    for name, structure, size in (("SnO2", RUTILE_SNO2, (3, 3, 4)), ("MgO", MGO, (4, 4, 4))):
        (tmp_path / name).mkdir()
        gpw, n_occ = _nscf_gpw(tmp_path / name, structure, size)
        found[name] = momentum_eps_imag(gpw, n_occ, n_occ + 8, 0.025, (1,))[2]
    assert found["SnO2"]["edge_kane_energy_ev"] < 1e-3 and 0.1 < found["SnO2"]["edge_direct_gap_ev"] < 2.5
    assert 5.0 < found["MgO"]["edge_kane_energy_ev"] < 40.0 and 3.5 < found["MgO"]["edge_direct_gap_ev"] < 6.0


@pytest.mark.slow
def test_a_ground_state_just_computed_shows_the_same_selection_rule(tmp_path):
    # The engine reads the edge's Kane energy from the ground state's own wave functions (bands
    # converged to CBM+1, as the engine's), before any optics step: the parity rule again
    # (SnO2 Γ3+ -> Γ1+ forbidden, MgO Γ15 -> Γ1 allowed), and the same edge as on the optics grid.
    from gpaw import GPAW, PW, FermiDirac

    from optabs.dft.gpaw.momentum import calculator_edge_strength

    found = {}
    for name, structure, size in (("SnO2", RUTILE_SNO2, (2, 2, 3)), ("MgO", MGO, (4, 4, 4))):
        atoms = structure_to_atoms(name, structure)
        atoms.calc = GPAW(mode=PW(300), xc="PBE", kpts={"size": size, "gamma": True}, occupations=FermiDirac(0.01),
                          convergence={"bands": "CBM+1"}, txt=str(tmp_path / f"{name}.txt"))
        atoms.get_potential_energy()
        found[name] = calculator_edge_strength(atoms.calc, round(atoms.calc.get_number_of_electrons() / 2))
    assert found["SnO2"]["edge_kane_energy_ev"] < 1e-3 and 0.1 < found["SnO2"]["edge_direct_gap_ev"] < 2.5
    assert 5.0 < found["MgO"]["edge_kane_energy_ev"] < 40.0 and 3.5 < found["MgO"]["edge_direct_gap_ev"] < 6.0


def _fake_dielectric(monkeypatch, forbidden: bool, moves_ev: float):
    """Optics bands and ε replaced: every grid has an edge with this refinement move and this edge strength."""
    import optabs.dft.gpaw.steps as steps

    grids, started_with = [], []

    def bands(material_id, atoms, gs, s, key, gpw, log, density=None, previous=None, n_empty=None):
        grids.append(density)
        started_with.append(n_empty)
        return steps._OpticsBands(gpw, 20, gs.edges, gs.edges, 20.0, [], (len(grids),) * 3), {"passed": True}

    def dielectric(material_id, bands, n_occupied, s, log):
        check = {"difference_ev": moves_ev, "passed": moves_ev <= s.refinement_tolerance_ev}
        return steps._Dielectric(np.zeros(3), np.zeros((3, 6)), 0.0, {"refinement_check": check, "forbidden_edge": forbidden})

    monkeypatch.setattr(steps, "optics_with_guard", bands)
    monkeypatch.setattr(steps, "_momentum_dielectric", dielectric)
    return grids, started_with


@pytest.mark.parametrize(
    ("forbidden", "moves_ev", "grids"),
    [(False, 0.05, 1), (True, 0.05, 2), (False, 0.3, 3), (True, 0.3, 3)],
)
def test_a_forbidden_edge_densifies_the_optics_grid_once_like_a_failed_refinement_check(
    monkeypatch, tmp_path, forbidden, moves_ev, grids
):
    from optabs.dft.gpaw.steps import _GroundState, converged_optics
    from optabs.dft.gpaw.structure import BandEdges

    densities, started_with = _fake_dielectric(monkeypatch, forbidden, moves_ev)
    gs = _GroundState(None, -10.0, 9, BandEdges(vbm=0.0, cbm=1.0, direct_gap=1.0), False)
    s = GpawSettings.preset("demo", kpoints_per_atom_nscf=0, max_refinement_densifications=2)
    timings: dict[str, float] = {}
    _, _, diel = converged_optics("X", MGO_ATOMS(), gs, s, {}, tmp_path / "nscf.gpw", {"nscf": tmp_path / "n.txt",
                                  "df": tmp_path / "df.txt"}, timings)
    history = diel.details["refinement_attempts"]
    # a forbidden edge alone densifies once; a failing check densifies up to the limit (2 times)
    assert len(densities) == grids
    assert [h["forbidden_edge"] for h in history] == [forbidden] * len(densities)
    assert densities[1:] == pytest.approx([densities[0] * 1.5**i for i in range(1, len(densities))])
    # a denser grid starts with the empty bands the one before needed (20 bands, 9 occupied)
    assert started_with == [None] + [11] * (len(densities) - 1)


@pytest.mark.parametrize(("moves_ev", "computed"), [(0.05, [1.5]), (0.3, [1.5, 2.25])])
def test_a_forbidden_edge_seen_in_the_ground_state_skips_the_coarse_optics_grid(monkeypatch, tmp_path, moves_ev, computed):
    # The same grids as when the first optics pass finds the edge forbidden (the cases above:
    # 1, 1.5 and 1, 1.5, 2.25), without computing the first: the skipped grid counts as one
    # densification, and the history says which grid was skipped and why.
    from optabs.dft.gpaw.steps import _GroundState, converged_optics, optics_density
    from optabs.dft.gpaw.structure import BandEdges

    densities, _ = _fake_dielectric(monkeypatch, True, moves_ev)
    strength = {"edge_kane_energy_ev": 0.0, "edge_direct_gap_ev": 1.0}
    gs = _GroundState(None, -10.0, 9, BandEdges(vbm=0.0, cbm=1.0, direct_gap=1.0), False, strength)
    s = GpawSettings.preset("demo", kpoints_per_atom_nscf=0, max_refinement_densifications=2)
    _, _, diel = converged_optics("X", MGO_ATOMS(), gs, s, {}, tmp_path / "nscf.gpw", {"nscf": tmp_path / "n.txt",
                                  "df": tmp_path / "df.txt"}, {})
    first = optics_density(MGO_ATOMS(), s)
    assert densities == pytest.approx([first * factor for factor in computed])
    history = diel.details["refinement_attempts"]
    assert history[0]["skipped"] and history[0]["kpts"] == list(kpoint_grid(MGO_ATOMS(), first))
    assert len(history) == 1 + len(computed) and not any(h.get("skipped") for h in history[1:])
    assert diel.details["ground_state_edge"] == strength


def test_a_densified_grid_keeps_the_zone_boundary_points_its_even_axes_had():
    # BaO's direct gap is at X = ½ b1 + ½ b3 (fcc): 8x8x8 holds it; 1.5x the density gives 11x11x11,
    # which does not (11 * ½ is no integer), so the densified grid must be 12x12x12
    from optabs.dft.gpaw.steps import keep_zone_boundary, optics_density

    atoms = structure_to_atoms("BaO", rocksalt(5.54, "Ba", "O"))
    first = kpoint_grid(atoms, optics_density(atoms, GpawSettings.preset("demo")))
    denser = kpoint_grid(atoms, 1.5 * optics_density(atoms, GpawSettings.preset("demo")))
    assert first == (8, 8, 8) and denser == (11, 11, 11)
    kept = keep_zone_boundary(denser, first)
    assert kept == (12, 12, 12) and all((n * 0.5).is_integer() for n in kept)
    assert keep_zone_boundary((7, 7, 10), (5, 5, 7)) == (7, 7, 10)  # odd axes may stay odd
    assert keep_zone_boundary((7, 7, 9), (5, 5, 6)) == (7, 7, 10)
    assert keep_zone_boundary((11, 11, 11), None) == (11, 11, 11)
