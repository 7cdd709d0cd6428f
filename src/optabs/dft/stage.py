"""The ``dft`` stage for one material: pick the engine, run it, record a result or a failure.

Whatever goes wrong inside the calculation (no convergence, an engine error, corrupt output,
even an unexpected exception) becomes a :class:`~optabs.dft.FailureRecord` in ``result.json``
so the other materials go on and later stages skip this one. Only a killed process (timeout,
node failure) leaves no record: the job fails and Snakemake retries it.
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from optabs.dft.result import CalculationError, DielectricResult, Engine, FailureRecord, write_result
from optabs.errors import ConfigError, InputError

log = logging.getLogger(__name__)

ENGINES = ("gpaw", "vasp", "replay")


def make_engine(name: str, settings: dict[str, Any] | None) -> Engine:
    """The engine called ``name`` with its config section (``dft.gpaw``, ``dft.vasp`` or ``dft.replay``).

    Raises :class:`ConfigError` naming the key for an unknown engine or setting: the message
    starts with ``config key 'dft.<engine>'`` (``'dft.engine'`` for an unknown engine).
    """
    if name == "gpaw":
        from optabs.dft.gpaw import GpawEngine, GpawSettings

        return GpawEngine(GpawSettings.from_config("dft.gpaw", settings))
    if name == "vasp":
        from optabs.dft.vasp import VaspEngine, VaspSettings

        return VaspEngine(VaspSettings.from_config("dft.vasp", settings))
    if name == "replay":
        from optabs.dft.replay import ReplayEngine, ReplaySettings

        return ReplayEngine(ReplaySettings.from_config("dft.replay", settings))
    raise ConfigError(f"config key 'dft.engine': unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def job_settings(
    engine_name: str, settings: dict[str, Any] | None, threads: int, mpi: str | None = None, tasks: int | None = None
) -> dict[str, Any]:
    """An engine's config section with what the job was given: its threads and, for VASP, its launcher.

    GPAW runs with ``threads`` BLAS threads. VASP runs as ``<mpi> -n <tasks> <command>`` when the
    job has an ``mpi`` resource (``srun`` on SLURM, where the job's allocation holds ``tasks``
    tasks), and as ``<command>`` when ``mpi`` is empty or absent. Raises :class:`ConfigError` for
    an ``mpi`` launcher without a positive ``tasks``.
    """
    settings = dict(settings or {})
    if engine_name == "gpaw":
        settings["threads"] = int(threads)
    elif engine_name == "vasp" and mpi and str(mpi).strip():
        if not isinstance(tasks, int) or tasks < 1:
            raise ConfigError(
                f"rule dft_vasp: resource 'mpi' is {mpi!r} but 'tasks' is {tasks!r}; set the number of MPI "
                "tasks, e.g. --set-resources dft_vasp:tasks=32"
            )
        command = settings.get("command", "vasp_std")
        command = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
        settings["command"] = [*shlex.split(str(mpi)), "-n", str(tasks), *command]
    return settings


def kept_structure(kept_path: str | Path, material_id: str, candidates_path: str | Path | None = None) -> Structure:
    """The structure of ``material_id`` in the kept-structures table ``kept_path`` or, failing that,
    in the screening candidates table ``candidates_path`` (active learning computes shortlisted ones)."""
    paths = [kept_path] if candidates_path is None else [kept_path, candidates_path]
    for path in paths:
        table = pd.read_parquet(path, columns=["material_id", "structure"], filters=[("material_id", "==", material_id)])
        if not table.empty:
            return Structure.from_str(table.structure.iloc[0], fmt="json")
    raise InputError(f"material {material_id} is not in {' nor in '.join(map(str, paths))}; rerun the structures stage")


def run_material(
    material_id: str,
    kept_path: str | Path,
    engine_name: str,
    engine_settings: dict[str, Any] | None,
    workdir: str | Path,
    result_path: str | Path,
    log_path: str = "",
    candidates_path: str | Path | None = None,
) -> DielectricResult | FailureRecord:
    """Compute one material of ``kept_path`` (or ``candidates_path``) and write ``result_path``
    (success or failure record, atomically)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(engine_name, engine_settings)
    start = time.monotonic()
    try:
        structure = kept_structure(kept_path, material_id, candidates_path)
        result = engine.run(material_id, structure, workdir)
        log.info(
            "%s: %s gap %.3f eV, corrected %.3f eV (%s), %.1f s",
            material_id, engine_name, result.dft_gap_ev, result.corrected_gap_ev, result.gap_method,
            time.monotonic() - start,
        )
        outcome: DielectricResult | FailureRecord = result
    except CalculationError as exc:
        log.error("%s failed: %s", material_id, exc)
        outcome = FailureRecord(
            material_id, engine_name, str(exc), stage=getattr(exc, "stage", ""), log_path=exc.log_path or log_path
        )
    except Exception as exc:  # one failing material never stops the others
        log.exception("%s failed unexpectedly", material_id)
        outcome = FailureRecord(material_id, engine_name, f"{type(exc).__name__}: {exc}", log_path=log_path)
    write_result(result_path, outcome)
    return outcome
