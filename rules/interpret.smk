# Stage `interpret`: cation environments (CrystalNN, batched), Ward clusters of the model's
# layer features and of the raw spectra, their comparison, per-cluster chemistry.


rule interpret_environments:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
    output:
        environments=f"{RESULTS}/interpret/environments.parquet",
        failures=f"{RESULTS}/interpret/failures.csv",
    log:
        f"{LOGS}/interpret/environments.log",
    threads: 2
    resources:
        runtime=120,
        mem_mb=8000,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/interpret_environments.py"


rule interpret:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
        embeddings=f"{RESULTS}/model/embeddings.parquet",
        environments=f"{RESULTS}/interpret/environments.parquet",
    output:
        clusters=f"{RESULTS}/interpret/clusters.parquet",
        linkage=f"{RESULTS}/interpret/linkage.npy",
        comparison=f"{RESULTS}/interpret/comparison.json",
        sweep=f"{RESULTS}/interpret/sweep.parquet",
        chemistry=directory(f"{RESULTS}/interpret/chemistry"),
    log:
        f"{LOGS}/interpret/interpret.log",
    params:
        settings=config["interpret"],
        grid=config["spectra"],
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/interpret.py"


# `snakemake all_interpret`: everything all_model makes, then the clusters and their chemistry;
# no report.
rule all_interpret:
    input:
        rules.all_model.input,
        rules.interpret_environments.output,
        rules.interpret.output,
    localrule: True
