#!/usr/bin/env python
"""Which videos of a temporal class a table's cells get wrong, by what the generator drew for them.

    python benchmarks/error_latents.py results/table_c --class grow --as appear,disappear
    python benchmarks/error_latents.py results/table_a --class move_right --as move_left --rows 1,2

For every finished temporal cell of the table (or of --rows) that kept its test predictions, each test video of
--class is looked up in the synthetic set the cell read and its latent draws drawn again
(uv2.data.synthetic.temporal_video_params): the object's radius, shape, texture, background, the grow pair's scale
ratio, the fade's width and whether a distractor is there. The rate at which the cells predict one of --as (any
wrong class where --as is not given) is printed by each of those: a confusion that follows the object's size and not
its scale ratio, say, is one a larger object would remove and a smaller change of size would not. Every cell tests
on the same videos, so a group's count is of videos x cells and its distinct videos are fewer (in brackets); a draw
the class does not use (the fade's width for grow, the scale ratio for appear) shows how far groups of that many
videos differ by chance. The test list is read where the cells' configs name it, relative to the folder this runs in
(the repository the grid ran in), and the latent draws from the manifest of the generated root that holds it.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.analysis.results import finished, load_predictions, load_results, run_config  # noqa: E402
from uv2.data.datamodule import synthetic_set_dir  # noqa: E402
from uv2.data.synthetic import TemporalParams, temporal_video_params  # noqa: E402
from uv2.errors import InputError  # noqa: E402

# each latent draw and how its values are grouped: a number into thirds of the range the videos span, a word as is
LATENTS = ("radius", "shape", "texture", "background", "scale_ratio", "fade_width", "distractor")


def latent_value(params: TemporalParams, name: str) -> float | str:
    return ("yes" if params.distractor_seed is not None else "no") if name == "distractor" else getattr(params, name)


def tested_list(init_args: dict) -> Path:
    """The list a cell's multi-view test read: its test list, else its validation list (a probe's own set), else
    its synthetic set's val.csv."""
    listed = init_args.get("test_list") or init_args.get("val_list")
    return Path(listed) if listed else synthetic_set_dir(init_args) / "val.csv"


@functools.cache
def listed_paths(test_list: Path) -> tuple[str, ...]:
    """The video paths of a list, in its order: read once, as every cell of a table tests on the same list."""
    with test_list.open(newline="") as f:
        return tuple(row[0] for row in csv.reader(f))


# each video's draws drawn again once, not once per cell
video_params = functools.cache(temporal_video_params)


def groups(values: list[float | str]) -> list[tuple[str, list[int]]]:
    """(name, indices) per group: words as they are, numbers in thirds of their range."""
    if all(isinstance(v, str) for v in values):
        return [(word, [i for i, v in enumerate(values) if v == word]) for word in sorted(set(values))]
    lo, hi = min(values), max(values)
    edges = [lo + (hi - lo) * k / 3 for k in range(4)]
    thirds = [[i for i, v in enumerate(values) if edges[k] <= v < edges[k + 1] or (k == 2 and v == hi)]
              for k in range(3)]
    return [(f"{edges[k]:.2f}-{edges[k + 1]:.2f}", members) for k, members in enumerate(thirds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="one table's folder (results/table_c) or a results root")
    parser.add_argument("--class", dest="name", required=True, help="a class of the synthetic temporal set")
    parser.add_argument("--as", dest="taken_for", default=None,
                        help="comma-separated classes whose prediction counts (default: any wrong class)")
    parser.add_argument("--rows", default=None, help="comma-separated row indices (default: every row)")
    args = parser.parse_args(argv)
    try:
        results = finished(load_results(args.results))
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cells = results[results["dataset"] == "temporal"]
    if args.rows is not None:
        cells = cells[cells["row"].isin([int(r) for r in args.rows.split(",")])]
    videos: list[TemporalParams] = []
    indices: list[int] = []  # each video's number in its file name: the same video in every cell
    counted: list[bool] = []
    for cell in cells.itertuples():
        if not (Path(cell.cell_dir) / "test_predictions.pt").is_file() or (config := run_config(cell)) is None:
            continue
        predictions = load_predictions(cell.cell_dir)
        names = predictions["class_names"]
        if args.name not in names:
            print(f"error: --class {args.name!r}: not a class of {cell.cell_dir}'s set; classes: {', '.join(names)}",
                  file=sys.stderr)
            return 2
        taken_for = set(args.taken_for.split(",")) if args.taken_for else set(names) - {args.name}
        test_list = tested_list(config["data"]["init_args"])
        if not test_list.is_file():
            print(f"error: {test_list}: the list {cell.cell_dir} tested on is not there (run this where the grid "
                  f"ran)", file=sys.stderr)
            return 2
        paths = listed_paths(test_list)
        predicted = predictions["scores"].argmax(-1).tolist()
        for video, label, guess in zip(predictions["video_ids"].tolist(), predictions["labels"].tolist(), predicted):
            if names[label] == args.name:
                indices.append(int(Path(paths[video]).stem))
                try:  # the generated root holds the manifest: <root>/temporal/val.csv
                    videos.append(video_params(test_list.parent.parent, "val", indices[-1]))
                except InputError as err:
                    print(f"error: {test_list} is not a list of a generated synthetic set: {err}", file=sys.stderr)
                    return 2
                counted.append(names[guess] in taken_for)
    if not videos:
        print(f"error: no finished temporal cell with test predictions under {args.results}", file=sys.stderr)
        return 2
    what = f"taken for {args.taken_for}" if args.taken_for else "wrong"
    print(f"{args.name}: {len(videos)} test videos x cells, {sum(counted)} {what} "
          f"({100 * sum(counted) / len(videos):.1f} %)")
    for latent in LATENTS:
        shown = []
        for group, members in groups([latent_value(v, latent) for v in videos]):
            if members:
                rate = 100 * sum(counted[i] for i in members) / len(members)
                shown.append(f"{group} {rate:.1f} % of {len(members)} ({len({indices[i] for i in members})})")
        print(f"  {latent:12s} " + "; ".join(shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
