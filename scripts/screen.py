"""Rule `screen`: the last round's ranking and shortlist, and every round's summary (rounds.json, rounds.png)."""

from optabs.logs import logged
from optabs.screen.stage import summary_stage

with logged(snakemake.log[0]):
    out = snakemake.output
    summary_stage(snakemake.params.round_dirs, ranking_path=out.ranking, shortlist_path=out.shortlist,
                  rounds_path=out.rounds, rounds_png=out.figure)
