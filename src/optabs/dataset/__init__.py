"""The dataset stage: the model's training table, its ALIGNN folder-format export and import.

:mod:`~optabs.dataset.table` (columns, read, write), :mod:`~optabs.dataset.alignn_format`
(the published folder format), :mod:`~optabs.dataset.curation` (stable by the configured
policy, gap >= minimum), :mod:`~optabs.dataset.stage` (the rules' entry points).

``dataset.parquet`` columns (one row per material):

===================  ===========  =====================================================================
material_id          str          safe id (file name, Snakemake wildcard)
source_name          str          the original name (e.g. the POSCAR file name of an import)
formula              str          reduced formula
structure            str          pymatgen Structure JSON
log10_alpha          list[float]  log10 of alpha (cm^-1) on the grid, clipped below at the floor
onset_ev             float        first grid energy where log10_alpha > threshold (eV); NaN if none
dft_gap_ev           float        DFT band gap (eV); NaN if unknown (imports)
corrected_gap_ev     float        corrected gap the spectrum was shifted to (eV); NaN if unknown
e_above_hull_ev      float        energy above hull (eV/atom) that stability_policy judged; NaN if none
stability            str          stable | unknown (the policy cannot judge it) | unchecked (none)
stability_policy     str          mp (Materials Project hull) | local (this run's phases) | none
mp_database_version  str          Materials Project database of e_above_hull_ev (mp); else ""
engine               str          gpaw | vasp | imported
===================  ===========  =====================================================================

The ALIGNN folder format (the published database's): one ``POSCAR_<formula>_<id>.vasp`` per
material and ``id_prop.csv`` without header, each row the file name then the spectrum values.
"""

from __future__ import annotations

from optabs.dataset.alignn_format import (
    ImportResult,
    export_alignn,
    import_alignn,
    material_id_from_poscar_name,
    poscar_name,
)
from optabs.dataset.curation import (
    STABILITY_POLICIES,
    Curation,
    curate,
    elements_without_reference,
    energies_above_hull,
    source_stability,
)
from optabs.dataset.table import DATASET_COLUMNS, DROPPED_COLUMNS, read_dataset, spectra_matrix, write_dataset

__all__ = [
    "DATASET_COLUMNS",
    "DROPPED_COLUMNS",
    "STABILITY_POLICIES",
    "Curation",
    "ImportResult",
    "curate",
    "elements_without_reference",
    "energies_above_hull",
    "export_alignn",
    "import_alignn",
    "material_id_from_poscar_name",
    "poscar_name",
    "read_dataset",
    "source_stability",
    "spectra_matrix",
    "write_dataset",
]
