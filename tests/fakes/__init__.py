"""Stand-ins for what the tests cannot have for real: a VASP executable, the Materials Project
API on loopback, a private single-node SLURM cluster, and the headless-browser helpers."""
