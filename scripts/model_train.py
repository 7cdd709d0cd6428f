"""Rule `model_train`: train the spectrum model (GPU when visible, else CPU)."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.model.stage import train_stage

with logged(snakemake.log[0]):
    train_stage(
        snakemake.input.dataset, snakemake.params.cache,
        # torch threads: the cores Snakemake gave this job (rule threads, from model.threads)
        ModelSettings.from_config("model", {**snakemake.params.model, "threads": snakemake.threads}),
        snakemake.params.outdir,
        Grid.from_config("spectra", snakemake.params.grid),
    )
