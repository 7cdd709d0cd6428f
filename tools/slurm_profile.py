"""Install the site's SLURM profile where ``snakemake --profile slurm`` finds it.

``make slurm-profile ACCOUNT=myproject PARTITION=short GPU_PARTITION=a100 [FORCE=1]`` runs this.
Snakemake looks a bare profile name up in the working directory, then in
``$XDG_CONFIG_HOME/snakemake`` (``~/.config/snakemake`` when unset), then ``/etc/xdg/snakemake``;
never in the workflow's ``profiles/``. So this writes, into ``<config home>/snakemake/slurm/``:

- ``config.yaml``: the executor and site settings of ``profiles/slurm/config.yaml`` (the
  template), and the account as a default resource (``slurm_account``);
- ``partitions.yaml``: the CPU and GPU partitions for the executor's automatic partition
  selection (``slurm-partition-config``): a job that asks for a GPU goes to the GPU partition,
  every other job to the CPU partition.

Per-rule resources and DFT bundling are not site settings: the resources are declared by the
rules themselves, the bundling is in the workflow's ``profiles/default``, which Snakemake loads by
itself. An existing file is never replaced
without ``--force``. Standard library only, so it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "profiles" / "slurm" / "config.yaml"
# SLURM account and partition names; nothing that would need YAML or shell quoting.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# The executor only compares a job's GPUs with this bound to tell GPU partitions from CPU ones;
# SLURM itself enforces the real per-node limit.
MAX_GPU = 8


def profile_dir(environ: dict[str, str] | None = None) -> Path:
    """``<config home>/snakemake/slurm``, the folder Snakemake searches for ``--profile slurm``."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME", "").strip()  # empty counts as unset, as in platformdirs
    return Path(base or Path.home() / ".config") / "snakemake" / "slurm"


def partitions_yaml(partition: str, gpu_partition: str) -> str:
    """The partitions file for ``--slurm-partition-config``: ``partition`` without GPUs, ``gpu_partition`` with."""
    lines = [
        "# Partitions for the SLURM executor's automatic selection (slurm-partition-config in",
        "# config.yaml). A job that asks for a GPU fits only a partition with max_gpu above 0; every",
        "# other job goes to the partition without GPUs (the executor ranks GPU partitions last for it).",
        "# max_gpu only tells the two apart; SLURM enforces the real limits.",
        "partitions:",
    ]
    if partition != gpu_partition:
        lines += [f"  {json.dumps(partition)}:", "    max_gpu: 0"]
    lines += [f"  {json.dumps(gpu_partition)}:", f"    max_gpu: {MAX_GPU}"]
    return "\n".join(lines) + "\n"


def config_yaml(account: str, partition: str, gpu_partition: str, template: Path = TEMPLATE) -> str:
    """The template's settings under a header naming where they came from, plus the account."""
    # the template's header explains the template; its settings start at the first non-comment line
    lines = template.read_text().splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    body = "".join(lines[first:])
    settings = f"ACCOUNT={account or '(none)'} PARTITION={partition} GPU_PARTITION={gpu_partition}"
    header = (
        "# SLURM site profile of optabs, written by `make slurm-profile` from\n"
        f"# {template} ({settings}).\n"
        "# `snakemake --profile slurm` reads it; the workflow's own settings come from the workflow: each\n"
        "# rule's resources from the rule, DFT bundling from profiles/default. Edit it freely, or write it again with\n"
        "# `make slurm-profile ... FORCE=1`.\n"
    )
    if account:
        body += (
            "# The account every job is charged to (sbatch -A); --default-resources on the command line\n"
            "# replaces this whole key, so name slurm_account there too.\n"
            f"default-resources:\n  slurm_account: {json.dumps(account)}\n"
        )
    return header + body


def main(argv: list[str] | None = None) -> int:
    """Write the profile (refusing to replace one without ``--force``) and print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", default="", help="SLURM account (sbatch -A); empty: the executor guesses one")
    parser.add_argument("--partition", default="", help="partition of every job that needs no GPU")
    parser.add_argument("--gpu-partition", default="", help="partition of the jobs that ask for a GPU (training)")
    parser.add_argument("--force", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)

    for option, value, required in (("ACCOUNT", args.account, False), ("PARTITION", args.partition, True),
                                    ("GPU_PARTITION", args.gpu_partition, True)):
        if required and not value:
            sys.exit(f"slurm-profile: {option} is required, e.g. "
                     "make slurm-profile ACCOUNT=myproject PARTITION=short GPU_PARTITION=a100")
        if value and not NAME.match(value):
            sys.exit(f"slurm-profile: {option}={value!r} is not a SLURM name (letters, digits, _ . + -)")

    dest = profile_dir()
    files = {
        dest / "config.yaml": config_yaml(args.account, args.partition, args.gpu_partition),
        dest / "partitions.yaml": partitions_yaml(args.partition, args.gpu_partition),
    }
    existing = [str(path) for path in files if path.exists()]
    if existing and not args.force:
        sys.exit(f"slurm-profile: {', '.join(existing)} already exist(s); nothing written. "
                 "Add FORCE=1 to replace, or edit the file.")
    dest.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(f"wrote {path}:\n{text}")
    print("Run the workflow with: snakemake --profile slurm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
