# Stage `structures`: candidates from the configured source, screened by the chemistry filter.


rule structures_mp_fetch:
    output:
        f"{RESULTS}/structures/mp_documents.json.gz",
    log:
        f"{LOGS}/structures/mp_fetch.log",
    params:
        mp=config["mp"],
        filter=config["filter"],
        partial_dir=f"{RESULTS}/structures/mp_partial",
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/structures.yaml"
    script:
        "../scripts/structures_mp_fetch.py"


checkpoint structures:
    input:
        source_input(),
    output:
        kept=f"{RESULTS}/structures/kept.parquet",
        rejected=f"{RESULTS}/structures/rejected.csv",
        failures=f"{RESULTS}/structures/failures.csv",
    log:
        f"{LOGS}/structures/structures.log",
    params:
        source=config["source"],
        filter=config["filter"],
        catalog_max_sites=config["catalog_max_sites"],
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/structures.yaml"
    script:
        "../scripts/structures.py"


# `snakemake all_structures`: this stage's outputs and nothing after them.
rule all_structures:
    input:
        rules.structures.output,
    localrule: True
