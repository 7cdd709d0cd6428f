"""Rule `screen_dataset`: one active-learning round's dataset, and what the previous round's picks turned out to be."""

from optabs.dataset.curation import Curation
from optabs.grid import Grid
from optabs.logs import logged
from optabs.screen.merit import merit_function
from optabs.screen.rounds import round_dataset_stage
from optabs.screen.settings import ScreenSettings

with logged(snakemake.log[0]):
    params = snakemake.params
    grid = Grid.from_config("spectra", params.grid)
    round_dataset_stage(
        params.round, list(snakemake.input.results), list(snakemake.input.tables), snakemake.input.shortlist,
        Curation.from_config("dataset", params.curation), grid,
        merit_function(ScreenSettings.from_config("screen", params.screen), grid),
        dataset_path=snakemake.output.dataset, picked_path=snakemake.output.picked,
    )
