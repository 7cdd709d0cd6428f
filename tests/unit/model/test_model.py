"""The model stage: graphs and their cache, split, ALIGNN training/prediction, baselines, metrics,
embeddings. Tiny tests use ten real small structures with synthetic spectra on a 51-point grid."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from optabs import cli
from optabs.dataset import DATASET_COLUMNS, import_alignn, spectra_matrix, write_dataset
from optabs.errors import ConfigError, InputError
from optabs.grid import Grid
from optabs.model import graphs as G
from optabs.model.baselines import composition_baseline, mean_spectrum_baseline
from optabs.model.checkpoint import load_checkpoint, load_model, stored_grid
from optabs.model.embeddings import embeddings
from optabs.model.graphs import build_graphs, cached_graphs, load_graphs, structures_of
from optabs.model.metrics import evaluate, spectrum_metrics
from optabs.model.network import ATOM_INPUT_FEATURES
from optabs.model.predict import predict
from optabs.model.settings import ModelSettings
from optabs.model.split import split_ids
from optabs.model.stage import graphs_stage
from optabs.model.train import train
from optabs.spectra import onset_energies

GRID = Grid(n_points=51)


def onsets(grid: Grid, spectra: np.ndarray) -> np.ndarray:
    """Onset energies (eV) of log10 alpha spectra on ``grid`` (NaN where never above its threshold)."""
    return onset_energies(grid.energy_ev, np.atleast_2d(spectra), grid.onset_threshold)


def rocksalt(a: str, b: str, lattice_a: float) -> Structure:
    conventional = Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice_a), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return conventional.get_primitive_structure()


def zincblende(a: str, b: str, lattice_a: float) -> Structure:
    conventional = Structure.from_spacegroup("F-43m", Lattice.cubic(lattice_a), [a, b], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return conventional.get_primitive_structure()


def wurtzite(a: str, b: str, lat_a: float, lat_c: float) -> Structure:
    return Structure.from_spacegroup(
        "P6_3mc", Lattice.hexagonal(lat_a, lat_c), [a, b], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]
    )


def rutile(a: str, lat_a: float, lat_c: float, u: float = 0.306) -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(lat_a, lat_c), [a, "O"], [[0, 0, 0], [u, u, 0]])


# (id, structure, onset eV of the synthetic spectrum: roughly the material's gap)
MATERIALS = [
    ("mgo", rocksalt("Mg", "O", 4.21), 7.8),
    ("cao", rocksalt("Ca", "O", 4.81), 7.0),
    ("sro", rocksalt("Sr", "O", 5.16), 5.9),
    ("bas", rocksalt("Ba", "S", 6.39), 3.9),
    ("mgs", rocksalt("Mg", "S", 5.20), 4.8),
    ("zns", zincblende("Zn", "S", 5.41), 3.7),
    ("cdse", zincblende("Cd", "Se", 6.05), 1.7),
    ("zno", wurtzite("Zn", "O", 3.25, 5.21), 3.4),
    ("sno2", rutile("Sn", 4.74, 3.19), 3.6),
    ("tio2", rutile("Ti", 4.59, 2.96, 0.305), 3.0),
]


def synthetic_spectrum(onset_ev: float, grid: Grid = GRID) -> np.ndarray:
    """The floor (2) below the onset, then a rising edge to ~5.5 (log10 alpha)."""
    e = grid.energy_ev
    return np.where(e < onset_ev, grid.log10_alpha_floor, 4.0 + 1.5 * (1 - np.exp(-(e - onset_ev) / 2.0)))


def make_dataset(materials=MATERIALS, grid: Grid = GRID) -> pd.DataFrame:
    rows = []
    for mid, s, onset in materials:
        spectrum = synthetic_spectrum(onset, grid)
        rows.append(
            {
                "material_id": mid,
                "source_name": mid,
                "formula": s.composition.reduced_formula,
                "structure": s.to_json(),
                "log10_alpha": list(map(float, spectrum)),
                "onset_ev": float(onsets(grid, spectrum)[0]),
                "dft_gap_ev": onset,
                "corrected_gap_ev": onset,
                "e_above_hull_ev": 0.0,
                "stability": "stable",
                "stability_policy": "local",
                "mp_database_version": "",
                "engine": "imported",
            }
        )
    return pd.DataFrame(rows)[DATASET_COLUMNS]


def tiny_settings(**overrides) -> ModelSettings:
    base = dict(alignn_layers=1, gcn_layers=1, hidden_features=16, embedding_features=16, epochs=6,
                batch_size=3, learning_rate=3e-3, threads=1, device="cpu", max_train_minutes=None)
    return ModelSettings.preset("demo", **{**base, **overrides})


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    return make_dataset()


@pytest.fixture(scope="module")
def graphs(dataset):
    built, failures = build_graphs(structures_of(dataset), tiny_settings())
    assert failures == []
    return built


@pytest.fixture(scope="module")
def trained(dataset, graphs, tmp_path_factory):
    return train(dataset, graphs, tiny_settings(), tmp_path_factory.mktemp("train"))


# ---------------------------------------------------------------- settings


def test_presets_follow_the_study_and_unknown_keys_are_named():
    paper = ModelSettings.preset("paper")
    assert (paper.alignn_layers, paper.gcn_layers, paper.hidden_features, paper.embedding_features) == (4, 4, 64, 64)
    assert (paper.edge_input_features, paper.triplet_input_features) == (80, 40)
    assert (paper.cutoff, paper.three_body_cutoff, paper.max_neighbors) == (10.0, 10.0, 10)
    assert (paper.epochs, paper.batch_size, paper.learning_rate, paper.weight_decay) == (500, 4, 1e-3, 1e-5)
    assert (paper.scheduler, paper.seed) == ("onecycle", 123)
    assert (paper.train_fraction, paper.val_fraction, paper.test_fraction) == (0.8, 0.1, 0.1)
    cpu = ModelSettings.preset("cpu")
    assert cpu.graph_key() == paper.graph_key()  # same graphs: one cache serves both
    assert (cpu.alignn_layers, cpu.gcn_layers, cpu.hidden_features) == (4, 4, 64)
    assert cpu.epochs < paper.epochs
    assert ModelSettings.preset("demo", epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="'epoch'"):
        ModelSettings.preset("cpu", epoch=3)
    with pytest.raises(ConfigError, match="'gpu'"):
        ModelSettings.preset("gpu")
    with pytest.raises(ConfigError, match="three_body_cutoff"):
        ModelSettings(three_body_cutoff=12.0)
    with pytest.raises(ConfigError, match="val_fraction"):
        ModelSettings(val_fraction=0.3)
    assert ModelSettings.from_config("model", {"preset": "demo", "seed": 7}).seed == 7


# ---------------------------------------------------------------- graphs and their cache


def test_graphs_keep_whole_neighbour_shells_and_cgcnn_features(graphs):
    g, lg = graphs["mgo"]
    assert g.ndata["atom_features"].shape == (2, ATOM_INPUT_FEATURES)
    # The 10th neighbour of Mg and of O lies in the shell of 12 at a/sqrt(2): all 6 + 12 are kept.
    assert torch.bincount(g.src).tolist() == [18, 18]
    assert torch.bincount(g.dst).tolist() == [18, 18]
    lengths = sorted(round(float(x), 3) for x in g.edata["r"][g.src == 0].norm(dim=1))
    assert lengths == [2.105] * 6 + [2.977] * 12
    assert lg.num_nodes == g.num_edges


def disordered() -> Structure:
    """A rock salt with a half-Mg, half-Ca site: no crystal graph (one element per site needed)."""
    return Structure(Lattice.cubic(4.5), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_structure_that_fails_is_named_and_the_rest_go_on(workers, monkeypatch):
    monkeypatch.setattr(G, "MIN_PARALLEL", 1)  # workers=2 goes through the process pool
    structures = {"mgo": MATERIALS[0][1], "mixed": disordered(), **{mid: s for mid, s, _ in MATERIALS[1:4]}}
    built, failures = build_graphs(structures, tiny_settings(), workers=workers)
    assert list(built) == ["mgo", "cao", "sro", "bas"]
    assert [f[0] for f in failures] == ["mixed"]
    assert "disordered" in failures[0][1]


def test_graph_cache_is_reused_and_rebuilt_when_settings_or_structures_change(tmp_path, monkeypatch):
    calls = []
    real = G._build_one

    def counting(structure, settings):
        calls.append(structure.composition.reduced_formula)
        return real(structure, settings)

    monkeypatch.setattr(G, "_build_one", counting)
    structures = {mid: s for mid, s, _ in MATERIALS[:4]}
    path = tmp_path / "graphs.pt"
    settings = tiny_settings()
    first, _ = cached_graphs(structures, path, settings)
    assert len(calls) == 4
    calls.clear()
    second, _ = cached_graphs(structures, path, settings)
    assert calls == []  # all four reused
    for mid in structures:
        assert torch.equal(first[mid][0].src, second[mid][0].src)
        assert torch.equal(first[mid][1].edata["h"], second[mid][1].edata["h"])
    # Only a changed structure is rebuilt.
    strained = structures["mgo"].copy()
    strained.scale_lattice(strained.volume * 1.1)
    cached_graphs({**structures, "mgo": strained}, path, settings)
    assert calls == ["MgO"]
    calls.clear()
    # Other graph settings: the cache is stale, everything is rebuilt.
    fewer = tiny_settings(max_neighbors=6)
    assert load_graphs(path, fewer) is None
    rebuilt, _ = cached_graphs(structures, path, fewer)
    assert len(calls) == 4
    assert rebuilt["mgo"][0].num_edges == 2 * 6
    assert load_graphs(path, fewer)["mgo"][0].num_edges == 2 * 6


def test_a_corrupt_graph_cache_is_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "graphs.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="graphs.pt"):
        load_graphs(path, tiny_settings())
    with pytest.raises(InputError, match="graphs.pt"):
        cached_graphs({"mgo": MATERIALS[0][1]}, path, tiny_settings())


def test_graphs_stage_writes_a_failure_record_per_structure_without_a_graph(tmp_path):
    paths = {name: tmp_path / name for name in ("dataset.parquet", "cache.pt", "graphs.json", "failures.csv")}
    write_dataset(paths["dataset.parquet"], make_dataset(MATERIALS[:2] + [("mixed", disordered(), 3.0)]))
    graphs_stage(paths["dataset.parquet"], tiny_settings(), paths["cache.pt"], paths["graphs.json"], paths["failures.csv"])
    failures = pd.read_csv(paths["failures.csv"], keep_default_na=False)
    assert failures.columns.tolist() == ["material_id", "stage", "reason", "detail"]
    assert failures[["material_id", "stage"]].values.tolist() == [["mixed", "model (graph)"]]
    manifest = json.loads(paths["graphs.json"].read_text())
    assert manifest["failures"] == [{"material_id": "mixed", "reason": failures.reason[0]}]
    write_dataset(paths["dataset.parquet"], make_dataset(MATERIALS[:2]))
    graphs_stage(paths["dataset.parquet"], tiny_settings(), paths["cache.pt"], paths["graphs.json"], paths["failures.csv"])
    assert paths["failures.csv"].read_text().strip() == "material_id,stage,reason,detail"  # header only


# ---------------------------------------------------------------- split


def test_split_is_seeded_order_independent_and_never_leaves_val_or_test_empty():
    ids = [f"mp-{i}" for i in range(50)]
    settings = ModelSettings()
    split = split_ids(ids, settings)
    assert split_ids(list(reversed(ids)), settings) == split
    assert split_ids(ids, settings) == split
    assert sorted(split.values()).count("val") == 5 and sorted(split.values()).count("test") == 5
    assert split_ids(ids, ModelSettings(seed=1)) != split
    small = split_ids(["a", "b", "c"], settings)
    assert sorted(small.values()) == ["test", "train", "val"]
    # The study's sizes: 2,681 materials -> 268 validation, 268 test.
    big = split_ids([str(i) for i in range(2681)], settings)
    assert list(big.values()).count("val") == 268 and list(big.values()).count("test") == 268


# ---------------------------------------------------------------- training and prediction


def test_training_lowers_the_loss_and_writes_checkpoint_and_history(trained):
    h = trained.history
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "seconds", "graphs_per_s"]
    assert len(h) == 6
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]
    assert trained.checkpoint.is_file()
    assert pd.read_csv(trained.checkpoint.parent / "history.csv").shape == (6, 5)
    assert trained.best_epoch == int(h.val_loss.idxmin()) + 1
    assert sorted(trained.split.values()).count("train") == 8


def test_reloaded_checkpoint_predicts_identically(trained, graphs):
    ids = sorted(graphs)
    before = predict(trained.model, graphs, ids, batch_size=4)
    assert before.shape == (len(ids), GRID.n_points)
    model, settings, split = load_model(trained.checkpoint)
    after = predict(model, graphs, ids, batch_size=4)
    assert np.max(np.abs(after - before)) == 0.0
    assert split == trained.split
    assert settings == tiny_settings()


def test_same_seed_gives_identical_weights_and_predictions(dataset, graphs, tmp_path):
    settings = tiny_settings(epochs=2)
    a = train(dataset, graphs, settings, tmp_path / "a")
    b = train(dataset, graphs, settings, tmp_path / "b")
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    ids = sorted(graphs)
    assert np.array_equal(predict(a.model, graphs, ids), predict(b.model, graphs, ids))


def test_a_corrupt_checkpoint_is_an_input_error_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="checkpoint.pt"):
        load_model(path)


def test_checkpoint_stores_its_grid_and_predict_needs_no_grid_options(dataset, graphs, trained, tmp_path, capsys,
                                                                       restore_logging):
    grid = Grid(e_min_ev=0.5, e_max_ev=10.0, n_points=GRID.n_points, onset_threshold=3.0)  # not the default grid
    result = train(dataset, graphs, tiny_settings(epochs=1), tmp_path / "model", grid=grid)
    payload = load_checkpoint(result.checkpoint)
    assert payload["grid"] == grid.to_dict() and payload["n_grid"] == grid.n_points
    assert stored_grid(payload) == grid
    folder = tmp_path / "cifs"
    folder.mkdir()
    for mid, structure, _ in MATERIALS[:3]:
        structure.to(filename=str(folder / f"{mid}.cif"))
    out = tmp_path / "predicted"
    args = ["predict", "--checkpoint", str(result.checkpoint), "--structures", str(folder), "--out", str(out)]
    assert cli.main(args) == 0
    table = pd.read_parquet(out / "predictions.parquet")
    assert sorted(table.material_id) == ["cao", "mgo", "sro"]
    spectra = np.stack(table.log10_alpha.to_numpy())
    assert spectra.shape == (3, grid.n_points) and spectra.min() >= grid.log10_alpha_floor
    expected = onset_energies(grid.energy_ev, spectra, grid.onset_threshold)
    assert np.array_equal(table.onset_ev.to_numpy(), expected, equal_nan=True)
    assert table.onset_ev.notna().any() and np.all(np.isin(table.onset_ev.dropna(), grid.energy_ev))
    # A checkpoint trained without a grid (as older ones) is an error naming the file.
    assert stored_grid(load_checkpoint(trained.checkpoint)) is None
    capsys.readouterr()
    args[2] = str(trained.checkpoint)
    assert cli.main(args) == 2
    assert str(trained.checkpoint) in capsys.readouterr().err


def test_predict_reduces_every_cell_to_the_primitive_and_refuses_a_disordered_file_by_name(
        dataset, graphs, tmp_path, capsys, restore_logging):
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    trained = train(dataset, graphs, tiny_settings(epochs=1), tmp_path / "model", grid=GRID)

    mgo = MATERIALS[0][1]
    conventional = SpacegroupAnalyzer(mgo).get_conventional_standard_structure()
    assert len(conventional) == 8
    folder = tmp_path / "cifs"
    folder.mkdir()
    mgo.to(filename=str(folder / "mgo_primitive.cif"))
    conventional.to(filename=str(folder / "mgo_conventional.cif"))
    (mgo * (2, 1, 1)).to(filename=str(folder / "mgo_supercell.cif"))
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.5), [{"Mg": 0.5, "Ca": 0.5}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "MgCaO2_mixed.cif")
    )
    out = tmp_path / "predicted"
    args = ["predict", "--checkpoint", str(trained.checkpoint), "--structures", str(folder), "--out", str(out)]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "MgCaO2_mixed.cif (disordered)" in err and "Mg:0.5" in err and "Ca:0.5" in err
    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.file) == ["MgCaO2_mixed.cif"] and list(skipped.reason) == ["disordered"]
    table = pd.read_parquet(out / "predictions.parquet").set_index("material_id")
    assert sorted(table.index) == ["mgo_conventional", "mgo_primitive", "mgo_supercell"]
    # every cell was reduced to the same 2-atom primitive cell and gets the same spectrum
    assert {len(Structure.from_str(s, fmt="json")) for s in table.structure} == {2}
    spectra = np.stack(table.log10_alpha.to_numpy())
    np.testing.assert_allclose(spectra, np.broadcast_to(spectra[0], spectra.shape), atol=1e-5, rtol=0)
    assert spectra.min() >= GRID.log10_alpha_floor


def test_evaluate_clips_every_prediction_at_the_floor_and_says_so(dataset, trained):
    Y = spectra_matrix(dataset)
    below = np.where(Y <= GRID.log10_alpha_floor, GRID.log10_alpha_floor - 1.5, Y)  # exact above the floor, 1.5 under it below
    clipped = evaluate(dataset, trained.split, below, GRID.energy_ev, GRID.onset_threshold, floor=GRID.log10_alpha_floor)
    raw = evaluate(dataset, trained.split, below, GRID.energy_ev, GRID.onset_threshold)
    # clipped at the floor the prediction equals the truth; unclipped it is off by 1.5 below the edge
    assert clipped.metrics["alignn"]["mae_mean"] == 0.0
    test_rows = [i for i, m in enumerate(dataset.material_id) if trained.split.get(m) == "test"]
    expected_raw = np.mean(np.abs(below[test_rows] - Y[test_rows]))
    assert raw.metrics["alignn"]["mae_mean"] == pytest.approx(expected_raw) and expected_raw > 0.3
    assert clipped.metrics["floor"] == {
        "log10_alpha_floor": GRID.log10_alpha_floor, "predictions_clipped": True,
        "applies_to": ["alignn", "mean_spectrum", "composition"],
        "rule": "every prediction is clipped below at the floor of the target spectra, in evaluate and in predict",
    }
    assert raw.metrics["floor"]["predictions_clipped"] is False


# ---------------------------------------------------------------- metrics and baselines


def test_spectrum_metrics_against_hand_computed_values():
    energy = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y_true = np.array(
        [
            [2.0, 2.0, 3.0, 4.0, 5.0],  # onset 2 eV (first value > 2.5)
            [2.0, 2.0, 2.0, 2.0, 2.0],  # never above 2.5: onset undefined
            [2.0, 2.0, 2.0, 3.0, 4.0],  # onset 3 eV
        ]
    )
    y_pred = np.array(
        [
            [2.0, 3.0, 3.0, 4.0, 5.0],  # |diff| = [0,1,0,0,0]: MAE 0.2; onset 1 eV (error 1)
            [2.1, 2.1, 2.1, 2.1, 2.1],  # MAE 0.1; true onset undefined -> left out of onset metrics
            [2.0, 2.0, 2.0, 3.0, 4.0],  # MAE 0; onset 3 eV (error 0)
        ]
    )
    m = spectrum_metrics(y_true, y_pred, energy, threshold=2.5)
    # MAEs [0.2, 0.1, 0.0]: mean 0.1, median 0.1, quartiles (linear) 0.05 and 0.15; 2 of 3 < 0.14.
    assert m["mae_mean"] == pytest.approx(0.1)
    assert m["mae_median"] == pytest.approx(0.1)
    assert m["mae_q25"] == pytest.approx(0.05)
    assert m["mae_q75"] == pytest.approx(0.15)
    assert m["frac_mae_below_0.14"] == pytest.approx(2 / 3)
    # Onsets used: true [2, 3], predicted [1, 3]: MAE (1 + 0) / 2 = 0.5;
    # R^2 = 1 - SS_res / SS_tot = 1 - (1^2 + 0^2) / ((2 - 2.5)^2 + (3 - 2.5)^2) = 1 - 1 / 0.5 = -1.
    assert m["onset_mae_ev"] == pytest.approx(0.5)
    assert m["onset_r2"] == pytest.approx(-1.0)
    assert (m["n_materials"], m["n_onset"], m["n_onset_undefined"]) == (3, 2, 1)


def test_mean_baseline_predicts_the_training_mean():
    train_Y = np.array([[2.0, 3.0, 4.0], [4.0, 5.0, 6.0]])
    pred = mean_spectrum_baseline(train_Y).predict(["MgO", "ZnO", "CdSe"])
    assert np.array_equal(pred, np.tile([3.0, 4.0, 5.0], (3, 1)))


def test_composition_baseline_fits_and_predicts_the_grid(dataset):
    Y = spectra_matrix(dataset)
    baseline = composition_baseline(list(dataset.formula), Y)
    pred = baseline.predict(["MgO", "CdSe", "BaO"])  # BaO is not among the training formulas
    assert pred.shape == (3, GRID.n_points) and np.all(np.isfinite(pred))
    # It learns something from composition: MgO's predicted onset lies above CdSe's.
    on = onsets(GRID, pred)
    assert on[0] > on[1]


def test_evaluate_scores_all_three_models_on_the_test_split(dataset, graphs, trained):
    P = predict(trained.model, graphs, list(dataset.material_id))
    ev = evaluate(dataset, trained.split, P, GRID.energy_ev, GRID.onset_threshold)
    assert (ev.metrics["n_train"], ev.metrics["n_val"], ev.metrics["n_test"]) == (8, 1, 1)
    keys = {"n_materials", "mae_mean", "mae_q25", "mae_median", "mae_q75", "frac_mae_below_0.14",
            "onset_r2", "onset_mae_ev", "n_onset", "n_onset_undefined"}
    for name in ("alignn", "mean_spectrum", "composition"):
        assert set(ev.metrics[name]) == keys
        assert ev.metrics[name]["n_materials"] == 1
    assert len(ev.per_material) == len(dataset)
    assert {"material_id", "split", "mae_alignn", "mae_mean_spectrum", "mae_composition"} <= set(ev.per_material.columns)


# ---------------------------------------------------------------- embeddings


def test_embeddings_one_row_per_material_and_layer_batched_equals_one_by_one(graphs, trained):
    ids = sorted(graphs)
    batched = embeddings(trained.model, graphs, ids, batch_size=4)
    single = embeddings(trained.model, graphs, ids, batch_size=1)
    layers = ["alignn_0", "gcn_0", "readout"]
    assert len(batched) == len(ids) * len(layers)
    assert list(batched.layer[:3]) == layers
    assert set(batched.groupby("material_id").size()) == {3}
    vectors = np.stack(batched.vector.to_numpy())
    assert vectors.shape == (len(ids) * 3, 16)
    assert np.max(np.abs(vectors - np.stack(single.vector.to_numpy()))) < 1e-5
    # Readout is the mean over atoms of the last layer's features (alignn pools by the mean).
    by = batched.set_index(["material_id", "layer"]).vector
    assert np.allclose(by[("zno", "readout")], by[("zno", "gcn_0")], atol=1e-6)


# ---------------------------------------------------------------- on the shared oxides


@pytest.mark.shared_data
def test_shared_oxides_import_graphs_train_and_metrics(shared_data, tmp_path):
    grid = Grid()
    dataset = import_alignn(shared_data, grid).dataset.iloc[:60].reset_index(drop=True)
    settings = ModelSettings.preset("cpu", epochs=1, batch_size=8, max_train_minutes=None)
    graphs, failures = cached_graphs(structures_of(dataset), tmp_path / "graphs.pt", settings)
    assert failures == [] and len(graphs) == 60
    result = train(dataset, graphs, settings, tmp_path / "model")
    assert math.isfinite(result.history.train_loss.iloc[0])
    P = predict(result.model, graphs, list(dataset.material_id))
    assert P.shape == (60, grid.n_points)
    ev = evaluate(dataset, result.split, P, grid.energy_ev, grid.onset_threshold)
    assert (ev.metrics["n_train"], ev.metrics["n_val"], ev.metrics["n_test"]) == (48, 6, 6)
    for name in ("alignn", "mean_spectrum", "composition"):
        assert {"mae_median", "mae_q25", "mae_q75", "frac_mae_below_0.14", "onset_r2", "onset_mae_ev"} <= set(ev.metrics[name])


def test_evaluation_refuses_a_grid_other_than_the_one_the_model_was_trained_on(dataset, graphs, tmp_path):
    from optabs.model.stage import evaluate_stage

    trained_grid = Grid(e_max_ev=10.0, n_points=GRID.n_points)
    result = train(dataset, graphs, tiny_settings(epochs=1), tmp_path / "model", grid=trained_grid)
    write_dataset(tmp_path / "dataset.parquet", dataset)
    outputs = [tmp_path / name for name in ("pred.parquet", "metrics.json", "per.parquet", "a.png", "b.png")]
    with pytest.raises(InputError, match="trained on the grid .* config key 'spectra'"):
        evaluate_stage(tmp_path / "dataset.parquet", tmp_path / "cache.pt", result.checkpoint,
                       Grid(n_points=GRID.n_points), *outputs)
    assert not any(p.exists() for p in outputs)


# ---------------------------------------------------------------- ensembles


def test_ensemble_members_share_the_split_and_differ_in_weights_and_member_0_is_the_single_model(
        dataset, graphs, trained, tmp_path):
    from optabs.model.ensemble import load_ensemble

    member1 = train(dataset, graphs, tiny_settings(member=1), tmp_path / "m1")
    assert member1.split == trained.split
    w0, w1 = trained.model.state_dict(), member1.model.state_dict()
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)
    # member 0 is the model a single training gives: seeded by `seed` alone
    again = train(dataset, graphs, tiny_settings(member=0), tmp_path / "m0")
    assert all(torch.equal(w0[k], again.model.state_dict()[k]) for k in w0)
    models, settings, split, _ = load_ensemble([trained.checkpoint, member1.checkpoint])
    assert len(models) == 2 and split == trained.split and settings.member == 0
    other_split = train(dataset, graphs, tiny_settings(seed=5, epochs=1), tmp_path / "other")
    with pytest.raises(InputError, match="other.*another split"):
        load_ensemble([trained.checkpoint, other_split.checkpoint])


def test_ensemble_evaluation_reports_the_mean_its_spread_and_the_calibration(dataset, graphs, trained, tmp_path):
    from optabs.model.stage import evaluate_stage

    member1 = train(dataset, graphs, tiny_settings(member=1), tmp_path / "m1")
    write_dataset(tmp_path / "dataset.parquet", dataset)
    from optabs.model.graphs import save_graphs

    save_graphs(graphs, tmp_path / "cache.pt", tiny_settings())
    outputs = [tmp_path / name for name in ("pred.parquet", "metrics.json", "per.parquet", "a.png", "b.png")]
    metrics = evaluate_stage(tmp_path / "dataset.parquet", tmp_path / "cache.pt", [trained.checkpoint, member1.checkpoint],
                             GRID, *outputs)
    ids = sorted(graphs)
    a = np.maximum(predict(trained.model, graphs, ids), GRID.log10_alpha_floor)
    b = np.maximum(predict(member1.model, graphs, ids), GRID.log10_alpha_floor)
    table = pd.read_parquet(outputs[0]).set_index("material_id").loc[ids]
    assert np.allclose(np.stack(table.log10_alpha_pred), (a + b) / 2, atol=1e-6)
    assert np.allclose(np.stack(table.log10_alpha_std), np.abs(a - b) / 2, atol=1e-6)
    ens = metrics["ensemble"]
    assert ens["members"] == 2
    assert 0.0 <= ens["within_1sigma"] <= ens["within_2sigma"] <= 1.0
    assert json.loads(outputs[1].read_text())["ensemble"] == ens


def test_calibration_counts_points_inside_the_bands_away_from_the_floor():
    from optabs.model.ensemble import calibration

    floor = 2.0
    mean = np.full((1, 10), 4.0)
    std = np.full((1, 10), 0.1)
    # errors of 0, 0.05, 0.15, 0.25 (x2 each) and two points where truth and mean sit at the floor
    truth = 4.0 + np.array([[0, 0.05, 0.15, 0.25, 0, 0.05, 0.15, 0.25, 0, 0]])
    mean[0, 8:] = floor
    truth[0, 8:] = floor
    c = calibration(truth, mean, std, floor)
    assert c["n_points"] == 8 and c["n_points_all"] == 10
    assert c["within_1sigma"] == pytest.approx(4 / 8)
    assert c["within_2sigma"] == pytest.approx(6 / 8)
    assert c["within_2sigma_all_points"] == pytest.approx(8 / 10)


def test_sigma_scale_widens_a_too_narrow_band_to_the_asked_coverage():
    from optabs.model.ensemble import calibration, sigma_scale

    rng = np.random.default_rng(0)
    mean = np.full((50, 40), 4.0)
    truth = mean + rng.normal(0.0, 0.3, size=mean.shape)  # errors of sigma 0.3 ...
    std = np.full(mean.shape, 0.1)  # ... claimed as 0.1: three times too narrow
    s = sigma_scale(truth, mean, std, floor=2.0)
    assert s == pytest.approx(3.0, rel=0.1)
    assert calibration(truth, mean, s * std, 2.0)["within_2sigma"] == pytest.approx(0.954, abs=0.01)
