# Stage `report`: the static HTML report (results/report/index.html) with every earlier stage's
# failures listed. `snakemake --report` additionally bundles the model figures.


rule report:
    input:
        unpack(report_inputs),
    output:
        directory(f"{RESULTS}/report"),
    log:
        f"{LOGS}/report/report.log",
    params:
        grid=config["spectra"],
        title=config["report"]["title"],
        motif_q_max=config["interpret"]["motif_q_max"],
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
