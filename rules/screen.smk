# Stage `screen`: rank the filtered-but-not-computed candidates with the ensemble's uncertainty
# and, with screen.rounds > 0, active learning: round r's shortlist is the DFT work of round r+1
# (the configured engine, locally or on SLURM), which joins the dataset before the ensemble
# retrains. Round 0 is the workflow's own model; results/screen/ holds the last round's ranking.
SCREEN_GRAPH_CACHE = f"{RESULTS}/screen/graph_cache.pt"
SCREEN_ROUND = f"{RESULTS}/screen/round{{round}}"


rule screen_graphs:
    input:
        candidates=screen_candidate_tables(),
        model_graphs=f"{RESULTS}/model/graphs.json",
    output:
        manifest=f"{RESULTS}/screen/graphs.json",
        skipped=f"{RESULTS}/screen/skipped.csv",
    log:
        f"{LOGS}/screen/graphs.log",
    params:
        model=MODEL_TRAINING,
        cache=SCREEN_GRAPH_CACHE,
        candidates_dir=config["screen"]["candidates_dir"],
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/screen_graphs.py"


checkpoint screen_round:
    input:
        checkpoints=lambda wc: round_checkpoints(int(wc.round)),
        dataset=lambda wc: round_dataset(int(wc.round)),
        model_graphs=f"{RESULTS}/model/graphs.json",
        candidates=f"{RESULTS}/screen/graphs.json",
        computed=lambda wc: computed_tables(int(wc.round)),
    output:
        ranking=f"{SCREEN_ROUND}/ranking.parquet",
        shortlist=f"{SCREEN_ROUND}/shortlist.csv",
        metrics=f"{SCREEN_ROUND}/metrics.json",
        merit=report(
            f"{SCREEN_ROUND}/merit_sigma.png",
            caption="../report/screen_merit.rst",
            category="Screening",
            subcategory="round {round}",
        ),
        spectra=report(
            f"{SCREEN_ROUND}/shortlist_spectra.png",
            caption="../report/screen_spectra.rst",
            category="Screening",
            subcategory="round {round}",
        ),
    log:
        f"{LOGS}/screen/round{{round}}.log",
    params:
        caches=[GRAPH_CACHE, SCREEN_GRAPH_CACHE],
        screen=config["screen"],
        interpret=config["interpret"],
        grid=config["spectra"],
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/screen_round.py"


# Round r >= 1: every DFT result so far (kept materials and earlier shortlists), curated as the
# dataset stage curates, and what round r-1's picks turned out to be.
rule screen_dataset:
    input:
        results=round_results,
        tables=screen_structure_tables(),
        shortlist=lambda wc: f"{RESULTS}/screen/round{int(wc.round) - 1}/shortlist.csv",
    output:
        dataset=f"{SCREEN_ROUND}/dataset.parquet",
        picked=f"{SCREEN_ROUND}/picked.csv",
    log:
        f"{LOGS}/screen/dataset_round{{round}}.log",
    params:
        curation=config["dataset"],
        screen=config["screen"],
        grid=config["spectra"],
        round=lambda wc: int(wc.round),
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    wildcard_constraints:
        round="[1-9][0-9]*",
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/screen_dataset.py"


# One member of round r's ensemble (r >= 1), trained on round r's dataset with round 0's split.
rule screen_train:
    input:
        dataset=f"{SCREEN_ROUND}/dataset.parquet",
        base=f"{RESULTS}/model/checkpoint.pt",
        model_graphs=f"{RESULTS}/model/graphs.json",
        candidates=f"{RESULTS}/screen/graphs.json",
    output:
        checkpoint=f"{SCREEN_ROUND}/members/{{k}}/checkpoint.pt",
        history=f"{SCREEN_ROUND}/members/{{k}}/history.csv",
    log:
        f"{LOGS}/screen/train_round{{round}}_member{{k}}.log",
    params:
        model=MODEL_TRAINING,
        member=lambda wc: int(wc.k),
        caches=[GRAPH_CACHE, SCREEN_GRAPH_CACHE],
        grid=config["spectra"],
        outdir=lambda wildcards, output: os.path.dirname(output.checkpoint),
    threads: 4
    resources:
        runtime=lambda wildcards, attempt: 720 * attempt,
        mem_mb=lambda wildcards, attempt: 32000 * attempt,
        gpu=1,
    retries: 2
    wildcard_constraints:
        round="[1-9][0-9]*",
        k="[0-9]+",
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/screen_train.py"


rule screen:
    input:
        rounds=expand(f"{RESULTS}/screen/round{{round}}/metrics.json", round=range(SCREEN_ROUNDS + 1)),
        picked=expand(f"{RESULTS}/screen/round{{round}}/picked.csv", round=range(1, SCREEN_ROUNDS + 1)),
    output:
        ranking=f"{RESULTS}/screen/ranking.parquet",
        shortlist=f"{RESULTS}/screen/shortlist.csv",
        rounds=f"{RESULTS}/screen/rounds.json",
        figure=report(f"{RESULTS}/screen/rounds.png", caption="../report/screen_rounds.rst", category="Screening"),
    log:
        f"{LOGS}/screen/screen.log",
    params:
        round_dirs=[f"{RESULTS}/screen/round{r}" for r in range(SCREEN_ROUNDS + 1)],
    threads: 1
    resources:
        runtime=10,
        mem_mb=2000,
    conda:
        "../envs/ml.yaml"
    script:
        "../scripts/screen.py"


# `snakemake all_screen`: the ranking of the candidates (and every active-learning round).
rule all_screen:
    input:
        rules.screen.output,
    localrule: True
