#!/usr/bin/env python
"""Which classes carry a table's spread over seeds: per row, each seed's top-1 on the temporal set's translations
and on its other classes, and the row's most frequent confusions over the seeds.

    python benchmarks/class_spread.py results/table_c                      # one table's folder
    python benchmarks/class_spread.py results --dataset temporal --confusions 5

For every row of every table under the folder that has finished cells with test predictions on the dataset: top-1
per seed and its standard deviation over the seeds on all classes, on TRANSLATION_CLASSES (the object moves: its
direction is what the slow designs have not learnt at 14 epochs) and on the others (it grows, shrinks, appears or
disappears where it stands), then the (class -> predicted) pairs of the most wrong videos, summed over the seeds.
A confusion within a time-reversed pair (grow -> shrink) is a direction not learnt; one across pairs of the same
direction (grow -> appear) a kind of change not learnt. On another dataset the groups are left out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.analysis.results import confusions, load_results, per_class_top1  # noqa: E402
from uv2.data.synthetic import TRANSLATION_CLASSES  # noqa: E402
from uv2.errors import InputError  # noqa: E402


def group_top1(per_class: pd.DataFrame, classes: set[str] | None = None) -> dict[int, float]:
    """Top-1 (%) by seed over the videos of these classes (all where None), from per_class_top1's rows of one row."""
    chosen = per_class if classes is None else per_class[per_class["class"].isin(classes)]
    return {int(seed): float((g["top1"] * g["videos"]).sum() / g["videos"].sum()) for seed, g in chosen.groupby("seed")}


def by_seed(values: dict[int, float]) -> str:
    """'56.9, 59.5, 53.6 (sd 3.0)' in seed order."""
    text = ", ".join(f"{values[s]:.1f}" for s in sorted(values))
    return text + (f" (sd {statistics.stdev(values.values()):.1f})" if len(values) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a results root (results/) or one table's folder")
    parser.add_argument("--dataset", default="temporal", help="the dataset key of the tables (default temporal)")
    parser.add_argument("--confusions", type=int, default=4, help="confusions shown per row (default 4)")
    args = parser.parse_args(argv)
    try:
        results = load_results(args.results)
    except InputError as err:  # no results.csv there
        print(f"error: {err}", file=sys.stderr)
        return 2
    per_class = per_class_top1(results)
    per_class = per_class[per_class["dataset"] == args.dataset]
    if per_class.empty:
        print(f"error: no finished cell with test predictions on {args.dataset!r} under {args.results}",
              file=sys.stderr)
        return 2
    wrong = confusions(results)
    wrong = wrong[wrong["dataset"] == args.dataset]
    translations = set(TRANSLATION_CLASSES)
    grouped = translations <= set(per_class["class"])  # the temporal set's classes
    for (table, row, label), cells in per_class.groupby(["table", "row", "label"], sort=True):
        seeds = ", ".join(map(str, sorted(set(cells["seed"]))))
        print(f"table ({table}) {label}, {args.dataset}, top-1 by seed ({seeds})")
        print(f"  all classes    {by_seed(group_top1(cells))}")
        if grouped:
            print(f"  translations   {by_seed(group_top1(cells, translations))}")
            print(f"  other classes  {by_seed(group_top1(cells, set(cells['class']) - translations))}")
        mine = wrong[(wrong["table"] == table) & (wrong["row"] == row)]
        top = mine.groupby(["class", "predicted"])["videos"].sum().sort_values(ascending=False, kind="stable")
        shown = [f"{true} -> {guess} {count}" for (true, guess), count in top.head(args.confusions).items()]
        print(f"  confusions     {', '.join(shown) or 'none'} (of {int(mine['videos'].sum())} wrong videos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
