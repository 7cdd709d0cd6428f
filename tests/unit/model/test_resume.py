"""Resumable training: a run interrupted after any epoch and run again ends exactly as an
uninterrupted one; a resume file of another training, or an unreadable one, is named and ignored."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pandas as pd
import pytest
import test_model
import torch
from test_model import GRID, tiny_settings

import optabs.model.train as train_module
from conftest import REPO
from optabs.dataset import write_dataset
from optabs.model.checkpoint import load_checkpoint
from optabs.model.graphs import save_graphs
from optabs.model.resume import RESUME_FILE, RUNTIME_SETTINGS
from optabs.model.stage import train_stage
from optabs.model.train import train

LOSSES = ["epoch", "train_loss", "val_loss"]  # seconds and graphs/s are wall times, never equal


class Killed(Exception):
    """Stands for the kill: raised just after the resume state of an epoch is written."""


@contextmanager
def recording(stop_after: int | None = None):
    """Record the weights after every epoch (``{epoch: state_dict}``, from the resume state
    training writes) and raise :class:`Killed` once the one of epoch ``stop_after`` is written."""
    weights: dict[int, dict[str, torch.Tensor]] = {}
    save = train_module.save_resume

    def recorded(path, payload):
        save(path, payload)
        weights[payload["epoch"]] = {k: v.clone() for k, v in payload["model"].items()}
        if payload["epoch"] == stop_after:
            raise Killed(f"after epoch {stop_after}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "save_resume", recorded)
        yield weights


def assert_same_training(a, b) -> None:
    """Two output folders of ``train`` hold the same best checkpoint and the same history."""
    ha, hb = pd.read_csv(a / "history.csv"), pd.read_csv(b / "history.csv")
    assert ha[LOSSES].equals(hb[LOSSES])
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert ca.keys() == cb.keys()
    assert all(torch.equal(ca["state_dict"][k], cb["state_dict"][k]) for k in ca["state_dict"])
    for c in (ca, cb):  # the checkpoint records the settings of the run that wrote it
        c["settings"] = {k: v for k, v in c["settings"].items() if k not in RUNTIME_SETTINGS}
    assert {k: v for k, v in ca.items() if k != "state_dict"} == {k: v for k, v in cb.items() if k != "state_dict"}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# The toy dataset and its graphs: test_model's fixtures (module-scoped), not a second copy.
dataset = test_model.dataset
graphs = test_model.graphs


@pytest.fixture(scope="module")
def reference(dataset, graphs, tmp_path_factory):
    """An uninterrupted run of ``tiny_settings()`` (6 epochs): its folder and weights per epoch."""
    outdir = tmp_path_factory.mktemp("uninterrupted")
    with recording() as weights:
        result = train(dataset, graphs, tiny_settings(), outdir)
    assert not (outdir / RESUME_FILE).exists()  # removed at the end of training
    return outdir, weights, result


@pytest.mark.parametrize("killed_after", [1, 4, 6])  # 6: after the last epoch, before the file's removal
def test_an_interrupted_run_resumes_after_its_last_epoch_and_ends_as_an_uninterrupted_one(
    dataset, graphs, reference, tmp_path, caplog, killed_after
):
    ref_dir, ref_weights, ref = reference
    with recording(stop_after=killed_after), pytest.raises(Killed):
        train(dataset, graphs, tiny_settings(), tmp_path)
    assert (tmp_path / RESUME_FILE).is_file()
    # What Snakemake's rerun-incomplete deletes: the rule's outputs, not the resume file.
    (tmp_path / "checkpoint.pt").unlink()
    (tmp_path / "history.csv").unlink()

    caplog.set_level(logging.INFO, logger="optabs.model.train")
    # threads, device and the time budget may change between the runs
    with recording() as weights:
        result = train(dataset, graphs, tiny_settings(max_train_minutes=60.0), tmp_path)
    assert f"resuming from {tmp_path / RESUME_FILE}: epoch {killed_after} of 6 done" in caplog.text
    assert result.resumed_after_epoch == killed_after
    assert sorted(weights) == list(range(killed_after + 1, 7))  # only the remaining epochs were trained
    if killed_after < 6:
        assert_same_weights(weights[6], ref_weights[6])  # the last epoch's weights
    assert_same_weights(result.model.state_dict(), ref.model.state_dict())  # the best epoch's
    assert_same_training(tmp_path, ref_dir)
    assert (result.best_epoch, result.best_val_loss) == (ref.best_epoch, ref.best_val_loss)
    assert result.history[LOSSES].equals(ref.history[LOSSES])
    assert not (tmp_path / RESUME_FILE).exists()


def changed_spectrum(dataset: pd.DataFrame) -> pd.DataFrame:
    changed = dataset.copy()
    changed.at[0, "log10_alpha"] = [v + 0.5 for v in changed.at[0, "log10_alpha"]]
    return changed


@pytest.mark.parametrize(
    ("settings", "data", "named"),
    [
        (tiny_settings(learning_rate=1e-3), None, "settings.learning_rate"),
        (tiny_settings(epochs=5), None, "settings.epochs"),  # the one-cycle schedule spans all epochs
        (tiny_settings(), changed_spectrum, "data"),
    ],
)
def test_a_resume_file_of_another_training_is_named_and_ignored(dataset, graphs, tmp_path, caplog, settings, data,
                                                                 named):
    with recording(stop_after=2), pytest.raises(Killed):
        train(dataset, graphs, tiny_settings(), tmp_path / "run")
    other = data(dataset) if data else dataset
    caplog.set_level(logging.INFO)
    result = train(other, graphs, settings, tmp_path / "run")
    warning = f"resume file {tmp_path / 'run' / RESUME_FILE} ignored: it was written by a training with other"
    assert warning in caplog.text and named in caplog.text
    assert result.resumed_after_epoch == 0
    train(other, graphs, settings, tmp_path / "fresh")
    assert_same_training(tmp_path / "run", tmp_path / "fresh")


def drop_optimizer(path) -> None:
    payload = torch.load(path, weights_only=True)
    del payload["optimizer"]
    torch.save(payload, path)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b"\x00" * 10), "it cannot be read"),
        (lambda path: path.write_bytes(path.read_bytes()[:1000]), "it cannot be read"),  # cut short
        (drop_optimizer, "its state does not fit this model (KeyError"),
    ],
    ids=["garbage", "truncated", "incomplete"],
)
def test_an_unreadable_resume_file_is_named_and_training_starts_afresh(dataset, graphs, reference, tmp_path, caplog,
                                                                       damage, reason):
    with recording(stop_after=3), pytest.raises(Killed):
        train(dataset, graphs, tiny_settings(), tmp_path)
    damage(tmp_path / RESUME_FILE)
    caplog.set_level(logging.INFO)
    result = train(dataset, graphs, tiny_settings(), tmp_path)
    assert f"resume file {tmp_path / RESUME_FILE} ignored: {reason}" in caplog.text
    assert result.resumed_after_epoch == 0
    assert_same_training(tmp_path, reference[0])
    assert not (tmp_path / RESUME_FILE).exists()


def test_a_run_stopped_by_its_time_budget_ends_normally_and_removes_the_resume_file(dataset, graphs, tmp_path):
    result = train(dataset, graphs, tiny_settings(max_train_minutes=1e-6), tmp_path)
    assert result.stopped_early and len(result.history) == 1
    assert not (tmp_path / RESUME_FILE).exists()


def test_the_time_budget_counts_the_training_time_of_the_killed_run(dataset, graphs, tmp_path, caplog):
    with recording(stop_after=2), pytest.raises(Killed):
        train(dataset, graphs, tiny_settings(), tmp_path)
    state = torch.load(tmp_path / RESUME_FILE, weights_only=True)
    state["elapsed_s"] = 61.0  # as if the killed run had trained for a minute
    torch.save(state, tmp_path / RESUME_FILE)
    caplog.set_level(logging.INFO)
    result = train(dataset, graphs, tiny_settings(max_train_minutes=1.0), tmp_path)
    assert result.resumed_after_epoch == 2 and result.stopped_early and len(result.history) == 2
    assert "stopping after epoch 2 of 6" in caplog.text
    assert not (tmp_path / RESUME_FILE).exists()


# The rule's script as it runs in a job, with each training batch made 50 ms slower (same numbers),
# so that the kill lands in the middle of training.
KILLABLE_JOB = """
import json, sys, time
import optabs.model.train as train_module
from optabs.grid import Grid
from optabs.model.settings import ModelSettings
from optabs.model.stage import train_stage

batch = train_module.batch
def slow_batch(*args):
    time.sleep(0.05)
    return batch(*args)
train_module.batch = slow_batch
args = json.loads(sys.argv[1])
train_stage(args["dataset"], args["cache"], ModelSettings(**args["settings"]), args["outdir"], Grid(**args["grid"]))
"""


def resumed_epoch(path) -> int:
    try:
        return int(torch.load(path, weights_only=True)["epoch"])
    except Exception:  # not written yet
        return 0


@pytest.mark.slow
def test_a_training_job_killed_mid_epoch_resumes_and_ends_as_an_uninterrupted_one(dataset, graphs, tmp_path, caplog):
    settings = tiny_settings(epochs=16)
    dataset_path, cache = tmp_path / "dataset.parquet", tmp_path / "graphs.pt"
    write_dataset(dataset_path, dataset)
    save_graphs(graphs, cache, settings)
    outdir = tmp_path / "killed"
    args = {"dataset": str(dataset_path), "cache": str(cache), "settings": settings.to_dict(), "outdir": str(outdir),
            "grid": GRID.to_dict()}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen([sys.executable, "-c", KILLABLE_JOB, json.dumps(args)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while resumed_epoch(outdir / RESUME_FILE) < 2 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        job.send_signal(signal.SIGKILL)
    finally:
        output = job.communicate(timeout=60)[0]
    assert job.returncode == -signal.SIGKILL, output
    killed_after = resumed_epoch(outdir / RESUME_FILE)
    assert 2 <= killed_after < 16, output

    caplog.set_level(logging.INFO, logger="optabs.model.train")
    result = train_stage(dataset_path, cache, settings, outdir, GRID)
    assert f"resuming from {outdir / RESUME_FILE}: epoch {killed_after} of 16 done" in caplog.text
    assert result.resumed_after_epoch == killed_after
    uninterrupted = train_stage(dataset_path, cache, settings, tmp_path / "uninterrupted", GRID)
    assert_same_training(outdir, tmp_path / "uninterrupted")
    assert_same_weights(result.model.state_dict(), uninterrupted.model.state_dict())
    assert sorted(p.name for p in outdir.iterdir()) == ["checkpoint.pt", "history.csv"]  # no leftovers
