"""The whole chain end to end: the test config (.test/config.yaml: GPAW on seven catalog entries)
and a slice of the shared spectra database (no DFT), each opened in a real headless browser."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake
from fakes.browser import check_report, check_screening

pytestmark = pytest.mark.slow
ARTIFACTS = REPO / "test-artifacts"


def check_outputs(results, n_materials, n_clusters):
    metrics = json.loads((results / "model/metrics.json").read_text())
    for model in ("alignn", "mean_spectrum", "composition"):
        assert {"mae_median", "frac_mae_below_0.14", "onset_r2", "onset_mae_ev"} <= set(metrics[model])
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == n_materials
    predictions = pd.read_parquet(results / "model/predictions.parquet")
    assert len(predictions) == n_materials and all(len(v) == 1501 for v in predictions.log10_alpha_pred)
    embeddings = pd.read_parquet(results / "model/embeddings.parquet")
    assert "alignn_0" in set(embeddings.layer) and embeddings.material_id.nunique() == n_materials
    clusters = pd.read_parquet(results / "interpret/clusters.parquet")
    assert len(clusters) == n_materials
    assert clusters.cluster.nunique() == n_clusters and clusters.cluster_spectra.nunique() == n_clusters
    comparison = json.loads((results / "interpret/comparison.json").read_text())
    assert comparison["layer"] == "alignn_0"
    index = results / "report/index.html"
    pages = sorted(p.name for p in (results / "report").glob("cluster_*.html"))
    assert len(pages) == n_clusters
    return index


def test_test_config_runs_the_whole_chain_with_gpaw(workflow_dir, browser):
    # The repository's test config (the Snakemake catalog's .test/ convention), as a user runs it
    proc = snakemake(["--profile", "profiles/local", "--configfile", ".test/config.yaml"], cwd=workflow_dir,
                     timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = workflow_dir / "results"
    summary = pd.read_csv(results / "dft/summary.csv")
    assert (summary.status == "ok").all() and len(summary) == 5
    dataset = pd.read_parquet(results / "dataset/dataset.parquet")
    assert set(dataset.engine) == {"gpaw"}
    index = check_outputs(results, len(dataset), 2)
    html = index.read_text()
    assert "NiO-rocksalt" in html and "Nd2O3-hexagonal" in html  # the filter's rejects are listed
    check_report(browser, index, ARTIFACTS / "demo_report.png")
    # screening: CrO3 passed the filter but is above catalog_max_sites, so it is the one candidate,
    # ranked by the 2-member ensemble (.test/config.yaml) with a spread
    assert json.loads((results / "model/metrics.json").read_text())["ensemble"]["members"] == 2
    ranking = pd.read_parquet(results / "screen/ranking.parquet")
    assert list(ranking.material_id) == ["CrO3-Ama2"] and (ranking.visible_mean_std > 0).all()
    assert check_screening(browser, index, ARTIFACTS / "demo_screening.png") == ["CrO3-Ama2"]


def test_database_slice_without_dft(workflow_dir, shared_data, browser, tmp_path):
    slice_dir = tmp_path / "slice"
    slice_dir.mkdir()
    rows = (shared_data / "id_prop.csv").read_text().splitlines()[:60]
    (slice_dir / "id_prop.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        name = row.split(",", 1)[0]
        shutil.copy(shared_data / name, slice_dir / name)
    (workflow_dir / "slice.yaml").write_text(
        yaml.safe_dump({"source": "dataset", "dataset_dir": str(slice_dir), "model": {"preset": "demo", "epochs": 3},
                        "interpret": {"n_clusters": 6}})
    )
    proc = snakemake(["--cores", "2", "--configfile", "slice.yaml"], cwd=workflow_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = workflow_dir / "results"
    index = check_outputs(results, 60, 6)
    hrefs = check_report(browser, index, ARTIFACTS / "database_slice_report.png")
    assert len(hrefs) == 6
    # names with parentheses became safe ids; the original names are kept
    dataset = pd.read_parquet(results / "dataset/dataset.parquet")
    assert "POSCAR_Ba3Si2(B3O8)2_mp-1019526.vasp" in set(dataset.source_name)
    assert "mp-1019526" in set(dataset.material_id)

    # predict: new structures (three of the slice's POSCARs) -> the dataset's formats
    new = tmp_path / "new"
    new.mkdir()
    for row in rows[:3]:
        shutil.copy(slice_dir / row.split(",", 1)[0], new)
    proc = snakemake(
        ["predict", "--cores", "1", "--configfile", "slice.yaml", "--config", f"predict={{structures_dir: {new}}}"],
        cwd=workflow_dir, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    predicted = pd.read_parquet(results / "predict/predictions.parquet")
    assert len(predicted) == 3 and all(len(v) == 1501 for v in predicted.log10_alpha)
    lines = (results / "predict/alignn/id_prop.csv").read_text().splitlines()
    assert len(lines) == 3 and all(len(line.split(",")) == 1502 for line in lines)

    # the same through the command line
    from optabs.cli import main

    # the rule predicts with the whole ensemble (3 members in config.yaml): so does the command, given all three
    members = [str(results / "model/checkpoint.pt")] + sorted(map(str, results.glob("model/members/*/checkpoint.pt")))
    assert len(members) == 3
    assert main(["predict", "--checkpoint", *members, "--structures", str(new), "--out", str(tmp_path / "cli")]) == 0
    cli = pd.read_parquet(tmp_path / "cli/predictions.parquet")
    assert cli.material_id.tolist() == predicted.material_id.tolist()
    assert all(a == pytest.approx(b) for a, b in zip(cli.log10_alpha, predicted.log10_alpha))
