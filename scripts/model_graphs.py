"""Rule `model_graphs`: ALIGNN graphs of the dataset, built once and cached between runs."""

from optabs.logs import logged
from optabs.model import ModelSettings, graphs_stage

with logged(snakemake.log[0]):
    graphs_stage(
        snakemake.input.dataset, ModelSettings.from_config(snakemake.params.model),
        snakemake.params.cache, snakemake.output.manifest,
    )
