"""Command line: ``optabs predict`` — spectra of new structures from a trained model.

    optabs predict --checkpoint results/model/checkpoint.pt --structures my_cifs/ --out predicted/

writes ``predicted/alignn/`` (POSCARs + ``id_prop.csv``, the dataset's folder format) and
``predicted/predictions.parquet`` (the dataset table's columns).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optabs.errors import OptabsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optabs", description="optabs command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="predict log10 alpha spectra for a folder of CIF/POSCAR files")
    p.add_argument("--checkpoint", required=True, type=Path, help="a trained model (results/model/checkpoint.pt)")
    p.add_argument("--structures", required=True, type=Path, help="folder of CIF/POSCAR files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--e-min", type=float, default=0.0, help="grid start (eV), as in training")
    p.add_argument("--e-max", type=float, default=15.0, help="grid end (eV), as in training")
    p.add_argument("--floor", type=float, default=2.0, help="log10 alpha floor")
    p.add_argument("--onset-threshold", type=float, default=2.5)
    args = parser.parse_args(argv)

    from optabs.dataset import Grid
    from optabs.logs import setup_logging
    from optabs.model import load_checkpoint, predict_structures

    setup_logging(None)
    try:
        n_points = int(load_checkpoint(args.checkpoint)["n_grid"])
        grid = Grid(args.e_min, args.e_max, n_points, args.floor, args.onset_threshold)
        table = predict_structures(
            args.checkpoint, args.structures, grid, args.out / "alignn", args.out / "predictions.parquet"
        )
    except OptabsError as exc:
        print(f"optabs predict: {exc}", file=sys.stderr)
        return 2
    print(f"predicted {len(table)} spectra -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
