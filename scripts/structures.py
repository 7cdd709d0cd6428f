"""Rule `structures`: source -> chemistry filter -> kept.parquet, candidates.parquet, rejected.csv, failures.csv."""

from optabs.logs import logged
from optabs.structures.stage import run_structures_stage

with logged(snakemake.log[0]):
    run_structures_stage(
        source=snakemake.params.source,
        path=snakemake.input[0],
        filter_config=snakemake.params.filter,
        kept_path=snakemake.output.kept,
        rejected_path=snakemake.output.rejected,
        catalog_max_sites=snakemake.params.catalog_max_sites,
        failures_path=snakemake.output.failures,
        candidates_path=snakemake.output.candidates,
        initial_fraction=snakemake.params.initial_fraction,
        seed=snakemake.params.seed,
    )
