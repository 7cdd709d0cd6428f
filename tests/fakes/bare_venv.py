"""A virtual environment holding only some distributions of this one: no pip, no network.

``bare_venv(dest, ["snakemake", "pandas"])`` makes a venv whose site-packages has the named
distributions and everything they require (markers evaluated, extras left out), each linked from
this interpreter's site-packages file by file, and nothing else: ``import pymatgen`` fails there.
It is how the tests get "an environment with only Snakemake" without a package index.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import sysconfig
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(names: list[str]) -> dict[str, md.Distribution]:
    """The installed distributions ``names`` and their requirements, recursively (no extras)."""
    env = default_environment()
    found: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        dist = md.distribution(name)
        found[name] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(req.name)
    return found


def bare_venv(dest: Path, names: list[str], extra_paths: list[Path] = ()) -> Path:
    """Create the venv at ``dest`` with ``names`` (and what they need) and ``extra_paths`` on its
    path (a ``.pth`` file, as ``pip install -e`` writes for a source folder); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True, timeout=120)
    python = dest / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"]).resolve()
    for dist in closure(names).values():
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            try:
                relative = source.relative_to(ours)
            except ValueError:
                continue  # scripts in bin/, data outside site-packages
            if relative.suffix == ".pth" or not source.is_file():
                continue
            target = site / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(source)
    if extra_paths:
        (site / "extra-paths.pth").write_text("".join(f"{path}\n" for path in extra_paths))
    return python
