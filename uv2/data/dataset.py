"""Datasets: video clips for train / val / test, and images for image pretraining.

Item of :class:`VideoDataset` (a dict)::

    video            float32 (3, T, H, W), normalised; (R, 3, T, H, W) when num_repeats = R > 1 (training only)
    label            int, class index of the video that was decoded
    video_index      int, index in the list of the video that was decoded
    view_index       int, test view = clip_index * num_crops + crop_index (0 for train and val)
    decode_failures  int, failed decode attempts it took to produce this item (0 normally)

Lengths: train and val have one item per video; test has ``videos x num_clips x num_crops`` items, item ``i`` being
video ``i // views`` and view ``i % views``. Validation uses a single centre view (centre clip, centre crop).

Bad videos. A video that fails to decode (:class:`~uv2.data.decode.VideoDecodeError`: missing, empty, garbage,
no video stream, fails mid-decode, ...) is logged, remembered as bad in this process, and replaced by another video
of the list: the replacement for attempt ``a`` of video ``v`` is drawn from ``numpy.random.default_rng((seed, v,
a))`` (deterministic, never ``v`` itself), with the same view. Up to ``max_retries`` replacements are tried.
Because the replacement depends on the video and not the view, all test views of a bad video are served by the
same replacement video, under the replacement's own ``video_index`` and label; per-video averaging by
``video_index`` then counts that video with duplicated views and simply misses the bad one.

The bad fraction is measured per process (each DataLoader worker counts for itself) over *distinct* videos:
``bad / attempted``, both counting distinct list indices whose decode was attempted in this process. Once at
least ``min_attempts`` distinct videos were attempted, a fraction above ``max_bad_fraction`` raises
:class:`TooManyBadVideos` naming the first bad files and their errors; so does running out of retries.

Randomness. Training draws (temporal offsets, crops, flips, RandAugment) come from a ``numpy.random.Generator``
created lazily in each process from ``torch.initial_seed()`` (which PyTorch sets to ``base_seed + worker_id`` in
DataLoader workers, ``base_seed`` being drawn from the main process RNG), so workers differ and a run seeded with
``seed_everything`` is reproducible. Val/test items are deterministic.

Decoding: frames are decoded with :func:`~uv2.data.decode.decode_frames` (seek, decode only the needed frames); each
file's :class:`~uv2.data.decode.VideoIndex` is cached per process. If decoding corrects a file's frame count (the
packet count overstated what decodes), the clip's indices are re-sampled with the true count and decoded again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset, default_collate

from uv2.data.decode import VideoDecodeError, VideoIndex, decode_all_frames, decode_frames, probe_video
from uv2.data.lists import VideoRecord
from uv2.data.sampling import SAMPLING_MODES, SamplingMode, sample_indices
from uv2.data.transforms import (
    EvalClipTransform,
    TrainClipTransform,
    TransformConfig,
    normalize_clip,
    random_resized_crop_box,
    resize_short_side,
    uniform_crop,
)

log = logging.getLogger(__name__)

__all__ = [
    "TooManyBadVideos",
    "VideoDatasetConfig",
    "VideoDataset",
    "ImageDataset",
    "collate_clips",
    "worker_init_fn",
]

Mode = Literal["train", "val", "test"]
MODES: tuple[str, ...] = ("train", "val", "test")


class TooManyBadVideos(RuntimeError):
    """Too many videos of a list failed to decode (see :class:`VideoDataset`)."""


@dataclass
class VideoDatasetConfig:
    """Temporal sampling, views, repeats and bad-video handling of a :class:`VideoDataset`."""

    num_frames: int = 8  # T frames per clip
    sampling: SamplingMode = "uniform"  # "uniform" (TSN segments) or "dense" (stride over a window)
    frame_stride: int = 8  # dense sampling: frames between consecutive sampled frames
    num_test_clips: int = 1  # test: temporal clips per video
    num_test_crops: int = 1  # test: spatial crops per clip, 1 (centre) or 3 (along the long side)
    num_repeats: int = 1  # train: augmented clips of the same video per item (repeated augmentation)
    max_bad_fraction: float = 0.01  # raise TooManyBadVideos above this fraction of bad videos ...
    min_attempts: int = 500  # ... once this many distinct videos were attempted in the process
    max_retries: int = 10  # replacement videos tried for one item before giving up
    cache_decoded: bool = False  # keep every decoded video in memory (small sets: decode once, augment each epoch)
    seed: int = 0  # seeds the (deterministic) choice of replacement videos
    transform: TransformConfig = field(default_factory=TransformConfig)  # crops, flips, RandAugment, normalisation

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"unknown sampling {self.sampling!r}; valid choices: {', '.join(SAMPLING_MODES)}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride}")
        if self.num_test_clips < 1:
            raise ValueError(f"num_test_clips must be >= 1, got {self.num_test_clips}")
        if self.num_test_crops not in (1, 3):
            raise ValueError(f"num_test_crops must be 1 or 3, got {self.num_test_crops}")
        if self.num_repeats < 1:
            raise ValueError(f"num_repeats must be >= 1, got {self.num_repeats}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.min_attempts < 1 or self.max_retries < 0:
            raise ValueError(
                f"need min_attempts >= 1 and max_retries >= 0, got {self.min_attempts}, {self.max_retries}"
            )

    @property
    def views_per_video(self) -> int:
        return self.num_test_clips * self.num_test_crops


class VideoDataset(Dataset):
    """Clips of a video list (see the module docstring for items, lengths, bad videos and randomness).

    Args:
        records: the videos (path, label).
        mode: "train" (random clip + augmentation), "val" (centre view) or "test" (all views).
        cfg: sampling / views / robustness / transform settings.
    """

    def __init__(self, records: Sequence[VideoRecord], mode: Mode, cfg: VideoDatasetConfig | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid choices: {', '.join(MODES)}")
        if not records:
            raise ValueError("VideoDataset needs at least one video")
        self.records = list(records)
        self.mode = mode
        self.cfg = cfg or VideoDatasetConfig()
        self.train_transform = TrainClipTransform(self.cfg.transform) if mode == "train" else None
        self.eval_transform = EvalClipTransform(self.cfg.transform)
        self._index_cache: dict[str, VideoIndex] = {}
        self._attempted: set[int] = set()
        self._frame_cache: dict[str, torch.Tensor] = {}  # path -> uint8 (N, C, H, W), with cfg.cache_decoded
        self._bad: dict[int, str] = {}  # list index -> error, insertion-ordered (first bad first)
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple[int, int] | None = None

    # -- bookkeeping ----------------------------------------------------------------------------------------------

    @property
    def views(self) -> int:
        """Items per video: num_test_clips * num_test_crops in test mode, else 1."""
        return self.cfg.views_per_video if self.mode == "test" else 1

    @property
    def num_videos(self) -> int:
        return len(self.records)

    def __len__(self) -> int:
        return len(self.records) * self.views

    def locate(self, item: int) -> tuple[int, int]:
        """(video_index, view_index) of an item."""
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} items")
        return divmod(item, self.views)

    @property
    def rng(self) -> np.random.Generator:
        """This process's training RNG (re-created after a fork or in a new DataLoader worker)."""
        owner = (os.getpid(), torch.initial_seed())
        if self._rng is None or self._rng_owner != owner:
            self._rng = np.random.default_rng([torch.initial_seed() % 2**63, self.cfg.seed])
            self._rng_owner = owner
        return self._rng

    @property
    def bad_videos(self) -> dict[str, str]:
        """Files that failed in this process -> error, in the order they failed."""
        return {self.records[i].path: err for i, err in self._bad.items()}

    def replacement(self, video_index: int, attempt: int) -> int:
        """The video that replaces ``video_index`` at retry ``attempt`` (deterministic, never itself)."""
        n = len(self.records)
        r = int(np.random.default_rng((self.cfg.seed, video_index, attempt)).integers(n - 1))
        return r + 1 if r >= video_index else r

    def _check_bad_fraction(self) -> None:
        attempted, bad = len(self._attempted), len(self._bad)
        if attempted >= self.cfg.min_attempts and bad > self.cfg.max_bad_fraction * attempted:
            raise TooManyBadVideos(
                f"{bad} of {attempted} distinct videos attempted in this process failed to decode "
                f"({bad / attempted:.2%} > max_bad_fraction={self.cfg.max_bad_fraction:.2%}); "
                f"first bad files: {self._first_bad()}"
            )

    def _first_bad(self, k: int = 5) -> str:
        items = list(self._bad.items())[:k]
        text = "; ".join(f"{self.records[i].path} ({err})" for i, err in items)
        return text + (f"; ... and {len(self._bad) - k} more" if len(self._bad) > k else "")

    # -- loading --------------------------------------------------------------------------------------------------

    def _clip_indices(self, num_frames: int, view_index: int) -> list[np.ndarray]:
        cfg = self.cfg
        if self.mode == "train":
            rng = self.rng
            return [
                sample_indices(cfg.sampling, num_frames, cfg.num_frames, stride=cfg.frame_stride, train=True, rng=rng)
                for _ in range(cfg.num_repeats)
            ]
        clips = cfg.num_test_clips if self.mode == "test" else 1
        clip_index = view_index // cfg.num_test_crops if self.mode == "test" else 0
        return [
            sample_indices(
                cfg.sampling,
                num_frames,
                cfg.num_frames,
                stride=cfg.frame_stride,
                train=False,
                clip_index=clip_index,
                num_clips=clips,
            )
        ]

    def _decode(self, path: str, view_index: int) -> list[torch.Tensor]:
        """uint8 (T, C, H, W) clips (one per repeat) of ``path``."""
        if self.cfg.cache_decoded:
            if path not in self._frame_cache:  # every frame, once per process; later epochs only index it
                self._frame_cache[path] = rearrange(torch.from_numpy(decode_all_frames(path)), "n h w c -> n c h w")
            video = self._frame_cache[path]
            clips = self._clip_indices(len(video), view_index)
            return [video[torch.from_numpy(np.asarray(c, dtype=np.int64))] for c in clips]
        index = self._index_cache.get(path) or probe_video(path)
        clips = self._clip_indices(index.num_frames, view_index)
        frames, new_index = decode_frames(path, np.concatenate(clips), index)
        if new_index.num_frames != index.num_frames:  # the true frame count differs: sample again with it
            log.info(
                "%s: %d frames decode (index said %d); re-sampling the clip",
                path,
                new_index.num_frames,
                index.num_frames,
            )
            clips = self._clip_indices(new_index.num_frames, view_index)
            frames, new_index = decode_frames(path, np.concatenate(clips), new_index)
        self._index_cache[path] = new_index
        video = rearrange(torch.from_numpy(frames), "n h w c -> n c h w")
        return list(video.split([len(c) for c in clips]))

    def load_view(self, video_index: int, view_index: int = 0) -> torch.Tensor:
        """The ``video`` tensor of one view of one video, without replacing a bad video.

        Raises :class:`~uv2.data.decode.VideoDecodeError` when the video cannot be decoded (``__getitem__`` is the
        robust path; this is for tools that handle single videos, e.g. prediction).
        """
        if not 0 <= video_index < len(self.records):
            raise IndexError(f"video_index {video_index} out of range for {len(self.records)} videos")
        if not 0 <= view_index < self.views:
            raise IndexError(f"view_index {view_index} out of range for {self.views} views ({self.mode} mode)")
        return self._load(video_index, view_index)

    def _load(self, video_index: int, view_index: int) -> torch.Tensor:
        clips = self._decode(self.records[video_index].path, view_index)
        if self.mode == "train":
            out = [self.train_transform(clip, self.rng) for clip in clips]
            return out[0] if len(out) == 1 else torch.stack(out)
        crops = self.cfg.num_test_crops if self.mode == "test" else 1
        crop_index = view_index % self.cfg.num_test_crops if self.mode == "test" else 0
        return self.eval_transform(clips[0], crop_index, crops)

    def __getitem__(self, item: int) -> dict:
        video_index, view_index = self.locate(item)
        candidate, failures = video_index, 0
        for attempt in range(self.cfg.max_retries + 1):
            first_try = candidate not in self._attempted
            self._attempted.add(candidate)
            if candidate not in self._bad:
                try:
                    video = self._load(candidate, view_index)
                except VideoDecodeError as e:
                    self._bad[candidate] = e.reason
                    log.warning("bad video %s: %s", e.path, e.reason)
                else:
                    if first_try:
                        self._check_bad_fraction()
                    return {
                        "video": video,
                        "label": self.records[candidate].label,
                        "video_index": candidate,
                        "view_index": view_index,
                        "decode_failures": failures,
                    }
            failures += 1
            self._check_bad_fraction()
            if len(self.records) == 1:
                break
            candidate = self.replacement(video_index, attempt)
        raise TooManyBadVideos(
            f"no decodable video after {failures} attempts for item {item} (video {video_index}: "
            f"{self.records[video_index].path}); first bad files: {self._first_bad()}"
        )


def collate_clips(batch: list[dict]) -> dict:
    """``default_collate``, then fold repeated augmentation into the batch.

    With items of shape (R, 3, T, H, W) the batch ``video`` becomes (B*R, 3, T, H, W) (the R clips of an item are
    consecutive) and ``label``, ``video_index``, ``view_index`` are repeated to (B*R,) to match;
    ``decode_failures`` stays (B,) (one count per decoded video, so its sum is the number of failures).
    """
    out = default_collate(batch)
    video = out["video"]
    if video.ndim == 6:
        repeats = video.shape[1]
        out["video"] = rearrange(video, "b r c t h w -> (b r) c t h w")
        for key in ("label", "video_index", "view_index"):
            out[key] = out[key].repeat_interleave(repeats)
    return out


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one intra-op thread per worker (decoding is single-threaded too)."""
    torch.set_num_threads(1)


class ImageDataset(Dataset):
    """Images listed as ``path,label`` (the synthetic ``images`` set), for image pretraining.

    Items: ``{"image": float32 (3, crop, crop) normalised, "label": int, "index": int}``. Training: Inception crop
    (``cfg.scale``/``cfg.ratio``) + flip (``cfg.flip``); evaluation: short-side resize to ``cfg.eval_short_side`` and
    centre crop. Uses the same :class:`TransformConfig` as the videos (RandAugment is not applied).
    """

    def __init__(self, records: Sequence[VideoRecord], train: bool, cfg: TransformConfig | None = None, seed: int = 0):
        if not records:
            raise ValueError("ImageDataset needs at least one image")
        self.records = list(records)
        self.train = train
        self.cfg = cfg or TransformConfig()
        self.seed = seed
        self._rng: np.random.Generator | None = None
        self._rng_owner: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def rng(self) -> np.random.Generator:
        owner = (os.getpid(), torch.initial_seed())
        if self._rng is None or self._rng_owner != owner:
            self._rng = np.random.default_rng([torch.initial_seed() % 2**63, self.seed])
            self._rng_owner = owner
        return self._rng

    def __getitem__(self, index: int) -> dict:
        from PIL import Image
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        record = self.records[index]
        try:
            with Image.open(record.path) as img:
                array = np.asarray(img.convert("RGB"))
        except (OSError, ValueError) as e:
            raise RuntimeError(f"cannot read image {record.path}: {e}") from e
        image = rearrange(torch.from_numpy(array.copy()), "h w c -> 1 c h w")
        cfg = self.cfg
        if self.train:
            top, left, h, w = random_resized_crop_box(*image.shape[-2:], cfg.scale, cfg.ratio, self.rng)
            image = TF.resized_crop(
                image,
                top,
                left,
                h,
                w,
                [cfg.crop_size, cfg.crop_size],
                interpolation=InterpolationMode.BILINEAR,
                antialias=True,
            )
            if cfg.flip and self.rng.random() < 0.5:
                image = TF.horizontal_flip(image)
        else:
            image = uniform_crop(resize_short_side(image, cfg.eval_short_side), cfg.crop_size, 0, 1)
        return {"image": normalize_clip(image, cfg.mean, cfg.std)[:, 0], "label": record.label, "index": index}
