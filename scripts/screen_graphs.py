"""Rule `screen_graphs`: the candidates' crystal graphs (cached) and their manifest."""

from optabs.logs import logged
from optabs.model.settings import ModelSettings
from optabs.screen.stage import screen_graphs_stage

with logged(snakemake.log[0]):
    tables = list(snakemake.input.candidates)
    screen_graphs_stage(
        tables[0] if tables else None, snakemake.params.candidates_dir or None,
        ModelSettings.from_config("model", snakemake.params.model), snakemake.params.cache,
        snakemake.output.manifest, snakemake.output.skipped,
    )
