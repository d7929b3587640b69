#!/usr/bin/env python
"""Where one cell's spread over seeds comes from: `python ablations/variance.py --table c --row 1 --dataset temporal`.

Trains the cell (tiny scale) once per seed in four groups (everything varies; only the data module's seed; only
seed_everything; only the initial weights), side by side as the grid's cells (--jobs), and resamples its test set
(uv2/ablation/variance.py), then prints the standard deviation of each. Runs go to results/variance/<cell>/ and are
reused by a rerun.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.ablation import GROUPS  # noqa: E402
from uv2.errors import EXIT_INTERRUPTED, InputError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="a, b, c, d (ablations/tables/<t>.yaml) or a table file")
    parser.add_argument("--row", default="0", help="the row (its index or label)")
    parser.add_argument("--dataset", required=True, help="a dataset key of the table (e.g. temporal, scene)")
    parser.add_argument("--seeds", type=int, default=5, help="runs per group (seeds 1..N)")
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"comma-separated, of {', '.join(GROUPS)}")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change the cell's experiment, e.g. --set model.optim.lr=1e-3 (a dotted key, a YAML value)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs at a time, each in a worker process on one thread, as the grid's cells "
                             "(default: one per core, as memory allows)")
    parser.add_argument("--out", type=Path, default=Path("results/variance"))
    parser.add_argument("--datasets", type=Path, default=REPO / "ablations" / "datasets.yaml")
    args = parser.parse_args(argv)
    # the grid's modules import torch, timm and Lightning (about 5 s): after the arguments, as in ablations/run.py
    from uv2.ablation.grid import TableError, expand_cells, load_datasets, load_table
    from uv2.ablation.parallel import default_jobs
    from uv2.ablation.pretrain import ensure_image_vit
    from uv2.ablation.variance import decompose, render, with_settings

    os.chdir(REPO)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", module="pytorch_lightning|lightning_fabric|torchdata")
    try:
        table = load_table(args.table, REPO / "ablations" / "tables")
        rows = [i for i, r in enumerate(table.rows) if args.row in (str(i), r.label)]
        if not rows or args.dataset not in table.datasets:
            parser.error(f"--row {args.row!r} / --dataset {args.dataset!r}: rows "
                         + ", ".join(f"{i} ({r.label})" for i, r in enumerate(table.rows))
                         + f"; datasets {', '.join(table.datasets)}")
        groups = tuple(g for g in args.groups.split(",") if g)
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            parser.error(f"--groups: unknown {unknown}; valid: {', '.join(GROUPS)}")
        table.rows = [table.rows[rows[0]]]
        (cell,) = [c for c in expand_cells(table, load_datasets(args.datasets), "tiny", [1], repo=REPO)
                   if c.dataset == args.dataset]
        cell.config = with_settings(cell.config, args.set)
    except (TableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    seeds = list(range(1, args.seeds + 1))
    jobs = args.jobs or default_jobs([cell] * len(seeds) * len(groups))
    ensure_image_vit([cell], {}, REPO)
    out_dir = args.out / f"table_{table.name}" / cell.slug
    try:  # a --set the run refuses: one line (the runs already trained are kept for a rerun)
        summary = decompose(cell, seeds, out_dir, groups, jobs)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished runs are kept in {out_dir}; rerun the same command to resume")
        return EXIT_INTERRUPTED
    print(render(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
