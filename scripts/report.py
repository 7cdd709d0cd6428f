"""Rule `report`: the static HTML report with the failures of every earlier stage."""

from optabs.dataset import Grid
from optabs.logs import logged
from optabs.report import collect_failures, report_stage

with logged(snakemake.log[0]):
    i = snakemake.input
    failures = collect_failures(i.get("rejected"), i.get("dft_summary"), i.get("dropped"), i.get("manifest"))
    report_stage(
        snakemake.output[0], dataset_path=i.dataset, clusters_path=i.clusters, linkage_path=i.linkage,
        comparison_path=i.comparison, chemistry_dir=i.chemistry, metrics_path=i.metrics,
        predictions_path=i.predictions, failures=failures, grid=Grid.from_config(snakemake.params.grid),
        title=snakemake.params.title,
    )
