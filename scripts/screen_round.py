"""Rule `screen_round`: rank one round's candidates with its ensemble; its shortlist and metrics."""

from optabs.grid import Grid
from optabs.interpret.settings import InterpretSettings
from optabs.logs import logged
from optabs.screen.rounds import screen_round_stage
from optabs.screen.settings import ScreenSettings

with logged(snakemake.log[0]):
    out, inp, params = snakemake.output, snakemake.input, snakemake.params
    screen_round_stage(
        int(snakemake.wildcards.round), list(inp.checkpoints), inp.dataset, params.caches, inp.candidates,
        ScreenSettings.from_config("screen", params.screen), InterpretSettings.from_config("interpret", params.interpret),
        Grid.from_config("spectra", params.grid), list(inp.computed),
        ranking_path=out.ranking, shortlist_path=out.shortlist, metrics_path=out.metrics, merit_png=out.merit,
        spectra_png=out.spectra,
    )
