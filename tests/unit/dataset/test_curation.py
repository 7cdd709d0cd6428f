"""Spectra table from DFT results, energy above hull, curation with reasons."""


import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from optabs.dataset import Curation, curate, energies_above_hull
from optabs.dft import DielectricResult, FailureRecord, write_result
from optabs.grid import Grid
from optabs.spectra.stage import spectra_table

GRID = Grid()


def test_polymorph_above_the_more_stable_one():
    e = energies_above_hull(["ZnS", "ZnS"], np.array([-5.0, -4.9]), ["s", "s"])
    assert e == pytest.approx([0.0, 0.1])


def test_ternary_against_its_binaries():
    # hull at Mg2SiO4 = (2 MgO + SiO2): (2*2*(-6.0) + 3*(-7.0)) / 7 atoms = -45/7 = -6.428571 eV/atom
    above = energies_above_hull(["MgO", "SiO2", "Mg2SiO4"], np.array([-6.0, -7.0, -6.4]), ["s"] * 3)
    assert above == pytest.approx([0.0, 0.0, -6.4 + 45 / 7], abs=1e-9)
    below = energies_above_hull(["MgO", "SiO2", "Mg2SiO4"], np.array([-6.0, -7.0, -6.5]), ["s"] * 3)
    assert below == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)


def test_energy_scales_are_never_mixed():
    # the same polymorph pair on two scales: each compared only with its own scale
    e = energies_above_hull(["ZnS", "ZnS", "ZnS"], np.array([-5.0, -4.9, -3.0]), ["a", "a", "b"])
    assert e == pytest.approx([0.0, 0.1, 0.0])


def fake_result(material_id, structure, gap, energy_per_atom, scale="gpaw-test"):
    """A DielectricResult with a smooth eps2 onset at the gap (0-30 eV)."""
    e = np.linspace(0, 30, 3001)
    eps2 = np.where(e > gap, 8.0 * (e - gap) ** 2 / ((e - gap) ** 2 + 4.0) * np.exp(-e / 20), 0.0)
    tensor = np.zeros((e.size, 6))
    tensor[:, :3] = eps2[:, None]
    return DielectricResult(
        material_id=material_id, engine="gpaw", engine_version="test", structure=structure.as_dict(),
        energy_ev=e, eps_real=np.ones((e.size, 6)), eps_imag=tensor, dft_gap_ev=gap, dft_direct_gap_ev=gap,
        corrected_gap_ev=gap + 1.0, gap_method="GLLB-SC", total_energy_ev=energy_per_atom * len(structure),
        n_atoms=len(structure), energy_scale=scale,
    )


def rocksalt(a, b, lat):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lat), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


@pytest.fixture
def results_dir(tmp_path):
    paths = []
    for mid, struct, gap, epa in [
        ("mgo", rocksalt("Mg", "O", 4.21), 4.6, -6.0),
        ("cao", rocksalt("Ca", "O", 4.81), 3.6, -6.5),
        ("pbs", rocksalt("Pb", "S", 5.94), 0.1, -4.0),  # gap below 0.3 eV
    ]:
        path = tmp_path / mid / "result.json"
        write_result(path, fake_result(mid, struct, gap, epa))
        paths.append(path)
    path = tmp_path / "bad" / "result.json"
    write_result(path, FailureRecord("bad", "gpaw", "SCF did not converge", stage="ground_state", log_path="x.log"))
    paths.append(path)
    corrupt = tmp_path / "corrupt" / "result.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"status": "ok", "energy_ev": [0, 1')  # truncated
    paths.append(corrupt)
    return paths


def test_spectra_table_keeps_successes_and_names_failures(results_dir):
    spectra, summary = spectra_table(results_dir, GRID)
    assert sorted(spectra.material_id) == ["cao", "mgo", "pbs"]
    status = dict(zip(summary.material_id, summary.status))
    assert status == {"mgo": "ok", "cao": "ok", "pbs": "ok", "bad": "failed", "corrupt": "failed"}
    reasons = dict(zip(summary.material_id, summary.reason))
    assert "SCF did not converge" in reasons["bad"]
    assert "corrupt/result.json" in reasons["corrupt"]
    assert all(len(v) == GRID.n_points for v in spectra.log10_alpha)
    # onset follows the corrected gap (DFT gap + 1 eV) within the absorption threshold's reach
    onset = dict(zip(spectra.material_id, spectra.onset_ev))
    assert 5.6 <= onset["mgo"] <= 6.2 and 4.6 <= onset["cao"] <= 5.2


def test_curation_drops_with_reasons(results_dir):
    spectra, _ = spectra_table(results_dir, GRID)
    dataset, dropped = curate(spectra, Curation(e_above_hull_max_ev=0.0, min_gap_ev=0.3))
    assert sorted(dataset.material_id) == ["cao", "mgo"]
    assert dict(zip(dropped.material_id, dropped.reason)) == {"pbs": "small_gap"}
    assert "0.100 eV < 0.3" in dropped.detail.iloc[0]
    assert (dataset.e_above_hull_ev == 0).all()
    assert list(dataset.columns)[:3] == ["material_id", "source_name", "formula"]


def test_many_chemical_systems_at_once():
    # 16 oxides of different cations and one polymorph: each system gets its own small hull
    # (one hull over all 17 elements would not finish)
    cations = ["Mg", "Ca", "Sr", "Ba", "Zn", "Cd", "Be", "Li", "Na", "K", "Al", "Ga", "Sn", "Ti", "Zr", "Ge"]
    formulas = [f"{c}O" for c in cations] + ["MgO"]
    energies = np.array([-5.0 - 0.1 * i for i in range(len(cations))] + [-4.8])
    e = energies_above_hull(formulas, energies, ["s"] * len(formulas))
    assert e[:-1] == pytest.approx(np.zeros(len(cations)))
    assert e[-1] == pytest.approx(0.2)
