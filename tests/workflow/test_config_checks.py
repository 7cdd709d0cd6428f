"""A wrong config stops the run before any job, fast, with a message naming the key."""


import pytest
import yaml

from conftest import REPO, snakemake
from optabs.config import check_config, config_errors, load_schema
from optabs.errors import ConfigError

SCHEMA = REPO / "schemas" / "config.schema.yaml"


def base_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_shipped_configs_are_valid():
    check_config(base_config(), SCHEMA)
    paper = base_config()
    for key, value in yaml.safe_load((REPO / "configs" / "paper.yaml").read_text()).items():
        paper[key] = {**paper.get(key, {}), **value} if isinstance(value, dict) else value
    check_config(paper, SCHEMA)


@pytest.mark.parametrize(
    "mutate, key, words",
    [
        (lambda c: c.update(sourc=c.pop("source")), "sourc", "not a known key"),
        (lambda c: c["filter"].update(max_site=40), "filter.max_site", "not a known key"),
        (lambda c: c["filter"].update(max_sites="forty"), "filter.max_sites", "not of type 'integer'"),
        (lambda c: c["filter"].update(max_sites=0), "filter.max_sites", "less than the minimum"),
        (lambda c: c["filter"].update(symprec=-0.1), "filter.symprec", "less than or equal"),
        (lambda c: c.update(source="icsd"), "source", "is not one of"),
        (lambda c: c["filter"].update(excluded_elements=["Xx1"]), "filter.excluded_elements.0", "does not match"),
        (lambda c: c["interpret"].update(n_clusters=0), "interpret.n_clusters", "less than the minimum"),
        (lambda c: c["dataset"].update(stability="hull"), "dataset.stability", "is not one of"),
    ],
)
def test_errors_name_the_key(mutate, key, words):
    cfg = base_config()
    mutate(cfg)
    errors = config_errors(cfg, load_schema(SCHEMA))
    assert any(f"'{key}'" in e and words in e for e in errors), errors
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_config(cfg, SCHEMA)


@pytest.mark.parametrize(
    "text, key",
    [
        ("sourc: catalog\n", "sourc"),
        ("filter:\n  max_sites: forty\n", "filter.max_sites"),
        ("spectra:\n  n_points: 1.5\n", "spectra.n_points"),
        # the Materials Project's hull for catalog materials, which have none
        ("dataset:\n  stability: mp\n", "dataset.stability"),
    ],
)
def test_snakemake_stops_before_any_job_naming_the_key(workflow_dir, text, key):
    (workflow_dir / "bad.yaml").write_text(text)
    proc = snakemake(["--cores", "1", "--configfile", "bad.yaml"], cwd=workflow_dir, timeout=60)
    assert proc.returncode != 0
    assert f"config key '{key}'" in proc.stderr + proc.stdout
    # no job ran: nothing under results/ or logs/
    assert not (workflow_dir / "results").exists()
    assert not (workflow_dir / "logs").exists()


def test_files_source_without_folder_names_the_key(workflow_dir):
    proc = snakemake(["-n", "--cores", "1", "--config", "source=files"], cwd=workflow_dir, timeout=60)
    assert proc.returncode != 0
    assert "structures_dir" in proc.stderr + proc.stdout
