"""PAW datasets: find GPAW's, generate PBEsol ones (GPAW ships none), and record which were used.

PBEsol: :func:`ensure_pbesol_setups` generates the datasets with GPAW's own generator
(``gpaw dataset -f PBEsol -w X`` through its Python API) into ``setups_dir``, matching the valence
of the shipped PBE dataset (Mg, Ca, Sr, Ba, K, Rb, Cs, Ti, Zr, ... get their semicore states, as
the shipped ones have) plus per-element fixes (:data:`SETUP_OVERRIDES`). gpaw is imported lazily.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optabs.dft.gpaw.errors import SetupGenerationError, _require_gpaw
from optabs.dft.gpaw.settings import default_setups_dir

#: Per-element generator options that differ from "match the shipped PBE valence".
#: Zn: the generator's default (no second d projector) gives a wrong ZnO gap (0.13 vs 0.63 eV
#: with the shipped dataset); these options agree with it.
SETUP_OVERRIDES: dict[str, dict[str, str]] = {
    "Zn": {"projectors": "4s,s,4p,p,3d,d", "radius": "2.1"},
}



def _register_setup_path(path: Path) -> None:
    """Put ``path`` first on GPAW's dataset search path of this process (idempotent)."""
    gpaw = _require_gpaw()
    entry = str(path)
    if entry in gpaw.setup_paths:
        gpaw.setup_paths.remove(entry)
    gpaw.setup_paths.insert(0, entry)


def _unregister_setup_path(path: Path) -> None:
    gpaw = _require_gpaw()
    with contextlib.suppress(ValueError):
        gpaw.setup_paths.remove(str(path))


def _has_dataset(element: str, xc: str) -> bool:
    try:
        find_dataset(element, xc)
    except (RuntimeError, OSError):
        return False
    return True


def find_dataset(element: str, xc: str, tag: str | None = None) -> Path:
    """Path of the dataset GPAW would use for ``element`` and functional ``xc`` (raises if none)."""
    _require_gpaw()
    from gpaw.setup_data import search_for_file

    name = f"{element}.{tag}.{xc}" if tag else f"{element}.{xc}"
    filename, _ = search_for_file(name)
    return Path(filename)


def dataset_valence(path: Path) -> float:
    """Number of valence electrons recorded in a PAW dataset file (plain or gzipped XML)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(4096).decode("utf-8", "replace")
    match = re.search(r'valence="([0-9.]+)"', head)
    if not match:
        raise SetupGenerationError(f"no valence in the header of PAW dataset {path}")
    return float(match.group(1))


def generator_options(element: str) -> dict[str, Any]:
    """Options for GPAW's dataset generator: the shipped PBE dataset's valence + :data:`SETUP_OVERRIDES`.

    The valence decides semicore states (Mg, Ca, Sr, Ba: 10; K, Rb, Cs: 9; Ti, Zr: 12; ...). Where
    the generator has no parameter set with exactly that valence (Na 7, Ag 17, Ni 16, Pd 16, ...),
    the smallest larger one is taken, so no state the shipped dataset treats as valence is frozen.
    """
    _require_gpaw()
    from gpaw.atom.generator2 import parameters

    try:
        shipped = int(round(dataset_valence(find_dataset(element, "PBE"))))
    except (RuntimeError, OSError) as exc:
        raise SetupGenerationError(f"no shipped PBE dataset for {element} to match: {exc}") from exc
    available = sorted(
        int(key[len(element):]) for key in parameters if re.fullmatch(rf"{element}\d+", key)
    )
    if not available:
        raise SetupGenerationError(f"GPAW's dataset generator has no parameters for {element}")
    larger = [n for n in available if n >= shipped]
    electrons = larger[0] if larger else available[-1]
    return {"electrons": electrons, "shipped_pbe_valence": shipped, **SETUP_OVERRIDES.get(element, {})}


def _generate_dataset(element: str, xc: str, dest_dir: Path, tag: str | None = None) -> tuple[Path, str, dict]:
    """Run GPAW's generator for one element; write ``<el>[.<tag>].<xc>`` into ``dest_dir``.

    Returns (path, generator log, options). Not atomic by itself: callers write into a private
    directory and rename.
    """
    _require_gpaw()
    import argparse

    from gpaw.atom.generator2 import CLICommand, generate, get_parameters

    options = generator_options(element)
    argv = [element, "-f", xc, "-e", str(options["electrons"])]
    if "projectors" in options:
        argv += ["-P", options["projectors"]]
    if "radius" in options:
        argv += ["-r", options["radius"]]
    parser = argparse.ArgumentParser(prog="gpaw dataset")
    CLICommand.add_arguments(parser)
    args = parser.parse_args(argv)
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            kwargs = get_parameters(element, args)
            gen = generate(**kwargs)
            if not gen.check_all():
                raise SetupGenerationError(f"GPAW's checks rejected the generated {element}.{xc} dataset")
            setup = gen.make_paw_setup(tag)
            setup.generatordata = ",\n    ".join(f"{k}={v!r}" for k, v in kwargs.items() if v is not None)
            path = dest_dir / (f"{element}.{tag}.{xc}" if tag else f"{element}.{xc}")
            setup.write_xml(str(path))
    except SetupGenerationError:
        raise
    except Exception as exc:  # the generator raises bare exceptions of many kinds
        raise SetupGenerationError(
            f"generating the {xc} dataset for {element} failed ({type(exc).__name__}: {exc}); "
            f"generator options {options}"
        ) from exc
    return path, log.getvalue(), {**options, "argv": " ".join(["gpaw", "dataset", *argv])}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_pbesol_setups(elements: Sequence[str], setups_dir: str | Path | None = None) -> dict[str, Path]:
    """Make sure ``<el>.PBEsol`` datasets exist in ``setups_dir`` and are on GPAW's search path.

    Missing ones are generated (~0.3 s each) with :func:`generator_options`; existing ones are
    kept (idempotent). Safe when several processes generate at once: each element is generated
    under an exclusive file lock into a private temporary directory and renamed into place, so a
    reader only ever sees a complete file. The generator's output goes to
    ``setups_dir/logs/<el>.PBEsol.log``.

    Returns {element: dataset path}. Raises :class:`SetupGenerationError` naming the element.
    """
    setups_dir = Path(setups_dir) if setups_dir else default_setups_dir()
    setups_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for element in sorted(set(elements)):
        target = setups_dir / f"{element}.PBEsol"
        if not target.exists():
            with open(setups_dir / f".{element}.PBEsol.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not target.exists():  # another process may have finished meanwhile
                    tmp = Path(tempfile.mkdtemp(prefix=f".gen-{element}-", dir=setups_dir))
                    try:
                        path, log, options = _generate_dataset(element, "PBEsol", tmp)
                        (setups_dir / "logs").mkdir(exist_ok=True)
                        (setups_dir / "logs" / f"{element}.PBEsol.log").write_text(
                            f"# {options['argv']}\n# options: {options}\n{log}"
                        )
                        os.replace(path, target)
                    finally:
                        shutil.rmtree(tmp, ignore_errors=True)
        paths[element] = target
    _register_setup_path(setups_dir)
    return paths


def _dataset_record(element: str, xc: str) -> dict[str, Any]:
    """Which dataset GPAW uses for ``element`` and ``xc``: file, SHA-256 and valence."""
    path = find_dataset(element, xc)
    return {"file": str(path), "sha256": _sha256(path), "valence": dataset_valence(path)}
