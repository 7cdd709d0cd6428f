"""Rule `predict`: spectra of new structures (a CIF/POSCAR folder) from the trained model."""

from optabs.dataset import Grid
from optabs.logs import logged
from optabs.model import predict_structures

with logged(snakemake.log[0]):
    predict_structures(
        snakemake.input.checkpoint, snakemake.input.structures, Grid.from_config(snakemake.params.grid),
        snakemake.output.alignn, snakemake.output.table,
    )
