"""Rule `model_embeddings`: per-layer mean atom features of every material."""

from optabs.logs import logged
from optabs.model.stage import embeddings_stage

with logged(snakemake.log[0]):
    embeddings_stage(snakemake.input.dataset, snakemake.params.cache, snakemake.input.checkpoint, snakemake.output[0])
