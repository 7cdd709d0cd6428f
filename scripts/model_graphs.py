"""Rule `model_graphs`: ALIGNN graphs of the dataset, built once and cached between runs."""

from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.model.stage import graphs_stage

with logged(snakemake.log[0]):
    graphs_stage(
        snakemake.input.dataset, ModelSettings.from_config("model", snakemake.params.model),
        snakemake.params.cache, snakemake.output.manifest, snakemake.output.failures,
    )
