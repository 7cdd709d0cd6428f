"""Reuse of GPAW's ``.gpw`` files: a calculation is read back only when its fingerprint matches.

Each cached ``<name>.gpw`` has a ``<name>.json`` beside it recording the fingerprint (a hash of
the structure and every setting that shaped it); both are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optabs.dft.gpaw.errors import GpawCalculationError
from optabs.io import write_json

if TYPE_CHECKING:  # pragma: no cover
    from ase import Atoms


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _write_gpw(calc: Any, path: Path, mode: str = "") -> None:
    """Write a gpw file atomically (temporary name beside it, then rename)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.gpw")
    try:
        calc.write(str(tmp), mode=mode)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _cache_meta(path: Path) -> Path:
    return path.with_suffix(".json")


def _load_cached_gpw(material_id: str, path: Path, fingerprint: str, stage: str) -> Any | None:
    """A calculator read from ``path`` if its recorded fingerprint matches, else None.

    A gpw file that belongs to these settings but cannot be read (truncated, corrupted) is an
    error naming the file, not a reason to silently recompute: something damaged the work
    directory and the user should know.
    """
    from gpaw import GPAW

    meta = _cache_meta(path)
    if not (path.exists() and meta.exists()):
        return None
    try:
        recorded = json.loads(meta.read_text()).get("fingerprint")
    except (OSError, json.JSONDecodeError):
        return None
    if recorded != fingerprint:
        return None
    try:
        return GPAW(str(path), txt=None)
    except Exception as exc:
        raise GpawCalculationError(
            f"{material_id}: cached {stage} file {path} cannot be read ({type(exc).__name__}: {exc}); "
            "delete it and rerun",
            path,
            stage,
        ) from exc


def _store_gpw(calc: Any, path: Path, fingerprint: str, mode: str = "") -> None:
    _write_gpw(calc, path, mode)
    write_json(_cache_meta(path), {"fingerprint": fingerprint})


def _structure_key(atoms: Atoms) -> dict[str, Any]:
    return {
        "symbols": atoms.get_chemical_symbols(),
        "cell": np.round(atoms.cell.array, 8).tolist(),
        "positions": np.round(atoms.positions, 8).tolist(),
    }
