"""Rule `dataset`: curate the spectra (hull, gap) -> dataset.parquet, dropped.csv, ALIGNN export."""

import pandas as pd

from optabs.dataset import Curation, curate, export_alignn, write_dataset
from optabs.io import write_csv
from optabs.logs import logged

with logged(snakemake.log[0]) as log:
    dataset, dropped = curate(pd.read_parquet(snakemake.input.spectra), Curation.from_config(snakemake.params.curation))
    log.info("%d materials in the dataset, %d dropped", len(dataset), dropped.material_id.nunique())
    export_alignn(dataset, snakemake.output.alignn)
    write_csv(snakemake.output.dropped, dropped)
    write_dataset(snakemake.output.dataset, dataset)
