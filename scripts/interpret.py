"""Rule `interpret`: Ward clusters (embeddings and raw spectra), comparison, chemistry."""

from optabs.dataset import Grid
from optabs.interpret import interpret_stage
from optabs.logs import logged

with logged(snakemake.log[0]):
    s = snakemake.params.settings
    out = snakemake.output
    interpret_stage(
        snakemake.input.dataset, snakemake.input.embeddings, snakemake.input.environments,
        layer=s["layer"], k=s["n_clusters"], standardize=s["standardize"], grid=Grid.from_config(snakemake.params.grid),
        clusters_path=out.clusters, linkage_path=out.linkage, comparison_path=out.comparison, chemistry_dir=out.chemistry,
    )
