"""optabs.report: figures, the static site (links, images, atomic writes) and a real headless browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fakes.browser import ALL_IMAGES_LOADED
from optabs.chemistry import MATERIAL_ENV_COLUMNS, dominant_environment, element_sets
from optabs.dataset import DATASET_COLUMNS, spectra_matrix
from optabs.errors import InputError
from optabs.failures import Failure, read_failures, write_failures
from optabs.grid import Grid
from optabs.interpret import cluster_chemistry, compare_clusterings, ward_clusters
from optabs.interpret.sweep import clustering_sweep
from optabs.io import write_csv, write_json, write_parquet
from optabs.plots import (
    band_spectra_figure,
    cluster_grid_figure,
    cluster_spectra_figure,
    dendrogram_figure,
    merit_sigma_figure,
    onset_edge_figure,
    onset_parity_figure,
    rounds_figure,
    worst_by_quartile_figure,
)
from optabs.report import build_report, report_stage
from optabs.spectra import onset_energies

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic(m: int = 40, k: int = 4, seed: int = 0):
    """A small dataset in ``k`` groups with features, spectra, formulas and environments."""
    rng = np.random.default_rng(seed)
    grid = Grid()
    energy = grid.energy_ev
    group = np.arange(m) % k
    features = rng.normal(0, 10, (k, 16))[group] + rng.normal(0, 0.5, (m, 16))
    gap = np.linspace(3.0, 7.0, k)[group] + rng.normal(0, 0.2, m)
    spectra = np.maximum(2.0, 1.5 + 4.0 / (1.0 + np.exp(-(energy[None, :] - gap[:, None]) / 0.3)))
    pools = [("Na", "V"), ("K", "Cr"), ("Mg", "Si"), ("Zn", "Al"), ("Ca", "Ti"), ("Li", "B")]
    formulas = [f"{pools[g % 6][0]}{1 + i % 3}{pools[g % 6][1]}O4" for i, g in enumerate(group)]
    ids = [f"mat-{i:03d}" for i in range(m)]
    dataset = pd.DataFrame({
        "material_id": ids, "source_name": ids, "formula": formulas, "structure": "", "log10_alpha": list(spectra),
        "onset_ev": onset_energies(energy, spectra, grid.onset_threshold), "dft_gap_ev": gap - 1, "corrected_gap_ev": gap,
        "e_above_hull_ev": 0.0, "stability": np.where(np.arange(m) % 5 == 0, "unknown", "stable"),
        "stability_policy": "local", "mp_database_version": "", "engine": "synthetic",
    })[DATASET_COLUMNS]
    tet = np.where(group % 2 == 0, 0.95, 0.1) + rng.uniform(0, 0.04, m)
    octa = np.where(group % 2 == 1, 0.9, 0.05) + rng.uniform(0, 0.04, m)
    # motifs: the B cation is tetrahedral in even groups, octahedral in odd ones; "V tetrahedral" only in group 0
    env_of = np.where(group % 2 == 0, "tetrahedral", "octahedral")
    envs = pd.DataFrame({
        "material_id": ids, "formula": formulas, "n_cation_sites": 2, "tetrahedral_max": tet, "octahedral_max": octa,
        "tetrahedral_element": [pools[g % 6][1] for g in group], "octahedral_element": [pools[g % 6][0] for g in group],
        "dominant_env": dominant_environment(tet, octa), "n_tetrahedral_sites": (group % 2 == 0).astype(int),
        "n_octahedral_sites": 1 + (group % 2 == 1).astype(int), "n_other_sites": 0,
        "motifs": [sorted([f"{pools[g % 6][0]} octahedral", f"{pools[g % 6][1]} {e}"]) for g, e in zip(group, env_of)],
        "cations": [sorted(pools[g % 6]) for g in group],
        "anions": [["O"]] * m, "oxidation_method": "bond_valence", "error": "",
    })[MATERIAL_ENV_COLUMNS]
    return dataset, features, envs


def report_inputs(m: int = 40, k: int = 4):
    dataset, features, envs = synthetic(m, k)
    spectra = spectra_matrix(dataset)
    by_features = ward_clusters(features, k)
    by_spectra = ward_clusters(spectra, k)
    comparison = compare_clusterings(spectra, element_sets(list(dataset["formula"])), list(envs["dominant_env"]),
                                     by_features.labels, by_spectra.labels, names=("features", "spectra"))
    chemistry = cluster_chemistry(dataset, by_features.labels, envs)
    sweep = clustering_sweep(spectra, {"features": features}, element_sets(list(dataset["formula"])),
                             list(envs["dominant_env"]), [2, k, 2 * k])
    clusters = pd.DataFrame({"material_id": dataset["material_id"], "cluster": by_features.labels,
                             "cluster_spectra": by_spectra.labels})
    rng = np.random.default_rng(1)
    split = np.array(["train", "val", "test", "test"] * (m // 4))
    predictions = pd.DataFrame({"material_id": dataset["material_id"], "split": split,
                                "log10_alpha_pred": list(spectra + rng.normal(0, 0.05, spectra.shape))})
    metrics = {"n_train": 10, "n_val": 10, "n_test": 20, "alignn": {"mae": 0.05, "onset_mae_ev": 0.1},
               "mean_spectrum": {"mae": 0.8}, "composition": {"mae": 0.4}}
    failures = pd.DataFrame({"material_id": ["bad-1", "bad-2"], "stage": ["dft", "structures"],
                             "reason": ["SCF did not converge <in 200 steps>", "overlapping atoms & more"],
                             "detail": ["see dft/bad-1/vasp.log", "min_distance: 0.4 Å < 0.5 Å"]})
    return dict(dataset=dataset, clusters=clusters, comparison=comparison, chemistry=chemistry, metrics=metrics,
                predictions=predictions, failures=failures, linkage=by_features.linkage, sweep=sweep), by_features


MERITS = ("onset", "visible_mean", "slme_1um")
SMALL_GAP = "small_gap: DFT gap 0.1 eV < 0.3 eV"


def screen_inputs(folder: Path, n: int = 12, rounds: int = 2, n_short: int = 3) -> Path:
    """A screen stage's folder (``results/screen``): ``rounds`` rounds, ``n`` candidates in the last,
    a shortlist of its best ``n_short`` (rank 2's formula holds markup, rank 3 is out of distribution)."""
    rng = np.random.default_rng(2)
    energy = Grid().energy_ev
    ids = [f"cand-{i:02d}" for i in range(n)]
    formulas = [f"Ca{1 + i % 3}SiO{3 + i % 2}" for i in range(n)]
    if n >= 2:
        formulas[1] = "Ba<Ti>&O3"
    ood = np.zeros(n, bool)
    ood[2:3] = True
    mean = np.maximum(2.0, 1.5 + 4.0 / (1.0 + np.exp(-(energy[None, :] - rng.uniform(2, 6, n)[:, None]) / 0.3)))
    std = np.full_like(mean, 0.1) if n else mean
    ranking = pd.DataFrame({"rank": np.arange(1, n + 1), "round": rounds - 1, "material_id": ids, "formula": formulas,
                            "score": np.linspace(5, 1, n)})
    for k, name in enumerate(MERITS):
        ranking[f"{name}_mean"] = np.linspace(3 + k, 1 + k, n)
        ranking[f"{name}_std"] = np.full(n, 0.05 * (k + 1))
    ranking["cluster"] = np.arange(n) % 4 + 1
    ranking["cluster_distance"] = np.linspace(0.1, 2.0, n)
    ranking["out_of_distribution"] = ood
    ranking["log10_alpha_mean"] = [list(r) for r in mean]
    ranking["log10_alpha_std"] = [list(r) for r in std]
    top = ranking.head(n_short)
    shortlist = pd.DataFrame({
        "rank": top["rank"], "material_id": top["material_id"], "formula": top["formula"], "merit": "onset",
        "merit_mean": top["onset_mean"], "merit_std": top["onset_std"], "score": top["score"], "cluster": top["cluster"],
        "cluster_distance": top["cluster_distance"], "out_of_distribution": top["out_of_distribution"],
        "why": [f"ucb: highest onset mean + 1 sigma; pick number {r}" for r in top["rank"]],
    })
    # written in reverse: the page orders the shortlist by rank, not by file order
    write_csv(folder / "shortlist.csv", shortlist.iloc[::-1])
    write_parquet(folder / "ranking.parquet", ranking)
    entries = []
    for r in range(rounds):
        picked = [] if r == 0 else [
            {"round": r, "material_id": f"pick-{r}-{j}", "formula": "Zn<S>", "merit": "onset", "predicted_mean": 2.5,
             "predicted_std": 0.2, "computed": 2.4 if j < 2 else float("nan"),
             "outcome": "joined the dataset" if j < 2 else SMALL_GAP} for j in range(3)]
        entries.append({"round": r, "n_dataset": 40 + 2 * r, "n_test": 20, "members": 3, "n_candidates": n + 3 * (rounds - 1 - r),
                        "acquisition": "ucb", "merit": "onset", "mae_median": 0.125 - 0.01 * r,
                        "calibration": {"within_1sigma": 0.5, "within_2sigma": 0.75 + 0.05 * r, "mean_sigma": 0.1},
                        "picked": picked})
        (folder / f"round{r}").mkdir(parents=True, exist_ok=True)
        merit_sigma_figure(ranking["onset_mean"], ranking["onset_std"], ranking.index < n_short, ood, "onset",
                           folder / f"round{r}" / "merit_sigma.png")
        band_spectra_figure(energy, mean[:n_short], std[:n_short], list(top["formula"]),
                            folder / f"round{r}" / "shortlist_spectra.png")
    write_json(folder / "rounds.json", {"rounds": entries})
    rounds_figure(list(range(rounds)), [e["mae_median"] for e in entries],
                  [e["calibration"]["within_2sigma"] for e in entries],
                  [sum(p["outcome"] == "joined the dataset" for p in e["picked"]) for e in entries], folder / "rounds.png")
    return folder


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a":
            self.links.append(attrs.get("href", ""))


def parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report of 40 materials in 4 clusters with a two-round screen (built once for the module)."""
    out = tmp_path_factory.mktemp("report") / "site"
    inputs, result = report_inputs()
    inputs["screen_dir"] = screen_inputs(tmp_path_factory.mktemp("screen"))
    index = build_report(out, title="Test report <4 clusters>", **inputs)
    return index, inputs, result


# ---------------------------------------------------------------- the site


def test_report_files_links_and_images_exist(built):
    index, inputs, result = built
    site = index.parent
    assert index == site / "index.html" and index.is_file()
    page = parse(index)
    cluster_links = sorted({h for h in page.links if re.fullmatch(r"cluster_\d+\.html", h)})
    assert cluster_links == [f"cluster_{c}.html" for c in range(1, 5)]
    for name in cluster_links:
        assert (site / name).is_file()
    expected = {"img/dendrogram.png", "img/clusters_grid.png", "img/onset_edge.png", "img/onset_parity.png",
                "img/worst_by_quartile.png", "img/sweep.png"}
    assert expected <= set(page.images)
    assert "screening.html" in page.links
    for html_file in [index, site / "screening.html", *(site / n for n in cluster_links)]:
        parsed = parse(html_file)
        assert parsed.images, html_file.name
        for src in parsed.images:
            assert not src.startswith(("/", "http", "file:")), src  # relative links only
            image = site / src
            assert image.is_file(), f"{html_file.name}: {src} missing"
            assert image.read_bytes()[:8] == PNG_MAGIC
        for href in parsed.links:
            if not href.startswith("#"):
                assert (site / href).is_file(), f"{html_file.name}: broken link {href}"


def test_report_content(built):
    index, inputs, result = built
    text = index.read_text(encoding="utf-8")
    assert "Test report &lt;4 clusters&gt;" in text  # escaped, not markup
    assert "SCF did not converge &lt;in 200 steps&gt;" in text and "overlapping atoms &amp; more" in text
    for word in ("Spectral spread", "Chemical homogeneity", "Coordination agreement", "features", "spectra",
                 "mean_spectrum", "composition", "onset_mae_ev"):
        assert word in text
    cluster_1 = (index.parent / "cluster_1.html").read_text(encoding="utf-8")
    members = inputs["dataset"]["material_id"][result.labels == 1]
    for material_id in members:
        assert material_id in cluster_1
    for heading in ("Element enrichment", "Cations and anions", "Dominant cation environment", "Members", "Motifs"):
        assert heading in cluster_1
    assert 'href="index.html"' in cluster_1 and 'href="cluster_2.html"' in cluster_1
    # the planted motif: "V tetrahedral" is carried by the 10 members of group 0 and nobody else
    group0 = set(inputs["dataset"]["material_id"][::4])
    (c0,) = {int(c) for m, c in zip(inputs["dataset"]["material_id"], result.labels) if m in group0}
    page = (index.parent / f"cluster_{c0}.html").read_text(encoding="utf-8")
    motifs = page[page.index('id="motifs"'):]
    table = pd.read_html(StringIO(motifs[motifs.index("<table"):motifs.index("</table>") + 8]))[0]
    row = table.set_index("motif").loc["V tetrahedral"]
    assert row["members"] == "10 of 10 (100%)" and row["dataset"] == "10 (25.0%)" and row["fold enrichment"] == 4.0
    # its own member count is the one line of the cluster on the overview
    assert f"cluster {c0}: " in page and "in 10 of 10 members vs 25 % of the dataset" in text
    assert f'img/tet_hist_{c0}.png' in page
    # the sweep: a table per metric with a column per K
    sweep = text[text.index('<h2 id="sweep">'):text.index('<h2 id="model">')]
    for label in ("Chemical homogeneity", "Coordination agreement", "Spectral spread", "K = 2", "K = 4", "K = 8"):
        assert label in sweep
    # the stability policy on the overview, each member's stability on its cluster page (every 5th
    # of the 40 synthetic materials is of unknown stability)
    assert "Stability (dataset.stability: local): the hull of this run&#x27;s computed phases; 32 stable, 8 unknown." in text
    last = cluster_1[cluster_1.index("<h2>Members"):]
    listed = pd.read_html(StringIO(last[last.index("<table"):last.index("</table>") + 8]))[0]
    expected = {mid: "unknown" if int(mid[4:]) % 5 == 0 else "stable" for mid in members}
    assert dict(zip(listed["material_id"], listed["stability"])) == expected


def test_rebuild_replaces_atomically_and_leaves_no_temporaries(tmp_path, monkeypatch):
    inputs, _ = report_inputs(m=20, k=2)
    out = tmp_path / "site"
    build_report(out, **inputs)
    (out / "stale.txt").write_text("from an earlier build")
    build_report(out, **inputs)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]

    # a failure half-way (while writing the second cluster page) leaves the old report as it was
    from optabs.report import build as report

    real_page = report._cluster_page

    def failing_page(c, position, *args, **kwargs):
        if position == 1:
            raise RuntimeError("disk full")
        return real_page(c, position, *args, **kwargs)

    before = {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")}
    monkeypatch.setattr(report, "_cluster_page", failing_page)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(out, **inputs)
    assert {p.relative_to(out): p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_report_checks_chemistry_matches_clusters(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    inputs["clusters"] = inputs["clusters"].assign(cluster=np.where(inputs["clusters"]["cluster"] == 2, 7, 1))
    with pytest.raises(InputError, match=r"no cluster \[7\]"):
        build_report(tmp_path / "site", **inputs)
    assert not any(tmp_path.iterdir())


def test_report_needs_a_cluster_for_every_material(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    inputs["clusters"] = inputs["clusters"].iloc[1:]
    with pytest.raises(InputError, match="no cluster for 1 dataset materials"):
        build_report(tmp_path / "site", **inputs)
    assert not any(tmp_path.iterdir())


def test_report_without_optional_parts(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    index = build_report(tmp_path / "site", dataset=inputs["dataset"], clusters=inputs["clusters"][["material_id", "cluster"]],
                         comparison=None, chemistry=inputs["chemistry"].tables())
    text = index.read_text(encoding="utf-8")
    assert "No model metrics" in text and "No predictions" in text and "No failures" in text
    assert "dendrogram not drawn" in text
    assert not (index.parent / "screening.html").exists() and "screening" not in text.lower()
    for src in parse(index).images:
        assert (index.parent / src).is_file()


def html_table(text: str, after: str) -> pd.DataFrame:
    """The first table after ``after`` in ``text``, as text."""
    rest = text[text.index(after):]
    return pd.read_html(StringIO(rest[rest.index("<table"):rest.index("</table>") + 8]), keep_default_na=False)[0].astype(str)


def test_screening_page(built):
    index, inputs, _ = built
    site = index.parent
    overview = index.read_text(encoding="utf-8")
    section = overview[overview.index('<h2 id="screening">'):overview.index('<h2 id="failures">')]
    assert "12 candidates" in section and "shortlist of 3" in section and "1 of them out of distribution" in section
    assert "2 rounds of active learning (2 picks joined the dataset)" in section
    assert 'href="screening.html"' in section and 'href="#screening"' in overview
    page = site / "screening.html"
    text = page.read_text(encoding="utf-8")
    images = parse(page).images
    assert images == ["img/screen_merit_sigma.png", "img/screen_shortlist_spectra.png", "img/screen_rounds.png"]
    for src in images:
        assert (site / src).read_bytes()[:8] == PNG_MAGIC
    assert "Ba<Ti>" not in text and "Ba&lt;Ti&gt;&amp;O3" in text and "Zn&lt;S&gt;" in text  # escaped, not markup

    short = html_table(text, 'id="shortlist"')
    assert list(short.columns) == ["rank", "material", "formula", "onset (mean ± σ)", "cluster", "out of distribution", "why"]
    assert list(short["rank"]) == ["1", "2", "3"] and list(short["material"]) == ["cand-00", "cand-01", "cand-02"]
    assert list(short["formula"]) == ["Ca1SiO3", "Ba<Ti>&O3", "Ca3SiO3"]
    assert list(short["out of distribution"]) == ["no", "no", "yes"]
    assert list(short["why"]) == [f"ucb: highest onset mean + 1 sigma; pick number {r}" for r in (1, 2, 3)]
    assert short["onset (mean ± σ)"][0] == "3.000 ± 0.050"
    # the last round is round 1: its clusters are its own, not the report's, so not linked
    assert not re.search(r'<a href="cluster_\d+\.html">', text) and "Cluster numbers are round 1&#x27;s own" in text

    every = html_table(text, 'id="candidates"')
    assert len(every) == 12 and list(every["material"]) == [f"cand-{i:02d}" for i in range(12)]
    assert {"onset (mean ± σ)", "visible_mean (mean ± σ)", "slme_1um (mean ± σ)"} <= set(every.columns)

    rounds = html_table(text, 'id="rounds"')  # read_html reads "0.750" as 0.75
    assert rounds.to_dict("records") == [
        {"round": "0", "materials in the dataset": "40", "candidates": "15", "picked": "–", "joined": "–",
         "median test MAE": "0.125", "within ±2σ": "0.75"},
        {"round": "1", "materials in the dataset": "42", "candidates": "12", "picked": "3", "joined": "2",
         "median test MAE": "0.115", "within ±2σ": "0.8"},
    ]
    picks = html_table(text, "Round 1: the picks of round 0")
    assert list(picks["outcome"]) == ["joined the dataset", "joined the dataset", SMALL_GAP]
    assert list(picks["computed onset"]) == ["2.400", "2.400", "–"] and picks["predicted onset (mean ± σ)"][0] == "2.500 ± 0.200"


def test_screening_of_round_0_links_clusters_and_of_no_candidates_says_so(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    screen = screen_inputs(tmp_path / "screen", rounds=1)
    index = build_report(tmp_path / "site", screen_dir=screen, **inputs)
    text = (index.parent / "screening.html").read_text(encoding="utf-8")
    # round 0 ranks against the report's own clusters: 1 and 2 have pages, 3 does not
    assert '<a href="cluster_1.html">1</a>' in text and '<a href="cluster_2.html">2</a>' in text
    assert "cluster_3.html" not in text and 'id="rounds"' not in text  # one round: no per-round table

    empty = screen_inputs(tmp_path / "empty", n=0, n_short=0)
    index = build_report(tmp_path / "site", screen_dir=empty, **inputs)
    text = (index.parent / "screening.html").read_text(encoding="utf-8")
    assert "There were no candidates in round 1" in text and "Nothing shortlisted" in text
    assert "0 candidates" in index.read_text(encoding="utf-8")
    for src in parse(index.parent / "screening.html").images:
        assert (index.parent / src).is_file()


@pytest.mark.parametrize("name", ["rounds.json", "ranking.parquet"])
def test_screening_needs_the_screen_stage_summary(tmp_path, name):
    inputs, _ = report_inputs(m=20, k=2)
    screen = screen_inputs(tmp_path / "screen", n=4, n_short=2)
    (screen / name).unlink()
    with pytest.raises(InputError, match=rf"needs .*{re.escape(name)}, which does not exist: rerun .*screen rule"):
        build_report(tmp_path / "site", screen_dir=screen, **inputs)
    assert not (tmp_path / "site").exists()
    (screen / "rounds.json").write_text("{not json")
    write_parquet(screen / "ranking.parquet", pd.DataFrame({"material_id": ["x"]}))
    with pytest.raises(InputError, match="rounds.json is not the screen stage's summary"):
        build_report(tmp_path / "site", screen_dir=screen, **inputs)
    write_json(screen / "rounds.json", {"rounds": [{"round": 0}]})
    with pytest.raises(InputError, match=r"ranking.parquet has no column \['rank', 'formula'"):
        build_report(tmp_path / "site", screen_dir=screen, **inputs)


def failures_table(index: Path) -> pd.DataFrame:
    """The table of the report's Failures section, as text."""
    text = index.read_text(encoding="utf-8")
    section = text[text.index('<h2 id="failures">'):]
    section = section[:section.index("<h2", 1)]
    return pd.read_html(StringIO(section), keep_default_na=False)[0].astype(str)


def test_report_stage_lists_the_failures_csv_of_every_stage(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    environments = Failure("x", "interpret (environments)", "no cation sites", "no site with a positive oxidation state <BV>")
    write_failures(tmp_path / "structures/failures.csv", [Failure("bad-1", "structures", "min_distance", "0.4 Å < 0.5 Å")])
    write_failures(tmp_path / "dataset/failures.csv", [])
    write_failures(tmp_path / "interpret/failures.csv", [environments])
    paths = [tmp_path / stage / "failures.csv" for stage in ("structures", "dataset", "interpret")]
    assert list(read_failures(paths)["material_id"]) == ["bad-1", "x"]

    inputs["dataset"].to_parquet(tmp_path / "dataset.parquet", index=False)
    inputs["clusters"].to_parquet(tmp_path / "clusters.parquet", index=False)
    inputs["predictions"].to_parquet(tmp_path / "predictions.parquet", index=False)
    np.save(tmp_path / "linkage.npy", inputs["linkage"])
    write_json(tmp_path / "comparison.json", inputs["comparison"])
    write_json(tmp_path / "metrics.json", inputs["metrics"])
    (tmp_path / "chemistry").mkdir()
    for name, table in inputs["chemistry"].tables().items():
        table.to_parquet(tmp_path / "chemistry" / f"{name}.parquet", index=False)
    index = report_stage(
        tmp_path / "report", dataset_path=tmp_path / "dataset.parquet", clusters_path=tmp_path / "clusters.parquet",
        linkage_path=tmp_path / "linkage.npy", comparison_path=tmp_path / "comparison.json",
        chemistry_dir=tmp_path / "chemistry", metrics_path=tmp_path / "metrics.json",
        predictions_path=tmp_path / "predictions.parquet", failure_paths=paths,
        screen_dir=screen_inputs(tmp_path / "screen", n=4, n_short=2),
    )
    assert "cand-03" in (index.parent / "screening.html").read_text(encoding="utf-8")
    table = failures_table(index)
    assert list(table.columns) == ["material_id", "stage", "reason", "detail"]
    assert table.to_dict("records") == [
        {"material_id": "bad-1", "stage": "structures", "reason": "min_distance", "detail": "0.4 Å < 0.5 Å"},
        {"material_id": "x", "stage": "interpret (environments)", "reason": "no cation sites",
         "detail": "no site with a positive oxidation state <BV>"},
    ]
    text = index.read_text(encoding="utf-8")
    assert "2 failures: structures 1, interpret (environments) 1." in text and "&lt;BV&gt;" in text


def test_report_refuses_a_failures_table_without_the_four_columns(tmp_path):
    inputs, _ = report_inputs(m=20, k=2)
    inputs["failures"] = inputs["failures"].drop(columns="detail")
    with pytest.raises(InputError, match="failures table needs columns"):
        build_report(tmp_path / "site", **inputs)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- figures


def test_every_figure_function_writes_a_png(tmp_path):
    dataset, features, envs = synthetic(24, 3)
    spectra = spectra_matrix(dataset)
    energy = Grid().energy_ev
    result = ward_clusters(features, 3)
    onset = dataset["onset_ev"].to_numpy()
    paths = [
        onset_parity_figure(onset, onset + 0.1, tmp_path / "parity.png"),
        worst_by_quartile_figure(energy, spectra, spectra + 0.1, np.linspace(0, 1, 24), list(dataset["material_id"]),
                                 tmp_path / "w.png"),
        dendrogram_figure(result.linkage, result.labels, tmp_path / "dendro.png"),
        dendrogram_figure(result.linkage, result.labels, tmp_path / "dendro_small.png", max_leaves=2),
        cluster_grid_figure(energy, spectra, result.labels, tmp_path / "grid.png"),
        cluster_spectra_figure(energy, spectra[:5], spectra.mean(axis=0), tmp_path / "one.png", title="one"),
        onset_edge_figure(onset, np.ones(24), result.labels, tmp_path / "scatter.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000
    with pytest.raises(InputError):
        worst_by_quartile_figure(energy, spectra, spectra[:3], np.ones(24), list(dataset["material_id"]), tmp_path / "x.png")


def test_spectra_axes_carry_units():
    """The axis labels the report promises (checked on the figure objects, not on pixels)."""
    from optabs import plots as report

    assert report.ENERGY_LABEL == "Energy (eV)"
    assert report.ALPHA_LABEL == "log10 α (cm⁻¹)"
    source = Path(report.__file__).read_text(encoding="utf-8")
    assert source.count("ENERGY_LABEL") >= 4 and source.count("ALPHA_LABEL") >= 4


# ---------------------------------------------------------------- a real browser

@pytest.mark.slow
def test_report_in_a_real_browser(built, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    index, inputs, _ = built
    browser.get(index.as_uri())
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.title == "Test report <4 clusters>"
    assert browser.execute_script("return document.images.length") >= 5
    assert browser.execute_script(ALL_IMAGES_LOADED), "an image of index.html did not load"
    sweep = browser.find_element(By.CSS_SELECTOR, "img[src='img/sweep.png']")
    assert int(sweep.get_attribute("naturalWidth")) > 300  # the K-and-layer sweep figure rendered
    assert "in 10 of 10 members vs 25 % of the dataset" in browser.find_element(By.ID, "list").find_element(
        By.XPATH, "following-sibling::table").text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report.png"))

    hrefs = sorted({a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href^='cluster_']")})
    assert len(hrefs) == 4
    for href in hrefs:
        browser.get(href)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        number = re.search(r"cluster_(\d+)\.html$", href).group(1)
        assert browser.find_element(By.TAG_NAME, "h1").text == f"Cluster {number}"
        assert browser.execute_script("return document.images.length") >= 2  # spectra and tetrahedral histogram
        assert browser.execute_script(ALL_IMAGES_LOADED), f"an image of {href} did not load"
        motif_rows = browser.execute_script(
            "const h = document.getElementById('motifs'); let t = h.nextElementSibling;"
            "while (t && t.tagName !== 'TABLE') t = t.nextElementSibling; return t ? t.rows.length : 0")
        assert motif_rows >= 2, f"{href}: no motif table"
        assert browser.find_element(By.CSS_SELECTOR, "img[src^='img/tet_hist_']").get_attribute("naturalWidth") != "0"
        # the way back works too
        browser.find_element(By.LINK_TEXT, "↑ Overview").click()
        wait.until(lambda d: d.current_url.endswith("index.html"))
    browser.get((index.parent / "cluster_1.html").as_uri())
    browser.save_screenshot(str(ARTIFACTS / "report_cluster_1.png"))

    # the screening page, from the overview's link
    browser.get(index.as_uri())
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    browser.find_element(By.LINK_TEXT, "Screening page →").click()
    wait.until(lambda d: d.current_url.endswith("screening.html") and
               d.execute_script("return document.readyState") == "complete")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Screening"
    assert browser.execute_script("return document.images.length") == 3
    assert browser.execute_script(ALL_IMAGES_LOADED), "an image of screening.html did not load"
    shortlist = browser.execute_script(
        "const h = document.getElementById('shortlist'); let t = h.nextElementSibling;"
        "while (t && t.tagName !== 'TABLE') t = t.nextElementSibling;"
        "return Array.from(t.tBodies[0].rows).map(r => Array.from(r.cells).map(c => c.innerText))")
    assert [row[:3] for row in shortlist] == [["1", "cand-00", "Ca1SiO3"], ["2", "cand-01", "Ba<Ti>&O3"],
                                              ["3", "cand-02", "Ca3SiO3"]]
    assert [row[5] for row in shortlist] == ["no", "no", "yes"]
    browser.save_screenshot(str(ARTIFACTS / "report_screening.png"))
    assert (ARTIFACTS / "report_screening.png").stat().st_size > 10000
    assert (ARTIFACTS / "report.png").stat().st_size > 10000
