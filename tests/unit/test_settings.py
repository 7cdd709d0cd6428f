"""One settings dialect: every settings class is a frozen Settings read by from_config(section, mapping)."""

import dataclasses

import pytest

from optabs.chemistry import EnvironmentSettings
from optabs.config import Settings
from optabs.dataset.curation import Curation
from optabs.dft.gpaw import GpawSettings
from optabs.errors import ConfigError
from optabs.filters import FilterSettings
from optabs.grid import Grid
from optabs.interpret.settings import InterpretSettings
from optabs.model.settings import ModelSettings
from optabs.structures.mp import MPQuery


def settings_classes() -> list[type]:
    """Every Settings subclass of the package (imports the modules that define them)."""
    import optabs.dft.gpaw  # noqa: F401
    import optabs.dft.vasp  # noqa: F401
    import optabs.model.settings  # noqa: F401

    found, todo = set(), [Settings]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("optabs.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return sorted(found, key=lambda c: c.__qualname__)


CLASSES = settings_classes()


def test_all_eight_published_settings_and_the_new_ones_are_found():
    names = {c.__name__ for c in CLASSES}
    assert {"Grid", "Curation", "FilterSettings", "EnvironmentSettings", "InterpretSettings", "MPQuery",
            "ModelSettings", "GpawSettings", "VaspSettings"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_settings_class_is_frozen_and_defaults_build(cls):
    if cls.__name__ == "ReplaySettings":
        # the one setting without a default: the database to replay (an empty one is refused by name)
        with pytest.raises(ConfigError, match="dataset_dir"):
            cls.from_config("section", {})
        return
    s = cls.from_config("section", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, dataclasses.fields(s)[0].name, None)
    assert s == cls.from_config("section", None)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_unknown_key_is_named_with_the_config_key(cls):
    with pytest.raises(ConfigError) as info:
        cls.from_config("some.section", {"no_such_setting": 1})
    message = str(info.value)
    assert message.startswith("config key 'some.section': ") and "no_such_setting" in message


@pytest.mark.parametrize(
    ("cls", "section", "mapping", "words"),
    [
        (Grid, "spectra", {"e_min_ev": 5.0, "e_max_ev": 1.0}, "e_max_ev': expected a finite number > 5"),
        (Grid, "spectra", {"e_min_ev": -1.0}, "e_min_ev"),
        (ModelSettings, "model", {"epochs": 0}, "model setting 'epochs': expected an integer >= 1, got 0"),
        (GpawSettings, "dft.gpaw", {"xc": "LDA"}, "GPAW setting 'xc': expected one of PBEsol, PBE"),
        (Grid, "spectra", {"n_points": 1}, "n_points"),
        (InterpretSettings, "interpret", {"n_clusters": 0}, "n_clusters"),
        (FilterSettings, "filter", {"required_elements": "O"}, "required_elements"),
        (MPQuery, "mp", {"anions": []}, "anions"),
    ],
)
def test_a_bad_value_is_named_with_its_section(cls, section, mapping, words):
    with pytest.raises(ConfigError) as info:
        cls.from_config(section, mapping)
    assert str(info.value).startswith(f"config key '{section}': ") and words in str(info.value)


def test_presets_and_overrides():
    from optabs.dft.gpaw import GpawSettings
    from optabs.model.settings import ModelSettings

    demo = GpawSettings.from_config("dft.gpaw", {})  # the GPAW default preset is the demo
    assert demo.preset_name == "demo" and demo.kdensity_nscf == 3.0
    converged = GpawSettings.from_config("dft.gpaw", {"preset": "converged", "ecut_ev": 700.0})
    assert converged.preset_name == "converged" and converged.ecut_ev == 700.0 and converged.kdensity_nscf == 5.0
    assert ModelSettings.from_config("model", {}).epochs == 500  # paper
    assert ModelSettings.from_config("model", {"preset": "cpu", "seed": 7}).seed == 7
    with pytest.raises(ConfigError, match=r"^config key 'model': unknown model preset 'gpu'"):
        ModelSettings.from_config("model", {"preset": "gpu"})
    with pytest.raises(ConfigError, match="has no presets"):
        Curation.from_config("dataset", {"preset": "strict"})


def test_lists_from_yaml_become_tuples_so_settings_compare_and_hash():
    a = FilterSettings.from_config("filter", {"required_elements": ["S"]})
    b = FilterSettings(required_elements=("S",))
    assert a == b and hash(a) == hash(b)
    assert EnvironmentSettings.from_config("environments", {"min_score": 0.6}).min_score == 0.6


def test_to_dict_round_trips():
    grid = Grid(e_max_ev=10.0, n_points=1001)
    assert Grid.from_config("spectra", grid.to_dict()) == grid
