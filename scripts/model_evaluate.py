"""Rule `model_evaluate`: predictions, metrics against the baselines, figures."""

from optabs.dataset import Grid
from optabs.logs import logged
from optabs.model import evaluate_stage

with logged(snakemake.log[0]):
    out = snakemake.output
    evaluate_stage(
        snakemake.input.dataset, snakemake.params.cache, snakemake.input.checkpoint,
        Grid.from_config(snakemake.params.grid), out.predictions, out.metrics, out.per_material, out.parity, out.worst,
    )
