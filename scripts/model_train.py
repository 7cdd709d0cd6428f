"""Rules `model_train` / `model_train_member`: train the spectrum model, or one ensemble member (GPU when visible)."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.model.stage import train_stage

with logged(snakemake.log[0]):
    params = snakemake.params
    train_stage(
        snakemake.input.dataset, params.cache,
        # torch threads: the cores Snakemake gave this job; member: which ensemble member (0: the model)
        ModelSettings.from_config(
            "model", {**params.model, "threads": snakemake.threads, "member": params.member},
        ),
        params.outdir,
        Grid.from_config("spectra", params.grid),
    )
