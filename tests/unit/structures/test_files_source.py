"""The `files` source: a folder of CIF/POSCAR files, ids from file names, bad files reported by name."""

from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from conftest import snakemake
from optabs.errors import InputError
from optabs.ids import safe_material_id
from optabs.structures.files import load_folder, material_id_from_filename


def mgo() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.212), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def zns() -> Structure:
    return Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("POSCAR_Ba3Si2(B3O8)2_mp-1019526.vasp", "Ba3Si2_B3O8_2_mp-1019526"),
        ("MgO.cif", "MgO"),
        ("POSCAR_KInO2_mp-1018031.vasp", "KInO2_mp-1018031"),
        ("zinc sulfide (sphalerite).cif", "zinc_sulfide_sphalerite"),
    ],
)
def test_ids_from_file_names_are_safe(name, expected):
    assert material_id_from_filename(Path(name)) == expected


def test_unsafe_name_without_letters_raises():
    with pytest.raises(InputError, match="cannot derive a material id"):
        safe_material_id("(())")


def test_folder_reads_cif_and_poscar_and_reports_bad_files(tmp_path):
    mgo().to(filename=str(tmp_path / "MgO.cif"))
    zns().to(filename=str(tmp_path / "POSCAR_ZnS_mp-10695.vasp"), fmt="poscar")
    (tmp_path / "broken.cif").write_text("data_broken\n_cell_length_a 4.2\nthis is not a cif\n")
    (tmp_path / "notes.txt").write_text("ignored: not a structure file")
    candidates, problems = load_folder(tmp_path)
    assert sorted(c.material_id for c in candidates) == ["MgO", "ZnS_mp-10695"]
    assert [p["source_ref"] for p in problems] == ["broken.cif"]
    assert problems[0]["criterion"] == "unreadable"
    assert "broken.cif" in problems[0]["detail"]


def test_duplicate_ids_are_reported_and_the_first_kept(tmp_path):
    mgo().to(filename=str(tmp_path / "MgO.cif"))
    mgo().to(filename=str(tmp_path / "MgO.vasp"), fmt="poscar")
    candidates, problems = load_folder(tmp_path)
    assert [c.source_ref for c in candidates] == ["MgO.cif"]
    assert problems[0]["criterion"] == "duplicate_id" and "MgO.cif" in problems[0]["detail"]


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_folder(tmp_path / "nope")
    with pytest.raises(InputError, match="holds no CIF/POSCAR"):
        load_folder(tmp_path)


@pytest.mark.slow
def test_files_source_through_the_workflow(workflow_dir, tmp_path):
    folder = tmp_path / "structs"
    folder.mkdir()
    mgo().to(filename=str(folder / "MgO.cif"))
    zns().to(filename=str(folder / "ZnS.cif"))
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.18), ["Ni", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "NiO.cif")
    )
    (folder / "bad.cif").write_text("garbage\n")
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.4), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "Mg0.5Ca0.5O.cif")  # partial occupancies: no engine or graph represents it
    )
    proc = snakemake(
        ["--cores", "1", "results/structures/kept.parquet", "--config", "source=files", f"structures_dir={folder}"],
        cwd=workflow_dir,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = pd.read_parquet(workflow_dir / "results/structures/kept.parquet")
    rejected = pd.read_csv(workflow_dir / "results/structures/rejected.csv")
    assert sorted(kept.material_id) == ["MgO", "ZnS"]
    assert set(rejected.criterion) == {"unreadable", "excluded_element", "disordered"}
    assert set(rejected.source_ref) == {"bad.cif", "NiO.cif", "Mg0.5Ca0.5O.cif"}
    disordered = rejected[rejected.criterion == "disordered"].iloc[0]
    assert disordered.source_ref == "Mg0.5Ca0.5O.cif" and "Ca:0.5 Mg:0.5" in disordered.detail  # CIF order
