# Stage `spectra`: every successful DFT result -> gap-corrected log10 alpha on the common grid.
# One batched job: the correction takes milliseconds per material.


rule spectra:
    input:
        dft_results,
    output:
        spectra=f"{RESULTS}/spectra/spectra.parquet",
        summary=f"{RESULTS}/dft/summary.csv",
        failures=f"{RESULTS}/spectra/failures.csv",
    log:
        f"{LOGS}/spectra/spectra.log",
    params:
        grid=config["spectra"],
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/spectra.py"


# `snakemake all_spectra`: every stage up to the corrected spectra and the DFT summary.
rule all_spectra:
    input:
        rules.spectra.output,
    localrule: True
