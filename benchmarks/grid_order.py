"""What the order of a side-by-side grid costs: a finished table's cell times replayed on N workers, in table order
and longest first (uv2.ablation.parallel.side_by_side_order), against an even split of the work.

    python benchmarks/grid_order.py --table c                          # results/table_c/results.csv, 2 workers
    python benchmarks/grid_order.py --table c --results DIR --jobs 4

A cell's time is its fit (results.csv's train_s: its training; until commit d9b5046 a tiny cell also validated at
its end, in train_s too); its test and the grid's own work between cells add a few seconds per cell that the replay
leaves out. Each worker takes the next cell when it
is free, as the grid's process hands them out.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.ablation.grid import expand_cells, load_datasets, load_table, repeated_runs  # noqa: E402
from uv2.ablation.parallel import side_by_side_order  # noqa: E402


def makespan(seconds: list[float], jobs: int) -> float:
    """When `jobs` workers that each take the next cell when free end the cells of `seconds`, in that order."""
    free = [0.0] * jobs
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="a, b, c, d (ablations/tables/<t>.yaml) or a table file")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="results root (default results/)")
    parser.add_argument("--datasets", type=Path, default=REPO / "ablations" / "datasets.yaml")
    parser.add_argument("--jobs", type=int, default=2, help="workers (default 2)")
    args = parser.parse_args()
    table = load_table(args.table, REPO / "ablations" / "tables")
    path = args.results / f"table_{table.name}" / "results.csv"
    done = {(int(r["row"]), r["dataset"], int(r["seed"])): float(r["train_s"])
            for r in csv.DictReader(path.open()) if r["status"] == "done" and r.get("train_s")}
    if not done:
        raise SystemExit(f"{path}: no finished cells")
    seeds = sorted({seed for _, _, seed in done})
    cells = [c for c in expand_cells(table, load_datasets(args.datasets), "tiny", seeds, repo=REPO)
             if (c.row, c.dataset, c.seed) in done]
    repeats = repeated_runs(cells)
    cells = [c for c in cells if c.slug not in repeats]  # taken from the run they repeat: no time of their own
    seconds = {c.slug: done[(c.row, c.dataset, c.seed)] for c in cells}
    in_table_order = makespan([seconds[c.slug] for c in cells], args.jobs)
    longest_first = makespan([seconds[c.slug] for _, c in side_by_side_order(cells, {})], args.jobs)
    print(f"table {table.name}: {len(cells)} cells, {sum(seconds.values()):.0f} s of fits on {args.jobs} workers "
          f"({path})")
    print(f"  table order    {in_table_order:7.0f} s")
    print(f"  longest first  {longest_first:7.0f} s")
    print(f"  even split     {sum(seconds.values()) / args.jobs:7.0f} s")


if __name__ == "__main__":
    main()
