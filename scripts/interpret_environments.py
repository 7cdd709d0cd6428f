"""Rule `interpret_environments`: CrystalNN cation environments of every material, and their failures."""

from optabs.interpret.stage import environments_stage
from optabs.logs import logged

with logged(snakemake.log[0]):
    environments_stage(
        snakemake.input.dataset, snakemake.output.environments, snakemake.output.failures, n_workers=snakemake.threads
    )
