# Stage `dft`: one job per kept material (wildcard material_id), engine from config.
# The job is named after the engine (dft_gpaw / dft_vasp) so the slurm profile can size each.


rule:
    name:
        f"dft_{DFT_ENGINE}"
    input:
        # ancient: re-filtering never recomputes a material; a changed structure does (params).
        kept=ancient(f"{RESULTS}/structures/kept.parquet"),
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
        workdir=lambda wc: f"{RESULTS}/dft/{wc.material_id}/work",
    threads: 1
    resources:
        **slurm_resources("cpu"),
    group:
        f"dft_{DFT_ENGINE}"
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
