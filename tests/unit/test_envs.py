"""Every conda env in envs/ holds what its rules import: a static check, without conda or network.

For each rule of the Snakefile and rules/*.smk the test reads its ``conda:`` env and its ``script:``,
collects the modules the script imports and, transitively, every optabs module those reach, maps
each third-party top-level module to its distribution (``yaml`` -> pyyaml) and asserts that the env
lists that distribution by name, in its conda or its pip section.

What is followed, and why:

- Every import reachable within optabs, at module level *and* inside functions. The stage entry
  points import lazily (``make_engine`` imports the engine, ``optabs.chemistry`` imports matminer
  when it first needs it), and a rule's code path may run any of them.
- Not imports under ``if TYPE_CHECKING:``: they never run.
- Not the other DFT engine: ``dft_gpaw`` and ``dft_vasp`` are one rule whose env and name come from
  ``dft.engine`` (the ``DFT_ENGINE`` placeholder), and ``make_engine`` imports only the configured
  engine's package, inside a function. So for each engine the lazy imports of the other engines'
  packages are dropped (ENGINE_PACKAGES); an import of one at module level would still count.
- An import inside ``try: ... except ImportError`` is optional only where OPTIONAL says why.
- What a package imports only at run time is added by hand (RUNTIME_PARTNERS: pandas needs pyarrow
  for parquet).
- Directly imported means listed: a distribution that optabs imports is named in the env even where
  another listed one happens to pull it in (spglib comes with pymatgen today), so its version is pinned
  and a dependency change upstream cannot remove it.
- ``snakemake`` need not be in any env: scripts receive the ``snakemake`` object from the preamble,
  which appends the head process's ``sys.path`` to the job's. That same fallback is why a job run
  with ``--sdm conda`` silently imports what its env lacks from the head's venv, and why this test
  exists.

How optabs itself reaches an env is checked separately (test_optabs_reaches_every_env).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import itertools
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]

#: Directives that make a rule run something; a rule with none is a target rule, run by Snakemake itself.
ACTIONS = {"script", "shell", "run", "notebook", "wrapper", "cwl", "template_engine"}
#: ``run:`` code runs inside the Snakemake process, where a conda env does not apply.
NEEDS_ENV = ACTIONS - {"run"}

#: Top-level modules shipped by more than one installed distribution: the one an env should name.
DIST_OVERRIDES = {
    # The import package comes from pymatgen-core (pymatgen-io-validation adds pymatgen.io.validation);
    # the envs pin the `pymatgen` release, which requires the matching pymatgen-core.
    "pymatgen": "pymatgen",
}
#: Distributions imported only inside ``try/except ImportError``, with the reason an env may lack them.
OPTIONAL = {
    "threadpoolctl": "optabs.dft.gpaw.engine limits already-loaded BLAS pools with it where it is installed; "
    "a second line of defence only (scikit-learn brings it to the dev venv, not to dft-gpaw)",
}
#: Distributions that a needed one imports only at run time, invisible to this check: needed with it.
RUNTIME_PARTNERS = {
    "pandas": {"pyarrow": "optabs reads and writes every table as parquet, which pandas does through pyarrow"},
}
#: Rule placeholders whose value picks a package that other values of it must not pull in.
ENGINE_PACKAGES = {"DFT_ENGINE": "optabs.dft.{}"}
#: Env entries that are tools, not imported packages: pinned, but not compared with the dev venv.
TOOLS = {"python", "pip"}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares it (``PyYAML`` == ``pyyaml``, ``mp_api`` == ``mp-api``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- rules ------------------------------------------------------------------------------------

RULE_START = re.compile(r"^(?P<indent>\s*)(?:rule|checkpoint)(?:\s+(?P<name>\w+))?\s*:\s*(#.*)?$")
DIRECTIVE = re.compile(r"^(?P<indent>\s+)(?P<key>\w+):\s*(?P<value>.*)$")


@dataclass
class Rule:
    """One rule as written: its directives' source text, by directive name."""

    path: Path
    line: int
    name: str | None
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line} ({self.name or self.directives.get('name', '?')})"


def parse_rules(path: Path) -> list[Rule]:
    """The rules and checkpoints of one Snakefile; a directive's value is its lines joined."""
    lines = path.read_text().splitlines()
    rules = []
    i = 0
    while i < len(lines):
        start = RULE_START.match(lines[i])
        if not start:
            i += 1
            continue
        rule = Rule(path, i + 1, start["name"])
        rule_indent, directive_indent, key = len(start["indent"]), None, None
        i += 1
        while i < len(lines):
            line, stripped = lines[i], lines[i].strip()
            if stripped and len(line) - len(line.lstrip()) <= rule_indent:
                break
            i += 1
            if not stripped or stripped.startswith("#"):
                continue
            directive = DIRECTIVE.match(line)
            if directive and directive_indent in (None, len(directive["indent"])):
                directive_indent, key = len(directive["indent"]), directive["key"]
                rule.directives[key] = directive["value"]
            elif key:
                rule.directives[key] = f"{rule.directives[key]} {stripped}".strip()
        rules.append(rule)
    return rules


@functools.cache
def placeholder_values() -> dict[str, tuple[str, ...]]:
    """Module-level names the rules put into f-strings, with every value the config schema allows."""
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    return {"DFT_ENGINE": tuple(schema["properties"]["dft"]["properties"]["engine"]["enum"])}


def placeholders(source: str) -> set[str]:
    """The names interpolated into a directive written as an f-string."""
    tree = ast.parse(source.rstrip(","), mode="eval").body
    if isinstance(tree, ast.JoinedStr):
        values = [value.value for value in tree.values if isinstance(value, ast.FormattedValue)]
        return {value.id for value in values if isinstance(value, ast.Name)}
    return set()


def evaluate(source: str, binding: dict[str, str]) -> str:
    """A directive's string value (a literal or an f-string of PLACEHOLDERS) under ``binding``."""
    tree = ast.parse(source.rstrip(","), mode="eval").body
    if isinstance(tree, ast.Constant) and isinstance(tree.value, str):
        return tree.value
    if isinstance(tree, ast.JoinedStr):
        parts = []
        for value in tree.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value)
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) and value.value.id in binding:
                parts.append(binding[value.value.id])
            else:
                raise ValueError(f"cannot evaluate {ast.unparse(value)} in {source}: add it to placeholder_values()")
        return "".join(parts)
    raise ValueError(f"{source} is not a string or an f-string of known names: extend evaluate()")


@dataclass(frozen=True)
class RuleInstance:
    """A rule with one value for each placeholder in its name, env and script."""

    name: str
    env: Path
    script: Path
    binding: tuple[tuple[str, str], ...]

    @property
    def pruned(self) -> frozenset[str]:
        """Packages whose lazy imports this instance never runs: the other engines'."""
        out = set()
        for key, value in self.binding:
            if key in ENGINE_PACKAGES:
                out |= {ENGINE_PACKAGES[key].format(other) for other in placeholder_values()[key] if other != value}
        return frozenset(out)


@functools.cache
def all_rules() -> tuple[Rule, ...]:
    return tuple(rule for path in RULE_FILES for rule in parse_rules(path))


@functools.cache
def script_rules() -> tuple[RuleInstance, ...]:
    """Every (rule, placeholder values) that runs a script in a conda env."""
    out = []
    for rule in all_rules():
        if "script" not in rule.directives or "conda" not in rule.directives:
            continue
        sources = [rule.directives[key] for key in ("name", "conda", "script") if key in rule.directives]
        names = sorted(set().union(*map(placeholders, sources)))
        for values in itertools.product(*(placeholder_values()[name] for name in names)):
            binding = dict(zip(names, values))
            name = evaluate(rule.directives["name"], binding) if "name" in rule.directives else rule.name
            out.append(RuleInstance(
                name,
                (rule.path.parent / evaluate(rule.directives["conda"], binding)).resolve(),
                (rule.path.parent / evaluate(rule.directives["script"], binding)).resolve(),
                tuple(binding.items()),
            ))
    return tuple(out)


# --- imports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One import statement's module, where it is, and whether it runs lazily or is guarded."""

    module: str
    importer: str
    lazy: bool
    guarded: bool
    names: tuple[str, ...] = ()


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = set(re.findall(r"\w+", ast.unparse(handler.type))) if handler.type is not None else set()
    return bool({"ImportError", "ModuleNotFoundError"} & caught)


def imports_of(path: Path, module: str) -> list[Import]:
    """Every import statement of one file, except those under ``if TYPE_CHECKING:``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, module, lazy, guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            found.append(Import(base, module, lazy, guarded, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, lazy, guarded)
        elif isinstance(node, ast.Try):
            catches = any(map(_catches_import_error, node.handlers))
            for child in node.body:
                visit(child, lazy, guarded or catches)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, lazy, guarded)
        else:
            inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            for child in ast.iter_child_nodes(node):
                visit(child, inner, guarded)

    visit(ast.parse(path.read_text(), str(path)), lazy=False, guarded=False)
    return found


def optabs_file(module: str) -> Path | None:
    path = SRC.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def _within(module: str, packages: frozenset[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def third_party_imports(script: Path, pruned: frozenset[str] = frozenset()) -> dict[str, list[Import]]:
    """Top-level third-party module -> the imports of it reachable from ``script`` through optabs."""
    found: dict[str, list[Import]] = {}
    seen: set[str] = set()
    todo = [("<script>", script)]
    while todo:
        module, path = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imp in imports_of(path, module):
            top = imp.module.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if top != "optabs":
                found.setdefault(top, []).append(imp)
                continue
            if imp.lazy and _within(imp.module, pruned):
                continue
            # Importing a.b.c runs a, a.b and a.b.c; `from a.b import c` also runs a.b.c if it is a module.
            parts = imp.module.split(".")
            targets = [".".join(parts[: i + 1]) for i in range(len(parts))]
            targets += [f"{imp.module}.{name}" for name in imp.names if optabs_file(f"{imp.module}.{name}")]
            for target in targets:
                target_path = optabs_file(target)
                assert target_path is not None, f"{imp.importer} imports {imp.module}, which is not in {SRC}"
                todo.append((target, target_path))
    return found


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution(top: str) -> str:
    """The distribution (normalised) that provides top-level module ``top`` in the dev venv."""
    if top in DIST_OVERRIDES:
        return normalise(DIST_OVERRIDES[top])
    dists = sorted({normalise(name) for name in _packages_distributions().get(top, [])})
    assert dists, f"no installed distribution provides {top!r}: install it in the dev venv or add it to DIST_OVERRIDES"
    assert len(dists) == 1, f"{top!r} comes from {dists}: say which one envs list in DIST_OVERRIDES"
    return dists[0]


def needed_distributions(rule: RuleInstance) -> dict[str, list[Import]]:
    """Distribution -> the imports that need it, for one rule instance (optional ones left out)."""
    needed: dict[str, list[Import]] = {}
    for top, imports in third_party_imports(rule.script, rule.pruned).items():
        dist = distribution(top)
        if dist in OPTIONAL and all(imp.guarded for imp in imports):
            continue
        needed.setdefault(dist, []).extend(imports)
    for dist, partners in RUNTIME_PARTNERS.items():
        for partner in partners:
            if dist in needed:
                needed.setdefault(partner, []).extend(needed[dist])
    return needed


# --- envs -------------------------------------------------------------------------------------

CONDA_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?P<pin>=.*)?$")
PIP_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(?P<pin>[=<>!~].*)?$")


@dataclass
class Env:
    """What an env file lists: distribution -> exact version (None where not pinned), and path entries."""

    path: Path
    conda: dict[str, str | None]
    pip: dict[str, str | None]
    paths: list[str]
    options: list[str]

    @property
    def distributions(self) -> set[str]:
        return set(self.conda) | set(self.pip)


def read_env(path: Path) -> Env:
    env = Env(path, {}, {}, [], [])
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                line = line.strip()
                if line.startswith("-e") or line.startswith((".", "/", "file:")):
                    env.paths.append(line)
                elif line.startswith("-"):
                    env.options.append(line)
                else:
                    spec = PIP_SPEC.match(line)
                    assert spec, f"{path.name}: cannot read pip entry {line!r}"
                    pin = spec["pin"] or ""
                    env.pip[normalise(spec["name"])] = pin[2:].strip() if pin.startswith("==") else None
        else:
            spec = CONDA_SPEC.match(str(entry).strip())
            assert spec, f"{path.name}: cannot read conda entry {entry!r}"
            pin = (spec["pin"] or "").lstrip("=").strip()
            env.conda[normalise(spec["name"])] = pin if pin and not re.search(r"[*<>!,|]", pin) else None
    return env


def missing_distributions(rule: RuleInstance, env_path: Path | None = None) -> dict[str, list[Import]]:
    """The distributions ``rule`` imports that its env (or ``env_path``) does not list."""
    listed = read_env(env_path or rule.env).distributions
    return {dist: imports for dist, imports in needed_distributions(rule).items() if dist not in listed}


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return None


def _describe(missing: dict[str, list[Import]]) -> str:
    lines = []
    for dist, imports in sorted(missing.items()):
        where = sorted({f"{imp.importer}{' (in a function)' if imp.lazy else ''}" for imp in imports})
        why = next((f"with {owner}: {partners[dist]}" for owner, partners in RUNTIME_PARTNERS.items() if dist in partners), "")
        lines.append(f"  {dist}=={_installed_version(dist) or '?'} (dev venv), {why or 'imported by ' + ', '.join(where[:4])}")
    return "\n".join(lines)


# --- tests ------------------------------------------------------------------------------------


def test_every_rule_that_runs_something_names_a_conda_env():
    unchecked = [rule.label for rule in all_rules() if NEEDS_ENV & rule.directives.keys() and "conda" not in rule.directives]
    assert not unchecked, f"rules without a conda: directive (only target rules, which run nothing, may lack one): {unchecked}"


def test_every_script_is_run_by_a_rule_this_test_reads():
    """A guard for the rule parser: a rule it missed would go unchecked."""
    used = {rule.script for rule in script_rules()}
    scripts = set((REPO / "scripts").glob("*.py"))
    assert used == scripts, f"scripts no rule with a conda env runs, or not in scripts/: {sorted(p.name for p in used ^ scripts)}"
    assert {rule.env for rule in script_rules()} == set((REPO / "envs").glob("*.yaml"))


@pytest.mark.parametrize("rule", script_rules(), ids=lambda rule: f"{rule.name}-{rule.env.name}")
def test_env_holds_everything_its_rule_imports(rule):
    missing = missing_distributions(rule)
    if missing:
        pytest.fail(f"envs/{rule.env.name} lacks what rule {rule.name} ({rule.script.name}) imports; add, pinned:\n"
                    + _describe(missing))


def test_the_check_fails_when_jsonschema_is_removed_from_the_ml_env(tmp_path):
    ml = REPO / "envs" / "ml.yaml"
    stripped = tmp_path / "ml.yaml"
    stripped.write_text("".join(line for line in ml.read_text().splitlines(keepends=True) if "jsonschema" not in line))
    train = next(rule for rule in script_rules() if rule.name == "model_train")
    assert train.env == ml
    assert not missing_distributions(train)
    missing = missing_distributions(train, stripped)
    assert set(missing) == {"jsonschema"}
    assert {imp.importer for imp in missing["jsonschema"]} == {"optabs.config"}


def test_each_engine_needs_its_own_engine_and_not_the_other():
    """The DFT rule's instances: lazy imports of gpaw count, the other engine's package does not."""
    by_name = {rule.name: needed_distributions(rule) for rule in script_rules() if rule.name.startswith("dft_")}
    assert set(by_name) == {f"dft_{engine}" for engine in placeholder_values()["DFT_ENGINE"]}
    assert {"gpaw", "ase"} <= by_name["dft_gpaw"].keys() and "custodian" not in by_name["dft_gpaw"]
    assert "custodian" in by_name["dft_vasp"] and not {"gpaw", "ase"} & by_name["dft_vasp"].keys()
    assert all(imp.lazy for imp in by_name["dft_gpaw"]["gpaw"])
    # threadpoolctl is reached, but only inside try/except ImportError, so it is optional.
    gpaw = next(rule for rule in script_rules() if rule.name == "dft_gpaw")
    assert all(imp.guarded for imp in third_party_imports(gpaw.script, gpaw.pruned)["threadpoolctl"])


@pytest.mark.parametrize("env_path", sorted((REPO / "envs").glob("*.yaml")), ids=lambda path: path.name)
def test_every_entry_is_pinned_to_the_dev_venv_version(env_path):
    env = read_env(env_path)
    unpinned = [name for name, version in {**env.conda, **env.pip}.items() if version is None]
    assert not unpinned, f"{env_path.name}: pin {unpinned} (conda `name=version`, pip `name==version`)"
    differ = {
        name: (version, _installed_version(name))
        for name, version in {**env.conda, **env.pip}.items()
        if name not in TOOLS and _installed_version(name) not in (None, version)
    }
    assert not differ, f"{env_path.name}: pinned version differs from the dev venv's (pinned, installed): {differ}"


def how_optabs_reaches(env_path: Path) -> str | None:
    """How jobs in this env import optabs, or None where nothing provides it."""
    deploy = env_path.with_suffix(".post-deploy.sh")
    if deploy.is_file() and "pip install" in deploy.read_text():
        return f"envs/{deploy.name} pip-installs it"
    return None


@pytest.mark.parametrize("env_path", sorted((REPO / "envs").glob("*.yaml")), ids=lambda path: path.name)
def test_optabs_reaches_every_env(env_path):
    env = read_env(env_path)
    # Snakemake copies the env file to .snakemake/conda/<hash>.yaml before `conda env create`, and
    # conda runs pip from the env file's folder, so `-e ..` would point at .snakemake/, not at the
    # repository. Snakemake's way to install a local package is envs/<name>.post-deploy.sh.
    relative = [entry for entry in env.paths if not re.sub(r"^-e\s*", "", entry).startswith(("/", "file:"))]
    assert not relative, f"{env_path.name}: relative pip paths {relative} break under Snakemake; use a post-deploy script"
    assert how_optabs_reaches(env_path), f"nothing installs optabs in {env_path.name} or puts src/ on its path"
    # The package's requires-python must admit the env's Python.
    project = (REPO / "pyproject.toml").read_text()
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', project, re.M)[1]
    python = env.conda["python"]
    assert f"{python}.0" in SpecifierSet(requires), f"{env_path.name}: python={python} but optabs requires {requires}"
