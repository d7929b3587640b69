"""Command-line tools of the data layer (dispatched by ``python -m uv2``).

``synth``         generate the synthetic benchmark (:mod:`uv2.data.synthetic`).
``check-videos``  fully decode every file of a list and report status, decodable frames, fps and size (WxH).
                  Any list format (``--list-format``, guessed by default: :func:`~uv2.data.lists.guess_list_format`);
                  frame folders are checked frame by frame (:func:`~uv2.data.frames.inspect_frame_folder`).
                  ``--json``: the last stdout line is ``{"files": [{"path", "ok", "frames", "fps", "width",
                  "height", "error", "header_frames"}, ...]}`` (``header_frames``: what the container claims, or for
                  a frame folder the count its list gives; 0 if nothing). A file is bad when it cannot be opened, has
                  no video stream, no decodable frame, or the decoder fails mid-stream; a truncated file whose frames
                  decode up to the cut is ok (its decodable count is reported). A frame folder is bad when a frame is
                  missing (a gap, fewer than its list gives) or does not decode. Exit code: 0 when every file is ok, 1
                  when any is bad, 2 for usage errors.
``untrimmed-lists`` ActivityNet / HACS Segments: video-level ``path,class name`` lists (``train.csv``, ``val.csv``) and
                  ``classes.txt`` from the annotation JSON and the downloaded videos, as the official configs train
                  them (:func:`~uv2.data.lists.read_untrimmed_annotations`).
``bench-data``    training clips/s per worker and the per-stage split of a worker's time per clip (open + probe, seek,
                  decode, conversion + resize, augmentation, collate, transfer, device work), for each decoder
                  backend and for the CPU path it replaced (:mod:`uv2.data.bench`).
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
    from uv2.io import make_output_dir

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
    parser.add_argument("--val-per-class", type=int, default=None, metavar="N",
                        help="validation videos per class of the scene and temporal sets instead of the size's (a "
                             "larger test set: where N is the larger, the size's own videos are its first, byte for "
                             "byte)")
    parser.add_argument("--motion-scale", type=float, default=None, metavar="F",
                        help="the temporal set's translations over F of their distance (0.5: half as far), their "
                             "centres within the margins that leaves, every other draw the same: a probe of the step "
                             "between frames (docs/tiny_scale.md)")
    parser.add_argument("--object-scale", type=float, default=None, metavar="F",
                        help="the temporal set's objects F times their drawn radius, every other draw the same: a "
                             "probe of the objects' size (docs/tiny_scale.md)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in ALL_SETS]
    if bad or not sets:
        parser.error(f"unknown set(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(ALL_SETS)}")
    if args.val_per_class is not None and args.val_per_class < 1:
        parser.error(f"--val-per-class {args.val_per_class}: expected a number of videos >= 1")
    if args.motion_scale is not None and not args.motion_scale > 0:
        parser.error(f"--motion-scale {args.motion_scale:g}: expected a fraction of the distance > 0 (0.5: half as far)")
    if args.object_scale is not None and not args.object_scale > 0:
        parser.error(f"--object-scale {args.object_scale:g}: expected a factor of the radius > 0 (1.3: 30 % larger)")
    make_output_dir(args.out, "--out")  # an InputError naming it where it cannot be made
    start = time.perf_counter()
    try:
        manifest = generate(args.out, size=args.size, seed=args.seed, sets=sets, workers=args.workers, force=args.force,
                            val_per_class=args.val_per_class, motion_scale=args.motion_scale,
                            object_scale=args.object_scale)
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


def _inspect(entry: tuple[str, int | None, str | None]) -> dict:
    """check-videos' row of one list entry: (path, frame count the list gives, frame template)."""
    from uv2.data.decode import inspect_video
    from uv2.data.frames import inspect_frame_folder

    path, listed_frames, template = entry
    if os.path.isdir(path):
        return asdict(inspect_frame_folder(path, template, listed_frames))
    return asdict(inspect_video(path))


def check_videos_main(argv: list[str]) -> int:
    from uv2.data.lists import LIST_FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m uv2 check-videos",
        description="Decode every video of a list and report its status. Exit code 0: all ok, 1: some bad, 2: usage.",
    )
    parser.add_argument(
        "list",
        metavar="LIST",
        help="a list in any format (--list-format), a folder, or a file of paths",
    )
    parser.add_argument("--list-format", default="auto", choices=["auto", *LIST_FORMATS],
                        help="the list's format (default: auto, guessed from the file: a folder; an SSv2 .json; "
                             "Moments in Time rows; SSv1 id;label lines; rawframe lines; else path[,label] lines)")
    parser.add_argument("--frame-template", default=None,
                        help="frame folders: the frames' file names, e.g. 'img_{:05d}.jpg' (default: read off each "
                             "folder)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default: 1)")
    parser.add_argument("--json", action="store_true", help='print {"files": [...]} as the last stdout line')
    parser.add_argument("--data-root", default=None, help="prefix for relative paths (default: the list's directory)")
    parser.add_argument("--video-ext", default=".webm", help="video extension for SSv2 .json lists (default: .webm)")
    args = parser.parse_args(argv)
    _setup_logging(False)
    from uv2.data.frames import parse_frame_template
    from uv2.data.lists import guess_list_format, read_list_entries

    try:
        if args.frame_template is not None:
            parse_frame_template(args.frame_template)
        list_format = guess_list_format(args.list, args.data_root) if args.list_format == "auto" else args.list_format
        entries = [(path, frames, args.frame_template)
                   for path, frames in read_list_entries(args.list, args.data_root, args.video_ext, list_format)]
    except (OSError, ValueError) as e:  # ListFormatError is a ValueError, as is a bad template
        print(f"check-videos: error: {e}", file=sys.stderr)
        return 2
    if args.workers > 1 and len(entries) > 1:
        from uv2.data.synthetic import process_context

        with process_context().Pool(min(args.workers, len(entries))) as pool:
            results = pool.map(_inspect, entries, chunksize=max(1, len(entries) // (8 * args.workers)))
    else:
        results = [_inspect(e) for e in entries]
    for r in results:
        size = f"{r['width']}x{r['height']}"
        status = "ok " if r["ok"] else "BAD"
        folder = os.path.isdir(r["path"])
        rate = "frame folder" if folder else f"{r['fps']:7.2f} fps"
        line = f"{status} {r['frames']:7d} frames {rate:>12} {size:>11}  {r['path']}"
        if r["ok"] and r["header_frames"] and r["header_frames"] != r["frames"]:
            line += f"  (header claims {r['header_frames']} frames)"
        print(line + ("" if r["ok"] else f"  ({r['error']})"))
    num_bad = sum(not r["ok"] for r in results)
    print(f"{len(results)} files, {len(results) - num_bad} ok, {num_bad} bad (list format {list_format})")
    if args.json:
        print(json.dumps({"files": results}))
    return 1 if num_bad else 0


# ---------------------------------------------------------------------------------------------------------------------
# untrimmed-lists


def _index_videos(root: str) -> dict[str, str]:
    """{file stem: path relative to ``root``} of the video files under ``root`` (first in sorted order wins)."""
    from uv2.data.lists import VIDEO_EXTENSIONS

    found: dict[str, str] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, os.path.relpath(os.path.join(directory, name), root))
    return found


def untrimmed_lists_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uv2 untrimmed-lists",
        description="ActivityNet v1.3 / HACS Segments: write the video-level lists the official configs train on "
                    "(train.csv from the 'training' subset, val.csv from 'validation': one 'path,class name' row per "
                    "downloaded video, the whole untrimmed video) and classes.txt (the annotations' classes, sorted).",
    )
    parser.add_argument("--annotations", required=True,
                        help="the annotation JSON (activity_net.v1-3.min.json, HACS_segments_v1.1.1.json)")
    parser.add_argument("--data-root", required=True,
                        help="where the videos are (searched recursively for <id>.* or v_<id>.*); rows are relative "
                             "to it, as the recipes' data_root expects")
    parser.add_argument("--out", default=None, help="where to write train.csv, val.csv, classes.txt (default: "
                                                    "--data-root)")
    args = parser.parse_args(argv)
    _setup_logging(False)
    from uv2.data.lists import VIDEO_EXTENSIONS, ListFormatError, read_untrimmed_annotations, write_lines_atomic
    from uv2.io import make_output_dir

    try:
        subsets, classes = read_untrimmed_annotations(args.annotations)
    except (OSError, ListFormatError) as e:
        print(f"untrimmed-lists: error: {e}", file=sys.stderr)
        return 2
    if not os.path.isdir(args.data_root):
        print(f"untrimmed-lists: error: data root not found: {args.data_root}", file=sys.stderr)
        return 2
    out = args.out or args.data_root
    make_output_dir(out, "--out")
    videos = _index_videos(args.data_root)
    written = 0
    for subset, file_name in (("training", "train.csv"), ("validation", "val.csv")):
        rows, missing = [], []
        for video_id, label in subsets[subset]:
            rel = videos.get(video_id) or videos.get(f"v_{video_id}")
            if rel is None:
                missing.append(video_id)
            else:
                rows.append(f"{rel},{label}")
        write_lines_atomic(os.path.join(out, file_name), rows)
        written += len(rows)
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        print(f"{file_name}: {len(rows)} of the {len(subsets[subset])} {subset} videos"
              + (f"; {len(missing)} not found under {args.data_root} ({shown})" if missing else ""))
    write_lines_atomic(os.path.join(out, "classes.txt"), classes)
    print(f"classes.txt: {len(classes)} classes")
    if not written:
        print(f"untrimmed-lists: error: no annotated video found under {args.data_root} (looked for <id>.<ext> and "
              f"v_<id>.<ext>, <ext> one of {', '.join(VIDEO_EXTENSIONS)})", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# bench-data


def bench_data_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uv2 bench-data",
        description="Training clips/s of the input pipeline and where a worker's time per clip goes, per decoder.",
    )
    parser.add_argument("--videos", type=int, default=4, help="benchmark videos (default: 4)")
    parser.add_argument("--workers", type=int, default=1,
                        help="DataLoader worker processes (default: 1, in this process)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default: 8)")
    parser.add_argument("--size", type=int, default=224, help="crop size (default: 224)")
    parser.add_argument("--stride", type=int, default=8, help="dense sampling stride (default: 8)")
    parser.add_argument("--clips-per-video", type=int, default=3, help="clips per video (default: 3)")
    parser.add_argument("--sampling", default="uniform,dense", help="comma-separated: uniform,dense (default: both)")
    parser.add_argument("--decoders", default=None,
                        help="comma-separated decoders to compare (default: every one usable here: pyav, torchcodec)")
    parser.add_argument("--repeats", type=int, default=1, help="num_repeats: clips per decoded video (default: 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="clips per batch (default: 8)")
    parser.add_argument("--device", default="auto", help="where the per-batch work runs: auto, cpu, cuda[:N]")
    parser.add_argument("--no-float-path", action="store_true",
                        help="skip the CPU path (float32 clips made on the worker) that the uint8 path is compared to")
    parser.add_argument("--seconds", type=float, default=10.0, help="video length (default: 10)")
    parser.add_argument("--fps", type=int, default=30, help="video frame rate (default: 30)")
    parser.add_argument("--width", type=int, default=604, help="video width (default: 604)")
    parser.add_argument("--height", type=int, default=340, help="video height (default: 340)")
    parser.add_argument("--keyint", type=int, default=250, help="x264 keyframe interval (default: 250)")
    parser.add_argument("--rand-augment", default=None, help="also apply this RandAugment (default: none)")
    parser.add_argument("--dir", default=None, help="where to keep the videos (default: a temporary directory)")
    parser.add_argument("--json", action="store_true", help='print {"results": [...]} as the last stdout line')
    args = parser.parse_args(argv)
    _setup_logging(False)
    from uv2.data.backends import DECODERS, backend_unavailable
    from uv2.data.bench import SPLIT, SPLIT_HELP, bench_pipeline, make_bench_videos

    samplings = [s.strip() for s in args.sampling.split(",") if s.strip()]
    if not samplings or any(s not in ("uniform", "dense") for s in samplings):
        parser.error(f"--sampling takes uniform and/or dense, got {args.sampling!r}")
    if args.width % 2 or args.height % 2:
        parser.error("--width and --height must be even (yuv420p)")
    if args.workers < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--workers, --repeats and --batch-size must be >= 1")
    if args.decoders is None:
        decoders = [d for d in DECODERS if backend_unavailable(d) is None]
        skipped = {d: backend_unavailable(d) for d in DECODERS if d not in decoders}
    else:
        decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
        bad = [d for d in decoders if d not in DECODERS]
        if bad or not decoders:
            parser.error(f"unknown decoder(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(DECODERS)}")
        skipped = {d: backend_unavailable(d) for d in decoders if backend_unavailable(d) is not None}
        decoders = [d for d in decoders if d not in skipped]
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    with tempfile.TemporaryDirectory(prefix="uv2-bench-") as tmp:
        out_dir = args.dir or tmp
        t0 = time.perf_counter()
        paths = make_bench_videos(out_dir, args.videos, args.seconds, args.fps, args.width, args.height, args.keyint)
        gen_s = time.perf_counter() - t0
        mb = sum(os.path.getsize(p) for p in paths) / 2**20
        kbps = mb * 8 * 1024 / (args.seconds * len(paths))
        common = dict(workers=args.workers, num_frames=args.frames, crop_size=args.size, frame_stride=args.stride,
                      clips_per_video=args.clips_per_video, rand_augment=args.rand_augment, batch_size=args.batch_size,
                      device=device)
        runs = [(d, "uint8") for d in decoders] + ([] if args.no_float_path else [("pyav", "float")])
        results = []
        for sampling in samplings:
            for decoder, path in runs:
                repeats = args.repeats if path == "uint8" else 1
                results.append(bench_pipeline([str(p) for p in paths], decoder=decoder, path=path, sampling=sampling,
                                              num_repeats=repeats, **common))
    print(
        f"bench-data: {len(paths)} videos {args.width}x{args.height}, {args.seconds:g} s @ {args.fps} fps, "
        f"H.264 keyint {args.keyint} (x264 veryfast, {kbps:.0f} kb/s), generated in {gen_s:.1f} s"
    )
    print(
        f"clips: {args.frames}x{args.size} training clips (random resized crop + flip"
        f"{' + ' + args.rand_augment if args.rand_augment else ''}), {args.clips_per_video} per video"
        f"{f', {args.repeats} per decode (num_repeats)' if args.repeats > 1 else ''}, batches of {args.batch_size}; "
        f"{args.workers} worker process(es){' (in this process)' if args.workers == 1 else ''}, one thread each; "
        f"per-batch work on {device}; {_cpus()} CPUs"
    )
    for name, reason in skipped.items():
        print(f"decoder {name}: skipped ({reason})")
    print("paths: uint8 = decode to size, uint8 batches, float work after the transfer; "
          "float = the CPU path (full frames, crop / flip / normalise on the worker, float32 batches)")
    print()
    header = f"{'decoder':<10} {'path':<5} {'sampling':<8} {'clips':>5} {'clips/s/worker':>14} {'wall clips/s':>12}"
    print(header + "  | ms per clip: " + " ".join(f"{s:>10}" for s in SPLIT))
    for r in results:
        row = (f"{r.decoder:<10} {r.path:<5} {r.sampling:<8} {r.clips:>5} {r.per_worker_clips_per_s:>14.2f} "
               f"{r.wall_clips_per_s:>12.2f}")
        print(row + "  |              " + " ".join(f"{r.ms_per_clip(s):>10.2f}" for s in SPLIT))
    print()
    print("clips/s/worker: clips / seconds the workers were busy (items and collation); wall clips/s: the loader's "
          "rate once the batches prefetched at start-up are consumed, the per-batch work included")
    for stage in SPLIT:
        print(f"  {stage:<10} {SPLIT_HELP[stage]}")
    if args.json:
        print(json.dumps({"results": [{**asdict(r), "per_worker_clips_per_s": r.per_worker_clips_per_s,
                                       "wall_clips_per_s": r.wall_clips_per_s} for r in results]}))
    return 0
