"""Rule `predict`: spectra of new structures (a CIF/POSCAR folder) from the trained model (its grid is in the checkpoint)."""

from optabs.logs import logged
from optabs.model.stage import predict_structures

with logged(snakemake.log[0]):
    predict_structures(list(snakemake.input.checkpoints), snakemake.input.structures, snakemake.output.alignn, snakemake.output.table)
