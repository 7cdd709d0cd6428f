"""Command line: ``optabs predict`` (spectra of new structures) and ``optabs screen`` (rank them).

    optabs predict --checkpoint results/model/checkpoint.pt --structures my_cifs/ --out predicted/

writes ``predicted/alignn/`` (POSCARs + ``id_prop.csv``, the dataset's folder format) and
``predicted/predictions.parquet`` (the dataset table's columns) and ``predicted/skipped.csv``
(files not predicted: unreadable, disordered, no graph), each named on stderr too. The energy
grid is the one stored in the checkpoint by training.

    optabs screen --checkpoint results/model/checkpoint.pt results/model/members/*/checkpoint.pt \
        --dataset results/dataset/dataset.parquet --structures candidates/ --out screened/

ranks the folder's structures as the workflow's screen stage does (every member's spectrum,
figures of merit with sigma, nearest learned cluster of the dataset's materials, acquisition):
``screened/ranking.parquet``, ``screened/shortlist.csv`` and two figures. ``--config`` takes a
config file whose ``screen`` and ``interpret`` sections replace the defaults.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optabs.errors import OptabsError


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status (2 on an error)."""
    parser = argparse.ArgumentParser(prog="optabs", description="optabs command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict log10 alpha spectra for a folder of CIF/POSCAR files")
    p.add_argument("--checkpoint", required=True, nargs="+", type=Path,
                   help="a trained model (results/model/checkpoint.pt), or every member of an ensemble (their mean)")
    p.add_argument("--structures", required=True, type=Path, help="folder of CIF/POSCAR files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    q = sub.add_parser("screen", help="rank a folder of CIF/POSCAR candidates with an ensemble's uncertainty")
    q.add_argument("--checkpoint", required=True, nargs="+", type=Path, help="the ensemble's checkpoints (one or more)")
    q.add_argument("--dataset", required=True, type=Path, help="the dataset the model learned (results/dataset/dataset.parquet)")
    q.add_argument("--structures", required=True, type=Path, help="folder of CIF/POSCAR candidates")
    q.add_argument("--out", required=True, type=Path, help="output folder")
    q.add_argument("--config", type=Path, help="a config file whose screen and interpret sections are used")
    args = parser.parse_args(argv)

    from optabs.logs import setup_logging

    setup_logging(None)
    if args.command == "screen":
        return _screen(args)
    from optabs.model.stage import predict_structures

    try:
        table = predict_structures(args.checkpoint, args.structures, args.out / "alignn", args.out / "predictions.parquet",
                                   skipped_path=args.out / "skipped.csv")
    except OptabsError as exc:
        print(f"optabs predict: {exc}", file=sys.stderr)
        return 2
    print(f"predicted {len(table)} spectra -> {args.out}")
    skipped = args.out / "skipped.csv"
    if skipped.is_file():
        import pandas as pd

        for row in pd.read_csv(skipped, dtype=str).fillna("").itertuples():
            print(f"optabs predict: skipped {row.file} ({row.reason}): {row.detail}", file=sys.stderr)
    return 0


def _screen(args: argparse.Namespace) -> int:
    from optabs.screen.stage import screen_folder

    try:
        short = screen_folder(args.checkpoint, args.dataset, args.structures, args.out, args.config)
    except OptabsError as exc:
        print(f"optabs screen: {exc}", file=sys.stderr)
        return 2
    print(f"ranked the candidates of {args.structures} -> {args.out}; shortlist:")
    for row in short.itertuples():
        print(f"  {row.rank:>3}  {row.material_id}  {row.formula}: {row.why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
