"""The VASP engine: published INCAR/KPOINTS settings, and the custodian path with a stand-in VASP.

No VASP and no VASP POTCARs are needed: ``fake_potcars`` writes a POTCAR library of fakes from
``tests/data/vasp/POTCAR.template`` (pymatgen parses them; it warns that it does not know them,
which these tests ignore), and ``tests/fakes/fake_vasp.py`` plays the VASP executable through
``VaspSettings.command``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar, Potcar
from pymatgen.io.vasp.outputs import Outcar, Vasprun
from pymatgen.io.vasp.sets import MPRelaxSet

from optabs.dft import CalculationError, DielectricResult, read_result, write_result
from optabs.dft.vasp import (
    ENERGY_SCALE,
    GAP_METHOD,
    MP_U_VALUES,
    STEPS,
    VaspEngine,
    VaspSettings,
    direct_gap_ev,
    electronic_dielectric_constant,
    read_vasprun,
    vasp_default_nbands,
    write_bandgap_inputs,
    write_dfpt_inputs,
    write_hybrid_inputs,
    write_optics_inputs,
    write_relax_inputs,
)
from optabs.errors import ConfigError, InputError

pytestmark = [
    pytest.mark.filterwarnings("ignore::pymatgen.io.vasp.inputs.UnknownPotcarWarning"),
    pytest.mark.filterwarnings("ignore:POTCAR data with symbol:UserWarning"),
    pytest.mark.filterwarnings("ignore:Set OLD_ERROR_HANDLING:DeprecationWarning"),
    # the induced 'unconverged' error: custodian reads the unconverged vasprun.xml before fixing it
    pytest.mark.filterwarnings("ignore::pymatgen.io.vasp.outputs.UnconvergedVASPWarning"),
]

DATA = Path(__file__).resolve().parents[2] / "data" / "vasp"
FAKE_VASP = Path(__file__).resolve().parents[2] / "fakes" / "fake_vasp.py"
# fake_vasp.py defaults: PBEsol gap 4.5 eV, eps_inf 3.0 (LOPTICS eps1(0)), 2.8 (DFPT, local fields),
# hybrid gap opening 9 eV x AEXX
FAKE_GAP, FAKE_EPS_INF, FAKE_EPS_INF_DFPT, FAKE_HYBRID_PER_AEXX = 4.5, 3.0, 2.8, 9.0


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def settings(fake_potcars) -> VaspSettings:
    """Settings of the published method, with the stand-in VASP and fast custodian polling."""
    return VaspSettings(
        command=[sys.executable, str(FAKE_VASP)],
        potcar_dir=str(fake_potcars),
        kpoints_density=50.0,
        polling_time_s=0.01,
        monitor_freq=10**6,  # monitors check after the run: deterministic with a sub-second fake
        max_errors=3,
    )


@pytest.fixture
def control(tmp_path, monkeypatch):
    """Write fake_vasp.py's control file (errors to induce) and point it there."""

    def write(errors: dict | None = None, model: dict | None = None) -> Path:
        path = tmp_path / "fake_vasp_control.json"
        path.write_text(json.dumps({"errors": errors or {}, "model": model or {}}))
        monkeypatch.setenv("OPTABS_FAKE_VASP_CONTROL", str(path))
        return path

    write()
    return write


def mgo() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    ).get_primitive_structure()


def na3vo4() -> Structure:
    """A small Na3VO4 cell (V5+ in a tetrahedron of O): enough for the +U map."""
    return Structure(
        Lattice.cubic(4.4),
        ["Na", "Na", "Na", "V", "O", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
         [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]],
    )


def cro3_like() -> Structure:
    """Cr and W in one oxide cell, to see two U values placed by species."""
    return Structure(
        Lattice.tetragonal(3.8, 7.6),
        ["Cr", "W", "O", "O", "O", "O", "O", "O"],
        [[0, 0, 0], [0, 0, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.25],
         [0.5, 0, 0.5], [0, 0.5, 0.5], [0, 0, 0.75]],
    )


def reo3_type(metal: str, anion: str, a: float) -> Structure:
    """A cubic ReO3-type MX3 cell (the metal octahedral in corner-sharing X6)."""
    return Structure(Lattice.cubic(a), [metal, anion, anion, anion], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])


def mos2() -> Structure:
    """2H-MoS2 (P6_3/mmc)."""
    return Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(3.16, 12.3), ["Mo", "S"], [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]]
    )


def incar_of(directory: Path) -> Incar:
    return Incar.from_file(directory / "INCAR")


def by_species(directory: Path, values) -> dict[str, float]:
    species = Poscar.from_file(directory / "POSCAR").site_symbols
    return dict(zip(species, values))


# ---------------------------------------------------------------- settings and inputs


def test_u_values_are_materials_projects(settings):
    metals = {"V": 3.25, "Cr": 3.7, "Mo": 4.38, "W": 6.2}
    assert MP_U_VALUES == {"O": metals, "F": metals}
    for anion in ("O", "F"):
        mp_u = MPRelaxSet.CONFIG["INCAR"]["LDAUU"][anion]
        for element, u in metals.items():
            assert mp_u[element] == u
    assert VaspSettings().u_values == MP_U_VALUES
    assert VaspSettings().eps_inf_method == "dfpt"
    assert VaspSettings().command == ["vasp_std"]  # production runs the real VASP


def test_settings_from_config_and_validation():
    s = VaspSettings.from_config("dft.vasp", {"command": "srun -n 64 vasp_std", "nbands_factor": 2.5})
    assert s.command == ["srun", "-n", "64", "vasp_std"]
    with pytest.raises(ConfigError, match="nbands_facter"):
        VaspSettings.from_config("dft.vasp", {"nbands_facter": 3})
    with pytest.raises(ConfigError, match="u_values.O' has 'Xx'"):
        VaspSettings(u_values={"O": {"Xx": 3.0}})
    with pytest.raises(ConfigError, match="U must be >= 0"):
        VaspSettings(u_values={"O": {"V": -1.0}})
    # the flat form would put U on sulfides too: rejected, naming the key and the nested form
    with pytest.raises(ConfigError, match=r"config key 'dft.vasp'.*'u_values' has the flat form.*\{O: \{V: 3.25"):
        VaspSettings.from_config("dft.vasp", {"u_values": {"V": 3.25, "Cr": 3.7}})
    assert VaspSettings(u_values={}).u_values == {}
    with pytest.raises(ConfigError, match="eps_inf_method"):
        VaspSettings(eps_inf_method="rpa")
    with pytest.raises(ConfigError, match="nbands_factor"):
        VaspSettings(nbands_factor=0.5)
    with pytest.raises(ConfigError, match="potcar_functional"):
        VaspSettings(potcar_functional="PBE_99")


def test_default_nbands_is_vasps():
    from custodian.vasp.handlers import VaspErrorHandler

    # MgO with Mg_pv (8) + O (6): NELECT 14, 2 ions -> max(16/2 + 3, int(8.4)) = 11
    assert vasp_default_nbands(14, 2) == 11
    for nelect, nions in ((14, 2), (88, 8), (221, 23)):
        expected = VaspErrorHandler._default_nbands(Incar({"ISPIN": 1}), nelect, nions)
        assert vasp_default_nbands(nelect, nions) == expected
    assert vasp_default_nbands(14, 2, total_magmom=2.0, spin_polarized=True) == 11 + 1


def test_relax_inputs_pbesol_plus_u(settings, tmp_path):
    d = tmp_path / "relax"
    write_relax_inputs(na3vo4(), settings, d)
    incar = incar_of(d)
    assert incar["GGA"].upper() == "PS"
    assert incar["LDAU"] is True and incar["LDAUTYPE"] == 2
    assert by_species(d, incar["LDAUU"]) == {"Na": 0, "V": 3.25, "O": 0}
    assert by_species(d, incar["LDAUL"]) == {"Na": 0, "V": 2, "O": 0}
    assert by_species(d, incar["LDAUJ"]) == {"Na": 0, "V": 0, "O": 0}
    assert incar["NSW"] > 0 and incar["ISIF"] == 3 and incar["IBRION"] == 2 and incar["EDIFFG"] == -0.01
    assert incar["EDIFF"] == 1e-5
    assert Potcar.from_file(d / "POTCAR").symbols == ["Na_pv", "V_pv", "O"]


def test_u_map_places_each_value_on_its_species(settings, tmp_path):
    write_relax_inputs(cro3_like(), settings, tmp_path)
    assert by_species(tmp_path, incar_of(tmp_path)["LDAUU"]) == {"Cr": 3.7, "W": 6.2, "O": 0}


def test_mgo_has_no_u(settings, tmp_path):
    write_relax_inputs(mgo(), settings, tmp_path / "relax")
    write_bandgap_inputs(mgo(), settings, tmp_path / "bandgap", ispin=1)
    write_optics_inputs(mgo(), settings, tmp_path / "optics", ispin=1)
    for step in ("relax", "bandgap", "optics"):
        incar = incar_of(tmp_path / step)
        assert not incar.get("LDAU", False)
        assert not any(key in incar for key in ("LDAUU", "LDAUL", "LDAUJ"))
        assert incar["GGA"].upper() == "PS"


@pytest.mark.parametrize("factor", [3.0, 2.5])
def test_optics_inputs_published_settings(settings, tmp_path, factor):
    settings = dataclasses.replace(settings, nbands_factor=factor, cshift=0.1, nedos=3001, kpoints_density=400.0)
    write_optics_inputs(mgo(), settings, tmp_path, ispin=1)
    incar = incar_of(tmp_path)
    assert incar["LOPTICS"] is True
    assert incar["CSHIFT"] == 0.1 and incar["NEDOS"] == 3001
    assert incar["ISMEAR"] == -5 and incar["LREAL"] is False and incar["ICHARG"] == 11 and incar["NSW"] == 0
    assert incar["GGA"].upper() == "PS"
    # VASP's default for MgO: NELECT = 8 (Mg_pv) + 6 (O), NIONS = 2 -> 11 bands
    nelect = sum(p.nelectrons for p in Potcar.from_file(tmp_path / "POTCAR"))
    assert nelect == 14
    default = max(math.floor((nelect + 2) / 2) + max(2 // 2, 3), int(0.6 * nelect))
    assert default == 11
    assert incar["NBANDS"] == math.ceil(factor * default)
    assert incar["NBANDS"] >= 2 * default  # well above the default
    kpoints = Kpoints.from_file(tmp_path / "KPOINTS")
    structure = Poscar.from_file(tmp_path / "POSCAR").structure
    expected = Kpoints.automatic_density_by_vol(structure, 400.0, force_gamma=True)
    assert kpoints.style == Kpoints.supported_modes.Gamma
    assert tuple(kpoints.kpts[0]) == tuple(expected.kpts[0])
    # reciprocal_density: k-points per A^-3 of reciprocal volume
    assert np.prod(kpoints.kpts[0]) >= 0.8 * 400.0 * structure.lattice.reciprocal_lattice.volume


def test_optics_nbands_counts_default_magmom_when_spin_polarized(settings, tmp_path):
    write_optics_inputs(mgo(), settings, tmp_path, ispin=2)
    # VASP's default MAGMOM is 1 per ion: 11 + floor((2 + 1) / 2) = 12 bands by default
    assert incar_of(tmp_path)["NBANDS"] == math.ceil(settings.nbands_factor * 12)
    assert "MAGMOM" not in incar_of(tmp_path)  # the density, magnetization included, comes from CHGCAR


def test_bandgap_inputs_keep_orbitals_for_later_steps(settings, tmp_path):
    write_bandgap_inputs(na3vo4(), settings, tmp_path, ispin=1)
    incar = incar_of(tmp_path)
    assert incar["LWAVE"] is True and incar["LCHARG"] is True and incar["NSW"] == 0
    assert incar["EDIFF"] == 1e-6 and incar["ISPIN"] == 1 and "MAGMOM" not in incar
    assert by_species(tmp_path, incar["LDAUU"])["V"] == 3.25


def test_hybrid_inputs_are_the_bandgap_inputs_with_hybrid_tags(settings, tmp_path):
    eps_inf = 4.2
    bandgap, hybrid = tmp_path / "bandgap", tmp_path / "hybrid"
    write_bandgap_inputs(na3vo4(), settings, bandgap, ispin=1)
    (bandgap / "WAVECAR").write_text("orbitals")
    write_hybrid_inputs(bandgap, hybrid, eps_inf=eps_inf, nbands=40)
    incar, before = incar_of(hybrid), incar_of(bandgap)
    assert incar["LHFCALC"] is True
    assert incar["AEXX"] == pytest.approx(1 / eps_inf)
    assert incar["HFSCREEN"] == 0
    assert incar["GGA"].upper() == "PS"
    assert incar["ALGO"].lower() == "eigenval" and incar["NELM"] == 1 and incar["ISTART"] == 1
    assert incar["NBANDS"] == 40 and incar["ISPIN"] == 1
    assert incar["LWAVE"] is False and incar["LCHARG"] is False
    assert not incar.get("LDAU", False) and not any(k in incar for k in ("LDAUU", "LDAUL", "LDAUJ"))
    assert before["LDAU"] is True  # the bandgap run had the U the hybrid drops
    # everything else is the bandgap run's, tag for tag
    hybrid_tags = {"LHFCALC", "AEXX", "HFSCREEN", "ALGO", "NELM", "ISTART", "NBANDS", "LWAVE", "LCHARG"}
    kept = {k: v for k, v in before.items() if not k.startswith("LDAU") and k not in hybrid_tags}
    assert {k: incar[k] for k in kept} == kept and kept["ENCUT"] == 520
    for name in ("KPOINTS", "POSCAR", "POTCAR", "WAVECAR"):
        assert (hybrid / name).read_bytes() == (bandgap / name).read_bytes()
    with pytest.raises(InputError, match="eps_inf"):
        write_hybrid_inputs(bandgap, tmp_path / "bad", eps_inf=0.9, nbands=40)
    (bandgap / "WAVECAR").unlink()
    with pytest.raises(InputError, match="WAVECAR"):
        write_hybrid_inputs(bandgap, tmp_path / "bad", eps_inf=eps_inf, nbands=40)


def test_dfpt_inputs_electronic_epsilon_with_local_fields(settings, tmp_path):
    settings = dataclasses.replace(settings, kpoints_density=400.0)
    write_dfpt_inputs(na3vo4(), settings, tmp_path, ispin=1)
    incar = incar_of(tmp_path)
    assert incar["LEPSILON"] is True and incar["LRPA"] is False and incar["LPEAD"] is True
    assert not incar.get("LOPTICS", False) and "CSHIFT" not in incar and "NBANDS" not in incar
    # clamped ions: no ionic steps, no DFPT phonons (IBRION 7/8)
    assert incar["NSW"] == 0 and incar["IBRION"] == -1
    assert incar["ISMEAR"] == 0 and incar["SIGMA"] == 0.01
    assert incar["ISPIN"] == 1 and incar["GGA"].upper() == "PS" and incar["EDIFF"] == 1e-6
    assert by_species(tmp_path, incar["LDAUU"])["V"] == 3.25  # PBEsol+U, as the orbitals of the hybrid
    # the optics mesh, so that DFPT and LOPTICS eps_inf differ by the local fields only
    optics = tmp_path / "optics"
    write_optics_inputs(na3vo4(), settings, optics, ispin=1)
    assert Kpoints.from_file(tmp_path / "KPOINTS").kpts == Kpoints.from_file(optics / "KPOINTS").kpts
    assert Kpoints.from_file(tmp_path / "KPOINTS").style == Kpoints.supported_modes.Gamma


def test_pure_helpers():
    energy = np.linspace(0.0, 10.0, 11)
    eps_real = np.zeros((11, 6))
    eps_real[:, :3] = [[3.0, 4.0, 5.0]] * 11
    eps_inf, diagonal = electronic_dielectric_constant(energy, eps_real)
    assert eps_inf == pytest.approx(4.0) and diagonal.tolist() == [3.0, 4.0, 5.0]
    # two k-points: VBM at k1 (0.0), CBM at k2 (1.0) -> gap 1.0 indirect, direct gap 1.5 at k2
    bands = np.array([[[0.0, 1.0], [2.0, 0.0]], [[-0.5, 1.0], [1.0, 0.0]]])
    assert direct_gap_ev({"up": bands}) == pytest.approx(1.5)


# ---------------------------------------------------------------- custodian with the stand-in VASP


def test_full_run_mgo(settings, control, tmp_path):
    work = tmp_path / "work"
    result = VaspEngine(settings).run("mp-1265", mgo(), work)

    assert isinstance(result, DielectricResult)
    assert result.engine == "vasp" and result.engine_version == "6.4.3"
    assert result.energy_scale == ENERGY_SCALE and result.gap_method == GAP_METHOD
    n = result.energy_ev.shape[0]
    assert n == settings.nedos and result.eps_real.shape == (n, 6) and result.eps_imag.shape == (n, 6)
    assert result.energy_ev[0] == 0.0 and np.all(np.diff(result.energy_ev) > 0)
    assert result.energy_ev[-1] > 15.0  # the grid covers the UV range
    assert result.dft_gap_ev == pytest.approx(FAKE_GAP) and result.dft_direct_gap_ev == pytest.approx(FAKE_GAP)
    # eps2 has its onset at the gap (CSHIFT tail below it only)
    below = result.eps_imag[result.energy_ev < FAKE_GAP - 1.0, 0]
    assert below.max() < 0.05 * result.eps_imag[:, 0].max()
    details = result.gap_details
    assert details["eps_inf_optics"] == pytest.approx(FAKE_EPS_INF, abs=1e-3)
    assert details["eps_inf_dfpt"] == pytest.approx(FAKE_EPS_INF_DFPT, abs=1e-6)
    assert details["eps_inf_method"] == "dfpt" and details["eps_inf"] == details["eps_inf_dfpt"]
    eps_inf = details["eps_inf"]
    assert details["aexx"] == pytest.approx(1 / FAKE_EPS_INF_DFPT, abs=1e-6)
    assert result.corrected_gap_ev == pytest.approx(FAKE_GAP + FAKE_HYBRID_PER_AEXX / FAKE_EPS_INF_DFPT, abs=1e-3)
    # relaxed cell (the fake shrinks the lattice by 1%) is the one computed
    assert Structure.from_dict(result.structure).volume == pytest.approx(mgo().volume * 0.99**3, rel=1e-4)
    assert result.total_energy_ev == pytest.approx(-12.0) and result.n_atoms == 2
    assert list(result.timings_s) == list(STEPS) == result.settings["steps"]

    incar = result.settings["incar"]
    assert incar["optics"]["LOPTICS"] is True and incar["optics"]["CSHIFT"] == settings.cshift
    assert incar["hybrid"]["AEXX"] == pytest.approx(1 / eps_inf)
    assert incar["dfpt"]["LEPSILON"] is True and "LOPTICS" not in incar["dfpt"]
    assert result.settings["ispin"] == {"relax": 2, "bandgap": 1, "optics": 1, "dfpt": 1, "hybrid": 1}  # non-magnetic
    assert result.settings["kpoints"]["optics"]["style"] == "Gamma"
    assert result.settings["kpoints"]["dfpt"] == result.settings["kpoints"]["optics"]
    assert result.settings["kpoints"]["hybrid"] == result.settings["kpoints"]["bandgap"]
    assert result.settings["custodian_corrections"] == {s: [] for s in STEPS}
    for step in STEPS:
        assert json.loads((work / step / "custodian.json").read_text())[0]["corrections"] == []
    # the hybrid ran on the bandgap orbitals
    assert (work / "hybrid" / "WAVECAR").read_text() == (work / "bandgap" / "WAVECAR").read_text()

    write_result(tmp_path / "result.json", result)
    back = read_result(tmp_path / "result.json")
    assert isinstance(back, DielectricResult) and back.corrected_gap_ev == result.corrected_gap_ev


@pytest.mark.parametrize(
    ("error", "handler", "tag", "before", "after"),
    [
        ("subspace", "VaspErrorHandler", "LREAL", "Auto", False),  # Sub-Space-Matrix not hermitian
        ("unconverged", "UnconvergedErrorHandler", "ALGO", "Fast", "Normal"),  # NELM reached
    ],
)
def test_transient_error_fixed_by_handler(settings, control, tmp_path, error, handler, tag, before, after):
    control(errors={"relax": {"kind": error, "runs": 1}})
    settings = dataclasses.replace(settings, nsc_dd=False)
    result = VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")

    relax = tmp_path / "work" / "relax"
    runs = json.loads((relax / "fake_vasp_runs.json").read_text())
    assert [r["error"] for r in runs] == [error, None]  # the restart happened and succeeded
    assert str(Incar({tag: runs[0]["incar"][tag]})[tag]).lower() == str(before).lower()
    assert Incar({tag: runs[1]["incar"][tag]})[tag] == after
    assert incar_of(relax)[tag] == after
    corrections = json.loads((relax / "custodian.json").read_text())[0]["corrections"]
    assert len(corrections) == 1
    assert corrections[0]["handler"]["@class"] == handler
    assert corrections[0]["actions"][-1]["action"]["_set"][tag] == after
    recorded = result.settings["custodian_corrections"]["relax"]
    assert recorded[0]["handler"] == handler and result.settings["incar"]["relax"][tag] == after
    assert result.gap_method == "none" and result.corrected_gap_ev == result.dft_gap_ev


@pytest.mark.parametrize(
    ("step", "error", "custodian_error", "n_runs"),
    [
        ("relax", "subspace", "NonRecoverableError", 2),  # LREAL fixed, PREC already Accurate: nothing left
        ("bandgap", "zbrent", "MaxCorrectionsPerJobError", 3),  # always fails: custodian gives up at max_errors
    ],
)
def test_unrecoverable_error_is_a_calculation_error(settings, control, tmp_path, step, error, custodian_error, n_runs):
    control(errors={step: {"kind": error, "runs": -1}})
    with pytest.raises(CalculationError) as info:
        VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")
    message = str(info.value)
    assert f"step '{step}'" in message and custodian_error in message and "custodian.json" in message
    assert info.value.log_path == str(tmp_path / "work" / step / "vasp.out")
    assert info.value.stage == step  # becomes FailureRecord.stage
    runs = json.loads((tmp_path / "work" / step / "fake_vasp_runs.json").read_text())
    assert len(runs) == n_runs
    assert not (tmp_path / "work" / "optics").exists()


def test_truncated_vasprun_is_a_calculation_error(settings, control, tmp_path):
    control(errors={"optics": {"kind": "truncated", "runs": -1}})
    optics = tmp_path / "work" / "optics"
    with pytest.raises(CalculationError) as info:
        VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")
    assert str(optics / "vasprun.xml") in str(info.value) and "step 'optics'" in str(info.value)
    assert info.value.log_path == str(optics / "vasp.out") and info.value.stage == "optics"
    # the parser at the edge says the same about the file itself
    with pytest.raises(CalculationError, match="truncated or corrupt") as parsed:
        read_vasprun(optics / "vasprun.xml", material_id="mp-1265", step="optics")
    assert str(optics / "vasprun.xml") in str(parsed.value)
    with pytest.raises(CalculationError, match="wrote no"):
        read_vasprun(tmp_path / "nowhere" / "vasprun.xml", material_id="mp-1265", step="optics")


def test_missing_vasp_command_is_a_config_error(settings, control, tmp_path):
    settings = dataclasses.replace(settings, command=[str(tmp_path / "no-such-vasp_std")])
    with pytest.raises(ConfigError, match="command"):
        VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")


# ---------------------------------------------------------------- Hubbard U as the Materials Project applies it


@pytest.mark.parametrize(
    ("structure", "expected_u"),
    [
        (reo3_type("Mo", "O", 3.75), {"Mo": 4.38, "O": 0}),  # MoO3-like oxide: U on Mo
        (mos2(), None),  # MoS2: the same metal in a sulfide gets no U
        (reo3_type("V", "F", 3.9), {"V": 3.25, "F": 0}),  # VF3-like fluoride: MP's F table
        (reo3_type("V", "S", 4.5), None),
    ],
    ids=["MoO3", "MoS2", "VF3", "VS3"],
)
def test_u_on_oxides_and_fluorides_only(settings, tmp_path, structure, expected_u):
    for step, write in (("relax", write_relax_inputs), ("bandgap", write_bandgap_inputs), ("dfpt", write_dfpt_inputs)):
        write(structure, settings, tmp_path / step)
        incar = incar_of(tmp_path / step)
        if expected_u is None:
            assert not incar.get("LDAU", False), step
            assert not any(key in incar for key in ("LDAUU", "LDAUL", "LDAUJ")), step
        else:
            assert incar["LDAU"] is True and incar["LDAUTYPE"] == 2, step
            assert by_species(tmp_path / step, incar["LDAUU"]) == expected_u, step


def test_u_table_is_chosen_by_the_most_electronegative_element(settings, tmp_path):
    # only an oxide table: the fluoride goes without; a sulfide table (not MP's) would reach MoS2
    oxides_only = dataclasses.replace(settings, u_values={"O": {"V": 3.0}})
    write_relax_inputs(reo3_type("V", "F", 3.9), oxides_only, tmp_path / "vf3")
    assert not incar_of(tmp_path / "vf3").get("LDAU", False)
    write_relax_inputs(reo3_type("V", "O", 3.8), oxides_only, tmp_path / "vo3")
    assert by_species(tmp_path / "vo3", incar_of(tmp_path / "vo3")["LDAUU"]) == {"V": 3.0, "O": 0}
    sulfides = dataclasses.replace(settings, u_values={"S": {"Mo": 2.0}})
    write_relax_inputs(mos2(), sulfides, tmp_path / "mos2")
    assert by_species(tmp_path / "mos2", incar_of(tmp_path / "mos2")["LDAUU"]) == {"Mo": 2.0, "S": 0}


# ---------------------------------------------------------------- DFPT eps_inf for the hybrid


def test_aexx_is_one_over_the_dfpt_eps_inf(settings, control, tmp_path):
    # an anisotropic model: DFPT diagonal 1 + 1.5 * (1.0, 1.2, 0.8) = (2.5, 2.8, 2.2), trace/3 = 2.5;
    # LOPTICS eps1(0) 1 + 2 * (1.0, 1.2, 0.8), trace/3 = 3.0
    control(model={"eps_inf_dfpt": 2.5, "eps_inf": 3.0, "anisotropy": [1.0, 1.2, 0.8]})
    work = tmp_path / "work"
    result = VaspEngine(settings).run("mp-1265", mgo(), work)

    # what the stand-in wrote, read through pymatgen's OUTCAR parser (not the engine's vasprun route)
    outcar = Outcar(str(work / "dfpt" / "OUTCAR"))
    assert outcar.lepsilon
    written = np.trace(np.asarray(outcar.dielectric_tensor)) / 3
    assert np.diag(outcar.dielectric_tensor) == pytest.approx([2.5, 2.8, 2.2], abs=1e-6)
    assert written == pytest.approx(2.5, abs=1e-6)
    aexx = incar_of(work / "hybrid")["AEXX"]
    assert aexx == pytest.approx(1 / written, abs=1e-6)
    assert aexx == pytest.approx(0.4, abs=1e-6)

    details = result.gap_details
    assert details["eps_inf_method"] == "dfpt"
    assert details["eps_inf_dfpt"] == pytest.approx(2.5, abs=1e-6)
    assert np.diag(details["eps_inf_dfpt_tensor"]) == pytest.approx([2.5, 2.8, 2.2], abs=1e-6)
    assert details["eps_inf_optics"] == pytest.approx(3.0, abs=1e-3)  # recorded beside it
    assert details["eps_inf_dfpt_no_local_fields"] == pytest.approx(details["eps_inf_optics"], abs=1e-3)
    assert details["aexx"] == pytest.approx(0.4, abs=1e-6)
    assert result.corrected_gap_ev == pytest.approx(FAKE_GAP + FAKE_HYBRID_PER_AEXX * 0.4, abs=1e-3)
    runs = json.loads((work / "dfpt" / "fake_vasp_runs.json").read_text())
    assert [r["kind"] for r in runs] == ["dfpt"]
    # the result file keeps both values
    write_result(tmp_path / "result.json", result)
    back = read_result(tmp_path / "result.json")
    assert isinstance(back, DielectricResult)
    assert back.gap_details["eps_inf_dfpt"] == details["eps_inf_dfpt"]
    assert back.gap_details["eps_inf_optics"] == details["eps_inf_optics"]


def test_eps_inf_method_optics_runs_no_dfpt(settings, control, tmp_path):
    settings = dataclasses.replace(settings, eps_inf_method="optics")
    result = VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")
    assert result.settings["steps"] == ["relax", "bandgap", "optics", "hybrid"]
    assert not (tmp_path / "work" / "dfpt").exists()
    details = result.gap_details
    assert details["eps_inf_method"] == "optics" and details["eps_inf_dfpt"] is None
    assert details["eps_inf"] == details["eps_inf_optics"] == pytest.approx(FAKE_EPS_INF, abs=1e-3)
    assert incar_of(tmp_path / "work" / "hybrid")["AEXX"] == pytest.approx(1 / FAKE_EPS_INF, abs=1e-3)


def test_dfpt_failure_is_a_calculation_error_of_that_step(settings, control, tmp_path):
    control(errors={"dfpt": {"kind": "crash", "runs": -1}})
    with pytest.raises(CalculationError) as info:
        VaspEngine(settings).run("mp-1265", mgo(), tmp_path / "work")
    assert info.value.stage == "dfpt" and "step 'dfpt'" in str(info.value)
    assert not (tmp_path / "work" / "hybrid").exists()


# ---------------------------------------------------------------- the hybrid on the bandgap run's final inputs


@pytest.mark.parametrize(
    ("error", "tag", "before", "after", "overrides"),
    [
        # a Gamma mesh: custodian's fix for a bad rotation matrix is ISYM = 0, which changes the
        # k-point set of the WAVECAR; a regenerated hybrid INCAR would not have it
        ("rot_matrix", "ISYM", None, 0, {}),
        # the user's LREAL = Auto is corrected to False in the bandgap run; the hybrid keeps False
        ("subspace", "LREAL", "Auto", False, {"LREAL": "Auto"}),
    ],
)
def test_hybrid_inherits_the_bandgap_runs_corrections(settings, control, tmp_path, error, tag, before, after, overrides):
    control(errors={"bandgap": {"kind": error, "runs": 1}})
    settings = dataclasses.replace(settings, incar_overrides=overrides)
    work = tmp_path / "work"
    result = VaspEngine(settings).run("mp-1265", mgo(), work)

    bandgap, hybrid = work / "bandgap", work / "hybrid"
    runs = json.loads((bandgap / "fake_vasp_runs.json").read_text())
    assert [r["error"] for r in runs] == [error, None]
    assert runs[0]["incar"].get(tag) == (None if before is None else str(before))
    corrected = incar_of(bandgap)
    assert corrected[tag] == after
    assert result.settings["custodian_corrections"]["bandgap"][0]["handler"] == "VaspErrorHandler"

    incar = incar_of(hybrid)
    assert incar[tag] == after
    assert (hybrid / "KPOINTS").read_text() == (bandgap / "KPOINTS").read_text()
    assert (hybrid / "POSCAR").read_text() == (bandgap / "POSCAR").read_text()
    assert incar["ENCUT"] == corrected["ENCUT"]
    final = Vasprun(str(bandgap / "vasprun.xml"), parse_dos=False, parse_potcar_file=False)
    assert incar["NBANDS"] == final.parameters["NBANDS"]
    # the stand-in read the WAVECAR with the inputs that wrote it
    hybrid_runs = json.loads((hybrid / "fake_vasp_runs.json").read_text())
    assert len(hybrid_runs) == 1 and "wavecar_mismatch" not in hybrid_runs[0]
    assert result.corrected_gap_ev == pytest.approx(FAKE_GAP + FAKE_HYBRID_PER_AEXX / FAKE_EPS_INF_DFPT, abs=1e-3)


def _run_stand_in(directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FAKE_VASP)], cwd=directory, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("change", "differs"),
    [
        (lambda d: (d / "KPOINTS").write_text(str(Kpoints.gamma_automatic((2, 2, 2)))), "kpoints"),
        (lambda d: Incar({**incar_of(d), "ISYM": 0}).write_file(d / "INCAR"), "symmetry"),
        (lambda d: Incar({**incar_of(d), "ENCUT": 600}).write_file(d / "INCAR"), "encut"),
        (lambda d: Incar({**incar_of(d), "NBANDS": 30}).write_file(d / "INCAR"), "nbands"),
    ],
    ids=["kpoints", "isym", "encut", "nbands"],
)
def test_stand_in_fails_a_hybrid_whose_inputs_differ_from_its_wavecar(settings, control, tmp_path, change, differs):
    work = tmp_path / "work"
    VaspEngine(dataclasses.replace(settings, relax=False)).run("mp-1265", mgo(), work)
    again = tmp_path / "again"
    again.mkdir()
    for name in ("INCAR", "KPOINTS", "POSCAR", "POTCAR", "WAVECAR"):
        (again / name).write_bytes((work / "hybrid" / name).read_bytes())
    assert _run_stand_in(again).returncode == 0  # as the engine wrote them: accepted
    (again / "fake_vasp_runs.json").unlink()
    change(again)
    proc = _run_stand_in(again)
    assert proc.returncode == 1 and "plane wave coefficients changed" in proc.stdout
    runs = json.loads((again / "fake_vasp_runs.json").read_text())
    assert differs in runs[-1]["wavecar_mismatch"]
