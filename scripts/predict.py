"""Rule `predict`: spectra of new structures (a CIF/POSCAR folder) from the trained ensemble (its grid is in the checkpoints)."""

from optabs.logs import logged
from optabs.model.stage import predict_structures

with logged(snakemake.log[0]):
    out = snakemake.output
    predict_structures(list(snakemake.input.checkpoints), snakemake.input.structures, out.alignn, out.table)
