#!/usr/bin/env python
"""Cells side by side against one at a time: the throughput behind the grid's --jobs default (uv2.ablation.parallel).

    python benchmarks/grid_jobs.py                  # the tiny temporal preset, 3 epochs, 1 job on every thread vs 2
    python benchmarks/grid_jobs.py --jobs 4 --epochs 2 --experiment experiments/scene_tiny.yaml

Runs `python -m uv2 fit` of the experiment once on every thread (torch's default), then `--jobs` copies at once with
the threads shared out (OMP_NUM_THREADS = threads / jobs, as the grid's workers), and prints each run's training
clips/s (the fit's own summary line), the clips/s of all runs together and the wall time including start-up. The
ViT starts from random weights (the speed is the same as from the image-pretrained one).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the fit's summary line (uv2.train.callbacks.ThroughputSummary), its first step reported apart before "then"
SUMMARY = re.compile(r"fit throughput: (?:.*?; then )?(\d+) clips in ([\d.]+) s of training steps, ([\d.]+) clips/s")


def fits(experiment: str, epochs: int, copies: int, threads: int, out: Path) -> tuple[list[float], float]:
    """Clips/s of `copies` fits run at once on `threads` threads each, and their wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "uv2", "fit", "--config", experiment, "--run_dir",
                               str(out / f"run{i}"), "--trainer.max_epochs", str(epochs),
                               "--trainer.limit_val_batches", "0", "--model.init_from", "null",  # as a grid cell
                               "--trainer.enable_progress_bar", "false"],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(copies)]
    outputs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - start
    rates = []
    for proc, output in zip(procs, outputs):
        match = SUMMARY.search(output)
        if proc.returncode != 0 or match is None:
            raise SystemExit(f"a fit failed (exit {proc.returncode}):\n{output[-3000:]}")
        rates.append(float(match.group(3)))
    return rates, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="experiments/temporal_tiny.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="fits side by side (the grid's --jobs)")
    args = parser.parse_args()
    import torch

    threads = torch.get_num_threads()
    per_job = max(1, threads // args.jobs)
    print(f"{args.experiment}, {args.epochs} epochs, {threads} threads ({os.cpu_count()} CPUs)")
    print("| runs at once | threads each | clips/s per run | clips/s in all | wall (s, with start-up) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for copies, each in ((1, threads), (args.jobs, per_job)):
            rates, wall = fits(args.experiment, args.epochs, copies, each, Path(tmp) / f"jobs{copies}")
            print(f"| {copies} | {each} | {', '.join(f'{r:.1f}' for r in rates)} | {sum(rates):.1f} | {wall:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
