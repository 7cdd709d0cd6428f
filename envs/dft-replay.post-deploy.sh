#!/usr/bin/env bash
# Snakemake runs this once after creating the env (--sdm conda): the optabs package of this
# repository goes into the env, editable and without dependencies (the env file pins those),
# so that jobs import the workflow's own code and nothing else.
set -euo pipefail
python -m pip install --no-deps --quiet -e "$(cd "$(dirname "$0")/.." && pwd)"
