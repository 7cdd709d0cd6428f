"""ALIGNN folder format: import with bad rows reported by name, export, round trip."""

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from optabs.dataset import DATASET_COLUMNS, export_alignn, import_alignn, material_id_from_poscar_name
from optabs.errors import InputError
from optabs.filters import primitive_cell
from optabs.grid import Grid
from optabs.spectra import onset_energies

GRID = Grid(n_points=151, e_max_ev=15.0)


def onsets(grid: Grid, spectra: np.ndarray) -> np.ndarray:
    """Onset energies (eV) of (M, N) spectra on ``grid``."""
    return onset_energies(grid.energy_ev, np.atleast_2d(spectra), grid.onset_threshold)


def step_spectrum(onset_ev: float, grid: Grid = GRID) -> np.ndarray:
    e = grid.energy_ev
    return np.where(e >= onset_ev, 4.0 + 0.1 * (e - onset_ev), 2.0)


def write_folder(folder, entries, grid=GRID):
    """entries: (file name, structure or raw text, values) triples."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, structure, values in entries:
        if structure is not None:
            text = structure if isinstance(structure, str) else structure.to(fmt="poscar")
            (folder / name).write_text(text)
        lines.append(",".join([name, *(f"{v:.4f}" for v in values)]))
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")


def mgo():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_material_ids_from_real_names():
    assert material_id_from_poscar_name("POSCAR_Ba3Si2(B3O8)2_mp-1019526.vasp") == "mp-1019526"
    assert material_id_from_poscar_name("POSCAR_MgO_mp-1265.vasp") == "mp-1265"
    assert material_id_from_poscar_name("POSCAR_MgO_my id (v2).vasp") == "my_id_v2"
    assert material_id_from_poscar_name("weird name.vasp") == "weird_name"


def test_onset_is_the_first_point_above_threshold():
    spectra = np.stack([step_spectrum(3.0), np.full(GRID.n_points, 2.0)])
    got = onsets(GRID, spectra)
    assert got[0] == pytest.approx(3.0, abs=GRID.energy_ev[1])  # exact to the grid spacing
    assert np.isnan(got[1])


def test_import_reports_bad_rows_by_name_and_keeps_the_rest(tmp_path):
    good = step_spectrum(4.0)
    entries = [
        ("POSCAR_MgO_mp-1265.vasp", mgo(), good),
        ("POSCAR_Ba3Si2(B3O8)2_mp-1.vasp", mgo(), good),  # parentheses in the name
        ("POSCAR_Short_mp-2.vasp", mgo(), good[:-3]),  # wrong length
        ("POSCAR_Broken_mp-3.vasp", "this is not a POSCAR\n", good),  # unreadable
        ("POSCAR_Missing_mp-4.vasp", None, good),  # no file
        ("POSCAR_MgO_mp-1265.vasp", mgo(), good),  # duplicate id
    ]
    write_folder(tmp_path / "db", entries)
    result = import_alignn(tmp_path / "db", GRID)
    assert list(result.dataset.columns) == DATASET_COLUMNS
    assert sorted(result.dataset.material_id) == ["mp-1", "mp-1265"]
    assert set(result.dataset.source_name) == {"POSCAR_MgO_mp-1265.vasp", "POSCAR_Ba3Si2(B3O8)2_mp-1.vasp"}
    reasons = dict(zip(result.dropped.material_id, result.dropped.reason))
    assert reasons == {
        "mp-2": "wrong_length",
        "mp-3": "unreadable_structure",
        "mp-4": "unreadable_structure",
        "mp-1265": "duplicate_id",
    }
    short = result.dropped.set_index("material_id").loc["mp-2", "detail"]
    assert "148 values" in short and "151" in short and "POSCAR_Short_mp-2.vasp" in short
    assert result.dataset.onset_ev.to_numpy() == pytest.approx([4.0, 4.0], abs=0.1)


def test_import_without_id_prop_or_rows_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no id_prop.csv"):
        import_alignn(tmp_path, GRID)
    write_folder(tmp_path / "bad", [("POSCAR_X_mp-1.vasp", mgo(), [1.0, 2.0])])
    with pytest.raises(InputError, match="no usable rows"):
        import_alignn(tmp_path / "bad", GRID)


def test_export_then_import_gives_back_the_dataset(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i, onset in enumerate([2.0, 5.5, 9.1]):
        s = mgo()
        s.perturb(0.01, seed=i)
        rows.append(
            {
                "material_id": f"MgO-{i}",
                "source_name": f"MgO-{i}",
                "formula": "MgO",
                "structure": s.to_json(),
                "log10_alpha": list(step_spectrum(onset) + rng.uniform(0, 0.01, GRID.n_points)),
                "onset_ev": float(onsets(GRID, step_spectrum(onset))[0]),
                "dft_gap_ev": onset - 1,
                "corrected_gap_ev": onset,
                "e_above_hull_ev": 0.0,
                "engine": "gpaw",
            }
        )
    dataset = pd.DataFrame(rows, columns=DATASET_COLUMNS)
    folder = export_alignn(dataset, tmp_path / "alignn")
    assert sorted(p.name for p in folder.iterdir()) == [
        "POSCAR_MgO_MgO-0.vasp", "POSCAR_MgO_MgO-1.vasp", "POSCAR_MgO_MgO-2.vasp", "id_prop.csv"
    ]
    back = import_alignn(folder, GRID)
    assert back.dropped.empty
    got = back.dataset.set_index("material_id")
    for row in rows:
        b = got.loc[row["material_id"]]
        assert np.allclose(b.log10_alpha, row["log10_alpha"], atol=1e-6)
        assert b.onset_ev == pytest.approx(row["onset_ev"])
        s0, s1 = Structure.from_str(row["structure"], fmt="json"), Structure.from_str(b.structure, fmt="json")
        # the same crystal, stored as the one primitive cell every entry path gives (the import
        # standardises as the structures stage does; here spglib keeps all 8 atoms of the rattled cell)
        assert s0.matches(s1) and np.isclose(s0.volume / len(s0), s1.volume / len(s1))
        reference = primitive_cell(s0)
        assert len(s1) == len(reference) and np.allclose(s1.lattice.matrix, reference.lattice.matrix, atol=1e-6)


@pytest.mark.shared_data
def test_import_the_shared_database(shared_data):
    result = import_alignn(shared_data, Grid())
    assert len(result.dataset) == 1116 and result.dropped.empty
    assert result.dataset.material_id.is_unique
    ref = pd.read_csv(shared_data / "materials.csv").set_index("file")
    got = result.dataset.set_index("source_name")
    assert np.allclose(got.onset_ev, ref.loc[got.index, "onset_ev"], equal_nan=True)
