"""Rule `screen_train`: one member of an active-learning round's ensemble (round 0's split)."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.screen.rounds import train_round_stage

with logged(snakemake.log[0]):
    params = snakemake.params
    train_round_stage(
        snakemake.input.dataset, params.caches, snakemake.input.base,
        ModelSettings.from_config("model", {**params.model, "threads": snakemake.threads, "member": params.member}),
        params.outdir, Grid.from_config("spectra", params.grid),
    )
