#!/usr/bin/env python
"""Reproduce one of the paper's ablation tables: `python ablations/run.py --table c`.

    python ablations/run.py --table c                      # tiny scale on CPU (synthetic benchmark)
    python ablations/run.py --table a --seeds 1,2,3 --only 3
    python ablations/run.py --table c --jobs 1             # one cell at a time (tiny scale default: one per core)
    python ablations/run.py --table c --scale paper --data-root /datasets --devices 8 --accelerator gpu
    python ablations/run.py --table c --scale paper --devices 8 --num-nodes 2 --slurm   # writes sbatch scripts

Results go to results/table_<t>/: results.csv (one row per cell x dataset x seed), table.md (the paper's layout,
our numbers beside the paper's), cells/<cell>/ (config, TensorBoard logs, checkpoints). A rerun skips finished cells
and resumes an interrupted one; --fresh starts over. Tables are data: ablations/tables/<t>.yaml.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.ablation import SCALES  # noqa: E402
from uv2.errors import EXIT_INTERRUPTED, InputError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="a, b, c, d, e (ablations/tables/<t>.yaml) or a table file")
    parser.add_argument("--scale", choices=SCALES, default="tiny",
                        help="tiny: the synthetic benchmark, generated where missing, on CPU (default); paper: the "
                             "paper's datasets under --data-root and recipes, on GPUs")
    parser.add_argument("--seeds", default="1", help="comma-separated seeds to run, e.g. 1,2,3 (default 1; "
                        "intervals need 2 or more; results.csv and table.md keep the seeds of earlier runs of the "
                        "table too)")
    parser.add_argument("--only", default=None,
                        help="run only this row (its index or label); the table keeps the other rows' results")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results root (default results/)")
    parser.add_argument("--devices", type=int, default=None, help="devices per node (default: the experiment's)")
    parser.add_argument("--accelerator", default=None, help="cpu, gpu, auto (default: the experiment's)")
    parser.add_argument("--num-nodes", type=int, default=None,
                        help="nodes per cell (default: the experiment's; with --slurm, the sbatch scripts' too)")
    parser.add_argument("--data-root", default=None, help="paper scale: directory replacing 'data/' in the lists")
    parser.add_argument("--slurm", action="store_true", help="write an sbatch array (one cell per task) and exit")
    parser.add_argument("--cell", type=int, default=None, help="run only cell i (what each sbatch task does)")
    parser.add_argument("--merge", action="store_true", help="only rewrite results.csv and table.md")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results of the cells that run")
    parser.add_argument("--jobs", type=int, default=None,
                        help="cells at a time, each in its own process (default: one per core at tiny scale on CPU, "
                             "as memory allows; else 1)")
    parser.add_argument("--datasets", type=Path, default=REPO / "ablations" / "datasets.yaml",
                        help="dataset definitions (default ablations/datasets.yaml)")
    args = parser.parse_args(argv)
    # the grid's modules import torch, timm and Lightning (about 5 s): after the arguments, so that --help and a
    # mistyped flag answer at once
    from uv2.ablation.grid import expand_cells, load_datasets, load_table, missing_inputs
    from uv2.ablation.launch import quiet_warnings
    from uv2.ablation.parallel import default_jobs, why_one_at_a_time
    from uv2.ablation.pretrain import ensure_image_vit
    from uv2.ablation.runner import GridRunner
    from uv2.ablation.slurm import cells_layout, write_sbatch
    from uv2.io import make_output_dir

    os.chdir(REPO)  # experiment files, data/ and runs/ are relative to the repository
    quiet_warnings()

    try:
        table = load_table(args.table, REPO / "ablations" / "tables")
        rows = list(range(len(table.rows)))
        if args.only is not None:  # the row keeps its index (its cells' folders, results.csv's row, table.md's line)
            rows = [i for i, r in enumerate(table.rows) if args.only in (str(i), r.label)]
            if not rows:
                parser.error(f"--only {args.only!r}: no such row; rows: "
                             + ", ".join(f"{i} ({r.label})" for i, r in enumerate(table.rows)))
        trainer = {k: v for k, v in (("devices", args.devices), ("accelerator", args.accelerator),
                                     ("num_nodes", args.num_nodes)) if v is not None}
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            parser.error(f"--seeds {args.seeds!r}: comma-separated integers, e.g. 1,2,3")
        out_dir = args.out / f"table_{table.name}"
        # the grid holds the seeds given and those run before in this table (a later --seeds 4 adds to 1,2,3)
        grid_seeds = sorted(set(seeds) | recorded_seeds(out_dir))
        grid_cells = expand_cells(table, load_datasets(args.datasets), args.scale, grid_seeds, trainer, args.data_root,
                                  REPO)
        # the ones to run; results.csv and table.md show them all
        cells = [c for c in grid_cells if c.row in rows and c.seed in seeds]
    except (InputError, ValueError) as err:  # TableError is both
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.cell is not None and not 0 <= args.cell < len(cells):
        print(f"error: --cell {args.cell}: the grid has cells 0-{len(cells) - 1}", file=sys.stderr)
        return 2
    jobs = default_jobs(cells) if args.jobs is None else args.jobs
    if jobs < 1:
        parser.error(f"--jobs {jobs}: at least 1")
    if jobs > 1 and (reason := why_one_at_a_time(cells)):
        parser.error(f"--jobs {jobs}: these cells run one at a time: {reason}")
    try:  # the sbatch array's GPUs and nodes: what the cells' trainers ask for (--devices / --num-nodes included)
        layout = cells_layout(cells) if args.slurm else None
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    made = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # removed again if the grid is refused
    try:  # the arguments hold: the table's folder, before anything is trained or written
        make_output_dir(out_dir, "--out")
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runner = GridRunner(table, grid_cells, out_dir, REPO, fresh=args.fresh)
    if args.slurm:
        script = write_sbatch(table, cells, out_dir, argv, layout)
        print(f"wrote {script} ({len(cells)} cells); submit with: bash {script}")
        return 0
    if args.merge:
        runner.write_outputs()
        print((out_dir / "table.md").read_text())
        return 0
    ensure_image_vit(cells, trainer, REPO)
    if missing := missing_inputs(cells, REPO):
        print(f"error: the cells read files or folders that do not exist (paths relative to {REPO}):\n  "
              + "\n  ".join(missing) + "\nAt paper scale --data-root names the folder that holds the datasets "
              "(ssv2/, k400/, ...), and CLIP's weights go under weights/ (README, Models and weights).",
              file=sys.stderr)
        for folder in made:  # a refused grid leaves no folder behind (still empty: nothing ran)
            with contextlib.suppress(OSError):
                folder.rmdir()
        return 2
    print(f"table {table.name}: {len(rows)} rows x {len(table.datasets)} datasets x {len(seeds)} seeds = "
          f"{len(cells)} cells -> {out_dir}", flush=True)
    try:
        records = runner.run(cells if args.cell is None else [cells[args.cell]], jobs)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished cells are kept in {out_dir}; rerun the same command to resume")
        return EXIT_INTERRUPTED
    print()
    print((out_dir / "table.md").read_text())
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:  # every other cell ran and the table is written; a script or CI job still sees the failure
        print(f"{len(failed)} of {len(records)} cells failed: "
              + "; ".join(f"{r['label']} | {r['dataset']} | seed {r['seed']}" for r in failed), file=sys.stderr)
        return 1
    return 0


def recorded_seeds(out_dir: Path) -> set[int]:
    """The seeds of a table folder's results.csv that have a cell run (done or failed): a seed that only ever stood
    pending does not stay in the table."""
    path = out_dir / "results.csv"
    if not path.is_file():
        return set()
    with path.open(newline="") as f:
        return {int(row["seed"]) for row in csv.DictReader(f) if row.get("status", "pending") != "pending"}


if __name__ == "__main__":
    sys.exit(main())
