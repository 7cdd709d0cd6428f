# Stage `report`: the static HTML report (results/report/index.html) with every earlier stage's
# failures listed. `snakemake --report report.zip` embeds this site (category Report) beside the
# model figures, under the description in report/workflow.rst.


rule report:
    input:
        unpack(report_inputs),
    output:
        report(directory(f"{RESULTS}/report"), htmlindex="index.html", caption="../report/site.rst", category="Report"),
    log:
        f"{LOGS}/report/report.log",
    params:
        grid=config["spectra"],
        title=config["report"]["title"],
        motif_q_max=config["interpret"]["motif_q_max"],
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
