"""The checks the Snakefile runs while it parses, before any job: cheap in any environment.

``rules/common.smk`` needs only this module, :mod:`optabs.config`, :mod:`optabs.ids` and
:mod:`optabs.errors` (standard library, pyyaml, jsonschema), so that Snakemake parses, lints and
plans the workflow in an environment that holds Snakemake and no science stack (what the
Snakemake catalog and its GitHub action run). :func:`check_sections` goes deeper, reading every
stage's settings as its job will, where the science stack is installed; where it is not, each
job still checks its own settings when it starts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from optabs.errors import ConfigError, InputError

#: The packages whose absence makes :func:`check_sections` leave the settings to the jobs.
SCIENCE_PACKAGES = frozenset({
    "pymatgen", "spglib", "torch", "alignn", "gpaw", "ase", "custodian", "matminer", "scipy", "sklearn",
    "numpy", "pandas", "matplotlib", "mp_api", "monty",
})


def structure_digest(structure_json: str) -> str:
    """A short stable digest of a structure's JSON: a changed structure means a new calculation."""
    return hashlib.sha256(structure_json.encode()).hexdigest()[:16]


def check_sources(config: dict[str, Any]) -> None:
    """Checks across keys that a JSON schema cannot express; each names the key and what to do."""
    source = config["source"]
    if source == "files" and not config.get("structures_dir"):
        raise ConfigError(
            "config key 'structures_dir' is empty but source is 'files': pass --config structures_dir=/path/to/folder"
        )
    if source == "catalog" and not Path(config["catalog"]).is_file():
        raise ConfigError(f"config key 'catalog': file {config['catalog']} does not exist")
    if config.get("dataset", {}).get("stability") == "mp" and source in ("catalog", "files"):
        raise ConfigError(
            f"config key 'dataset.stability' is 'mp' but source is {source!r}: only the Materials Project's documents "
            "carry its energy above hull; use stability: local (this workflow's own hull), auto or none"
        )
    stability = config.get("dataset", {}).get("stability", "auto")
    local_hull = stability == "local" or (stability == "auto" and source != "mp")
    if config.get("dft", {}).get("engine") == "replay" and source != "dataset" and local_hull:
        raise ConfigError(
            f"config key 'dataset.stability' is {stability!r} (the local hull of computed energies) but dft.engine is "
            "'replay', whose results carry no total energy: set dataset.stability: none (or mp with source mp)"
        )
    if source == "dataset" and not config.get("dataset_dir"):
        raise ConfigError(
            "config key 'dataset_dir' is empty but source is 'dataset': pass --config dataset_dir=/path/to/alignn/folder"
        )


def check_sections(config: dict[str, Any]) -> str | None:
    """Read every stage's settings as its job will: the DFT engine's, the filter, the grid, the
    curation, the model and the interpretation; with source ``catalog``, the catalog's ids (an
    empty catalog or a duplicated id stops the run here).

    Raises :class:`ConfigError` (or :class:`InputError` for the catalog) whose message starts with
    the config key. Returns None when everything was checked, or one line saying that the checks
    were left to the jobs because a package of the science stack (:data:`SCIENCE_PACKAGES`) is
    not installed here.
    """
    try:
        from optabs.dataset.curation import Curation
        from optabs.dft.stage import make_engine
        from optabs.filters import FilterSettings
        from optabs.grid import Grid
        from optabs.interpret.settings import InterpretSettings
        from optabs.model.settings import ModelSettings
        from optabs.screen.merit import merits_from_config
        from optabs.screen.settings import ScreenSettings
        from optabs.structures.catalog import catalog_ids
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in SCIENCE_PACKAGES:
            raise
        return (f"settings of the engine, filter, grid, dataset, model and interpret are checked by each job "
                f"({package} is not installed where snakemake runs)")
    if config["source"] == "catalog":
        try:
            catalog_ids(config["catalog"])
        except InputError as exc:
            raise InputError(f"config key 'catalog': {exc}") from None
    engine = config["dft"]["engine"]
    make_engine(engine, config["dft"][engine])
    sections: list[tuple[str, Any]] = [
        ("filter", FilterSettings),
        ("spectra", Grid),
        ("dataset", Curation),
        ("model", ModelSettings),
        ("interpret", InterpretSettings),
        ("screen", ScreenSettings),
    ]
    for section, settings in sections:
        settings.from_config(section, config[section])
    grid = Grid.from_config("spectra", config["spectra"])
    for merit in merits_from_config(config["screen"]):
        merit.check(grid)
    check_rounds(config)
    return None


def check_rounds(config: dict[str, Any]) -> None:
    """Active learning (``screen.rounds`` > 0) computes candidates with the DFT engine, so they must be
    structures the structures stage knows: not with source ``dataset`` and not from ``screen.candidates_dir``."""
    screen = config.get("screen") or {}
    if int(screen.get("rounds", 0)) == 0:
        return
    if config["source"] == "dataset":
        raise ConfigError("config key 'screen.rounds': active learning needs DFT of its picks, and source 'dataset' "
                          "has none; use source files (or mp, catalog) with dft.engine replay to replay a database")
    if screen.get("candidates_dir"):
        raise ConfigError("config key 'screen.candidates_dir': active learning computes only candidates the structures "
                          "stage knows; put the folder's structures in the source (e.g. source: files) and leave "
                          "candidates_dir empty, or set screen.rounds: 0")
