# Stage `dft`: one job per kept material (wildcard material_id), engine from config.
# The job is named after the engine (dft_gpaw / dft_vasp): each has its own resources below.


# One sbatch job per material. Bundling several into one job is opt-in on the command line
# (`--groups dft_gpaw=dft --group-components dft=8`): Snakemake's job groups downstream of a
# checkpoint make dry runs hang or fail at random beyond one bundle (snakemake issues #4202,
# #823), so no profile sets it and no dry run should use it.
# GPAW: one serial process per material. VASP: an MPI job, launched as `{mpi} -n {tasks} <command>`
# (optabs.dft.vasp); the SLURM executor submits it with --ntasks=tasks and runs the job itself
# outside any step, so that srun starts VASP's own step with every task. Without SLURM, e.g.
# --set-resources "dft_vasp:mpi='mpirun'" dft_vasp:tasks=8, or "dft_vasp:mpi=''" to run the
# command as it is.
DFT_RESOURCES = {
    "gpaw": dict(
        runtime=lambda wildcards, attempt: 120 * attempt,
        mem_mb=lambda wildcards, attempt: 3000 * attempt,
    ),
    "vasp": dict(
        runtime=lambda wildcards, attempt: 1440 * attempt,
        mem_mb=lambda wildcards, attempt: 64000 * attempt,
        mpi="srun",
        tasks=32,
    ),
    # benchmarks only: one row of a spectra database and a small inversion, no calculation
    "replay": dict(
        runtime=5,
        mem_mb=1000,
    ),
}


rule:
    name:
        f"dft_{DFT_ENGINE}"
    input:
        # ancient: re-filtering never recomputes a material; a changed structure does (params).
        # Any material of kept or candidates can be computed (active learning asks for candidates).
        kept=ancient(f"{RESULTS}/structures/kept.parquet"),
        candidates=ancient(f"{RESULTS}/structures/candidates.parquet"),
    output:
        f"{RESULTS}/dft/{{material_id}}/result.json",
    log:
        f"{LOGS}/dft/{{material_id}}.log",
    benchmark:
        f"{BENCHMARKS}/dft/{{material_id}}.tsv"
    params:
        engine=DFT_ENGINE,
        settings=config["dft"][DFT_ENGINE],
        structure=lambda wc: kept_structure_digest(wc.material_id),
        workdir=f"{RESULTS}/dft/{{material_id}}/work",
    threads: 1
    resources:
        **DFT_RESOURCES[DFT_ENGINE],
    # A job fails only where a retry can help (a timeout, out of memory, a lost node): a failed
    # calculation is a recorded result, not a failed job. The retry gets more time and memory.
    retries: 2
    priority: dft_priority
    conda:
        f"../envs/dft-{DFT_ENGINE}.yaml"
    script:
        "../scripts/dft.py"


# `snakemake all_dft`: the structures checkpoint, then one DFT job per kept material (the same
# checkpoint-aware input as the spectra rule's), and nothing after them. `--until dft_<engine>`
# cannot do this: the DFT jobs are not in the DAG until the checkpoint has run.
rule all_dft:
    input:
        dft_results,
    localrule: True
