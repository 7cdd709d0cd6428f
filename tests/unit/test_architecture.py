"""The package's map: one-way imports (checked by the import-linter contract), short files,
and ``optabs.model`` importable without torch."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "optabs"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_LINES = 500
#: A file may be longer than MAX_LINES only if its docstring says why, with these words.
LONG_FILE_REASON = "longer than 500 lines because"


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    """Run the contract of pyproject.toml on the package under ``tree``/src."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree / "src")}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(SRC, tmp_path / "src" / "optabs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contract_holds_for_the_package():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # core must not import a stage
        ("grid.py", "import optabs.dataset\n", "Imports run one way"),
        # an earlier stage must not import a later one
        ("dft/stage.py", "import optabs.model.settings\n", "Imports run one way"),
        # science must not import the report
        ("chemistry.py", "import optabs.report\n", "Imports run one way"),
        # the old chemistry <-> interpret cycle
        ("interpret/settings.py", "import optabs.interpret.stage\n", "No import cycles"),
    ],
)
def test_the_contract_fails_on_an_upward_import_or_a_cycle(package_copy, module, planted, contract):
    path = package_copy / "src" / "optabs" / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + planted + rest)
    result = lint_imports(package_copy)
    assert result.returncode != 0
    # a contract with ignored imports ends "BROKEN (2 ignored imports)"
    broken = [line for line in result.stdout.splitlines() if re.search(r" BROKEN( \(\d+ ignored imports?\))?$", line)]
    assert any(line.startswith(contract) for line in broken), result.stdout[-3000:]


def test_no_file_over_500_lines_without_a_stated_reason():
    long_files = []
    for path in sorted(SRC.rglob("*.py")):
        n_lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n_lines > MAX_LINES and LONG_FILE_REASON not in docstring:
            long_files.append(f"{path.relative_to(SRC)} ({n_lines} lines)")
    assert not long_files, long_files


def test_one_package_per_stage_each_with_a_stage_module():
    for stage in ("structures", "dft", "spectra", "dataset", "model", "interpret", "report"):
        assert (SRC / stage / "__init__.py").is_file() and (SRC / stage / "stage.py").is_file(), stage


def test_the_workflow_reads_model_settings_without_torch():
    code = "import sys, optabs.model, optabs.model.settings; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")})
    assert result.returncode == 0, result.stderr
