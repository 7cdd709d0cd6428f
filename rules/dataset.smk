# Stage `dataset`: the model's table and its ALIGNN folder-format export. Either curated from
# this workflow's own spectra, or (source: dataset) imported from an ALIGNN folder with no DFT.

if config["source"] == "dataset":

    rule dataset_import:
        input:
            config["dataset_dir"],
        output:
            dataset=f"{RESULTS}/dataset/dataset.parquet",
            dropped=f"{RESULTS}/dataset/dropped.csv",
            failures=f"{RESULTS}/dataset/failures.csv",
            alignn=directory(f"{RESULTS}/dataset/alignn"),
        log:
            f"{LOGS}/dataset/dataset_import.log",
        params:
            grid=config["spectra"],
        threads: 1
        resources:
            runtime=60,
            mem_mb=8000,
        conda:
            "../envs/report.yaml"
        script:
            "../scripts/dataset_import.py"

else:

    rule dataset:
        input:
            spectra=f"{RESULTS}/spectra/spectra.parquet",
            # the source's own stability (e.g. the Materials Project's energy_above_hull)
            kept=f"{RESULTS}/structures/kept.parquet",
        output:
            dataset=f"{RESULTS}/dataset/dataset.parquet",
            dropped=f"{RESULTS}/dataset/dropped.csv",
            failures=f"{RESULTS}/dataset/failures.csv",
            alignn=directory(f"{RESULTS}/dataset/alignn"),
        log:
            f"{LOGS}/dataset/dataset.log",
        params:
            curation=config["dataset"],
        threads: 1
        resources:
            runtime=60,
            mem_mb=8000,
        conda:
            "../envs/report.yaml"
        script:
            "../scripts/dataset.py"


# `snakemake all_dataset`: the dataset and its ALIGNN export (curated or imported), nothing after.
rule all_dataset:
    input:
        (rules.dataset_import if config["source"] == "dataset" else rules.dataset).output,
    localrule: True
