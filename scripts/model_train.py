"""Rule `model_train`: train the spectrum model (GPU when visible, else CPU)."""

from optabs.logs import logged
from optabs.model import ModelSettings, train_stage

with logged(snakemake.log[0]):
    train_stage(
        snakemake.input.dataset, snakemake.params.cache,
        ModelSettings.from_config(snakemake.params.model), snakemake.params.outdir,
    )
