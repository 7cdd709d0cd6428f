"""Rule `dataset`: curate the spectra (stability, gap) -> dataset.parquet, dropped.csv, failures.csv, ALIGNN export."""

from optabs.dataset.curation import Curation
from optabs.dataset.stage import curate_stage
from optabs.logs import logged

with logged(snakemake.log[0]):
    out = snakemake.output
    curate_stage(
        snakemake.input.spectra, Curation.from_config("dataset", snakemake.params.curation),
        kept_path=snakemake.input.get("kept"),
        dataset_path=out.dataset, dropped_path=out.dropped, failures_path=out.failures, alignn_dir=out.alignn,
    )
