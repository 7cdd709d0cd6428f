"""Rule `model_train`: train the spectrum model (GPU when visible, else CPU)."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.model.stage import train_stage

with logged(snakemake.log[0]):
    train_stage(
        snakemake.input.dataset, snakemake.params.cache,
        ModelSettings.from_config("model", snakemake.params.model), snakemake.params.outdir,
        Grid.from_config("spectra", snakemake.params.grid),
    )
