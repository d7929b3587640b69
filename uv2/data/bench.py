"""Data-loading benchmarks: seek-and-decode vs. decode-everything, and the data-wait fraction of a training loop.

:func:`make_bench_videos` writes ordinary H.264 clips (default 604x340, 10 s at 30 fps, x264 default GOP: keyint 250,
3 B-frames) with textured, panning content. :func:`bench_clip_loading` times, per clip, (a) our path
(:func:`~uv2.data.decode.decode_frames`: seek, decode only what the clip needs, skip unneeded non-reference frames,
convert only the needed frames to RGB; the one-off packet scan of :func:`~uv2.data.decode.probe_video` is included)
and (b) the naive path (:func:`~uv2.data.decode.decode_all_frames`: decode and convert every frame, then index), each
followed by the same training augmentation to ``crop_size``; both single-threaded, interleaved clip by clip so that
background load affects them alike. :func:`measure_data_wait_fraction` measures how much of a training step is
spent waiting for the DataLoader.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["make_bench_videos", "bench_clip_loading", "BenchResult", "measure_data_wait_fraction", "DataWaitStats"]


def _value_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth multi-scale RGB texture, float32 (H, W, 3) in 0-255."""
    import torch
    import torch.nn.functional as F

    out = np.zeros((height, width, 3), dtype=np.float32)
    for cells, weight in ((6, 0.5), (24, 0.3), (96, 0.2)):
        coarse = torch.from_numpy(
            rng.uniform(0, 255, (1, 3, max(2, cells * height // width), cells)).astype(np.float32)
        )
        out += (
            weight
            * F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
            .permute(1, 2, 0)
            .numpy()
        )
    return out


def make_bench_videos(
    out_dir: str | os.PathLike,
    num_videos: int = 4,
    seconds: float = 10.0,
    fps: int = 30,
    width: int = 604,
    height: int = 340,
    keyint: int = 250,
    seed: int = 0,
) -> list[Path]:
    """Write ``num_videos`` H.264 mp4 files (panning texture + moving blobs + grain) and return their paths."""
    from uv2.data.synthetic import write_video

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = int(round(seconds * fps))
    paths = []
    for v in range(num_videos):
        path = out_dir / f"bench_{width}x{height}_{steps}f_{v:03d}.mp4"
        paths.append(path)
        if path.exists():
            continue
        rng = np.random.default_rng([seed, v])
        pan = rng.uniform(1.0, 3.0)
        texture = _value_noise(rng, height, width + int(math.ceil(pan * steps)) + 1)
        noise = rng.normal(0, 6, (7, height, width, 3)).astype(np.float32)  # cycled: costs bits like real grain
        blobs = [
            (
                rng.uniform(0, width),
                rng.uniform(0, height),
                rng.uniform(-4, 4),
                rng.uniform(-3, 3),
                rng.uniform(20, 60),
                rng.uniform(0, 255, 3),
            )
            for _ in range(3)
        ]
        frames = np.empty((steps, height, width, 3), dtype=np.uint8)
        for t in range(steps):
            off = int(pan * t)
            frame = texture[:, off : off + width] + noise[t % len(noise)]
            for bx, by, vx, vy, r, colour in blobs:
                cx, cy = (bx + vx * t) % width, (by + vy * t) % height
                y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
                x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
                ys, xs = np.ogrid[y0:y1, x0:x1]
                frame[y0:y1, x0:x1][((xs - cx) ** 2 + (ys - cy) ** 2) < r * r] = colour
            frames[t] = np.clip(frame, 0, 255)
        write_video(path, frames, fps, options={"preset": "veryfast", "crf": "23", "g": str(keyint)})
    return paths


@dataclass
class BenchResult:
    """Timings of one sampling scheme over the benchmark videos (single process)."""

    sampling: str  # "uniform" or "dense"
    clips: int  # clips loaded by each path
    seek_s: float  # total seconds, seek-and-decode path (probe included)
    naive_s: float  # total seconds, decode-everything path
    frames_per_video: float  # mean decodable frames of the videos

    @property
    def seek_clips_per_s(self) -> float:
        return self.clips / self.seek_s

    @property
    def naive_clips_per_s(self) -> float:
        return self.clips / self.naive_s

    @property
    def speedup(self) -> float:
        return self.naive_s / self.seek_s


def bench_clip_loading(
    paths: Sequence[str | os.PathLike],
    sampling: str = "uniform",
    num_frames: int = 8,
    crop_size: int = 224,
    frame_stride: int = 8,
    clips_per_video: int = 3,
    rand_augment: str | None = None,
    seed: int = 0,
) -> BenchResult:
    """Time decoded + augmented training clips with both paths (see module docstring); single-threaded."""
    import torch
    from einops import rearrange

    from uv2.data.decode import decode_all_frames, decode_frames, probe_video
    from uv2.data.sampling import sample_indices
    from uv2.data.transforms import TrainClipTransform, TransformConfig

    torch.set_num_threads(1)
    transform = TrainClipTransform(TransformConfig(crop_size=crop_size, rand_augment=rand_augment))
    rng = np.random.default_rng(seed)
    seek_s = naive_s = 0.0
    clips = 0
    lengths = []
    for path in paths:
        path = str(path)
        t0 = time.perf_counter()
        index = probe_video(path)
        seek_s += time.perf_counter() - t0
        lengths.append(index.num_frames)
        for _ in range(clips_per_video):
            idx = sample_indices(sampling, index.num_frames, num_frames, stride=frame_stride, train=True, rng=rng)
            aug_seed = int(rng.integers(2**31))
            t0 = time.perf_counter()
            frames, index = decode_frames(path, idx, index)
            a = transform(rearrange(torch.from_numpy(frames), "t h w c -> t c h w"), np.random.default_rng(aug_seed))
            t1 = time.perf_counter()
            frames_all = decode_all_frames(path)[np.minimum(idx, index.num_frames - 1)]
            b = transform(
                rearrange(torch.from_numpy(frames_all), "t h w c -> t c h w"), np.random.default_rng(aug_seed)
            )
            t2 = time.perf_counter()
            if not torch.equal(a, b):
                raise RuntimeError(f"{path}: the two decode paths disagree on frames {idx.tolist()}")
            seek_s += t1 - t0
            naive_s += t2 - t1
            clips += 1
    return BenchResult(sampling, clips, seek_s, naive_s, float(np.mean(lengths)))


@dataclass
class DataWaitStats:
    """Where the time of a training loop went."""

    steps: int  # measured steps (after warm-up)
    wait_s: float  # total seconds blocked on next(loader)
    step_s: float  # total seconds inside the step callable

    @property
    def wait_fraction(self) -> float:
        """Fraction of the loop spent waiting for data."""
        total = self.wait_s + self.step_s
        return self.wait_s / total if total > 0 else 0.0


def measure_data_wait_fraction(
    loader: Iterable,
    step: Callable[[object], object],
    num_steps: int = 50,
    warmup: int = 5,
    synchronize: Callable[[], None] | None = None,
) -> DataWaitStats:
    """Run ``step(batch)`` over ``loader`` and measure the time spent waiting for batches.

    Args:
        loader: any iterable of batches (a DataLoader; its workers start on the first ``next``).
        step: the training step (forward/backward/optimizer), called once per batch.
        num_steps: measured steps (fewer if the loader runs out).
        warmup: steps run first and not measured (worker start-up, cudnn autotuning, ...).
        synchronize: called after each step before stopping the clock (e.g. ``torch.cuda.synchronize`` so that
            asynchronous GPU work is charged to the step, not to the next wait).
    """
    iterator = iter(loader)
    wait_s = step_s = 0.0
    measured = 0
    for i in range(warmup + num_steps):
        t0 = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        t1 = time.perf_counter()
        step(batch)
        if synchronize is not None:
            synchronize()
        t2 = time.perf_counter()
        if i >= warmup:
            wait_s += t1 - t0
            step_s += t2 - t1
            measured += 1
    return DataWaitStats(measured, wait_s, step_s)
