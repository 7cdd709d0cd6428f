"""Rule `interpret`: Ward clusters (embeddings and raw spectra), comparison, chemistry."""

from optabs.grid import Grid
from optabs.interpret.settings import InterpretSettings
from optabs.interpret.stage import interpret_stage
from optabs.logs import logged

with logged(snakemake.log[0]):
    out = snakemake.output
    interpret_stage(
        snakemake.input.dataset, snakemake.input.embeddings, snakemake.input.environments,
        settings=InterpretSettings.from_config("interpret", snakemake.params.settings),
        grid=Grid.from_config("spectra", snakemake.params.grid),
        clusters_path=out.clusters, linkage_path=out.linkage, comparison_path=out.comparison, chemistry_dir=out.chemistry,
        sweep_path=out.sweep,
    )
