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
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
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
        model=MODEL_TRAINING,
        member=0,
        cache=GRAPH_CACHE,
        grid=config["spectra"],
        outdir=lambda wildcards, output: os.path.dirname(output.checkpoint),
    # torch gets the threads Snakemake grants: 4 on a cluster node, capped at --cores locally (the
    # 2 of a laptop, on which nothing else then runs beside training).
    threads: 4
    resources:
        runtime=lambda wildcards, attempt: 720 * attempt,
        mem_mb=lambda wildcards, attempt: 32000 * attempt,
        gpu=1,  # the SLURM executor asks for --gpus=1 and picks the GPU partition; a local run ignores it
    # A retry (timeout, out of memory, preemption) resumes from resume.pt with more time and memory.
    retries: 2
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_train.py"


# Members 1..N-1 of an ensemble (model.ensemble: N; member 0 is model_train's checkpoint): the same
# split, other initial weights and batch order. Each is its own job, so on SLURM they train side by
# side, one GPU each.
use rule model_train as model_train_member with:
    output:
        checkpoint=f"{RESULTS}/model/members/{{member}}/checkpoint.pt",
        history=f"{RESULTS}/model/members/{{member}}/history.csv",
    log:
        f"{LOGS}/model/train_member{{member}}.log",
    benchmark:
        f"{BENCHMARKS}/model/train_member{{member}}.tsv"
    params:
        model=MODEL_TRAINING,
        member=lambda wildcards: int(wildcards.member),
        cache=GRAPH_CACHE,
        grid=config["spectra"],
        outdir=lambda wildcards, output: os.path.dirname(output.checkpoint),


rule model_evaluate:
    input:
        dataset=f"{RESULTS}/dataset/dataset.parquet",
        manifest=f"{RESULTS}/model/graphs.json",
        checkpoints=model_checkpoints(),
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
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
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
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/model_embeddings.py"


rule predict:
    input:
        checkpoints=model_checkpoints(),
        structures=config["predict"]["structures_dir"] or "predict_structures_dir_not_set",
    output:
        alignn=directory(f"{RESULTS}/predict/alignn"),
        table=f"{RESULTS}/predict/predictions.parquet",
    log:
        f"{LOGS}/predict/predict.log",
    threads: 1
    resources:
        runtime=30,
        mem_mb=2000,
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
        model_checkpoints(),
        rules.model_evaluate.output,
        rules.model_embeddings.output,
    localrule: True
