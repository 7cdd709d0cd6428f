"""Rule `dft_<engine>`: one material's dielectric function, or a recorded failure."""

from optabs.dft.stage import run_material
from optabs.logs import logged

with logged(snakemake.log[0]):
    run_material(
        material_id=snakemake.wildcards.material_id,
        kept_path=snakemake.input.kept,
        engine_name=snakemake.params.engine,
        engine_settings=snakemake.params.settings,
        workdir=snakemake.params.workdir,
        result_path=snakemake.output[0],
        log_path=snakemake.log[0],
    )
