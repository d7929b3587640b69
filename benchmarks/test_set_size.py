"""What a larger test set does to the scene cells of tables (a) and (c) at tiny scale (issue 13): the same runs, tested
on four times the videos of the grid's former scene test set (64 per class, until synthetic generator version 5 made
the tiny set's 256: by default this script's larger set is the tiny set's own now, and its first 640 videos the
former set), or on more with --val-per-class.

    python benchmarks/test_set_size.py --out DIR [--seeds 1,2,3,4,5] [--val-per-class 256] [--tables a,c]

1. generates the tiny scene set with --val-per-class validation videos per class into DIR/synthetic (the former
   set's 64 per class are its first, byte for byte: `python -m uv2 synth --val-per-class`);
2. writes DIR/datasets.yaml (ablations/datasets.yaml, its scene entry reading the tiny set's training list and the
   larger validation list: lists, not `synthetic_set`, so the runs train on exactly the grid's data) and
   DIR/<t>_scene.yaml (table <t> on the scene set alone);
3. runs `ablations/run.py --table DIR/<t>_scene.yaml --datasets DIR/datasets.yaml --seeds ... --out DIR/results`
   (resumable: a second command reuses every finished cell);
4. prints per row the top-1 of each seed on the first 640 test videos (the former set: the grid's own numbers until
   version 5) and on all of them, the standard deviation over seeds split into the test videos' part and the runs'
   part (uv2.ablation.stats.video_split), and each row's paired difference from the first row with its 95 % half-width
   over the seeds alone and over the seeds and the test videos (uv2.ablation.stats.crossed_half_width, table.md's
   since commit 7378f0d): an interval over the seeds alone leaves the videos out, as every seed tests on the same
   ones;
5. checks the crossed model's videos' part: all the test videos in blocks the size of the former set (the first
   block is that set), each row's paired difference per block (the same runs in every block), and how far the
   blocks spread against what the model predicts for a block of n videos with the runs held fixed, the standard
   error of the mean over n videos of the per-video differences averaged over the seeds (the videos' part and the
   seed-by-video residual over the seeds): chi-square = sum over blocks of (block - mean of blocks)^2 / that
   variance, on blocks - 1 degrees of freedom, and its p-value.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from uv2.ablation.stats import crossed_half_width, seed_spread, video_split  # noqa: E402
from uv2.analysis.results import correct_by_cell, load_results  # noqa: E402
from uv2.data.synthetic import DEFAULT_ROOT, ensure_synthetic, generate, set_classes, set_dir  # noqa: E402

FORMER_VAL_PER_CLASS = 64  # the tiny scene set's test videos per class until generator version 5 (the first block)


def write_inputs(out: Path, val_per_class: int, tables: list[str]) -> None:
    """The larger scene set, a datasets file that tests on it, and scene-only copies of the tables."""
    tiny = ensure_synthetic(REPO / DEFAULT_ROOT / "tiny_seed0", size="tiny", seed=0, sets=["scene"])
    generate(out / "synthetic", size="tiny", seed=0, sets=["scene"], val_per_class=val_per_class)
    datasets = yaml.safe_load((REPO / "ablations" / "datasets.yaml").read_text())
    scene = set_dir(tiny, "scene")
    datasets["scene"]["tiny"]["data"] = {"synthetic_set": None, "train_list": str(scene / "train.csv"),
                                         "val_list": str(set_dir(out / "synthetic", "scene") / "val.csv"),
                                         "classes_file": str(scene / "classes.txt")}
    (out / "datasets.yaml").write_text(yaml.safe_dump(datasets, sort_keys=False))
    for name in tables:
        table = yaml.safe_load((REPO / "ablations" / "tables" / f"{name}.yaml").read_text())
        table["datasets"] = ["scene"]
        for row in table["rows"]:
            row["paper"] = {"scene": row["paper"]["scene"]}
        (out / f"{name}_scene.yaml").write_text(yaml.safe_dump(table, sort_keys=False))


def report(folder: Path, first: int) -> None:
    """What the module docstring's step 4 prints for one table's results folder."""
    cells = correct_by_cell(load_results(folder))  # (table, row, dataset) -> label, seeds, correct[s][i]
    correct = {label: torch.tensor(c) for label, _, c in (cells[key] for key in sorted(cells))}  # table order
    print(f"\n{folder.name}: top-1 per seed on the first {first} test videos | on all; sd over seeds = the test "
          f"videos' part / the runs' part")
    for row, c in correct.items():
        small, large = (100 * c[:, :first].mean(1)).tolist(), (100 * c.mean(1)).tolist()
        split_small, split_large = (video_split(c[:, :n].tolist()) for n in (first, c.shape[1]))
        print(f"  {row:<36} {', '.join(f'{v:.1f}' for v in small)}: sd {split_small.total:.2f} = "
              f"{split_small.per_video:.2f} / {split_small.run:.2f} | {', '.join(f'{v:.1f}' for v in large)}: "
              f"{statistics.mean(large):.1f}, sd {split_large.total:.2f} = {split_large.per_video:.2f} / "
              f"{split_large.run:.2f}")
    base_row, base = next(iter(correct.items()))
    print(f"  difference from {base_row}: mean over seeds, 95 % half-width over the seeds / the seeds and the videos")
    for row, c in list(correct.items())[1:]:
        parts = []
        for n in (first, c.shape[1]):
            diff = 100 * (c[:, :n] - base[:, :n])  # (seeds, videos)
            per_seed = seed_spread(diff.mean(1).tolist())  # the paired difference over the seeds alone
            parts.append(f"{n} videos {per_seed.mean:+.2f} +-{per_seed.half_width:.2f} / "
                         f"+-{crossed_half_width(diff.tolist()):.2f}")
        print(f"  {row:<36} " + " | ".join(parts))
    blocks = base.shape[1] // first
    if blocks < 2:
        return
    print(f"  the same differences on each block of {first} test videos (the first: the former set); their spread "
          f"against the crossed model's for a block, the runs held fixed")
    for row, c in list(correct.items())[1:]:
        by_video = (100 * (c - base)).mean(0)  # (videos,): the difference on each video, mean over the seeds
        means = [by_video[b * first:(b + 1) * first].mean().item() for b in range(blocks)]
        model_sd = math.sqrt(statistics.variance(by_video.tolist()) / first)
        chi2 = sum((m - statistics.mean(means)) ** 2 for m in means) / model_sd ** 2
        print(f"  {row:<36} {', '.join(f'{m:+.2f}' for m in means)}: sd {statistics.stdev(means):.2f}, the model's "
              f"{model_sd:.2f}; chi-square {chi2:.1f} on {blocks - 1} df, p = {chi2_sf(chi2, blocks - 1):.2f}")


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with integer df (closed forms: the even case a Poisson sum, the odd one a normal
    tail plus a sum)."""
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        return math.exp(-half) * sum(half ** i / math.factorial(i) for i in range(df // 2))
    # df = 2m + 1: erfc(sqrt(x / 2)) + sqrt(2x / pi) e^(-x/2) (1 + x / 3 + x^2 / (3 * 5) + ..., m terms)
    term, total = math.sqrt(2 * x / math.pi) * math.exp(-half), 0.0
    for k in range(1, (df - 1) // 2 + 1):
        total += term
        term *= x / (2 * k + 1)
    return math.erfc(math.sqrt(half)) + total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the set, the table files and results")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--val-per-class", type=int, default=256,
                        help="test videos per class (the tiny set's: 256; the former set's: 64)")
    parser.add_argument("--tables", default="a,c", help="tables with a scene column")
    args = parser.parse_args(argv)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_inputs(out, args.val_per_class, tables)
    for name in tables:
        subprocess.run([sys.executable, str(REPO / "ablations" / "run.py"), "--table", str(out / f"{name}_scene.yaml"),
                        "--datasets", str(out / "datasets.yaml"), "--seeds", args.seeds, "--out", str(out / "results")],
                       cwd=REPO, check=True)
    for name in tables:
        report(out / "results" / f"table_{name}_scene", FORMER_VAL_PER_CLASS * len(set_classes("scene")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
