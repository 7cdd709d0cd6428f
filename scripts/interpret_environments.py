"""Rule `interpret_environments`: CrystalNN cation environments of every material."""

from optabs.chemistry import environments_stage
from optabs.logs import logged

with logged(snakemake.log[0]):
    environments_stage(snakemake.input.dataset, snakemake.output[0], n_workers=snakemake.threads)
