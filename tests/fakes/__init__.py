"""Stand-ins for what the tests cannot have for real: a VASP executable, the Materials Project
API on loopback, a private single-node SLURM cluster, a venv with Snakemake and no science stack,
the structures checkpoint's outputs for dry runs of the whole DAG, and the headless-browser
helpers."""
