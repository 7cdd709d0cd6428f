# Stage `model`: graphs (cached between runs), ALIGNN training (GPU partition on SLURM),
# evaluation against the baselines, layer embeddings.


rule model_graphs:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
    output:
        manifest=f"{RESULTS}/model/graphs.json",
        failures=f"{RESULTS}/model/failures.csv",
    log:
        f"{LOGS}/model/graphs.log",
    params:
        model=config["model"],
        cache=GRAPH_CACHE,
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_graphs.py"


# Training also writes results/model/resume.pt every epoch (optabs.model.resume). It is not an
# output on purpose: Snakemake deletes the outputs of a killed job, never this file, so the job's
# retry or the next run continues after the last finished epoch.
rule model_train:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
        manifest=f"{RESULTS}/model/graphs.json",
    output:
        checkpoint=f"{RESULTS}/model/checkpoint.pt",
        history=f"{RESULTS}/model/history.csv",
    log:
        f"{LOGS}/model/train.log",
    benchmark:
        f"{BENCHMARKS}/model/train.tsv"
    params:
        model=config["model"],
        cache=GRAPH_CACHE,
        grid=config["spectra"],
        outdir=lambda wildcards, output: os.path.dirname(output.checkpoint),
    # Both cores of a laptop (Snakemake caps this at --cores and runs nothing else on them, so
    # the two torch threads never share a core with another job); model.threads sets it.
    threads: config["model"].get("threads", 2)
    resources:
        **slurm_resources("gpu"),
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_train.py"


rule model_evaluate:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
        manifest=f"{RESULTS}/model/graphs.json",
        checkpoint=f"{RESULTS}/model/checkpoint.pt",
    output:
        predictions=f"{RESULTS}/model/predictions.parquet",
        metrics=f"{RESULTS}/model/metrics.json",
        per_material=f"{RESULTS}/model/per_material.parquet",
        parity=report(f"{RESULTS}/model/onset_parity.png", caption="../report/onset_parity.rst", category="Model"),
        worst=report(f"{RESULTS}/model/worst_by_quartile.png", caption="../report/worst_by_quartile.rst", category="Model"),
    log:
        f"{LOGS}/model/evaluate.log",
    params:
        cache=GRAPH_CACHE,
        grid=config["spectra"],
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_evaluate.py"


rule model_embeddings:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
        manifest=f"{RESULTS}/model/graphs.json",
        checkpoint=f"{RESULTS}/model/checkpoint.pt",
    output:
        f"{RESULTS}/model/embeddings.parquet",
    log:
        f"{LOGS}/model/embeddings.log",
    params:
        cache=GRAPH_CACHE,
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_embeddings.py"


rule predict:
    input:
        checkpoint=f"{RESULTS}/model/checkpoint.pt",
        structures=config["predict"]["structures_dir"] or "predict_structures_dir_not_set",
    output:
        alignn=directory(f"{RESULTS}/predict/alignn"),
        table=f"{RESULTS}/predict/predictions.parquet",
    log:
        f"{LOGS}/predict/predict.log",
    resources:
        **slurm_resources("cpu"),
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/predict.py"


# `snakemake all_model`: every stage up to the model (the dataset's export included), then graphs,
# the trained model, its evaluation and embeddings; no interpret, no report, no predict.
rule all_model:
    input:
        rules.all_dataset.input,
        rules.model_graphs.output,
        rules.model_train.output,
        rules.model_evaluate.output,
        rules.model_embeddings.output,
    localrule: True
