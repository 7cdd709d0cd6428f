"""Screening: acquisition rules, the nearest learned cluster and its out-of-distribution flag, the
ranking and shortlist of candidates by an ensemble, and ``optabs screen``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optabs.errors import ConfigError
from optabs.screen.acquisition import acquisition_scores, rank_order, ranked
from optabs.screen.ood import learned_clusters, nearest_cluster

# ---------------------------------------------------------------- acquisition


@pytest.mark.parametrize("direction", ["max", "min"])
def test_ucb_with_kappa_zero_is_greedy(direction):
    rng = np.random.default_rng(3)
    mean, std = rng.normal(size=40), rng.uniform(0, 2, size=40)
    ids = [f"m{i:02d}" for i in range(40)]
    greedy = acquisition_scores("greedy", mean, std, direction)
    ucb0 = acquisition_scores("ucb", mean, std, direction, kappa=0.0)
    assert np.array_equal(greedy, ucb0)
    assert list(rank_order(ids, greedy)) == list(rank_order(ids, ucb0))
    # and with kappa > 0 the ranking changes towards uncertain candidates
    ucb = acquisition_scores("ucb", mean, std, direction, kappa=3.0)
    assert list(rank_order(ids, ucb)) != list(rank_order(ids, greedy))


def test_directions_and_rules_rank_as_their_definitions_say():
    ids = ["a", "b", "c"]
    mean, std = np.array([1.0, 3.0, 2.0]), np.array([0.5, 0.1, 2.0])
    assert list(ranked(ids, acquisition_scores("greedy", mean, std, "max")).material_id) == ["b", "c", "a"]
    assert list(ranked(ids, acquisition_scores("greedy", mean, std, "min")).material_id) == ["a", "c", "b"]
    # ucb, kappa 1: 1.5, 3.1, 4.0
    assert list(ranked(ids, acquisition_scores("ucb", mean, std, "max", 1.0)).material_id) == ["c", "b", "a"]
    # minimising: -mean + sigma = -0.5, -2.9, 0.0
    assert list(ranked(ids, acquisition_scores("ucb", mean, std, "min", 1.0)).material_id) == ["c", "a", "b"]
    assert list(ranked(ids, acquisition_scores("uncertainty", mean, std)).material_id) == ["c", "a", "b"]


def test_random_is_seeded_and_bad_rules_name_their_key():
    mean = np.zeros(50)
    a, b = acquisition_scores("random", mean, mean, seed=1), acquisition_scores("random", mean, mean, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, acquisition_scores("random", mean, mean, seed=2))
    with pytest.raises(ConfigError, match="'screen.acquisition'.*thompson"):
        acquisition_scores("thompson", mean, mean)
    with pytest.raises(ConfigError, match="'screen.kappa'"):
        acquisition_scores("ucb", mean, mean, kappa=-1.0)


def test_rank_order_puts_missing_scores_last_and_breaks_ties_by_id():
    ids = ["z", "y", "x", "w"]
    order = rank_order(ids, np.array([1.0, np.nan, 1.0, 5.0]))
    assert [ids[i] for i in order] == ["w", "x", "z", "y"]


# ---------------------------------------------------------------- nearest cluster, out of distribution


def _two_blobs(rng):
    a = rng.normal(0.0, 0.1, size=(20, 3))
    b = rng.normal(5.0, 0.1, size=(20, 3))
    return np.vstack([a, b]), np.array([1] * 20 + [2] * 20)


def test_candidates_inside_a_cluster_are_in_distribution_and_far_ones_are_not():
    x, labels = _two_blobs(np.random.default_rng(0))
    c = learned_clusters(x, labels)
    assert np.allclose(c.centres, [x[:20].mean(0), x[20:].mean(0)])
    cand = np.array([[0.02, -0.01, 0.0], [5.0, 5.05, 4.98], [2.5, 2.5, 2.5], [40.0, 0.0, 0.0]])
    cluster, distance, ood = nearest_cluster(c, cand)
    assert (cluster[0], cluster[1], cluster[3]) == (1, 2, 2)
    assert list(ood) == [False, False, True, True]
    # distances are Euclidean to the nearest centre
    assert distance[3] == pytest.approx(np.linalg.norm(cand[3] - x[20:].mean(0)))
    # a training material itself is never out of distribution
    _, _, own = nearest_cluster(c, x)
    assert not own.any()


def test_standardised_clusters_ignore_the_units_of_a_feature():
    x, labels = _two_blobs(np.random.default_rng(1))
    scaled = x * np.array([1.0, 1000.0, 1.0])
    cand = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0], [2.5, 2.5, 2.5]])
    a = nearest_cluster(learned_clusters(x, labels, standardize=True), cand)
    b = nearest_cluster(learned_clusters(scaled, labels, standardize=True), cand * np.array([1.0, 1000.0, 1.0]))
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_a_single_material_cluster_takes_the_median_radius_of_the_others():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [12.0, 0.0], [50.0, 50.0]])
    c = learned_clusters(x, np.array([1, 1, 2, 2, 3]))
    assert list(c.radii) == pytest.approx([0.5, 1.0, 0.75])


# ---------------------------------------------------------------- the ranking of real structures


def _rocksalt(a, b, lattice_a):
    from pymatgen.core import Lattice, Structure

    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice_a), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return s.get_primitive_structure()


KNOWN = {"mgo": ("Mg", "O", 4.21, 7.8), "cao": ("Ca", "O", 4.81, 7.0), "sro": ("Sr", "O", 5.16, 5.9),
         "bao": ("Ba", "O", 5.54, 4.8), "mgs": ("Mg", "S", 5.20, 4.8), "cas": ("Ca", "S", 5.69, 4.4),
         "srs": ("Sr", "S", 6.02, 4.3), "bas": ("Ba", "S", 6.39, 3.9)}


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """Two members of a tiny ALIGNN trained (briefly) on eight rocksalt oxides and sulfides with
    synthetic spectra on a 51-point grid; the dataset, its graphs and the checkpoints."""
    from optabs.dataset import DATASET_COLUMNS
    from optabs.grid import Grid
    from optabs.model.graphs import build_graphs
    from optabs.model.settings import ModelSettings
    from optabs.model.train import train

    grid = Grid(n_points=51)
    e = grid.energy_ev
    rows, structures = [], {}
    for mid, (a, b, lat, onset) in KNOWN.items():
        s = _rocksalt(a, b, lat)
        structures[mid] = s
        spectrum = np.where(e < onset, 2.0, 4.0 + 1.5 * (1 - np.exp(-(e - onset) / 2.0)))
        rows.append({"material_id": mid, "source_name": mid, "formula": s.composition.reduced_formula,
                     "structure": s.to_json(), "log10_alpha": list(map(float, spectrum)), "onset_ev": onset,
                     "dft_gap_ev": onset, "corrected_gap_ev": onset, "e_above_hull_ev": 0.0, "stability": "stable",
                     "stability_policy": "none", "mp_database_version": "", "engine": "imported"})
    dataset = pd.DataFrame(rows)[DATASET_COLUMNS]
    settings = ModelSettings.preset("demo", alignn_layers=1, gcn_layers=1, hidden_features=16, embedding_features=16,
                                    epochs=4, batch_size=4, learning_rate=3e-3, threads=1, device="cpu",
                                    max_train_minutes=None)
    graphs, failures = build_graphs(structures, settings, workers=1)
    assert not failures
    out = tmp_path_factory.mktemp("ensemble")
    members = [train(dataset, graphs, replace_member(settings, k), out / f"m{k}", grid) for k in range(2)]
    return {"dataset": dataset, "graphs": graphs, "grid": grid, "settings": settings, "members": members, "dir": out}


def replace_member(settings, k):
    import dataclasses

    return dataclasses.replace(settings, member=k)


def test_screen_ranks_candidates_flags_a_far_structure_and_explains_its_shortlist(ensemble):
    from pymatgen.core import Lattice, Structure

    from optabs.interpret.settings import InterpretSettings
    from optabs.model.graphs import build_graphs
    from optabs.screen.settings import ScreenSettings
    from optabs.screen.stage import screen

    strained = _rocksalt("Ca", "O", 4.81)
    strained.apply_strain(0.01)
    far = Structure(Lattice.hexagonal(2.88, 4.68), ["Zr", "Zr"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    candidates = {"cao_strained": strained, "sro_like": _rocksalt("Sr", "O", 5.2), "zr_metal": far}
    graphs, failures = build_graphs(candidates, ensemble["settings"], workers=1)
    assert not failures
    models = [m.model for m in ensemble["members"]]
    settings = ScreenSettings(batch=2, acquisition="ucb", kappa=1.0)
    ids = list(candidates)
    ranking, short = screen(models, list(ensemble["graphs"]), ensemble["graphs"], ids,
                            [candidates[m].composition.reduced_formula for m in ids], graphs, settings,
                            InterpretSettings(n_clusters=2), ensemble["grid"])
    by_id = ranking.set_index("material_id")
    # a strained copy of a computed material is in distribution; hcp Zr metal is not
    assert not by_id.loc["cao_strained", "out_of_distribution"]
    assert by_id.loc["zr_metal", "out_of_distribution"]
    # ranking: ucb on the visible mean (mean + sigma), best first
    expected = (ranking.visible_mean_mean + ranking.visible_mean_std).to_numpy()
    assert np.allclose(ranking.score, expected) and list(ranking["rank"]) == [1, 2, 3]
    assert np.all(np.diff(ranking.score) <= 0)
    # two members that differ: a spread, and spectra with bands on the grid
    assert (ranking.visible_mean_std > 0).all()
    assert all(len(v) == 51 for v in ranking.log10_alpha_std)
    assert list(short.material_id) == list(ranking.material_id[:2])
    assert all(w.startswith("ucb: highest visible_mean mean + 1 sigma") for w in short.why)
    far_row = short[short.material_id == "zr_metal"]
    if len(far_row):
        assert "outside every learned cluster" in far_row.why.iloc[0]


def test_optabs_screen_ranks_a_folder_and_names_what_it_skipped(ensemble, tmp_path, capsys, restore_logging):
    from optabs import cli
    from optabs.dataset import write_dataset

    write_dataset(tmp_path / "dataset.parquet", ensemble["dataset"])
    folder = tmp_path / "candidates"
    folder.mkdir()
    _rocksalt("Ca", "Se", 5.92).to(filename=str(folder / "CaSe.cif"))
    _rocksalt("Sr", "Se", 6.24).to(filename=str(folder / "POSCAR_SrSe"), fmt="poscar")
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a nonsense\n")
    checkpoints = [str(m.checkpoint) for m in ensemble["members"]]
    status = cli.main(["screen", "--checkpoint", *checkpoints, "--dataset", str(tmp_path / "dataset.parquet"),
                       "--structures", str(folder), "--out", str(tmp_path / "out")])
    assert status == 0
    ranking = pd.read_parquet(tmp_path / "out/ranking.parquet")
    assert sorted(ranking.material_id) == ["CaSe", "SrSe"]
    short = pd.read_csv(tmp_path / "out/shortlist.csv")
    assert len(short) == 2 and short["rank"].tolist() == [1, 2]
    skipped = pd.read_csv(tmp_path / "out/skipped.csv")
    assert list(skipped.file.map(lambda f: f.split("/")[-1])) == ["broken.cif"]
    assert (tmp_path / "out/merit_sigma.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "shortlist" in printed and "CaSe" in printed
    # a checkpoint that does not exist: one line naming it, exit status 2
    assert cli.main(["screen", "--checkpoint", str(tmp_path / "nope.pt"), "--dataset", str(tmp_path / "dataset.parquet"),
                     "--structures", str(folder), "--out", str(tmp_path / "out2")]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_a_calibration_factor_widens_every_band_around_the_same_mean(ensemble):
    from optabs.interpret.settings import InterpretSettings
    from optabs.screen.settings import ScreenSettings
    from optabs.screen.stage import screen, validation_scale

    graphs, ids = ensemble["graphs"], ["mgo", "bas"]
    models = [m.model for m in ensemble["members"]]
    common = (models, list(graphs), graphs, ids, ["MgO", "BaS"], graphs, ScreenSettings(acquisition="greedy"),
              InterpretSettings(n_clusters=2), ensemble["grid"])
    raw = screen(*common)[0].set_index("material_id").loc[ids]
    wide = screen(*common, sigma_scale=2.0)[0].set_index("material_id").loc[ids]
    # window mean and log10 alpha are linear in the spectrum: their sigma doubles, their mean stays
    assert np.allclose(wide.visible_mean_std, 2 * raw.visible_mean_std)
    assert np.allclose(wide.visible_mean_mean, raw.visible_mean_mean)
    assert np.allclose(np.stack(wide.log10_alpha_std), 2 * np.stack(raw.log10_alpha_std))
    # the factor comes from the validation split only; a single model has none
    split = ensemble["members"][0].split
    assert validation_scale(models, ensemble["dataset"], graphs, split, ensemble["grid"]) > 0
    assert validation_scale(models[:1], ensemble["dataset"], graphs, split, ensemble["grid"]) is None


def test_no_candidates_still_leaves_a_graph_cache_every_round_can_read(ensemble, tmp_path):
    import json

    from optabs.model.graphs import load_graphs
    from optabs.screen.stage import screen_graphs_stage

    empty = tmp_path / "candidates.parquet"
    pd.DataFrame(columns=["material_id", "formula", "structure"]).to_parquet(empty)
    ids = screen_graphs_stage(empty, None, ensemble["settings"], tmp_path / "cache.pt", tmp_path / "graphs.json",
                              tmp_path / "skipped.csv")
    assert ids == [] and json.loads((tmp_path / "graphs.json").read_text())["material_ids"] == []
    assert load_graphs(tmp_path / "cache.pt", ensemble["settings"]) == {}
