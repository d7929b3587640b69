"""Data-loading benchmarks: where a worker's time per clip goes, and the data-wait fraction of a training loop.

:func:`make_bench_videos` writes ordinary H.264 clips (default 604x340, 10 s at 30 fps, x264 default GOP: keyint 250,
3 B-frames) with textured, panning content. :func:`bench_pipeline` produces training clips through a DataLoader
exactly as training does (:class:`~uv2.data.dataset.VideoDataset` with ``profile`` on: probe once per video and
worker, seek, decode, crop + resize + RGB in the decoder's scaler, uint8 batches, then
:class:`~uv2.data.augment.BatchAugment` after the transfer) and reports the seconds of every stage of :data:`SPLIT`;
with ``path="float"`` it runs the CPU path instead (full frames, crop / flip / RandAugment / normalise on the
worker, float32 batches), the way every clip was made before the uint8 path. Single worker: in the calling process;
``workers > 1``: DataLoader worker processes. :func:`measure_data_wait_fraction` measures how much of a training
step is spent waiting for the DataLoader.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["make_bench_videos", "bench_pipeline", "PipelineResult", "SPLIT", "measure_data_wait_fraction",
           "DataWaitStats"]


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


#: the columns of the per-clip split, in pipeline order: the worker's stages (see
#: :data:`~uv2.data.dataset.PROFILE_STAGES`), then the main process's
SPLIT: tuple[str, ...] = ("open+probe", "seek", "decode", "convert", "augment", "collate", "transfer", "device")
SPLIT_HELP = {
    "open+probe": "opening the file and the packet scan (once per video and worker: the index is cached)",
    "seek": "seeking to keyframes",
    "decode": "demuxing and decoding (frames not wanted are skipped where the codec allows)",
    "convert": "colour conversion, crop and resize (in the decoder's scaler)",
    "augment": "the worker's augmentation (drawing crops, flips, seeds; the CPU path: crop, flip, RandAugment, "
               "normalise)",
    "collate": "stacking items into a batch (in the worker)",
    "transfer": "pinning and copying the batch to the device (0 on a CPU-only machine)",
    "device": "the per-batch work after the transfer: flip, RandAugment, normalisation",
}


@dataclass
class PipelineResult:
    """Where the time of one input pipeline went, per stage, over ``clips`` training clips."""

    decoder: str  # "pyav" or "torchcodec"
    path: str  # "uint8" (decode to size, float work on the device) or "float" (everything on the worker, float32)
    sampling: str  # "uniform" or "dense"
    workers: int  # worker processes (1: in the benchmark's process)
    clips: int  # training clips produced
    stage_s: dict[str, float]  # SPLIT stage -> seconds summed over all clips
    worker_s: float  # seconds the workers were busy (items and collation), summed over workers
    wall_s: float  # wall seconds after the warm-up batches (worker start-up and prefetched batches excluded)
    wall_clips: int  # clips after the warm-up batches
    device: str  # where the per-batch work ran

    @property
    def per_worker_clips_per_s(self) -> float:
        """Clips per second of one busy worker: clips / worker-busy seconds."""
        return self.clips / self.worker_s if self.worker_s > 0 else 0.0

    @property
    def wall_clips_per_s(self) -> float:
        return self.wall_clips / self.wall_s if self.wall_s > 0 else 0.0

    def ms_per_clip(self, stage: str) -> float:
        return 1000 * self.stage_s.get(stage, 0.0) / max(self.clips, 1)


class _TimedCollate:
    """``collate_clips`` (uint8 path) or ``default_collate`` (float path), timed: the batch carries ``collate_s``."""

    def __init__(self, uint8: bool) -> None:
        self.uint8 = uint8

    def __call__(self, items: list[dict]) -> dict:
        from torch.utils.data import default_collate

        from uv2.data.dataset import collate_clips

        start = time.perf_counter()
        batch = collate_clips(items) if self.uint8 else default_collate(items)
        batch["collate_s"] = time.perf_counter() - start
        return batch


class _FloatPathDataset:
    """The CPU path for comparison: full frames decoded (PyAV) and :class:`~uv2.data.transforms.TrainClipTransform`
    on the worker (crop, flip, RandAugment, normalise to float32), as every clip was produced before the uint8
    path; per-item ``stage_s`` like :class:`~uv2.data.dataset.VideoDataset` with ``profile``."""

    def __init__(self, paths: Sequence[str], sampling: str, num_frames: int, stride: int, transform) -> None:
        self.paths, self.sampling, self.num_frames, self.stride = list(paths), sampling, num_frames, stride
        self.transform = transform
        self._index: dict = {}
        self._rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int) -> dict:
        import torch
        from einops import rearrange

        from uv2.data.dataset import PROFILE_STAGES
        from uv2.data.decode import StageTimer, decode_frames, probe_video
        from uv2.data.sampling import sample_indices

        if self._rng is None:
            self._rng = np.random.default_rng(torch.initial_seed() % 2**63)
        start = time.perf_counter()
        timer = StageTimer()
        path = self.paths[item]
        index = self._index.get(path) or probe_video(path, timer=timer)
        idx = sample_indices(self.sampling, index.num_frames, self.num_frames, stride=self.stride, train=True,
                             rng=self._rng)
        frames, self._index[path] = decode_frames(path, idx, index, timer=timer)
        augment_start = time.perf_counter()
        video = self.transform(rearrange(torch.from_numpy(frames), "t h w c -> t c h w"), self._rng)
        timer.add("augment", time.perf_counter() - augment_start)
        timer.add("item", time.perf_counter() - start)
        stage_s = torch.tensor([timer.seconds.get(s, 0.0) for s in PROFILE_STAGES], dtype=torch.float64)
        return {"video": video, "label": 0, "stage_s": stage_s}


def bench_pipeline(
    paths: Sequence[str | os.PathLike],
    decoder: str = "pyav",
    path: str = "uint8",
    sampling: str = "uniform",
    workers: int = 1,
    num_frames: int = 8,
    crop_size: int = 224,
    frame_stride: int = 8,
    clips_per_video: int = 3,
    rand_augment: str | None = None,
    num_repeats: int = 1,
    batch_size: int = 8,
    device: str = "cpu",
    seed: int = 0,
) -> PipelineResult:
    """Produce ``len(paths) * clips_per_video`` training clips through a DataLoader, timing every stage.

    ``path="uint8"`` is the training pipeline (:class:`~uv2.data.dataset.VideoDataset`: decode to size, uint8
    batches, :class:`~uv2.data.augment.BatchAugment` on ``device`` after the transfer); ``path="float"`` is the CPU
    path (:class:`_FloatPathDataset`, float32 batches). ``workers=1`` runs in this process; more use DataLoader
    worker processes (forkserver, one thread each). Torch runs on one thread here too.
    """
    import torch
    from torch.utils.data import DataLoader

    from uv2.data.augment import BatchAugment
    from uv2.data.dataset import PROFILE_STAGES, VideoDataset, VideoDatasetConfig, worker_init_fn
    from uv2.data.lists import VideoRecord
    from uv2.data.transforms import TrainClipTransform, TransformConfig

    if path not in ("uint8", "float"):
        raise ValueError(f"unknown path {path!r}; valid choices: uint8, float")
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    transform = TransformConfig(crop_size=crop_size, rand_augment=rand_augment)
    files = [str(p) for _ in range(clips_per_video) for p in paths]  # every video once, then again, ...
    if path == "uint8":
        cfg = VideoDatasetConfig(num_frames=num_frames, sampling=sampling, frame_stride=frame_stride,
                                 num_repeats=num_repeats, decoder=decoder, seed=seed, transform=transform)
        dataset = VideoDataset([VideoRecord(f, 0) for f in files], "train", cfg)
        dataset.profile = True
    else:
        dataset = _FloatPathDataset(files, sampling, num_frames, frame_stride, TrainClipTransform(transform))
    target = torch.device(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers if workers > 1 else 0,
                        collate_fn=_TimedCollate(path == "uint8"), pin_memory=target.type == "cuda",
                        multiprocessing_context="forkserver" if workers > 1 else None,
                        worker_init_fn=worker_init_fn if workers > 1 else None)
    augment = BatchAugment(transform)
    sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)
    stage_s = dict.fromkeys(SPLIT, 0.0)
    worker_s = wall_s = 0.0
    clips = wall_clips = 0
    # the clock starts once the batches the workers prefetched during start-up are consumed (workers x 2, the
    # DataLoader's prefetch depth; one batch in-process), so that the wall rate is the steady one
    warmup = max(1, 2 * workers) if workers > 1 else 1
    if len(loader) <= warmup:
        warmup = 1
    batches = 0
    first_end: float | None = None
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        times = batch.pop("stage_s").sum(0).tolist()  # (stages,) summed over the batch's items
        per_stage = dict(zip(PROFILE_STAGES, times))
        stage_s["open+probe"] += per_stage["open"] + per_stage["probe"]
        for stage in ("seek", "decode", "convert", "augment"):
            stage_s[stage] += per_stage[stage]
        stage_s["collate"] += batch["collate_s"]
        worker_s += per_stage["item"] + batch.pop("collate_s")
        start = time.perf_counter()
        if path == "uint8":
            batch = augment.before_transfer(batch)  # host-side planning counts as device work
        planned = time.perf_counter()
        batch = {k: v.to(target, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        sync()
        moved = time.perf_counter()
        if path == "uint8":
            batch = augment(batch)
            sync()
        done = time.perf_counter()
        stage_s["transfer"] += moved - planned if target.type != "cpu" else 0.0
        if path == "uint8":
            stage_s["device"] += (planned - start) + (done - moved)
        n = len(batch["video"])
        clips += n
        batches += 1
        if batches == warmup:
            first_end = done
        elif first_end is not None:
            wall_clips += n
            wall_s = done - first_end
    return PipelineResult(decoder if path == "uint8" else "pyav", path, sampling, max(workers, 1), clips, stage_s,
                          worker_s, wall_s, wall_clips, str(target))


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
