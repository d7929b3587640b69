#!/usr/bin/env python
"""Decoding a list's videos against loading their frames from the decoded-video cache (uv2.data.decoded_cache).

    python benchmarks/decoded_cache.py                       # the tiny scene set's 2,560 test videos
    python benchmarks/decoded_cache.py --set temporal --split train

Generates the tiny synthetic set when it is missing (as the presets do), decodes every video of the list whole on
one thread (what a process with ``cache_decoded`` does once per video), writes the frames to a cache in a temporary
folder, then loads them back as another process would, and prints the seconds of each and the cache's size. The
loaded frames are checked equal to the decoded ones.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="scene", help="a synthetic video set (scene, temporal, scene_a, ...)")
    parser.add_argument("--split", default="val", choices=["train", "val"])
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--root", default=str(REPO / "data" / "synthetic"), help="synthetic_root")
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from uv2.data.datamodule import synthetic_root_for
    from uv2.data.decode import decode_all_frames
    from uv2.data.decoded_cache import DecodedCache
    from uv2.data.lists import read_csv_list
    from uv2.data.synthetic import ensure_synthetic

    torch.set_num_threads(1)
    root = ensure_synthetic(synthetic_root_for(args.root, args.size, 0), size=args.size, sets=[args.set])
    records, _ = read_csv_list(root / args.set / f"{args.split}.csv", root / args.set / "classes.txt")
    paths = [r.path for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        cache = DecodedCache(tmp)
        start = time.perf_counter()
        decoded = [decode_all_frames(p) for p in paths]
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        for path, frames in zip(paths, decoded):
            cache.save(path, frames)
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = [cache.load(p) for p in paths]
        load_s = time.perf_counter() - start
        if not all(b is not None and np.array_equal(a, b) for a, b in zip(decoded, loaded)):
            raise SystemExit("the cache returned other frames than the decoder's")
        megabytes = sum(f.stat().st_size for f in Path(tmp).rglob("*.npy")) / 2**20
    print(f"{args.size} {args.set} {args.split}: {len(paths)} videos of {decoded[0].shape[0]} frames "
          f"{decoded[0].shape[1]}x{decoded[0].shape[2]}")
    print("| decode (s) | write the cache (s) | load from it (s) | decode / load | cache (MB) |")
    print("|---|---|---|---|---|")
    print(f"| {decode_s:.2f} | {save_s:.2f} | {load_s:.2f} | {decode_s / load_s:.1f}x | {megabytes:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
