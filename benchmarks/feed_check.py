"""Does the input pipeline feed the GPU? `python -m uv2 fit` of a K400 design on generated real-size videos.

    python benchmarks/feed_check.py --work /tmp/feed                       # K400 B/16 8x224, bf16, 14 workers
    python benchmarks/feed_check.py --work /tmp/feed --repeats 1,2 --workers 14 --steps 60 --json
    python benchmarks/feed_check.py --work /tmp/feed --cpu-smoke           # the same at CPU size (checks the script)
    python benchmarks/feed_check.py --work /tmp/feed --repeats 1 --probe   # where a step's time goes (step_probe.py)

The setting of issue 12: K400 B/16 (experiments/k400/k400_b16_8x224.yaml: 8x224 uniform clips, random resized
crop, flip, RandAugment, bf16-mixed), batch 32 on one GPU, ``--workers`` DataLoader workers, fed from ``--videos``
H.264 mp4 files of ``--width`` x ``--height`` (default 320x240, 10 s at 30 fps, x264 veryfast with B-frames;
``uv2.data.bench.make_bench_videos``, written in parallel) listed over and over in a Kinetics-style csv with
random labels. For each ``--repeats`` value R the fit runs with ``num_repeats R`` and ``batch_size 32 / R`` (the
model sees 32 clips per step either way) for ``--steps`` steps, no validation (``--plain``: one more fit with
num_repeats 1 and no RandAugment, to see what the augmentation costs), and the script reads fit's summary
line (``uv2.train.callbacks.ThroughputSummary``): clips/s and the data wait after the first step, on the GPU's
timeline, and the first step's seconds (worker start-up). Arguments it does not know go to the fit, e.g.
``--data.init_args.rand_augment null``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "experiments/k400/k400_b16_8x224.yaml"
# --cpu-smoke: the K400 config shrunk to CPU size (a 64-wide 2-head ViT on 32 px, 4 frames), tiny videos
SMOKE_ARGS = ["--model.arch.num_frames", "4", "--model.arch.vit_overrides",
              '{"width": 64, "heads": 1, "img_size": 32, "patch_size": 8}', "--data.init_args.crop_size", "32",
              "--data.init_args.short_side", "32", "--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]


def _one_video(job: tuple[str, int, float, int, int]) -> str:
    from uv2.data.bench import make_bench_videos

    out_dir, seed, seconds, width, height = job
    return str(make_bench_videos(Path(out_dir) / f"v{seed:03d}", 1, seconds, 30, width, height, seed=seed)[0])


def make_list(work: Path, videos: int, seconds: float, width: int, height: int, entries: int) -> Path:
    """Generate the videos (in parallel) and a csv list of ``entries`` lines over them, labels drawn at random."""
    import random

    data = work / "videos"
    jobs = [(str(data), seed, seconds, width, height) for seed in range(videos)]
    with ProcessPoolExecutor(max_workers=min(videos, os.cpu_count() or 1)) as pool:
        paths = list(pool.map(_one_video, jobs))
    rng = random.Random(0)
    lines = [f"{os.path.relpath(paths[i % len(paths)], data)},{rng.randrange(400)}" for i in range(entries)]
    (data / "train.csv").write_text("\n".join(lines) + "\n")
    (data / "classes.txt").write_text("\n".join(f"class_{c:03d}" for c in range(400)) + "\n")
    return data


LINE = re.compile(r"fit throughput: (?P<all>\d+) clips, the first step after (?P<first_s>[\d.]+) s \(worker start-up\); "
                  r"then (?P<clips>\d+) clips in (?P<seconds>[\d.]+) s of training steps, (?P<clips_per_s>[\d.]+) "
                  r"clips/s, data wait (?P<wait>\d+)% of the step time, (?P<failures>\d+) decode failures?")


def fit(data: Path, run_dir: Path, repeats: int, augment: bool, args: argparse.Namespace) -> dict:
    """One fit with num_repeats ``repeats``, with the recipe's RandAugment or none; what its throughput line says."""
    per_step = args.batch // repeats
    cmd = [sys.executable, "-m", "uv2", "fit", "--config", CONFIG, "--model.init_from", "null",
           "--data.init_args.data_root", str(data), "--data.init_args.train_list", str(data / "train.csv"),
           "--data.init_args.val_list", str(data / "train.csv"), "--data.init_args.test_list", "null",
           "--data.init_args.classes_file", str(data / "classes.txt"),
           "--data.init_args.num_workers", str(args.workers), "--data.init_args.batch_size", str(per_step),
           "--data.init_args.num_repeats", str(repeats), "--trainer.devices", "1",
           "--trainer.max_steps", str(args.steps), "--trainer.limit_val_batches", "0",
           "--trainer.num_sanity_val_steps", "0",
           "--trainer.enable_progress_bar", "false", "--run_dir", str(run_dir),
           *(SMOKE_ARGS if args.cpu_smoke else []), *([] if augment else ["--data.init_args.rand_augment", "null"]),
           *(["--trainer.callbacks+=benchmarks.step_probe.StepProbe"] if args.probe else []), *args.fit_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"feed_check: the fit with num_repeats {repeats} failed (exit {proc.returncode})")
    line = next((x for x in proc.stdout.splitlines() if x.startswith("fit throughput:")), "")
    match = LINE.match(line)
    if match is None:
        raise SystemExit(f"feed_check: no throughput line in the output of the fit with num_repeats {repeats}:\n"
                         f"{proc.stdout[-2000:]}")
    if args.probe:  # the probe's report: from its first line to the end of its list of waiting calls
        out = proc.stdout.splitlines()
        first = next((i for i, x in enumerate(out) if x.startswith("step probe:")), len(out))
        print("\n".join(x for x in out[first:] if x.startswith(("step probe:", "|", "calls that", "  "))), flush=True)
    return dict(repeats=repeats, rand_augment=augment, batch_size=per_step, clips_per_step=per_step * repeats,
                steps=args.steps, first_step_s=float(match["first_s"]), clips_per_s=float(match["clips_per_s"]),
                wait_fraction=int(match["wait"]) / 100, decode_failures=int(match["failures"]), fit_seconds=seconds,
                summary_line=line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="folder for the videos and the runs")
    parser.add_argument("--videos", type=int, default=16, help="distinct videos (default 16)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (default 10)")
    parser.add_argument("--workers", type=int, default=14, help="DataLoader workers (default 14)")
    parser.add_argument("--batch", type=int, default=32, help="clips per step (default 32)")
    parser.add_argument("--repeats", default="1,2", help="num_repeats values, one fit each (default 1,2)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per fit (default 60)")
    parser.add_argument("--plain", action="store_true",
                        help="one more fit: num_repeats 1 without RandAugment (what the augmentation costs)")
    parser.add_argument("--probe", action="store_true",
                        help="print each fit's split of a step, host and GPU, and the calls that waited for the GPU "
                             "(benchmarks/step_probe.py)")
    parser.add_argument("--cpu-smoke", action="store_true", help="CPU size: tiny model and videos, 2 workers")
    parser.add_argument("--json", action="store_true", help="one JSON line at the end")
    args, args.fit_args = parser.parse_known_args(argv)  # the rest goes to fit (e.g. --data.init_args.rand_augment null)
    if args.cpu_smoke:
        args.videos, args.width, args.height, args.seconds = 2, 64, 48, 2.0
        args.workers, args.batch, args.steps = 2, 4, 6
    repeats = [int(r) for r in args.repeats.split(",")]
    if any(r < 1 or args.batch % r for r in repeats):
        parser.error(f"--repeats: each value must be >= 1 and divide --batch {args.batch}, got {args.repeats}")
    work = Path(args.work)
    start = time.perf_counter()
    data = make_list(work, args.videos, args.seconds, args.width, args.height, entries=args.batch * (args.steps + 8))
    print(f"feed_check: {args.videos} videos {args.width}x{args.height}, {args.seconds:g} s, written in "
          f"{time.perf_counter() - start:.1f} s; {CONFIG}, {args.batch} clips per step, {args.workers} workers, "
          f"{os.cpu_count()} CPUs", flush=True)
    results = []
    for r, augment in [(r, True) for r in repeats] + ([(1, False)] if args.plain else []):
        result = fit(data, work / f"run_r{r}{'' if augment else '_plain'}", r, augment, args)
        results.append(result)
        print(f"num_repeats {r} (batch {result['batch_size']} x {r}{'' if augment else ', no RandAugment'}): "
              f"{result['clips_per_s']:.1f} clips/s, data wait "
              f"{result['wait_fraction']:.0%} of the step time after the first step ({result['first_step_s']:.1f} s); "
              f"the fit took {result['fit_seconds']:.0f} s", flush=True)
    if args.json:
        print(json.dumps(dict(config=CONFIG, videos=args.videos, size=[args.width, args.height],
                              workers=args.workers, cpus=os.cpu_count(), results=results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
