"""Rule `report`: the static HTML report with the failures of every earlier stage."""

import os

from optabs.grid import Grid
from optabs.logs import logged
from optabs.report import report_stage

with logged(snakemake.log[0]):
    i = snakemake.input
    report_stage(
        snakemake.output[0], dataset_path=i.dataset, clusters_path=i.clusters, linkage_path=i.linkage,
        comparison_path=i.comparison, chemistry_dir=i.chemistry, sweep_path=i.sweep,
        motif_q_max=snakemake.params.motif_q_max, metrics_path=i.metrics,
        predictions_path=i.predictions, failure_paths=list(i.failures),
        grid=Grid.from_config("spectra", snakemake.params.grid), title=snakemake.params.title,
        screen_dir=os.path.dirname(i.screen) if "screen" in i.keys() else None,
    )
