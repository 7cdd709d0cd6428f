# Stage `structures`: candidates from the configured source, screened by the chemistry filter.


# The Materials Project key reaches the fetch only through the environment (never config, never
# a log). Declared for source mp only, so the other sources run without it; with source mp,
# Snakemake stops before any job, dry runs included, when MP_API_KEY is unset (an empty value
# passes here and fails in the fetch, with one line naming the variable).
if config["source"] == "mp":

    envvars:
        "MP_API_KEY",


# A local rule: it needs the internet, which compute nodes often lack, and little else.
rule structures_mp_fetch:
    output:
        f"{RESULTS}/structures/mp_documents.json.gz",
    log:
        f"{LOGS}/structures/mp_fetch.log",
    params:
        mp=config["mp"],
        filter=config["filter"],
        partial_dir=f"{RESULTS}/structures/mp_partial",
    threads: 1
    resources:
        runtime=120,
        mem_mb=4000,
    localrule: True
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
        # filter-passing structures not computed in this run: what screening ranks
        candidates=f"{RESULTS}/structures/candidates.parquet",
    log:
        f"{LOGS}/structures/structures.log",
    params:
        source=config["source"],
        filter=config["filter"],
        catalog_max_sites=config["catalog_max_sites"],
        initial_fraction=config["screen"]["initial_fraction"],
        seed=config["screen"]["seed"],
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/structures.yaml"
    script:
        "../scripts/structures.py"


# `snakemake all_structures`: this stage's outputs and nothing after them.
rule all_structures:
    input:
        rules.structures.output,
    localrule: True
