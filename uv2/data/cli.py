"""Command-line tools of the data layer (dispatched by ``python -m uv2``).

``synth``         generate the synthetic benchmark (:mod:`uv2.data.synthetic`).
``check-videos``  fully decode every file of a list and report status, decodable frames, fps and size (WxH).
                  ``--json``: the last stdout line is ``{"files": [{"path", "ok", "frames", "fps", "width",
                  "height", "error", "header_frames"}, ...]}`` (``header_frames``: what the container claims, 0 if
                  nothing). A file is bad when it cannot be opened, has no video stream, no decodable frame, or the
                  decoder fails mid-stream; a truncated file whose frames decode up to the cut is ok (its decodable
                  count is reported). Exit code: 0 when every file is ok, 1 when any is bad, 2 for usage errors.
``bench-data``    time seek-and-decode against decode-everything (:mod:`uv2.data.bench`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


# ---------------------------------------------------------------------------------------------------------------------
# synth


def synth_main(argv: list[str]) -> int:
    from uv2.data.synthetic import ALL_SETS, DEFAULT_SEED, DEFAULT_SIZE, SIZES, generate

    parser = argparse.ArgumentParser(prog="python -m uv2 synth", description="Generate the synthetic video benchmark.")
    parser.add_argument("--out", required=True, help="output directory (DIR/<set>/..., DIR/manifest.json)")
    parser.add_argument("--size", default=DEFAULT_SIZE, choices=list(SIZES),
                        help=f"benchmark size (default: {DEFAULT_SIZE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"generation seed (default: {DEFAULT_SEED})")
    parser.add_argument(
        "--sets", default=",".join(ALL_SETS), help=f"comma-separated sets (default: all: {','.join(ALL_SETS)})"
    )
    parser.add_argument("--workers", type=int, default=None, help="parallel processes (default: available CPUs)")
    parser.add_argument("--force", action="store_true", help="regenerate even if the manifest matches")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in ALL_SETS]
    if bad or not sets:
        parser.error(f"unknown set(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(ALL_SETS)}")
    start = time.perf_counter()
    try:
        manifest = generate(args.out, size=args.size, seed=args.seed, sets=sets, workers=args.workers, force=args.force)
    except ValueError as e:
        print(f"synth: error: {e}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(
        f"synthetic benchmark {args.size} (seed {args.seed}) in {args.out}: "
        f"{manifest['resolution'][0]}x{manifest['resolution'][1]}, {manifest['frames']} frames, {elapsed:.1f} s"
    )
    print(f"{'set':<10} {'kind':<6} {'classes':>7} {'train':>6} {'val':>5}")
    for name in sets:
        entry = manifest["sets"][name]
        print(f"{name:<10} {entry['kind']:<6} {entry['classes']:>7} {entry['train']:>6} {entry['val']:>5}")
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# check-videos


def _inspect(path: str) -> dict:
    from uv2.data.decode import inspect_video

    return asdict(inspect_video(path))


def check_videos_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uv2 check-videos",
        description="Decode every video of a list and report its status. Exit code 0: all ok, 1: some bad, 2: usage.",
    )
    parser.add_argument(
        "list",
        metavar="LIST",
        help="a CSV/space list (path[,label]), an SSv2 split .json, a folder, or a file of paths",
    )
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    parser.add_argument("--json", action="store_true", help='print {"files": [...]} as the last stdout line')
    parser.add_argument("--data-root", default=None, help="prefix for relative paths (default: the list's directory)")
    parser.add_argument("--video-ext", default=".webm", help="video extension for SSv2 .json lists (default: .webm)")
    args = parser.parse_args(argv)
    _setup_logging(False)
    from uv2.data.lists import ListFormatError, read_video_paths

    try:
        paths = read_video_paths(args.list, args.data_root, args.video_ext)
    except (OSError, ListFormatError) as e:
        print(f"check-videos: error: {e}", file=sys.stderr)
        return 2
    if args.workers > 1 and len(paths) > 1:
        from uv2.data.synthetic import process_context

        with process_context().Pool(min(args.workers, len(paths))) as pool:
            results = pool.map(_inspect, paths, chunksize=max(1, len(paths) // (8 * args.workers)))
    else:
        results = [_inspect(p) for p in paths]
    for r in results:
        size = f"{r['width']}x{r['height']}"
        status = "ok " if r["ok"] else "BAD"
        line = f"{status} {r['frames']:7d} frames {r['fps']:7.2f} fps {size:>11}  {r['path']}"
        if r["ok"] and r["header_frames"] and r["header_frames"] != r["frames"]:
            line += f"  (header claims {r['header_frames']} frames)"
        print(line + ("" if r["ok"] else f"  ({r['error']})"))
    num_bad = sum(not r["ok"] for r in results)
    print(f"{len(results)} files, {len(results) - num_bad} ok, {num_bad} bad")
    if args.json:
        print(json.dumps({"files": results}))
    return 1 if num_bad else 0


# ---------------------------------------------------------------------------------------------------------------------
# bench-data


def _bench_worker(job: tuple) -> list[dict]:
    from uv2.data.bench import bench_clip_loading

    paths, samplings, kwargs = job
    return [asdict(bench_clip_loading(paths, sampling=s, **kwargs)) for s in samplings]


def bench_data_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uv2 bench-data",
        description="Decoded+augmented training clips/s: seek-and-decode-needed-frames vs. decode-every-frame.",
    )
    parser.add_argument("--videos", type=int, default=4, help="benchmark videos (default: 4)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes, each timing its share (default: 1)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default: 8)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default: 224)")
    parser.add_argument("--stride", type=int, default=8, help="dense sampling stride (default: 8)")
    parser.add_argument("--clips-per-video", type=int, default=3, help="clips timed per video and path (default: 3)")
    parser.add_argument("--sampling", default="uniform,dense", help="comma-separated: uniform,dense (default: both)")
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (default: 10)")
    parser.add_argument("--fps", type=int, default=30, help="video frame rate (default: 30)")
    parser.add_argument("--width", type=int, default=604, help="video width (default: 604)")
    parser.add_argument("--height", type=int, default=340, help="video height (default: 340)")
    parser.add_argument("--keyint", type=int, default=250, help="x264 keyframe interval (default: 250)")
    parser.add_argument("--rand-augment", default=None, help="also apply this RandAugment (default: none)")
    parser.add_argument("--dir", default=None, help="where to keep the videos (default: a temporary directory)")
    args = parser.parse_args(argv)
    _setup_logging(False)
    from uv2.data.bench import BenchResult, make_bench_videos

    samplings = [s.strip() for s in args.sampling.split(",") if s.strip()]
    if not samplings or any(s not in ("uniform", "dense") for s in samplings):
        parser.error(f"--sampling takes uniform and/or dense, got {args.sampling!r}")
    if args.width % 2 or args.height % 2:
        parser.error("--width and --height must be even (yuv420p)")
    with tempfile.TemporaryDirectory(prefix="uv2-bench-") as tmp:
        out_dir = args.dir or tmp
        t0 = time.perf_counter()
        paths = make_bench_videos(out_dir, args.videos, args.seconds, args.fps, args.width, args.height, args.keyint)
        gen_s = time.perf_counter() - t0
        mb = sum(os.path.getsize(p) for p in paths) / 2**20
        kbps = mb * 8 * 1024 / (args.seconds * len(paths))
        workers = max(1, min(args.workers, len(paths)))
        kwargs = dict(
            num_frames=args.frames,
            crop_size=args.size,
            frame_stride=args.stride,
            clips_per_video=args.clips_per_video,
            rand_augment=args.rand_augment,
        )
        jobs = [([str(p) for p in paths[w::workers]], samplings, kwargs) for w in range(workers)]
        t0 = time.perf_counter()
        if workers == 1:
            per_worker = [_bench_worker(jobs[0])]
        else:
            from uv2.data.synthetic import process_context

            with process_context().Pool(workers) as pool:
                per_worker = pool.map(_bench_worker, jobs)
        wall = time.perf_counter() - t0
    print(
        f"bench-data: {len(paths)} videos {args.width}x{args.height}, {args.seconds:g} s @ {args.fps} fps, "
        f"H.264 keyint {args.keyint} (x264 veryfast, {kbps:.0f} kb/s), generated in {gen_s:.1f} s"
    )
    print(
        f"clips: {args.frames}x{args.size} training clips (random resized crop + flip"
        f"{' + ' + args.rand_augment if args.rand_augment else ''}), {workers} worker process(es), "
        "single-threaded decode; both paths verified to give identical clips"
    )
    print()
    header = ["sampling".ljust(9), "clips".rjust(5), "seek+needed clips/s", "naive (all frames) clips/s", "speed-up"]
    print("  ".join(header))
    for i, sampling in enumerate(samplings):
        rows = [BenchResult(**w[i]) for w in per_worker]
        clips = sum(r.clips for r in rows)
        seek = sum(r.seek_s for r in rows)
        naive = sum(r.naive_s for r in rows)
        print(f"{sampling:<9} {clips:>5}  {clips / seek:>19.2f}  {clips / naive:>26.2f}  {naive / seek:>7.2f}x")
    print()
    print(f"(clips/s are per worker process: clips / seconds spent by that path; wall time {wall:.1f} s)")
    return 0
