# The two commands a new user runs: `make demo` and `make test`. Both set themselves up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.optabs-setup
export GPAW_CONFIG := $(CURDIR)/resources/gpaw-siteconfig.py
# One BLAS thread per process: GPAW and numpy oversubscribe a small machine otherwise.
export OPENBLAS_NUM_THREADS := 1
export OMP_NUM_THREADS := 1
CORES ?= $(shell nproc)

.PHONY: setup demo test test-fast lint-code bench lint dryrun slurm-profile clean

setup: $(STAMP)

# System packages, then the venv: torch pinned first (the CPU wheel on disk; an open range
# would pull a multi-GB CUDA build), then the package with its pinned dependencies.
$(STAMP): pyproject.toml tools/install-system.sh resources/gpaw-siteconfig.py
	bash tools/install-system.sh
	test -x $(PY) || python3.11 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	# GPAW compiled here with resources/gpaw-siteconfig.py (FFTW): never a cached wheel, rebuilt when the config changes
	$(PY) -m pip install -q --no-cache-dir --no-binary gpaw --force-reinstall --no-deps "$$(grep -o 'gpaw==[0-9.]*' pyproject.toml)"
	$(PY) -m pip install -q -e '.[workflow,gpaw,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --profile profiles/local --cores $(CORES)
	@echo "Results in results/; report: results/report/index.html"

test: $(STAMP) lint-code
	$(PY) -m pytest -q --durations=30

# ruff (style, imports, docstrings of the public API), snakefmt (the Snakefile and rules/*.smk;
# pyproject.toml [tool.snakefmt]), mypy, and the import-layer contract
# (pyproject.toml [tool.importlinter]: imports run core -> science -> stages -> report -> cli).
lint-code: $(STAMP)
	$(VENV)/bin/ruff check src scripts tests benchmarks
	$(VENV)/bin/snakefmt --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# `make bench QUICK=1`: every benchmark at small sizes (minutes), written to benchmarks/work/.
bench: $(STAMP)
	$(PY) -m pip install -q vise==0.9.6   # benchmark-only: the reference Kramers-Kronig
	$(if $(QUICK),OPTABS_BENCH_QUICK=1 )$(PY) benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint

# The paper config's source (mp) declares MP_API_KEY (envvars): a plan needs it defined, not valid.
dryrun: $(STAMP)
	$(VENV)/bin/snakemake -n --cores 1
	MP_API_KEY="$${MP_API_KEY-}" $(VENV)/bin/snakemake -n --profile profiles/slurm --configfile configs/paper.yaml

# The site's SLURM profile, once, where `snakemake --profile slurm` finds it
# ($$XDG_CONFIG_HOME/snakemake/slurm, by default ~/.config/snakemake/slurm):
#   make slurm-profile ACCOUNT=myproject PARTITION=short GPU_PARTITION=a100
# ACCOUNT may be left out (the executor then guesses one); FORCE=1 replaces an existing profile.
# Any python3 will do (standard library only), so it runs before `make setup`.
slurm-profile:
	$(if $(wildcard $(PY)),$(PY),python3) tools/slurm_profile.py --account '$(ACCOUNT)' \
	    --partition '$(PARTITION)' --gpu-partition '$(GPU_PARTITION)' $(if $(filter 1,$(FORCE)),--force)

clean:
	rm -rf results logs .snakemake
