"""Active learning inside the DAG: two rounds on a slice of the shared oxides, with the replay
engine standing in for DFT (its answers are the database's), then the report's Screening page."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import snakemake

pytestmark = pytest.mark.slow

N_MATERIALS = 14


def _slice(shared_data, dest):
    dest.mkdir()
    rows = (shared_data / "id_prop.csv").read_text().splitlines()[:N_MATERIALS]
    (dest / "id_prop.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        shutil.copy(shared_data / row.split(",", 1)[0], dest / row.split(",", 1)[0])
    return rows


def _visible_mean(row: str) -> float:
    """The database spectrum's mean log10 alpha over 1.6-3.3 eV (grid 0-15 eV, step 0.01 eV), by hand."""
    values = np.array(row.split(",")[1:], dtype=float)
    energy = np.linspace(0.0, 15.0, values.size)
    inside = (energy >= 1.6 - 1e-9) & (energy <= 3.3 + 1e-9)
    return float(np.trapezoid(values[inside], energy[inside]) / (3.3 - 1.6))


def test_two_rounds_of_active_learning_with_the_replay_engine(workflow_dir, shared_data, tmp_path):
    db = tmp_path / "db"
    rows = _slice(shared_data, db)
    config = {
        "source": "files", "structures_dir": str(db),
        "dft": {"engine": "replay", "replay": {"dataset_dir": str(db)}},
        "dataset": {"stability": "none"},
        "model": {"preset": "demo", "epochs": 3, "alignn_layers": 1, "gcn_layers": 1, "hidden_features": 16,
                  "embedding_features": 16, "ensemble": 2},
        "interpret": {"n_clusters": 2, "sweep_k": [2]},
        "screen": {"rounds": 2, "batch": 2, "initial_fraction": 0.5, "acquisition": "ucb", "kappa": 1.0},
    }
    (workflow_dir / "al.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(["--cores", "2", "--configfile", "al.yaml"], cwd=workflow_dir, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-5000:]
    results = workflow_dir / "results"
    kept = pd.read_parquet(results / "structures/kept.parquet")
    candidates = pd.read_parquet(results / "structures/candidates.parquet")
    assert len(kept) == round(0.5 * N_MATERIALS) and len(kept) + len(candidates) == N_MATERIALS

    rounds = json.loads((results / "screen/rounds.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    truth = {}
    from pathlib import Path

    from optabs.structures.files import material_id_from_filename

    for row in rows:
        truth[material_id_from_filename(Path(row.split(",", 1)[0]))] = _visible_mean(row)
    computed = set(kept.material_id)
    previous = pd.read_parquet(results / "dataset/dataset.parquet")
    for r in (1, 2):
        shortlist = pd.read_csv(results / f"screen/round{r - 1}/shortlist.csv", dtype={"material_id": str})
        # round r-1's shortlist is ranked among what was not computed yet, and round r computed it
        assert len(shortlist) == 2 and not set(shortlist.material_id) & computed
        picked = pd.DataFrame(rounds[r]["picked"])
        assert list(picked.material_id) == list(shortlist.material_id)
        for m in shortlist.material_id:
            result = json.loads((results / f"dft/{m}/result.json").read_text())
            assert result["engine"] == "replay"
        # what DFT "found" is the database's own figure of merit
        for p in picked.itertuples():
            if p.outcome == "joined the dataset":
                assert p.computed == pytest.approx(truth[p.material_id], abs=0.01)
        dataset = pd.read_parquet(results / f"screen/round{r}/dataset.parquet")
        joined = set(picked.material_id[picked.outcome == "joined the dataset"])
        assert set(dataset.material_id) == set(previous.material_id) | joined
        assert set(dataset.engine) == {"replay"}
        computed |= set(shortlist.material_id)
        previous = dataset
        # every round keeps round 0's test set
        assert rounds[r]["n_test"] == rounds[0]["n_test"] and rounds[r]["members"] == 2
        assert "calibration" in rounds[r]

    final = pd.read_parquet(results / "screen/ranking.parquet")
    assert set(final["round"]) == {2} and not set(final.material_id) & computed
    assert len(final) == N_MATERIALS - len(computed)
    assert list(final["rank"]) == list(range(1, len(final) + 1))
    assert (final.visible_mean_std >= 0).all() and (final.visible_mean_std > 0).any()
    page = (results / "report/screening.html").read_text()
    assert "Screening" in page and all(m in page for m in final.material_id.head(2))
