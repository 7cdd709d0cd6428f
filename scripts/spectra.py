"""Rule `spectra`: DFT results -> spectra.parquet + the per-material DFT summary."""

from optabs.dataset import Grid, spectra_table
from optabs.io import write_csv, write_parquet
from optabs.logs import logged

with logged(snakemake.log[0]) as log:
    spectra, summary = spectra_table(list(snakemake.input), Grid.from_config(snakemake.params.grid))
    log.info("%d spectra, %d materials without one", len(spectra), (summary.status != "ok").sum())
    write_parquet(snakemake.output.spectra, spectra)
    write_csv(snakemake.output.summary, summary)
