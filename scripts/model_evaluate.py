"""Rule `model_evaluate`: predictions, metrics against the baselines, figures."""

from optabs.grid import Grid
from optabs.logs import logged
from optabs.model.stage import evaluate_stage

with logged(snakemake.log[0]):
    out = snakemake.output
    evaluate_stage(
        snakemake.input.dataset, snakemake.params.cache, list(snakemake.input.checkpoints),
        Grid.from_config("spectra", snakemake.params.grid), out.predictions, out.metrics, out.per_material,
        out.parity, out.worst,
    )
