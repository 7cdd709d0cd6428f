"""Rule `dataset_import` (source: dataset): an ALIGNN spectra folder -> the dataset, no DFT."""

from optabs.dataset.stage import import_stage
from optabs.grid import Grid
from optabs.logs import logged

with logged(snakemake.log[0]):
    out = snakemake.output
    import_stage(
        snakemake.input[0], Grid.from_config("spectra", snakemake.params.grid),
        dataset_path=out.dataset, dropped_path=out.dropped, failures_path=out.failures, alignn_dir=out.alignn,
    )
