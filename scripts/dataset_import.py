"""Rule `dataset_import` (source: dataset): an ALIGNN spectra folder -> the dataset, no DFT."""

from optabs.dataset import Grid, export_alignn, import_alignn, write_dataset
from optabs.io import write_csv
from optabs.logs import logged

with logged(snakemake.log[0]) as log:
    result = import_alignn(snakemake.input[0], Grid.from_config(snakemake.params.grid))
    log.info("imported %d of %d rows, %d dropped", len(result.dataset), result.n_rows, len(result.dropped))
    export_alignn(result.dataset, snakemake.output.alignn)
    write_csv(snakemake.output.dropped, result.dropped)
    write_dataset(snakemake.output.dataset, result.dataset)
