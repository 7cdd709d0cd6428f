"""Rule `spectra`: DFT results -> spectra.parquet, the per-material DFT summary and the failures."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.spectra.stage import spectra_stage

with logged(snakemake.log[0]):
    out = snakemake.output
    spectra_stage(
        list(snakemake.input), Grid.from_config("spectra", snakemake.params.grid),
        spectra_path=out.spectra, summary_path=out.summary, failures_path=out.failures,
    )
