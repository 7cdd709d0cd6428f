"""Rule `dft_<engine>`: one material's dielectric function, or a recorded failure."""

from optabs.dft.stage import job_settings, run_material
from optabs.logs import logged

with logged(snakemake.log[0]):
    run_material(
        material_id=snakemake.wildcards.material_id,
        kept_path=snakemake.input.kept,
        candidates_path=snakemake.input.candidates,
        engine_name=snakemake.params.engine,
        # the job's threads (GPAW) and its MPI launcher from the rule's resources (VASP)
        engine_settings=job_settings(
            snakemake.params.engine, snakemake.params.settings, snakemake.threads,
            mpi=snakemake.resources.get("mpi"), tasks=snakemake.resources.get("tasks"),
        ),
        workdir=snakemake.params.workdir,
        result_path=snakemake.output[0],
        log_path=snakemake.log[0],
    )
