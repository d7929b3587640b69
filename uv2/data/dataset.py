"""Datasets: video clips for train / val / test, and images for image pretraining.

Item of :class:`VideoDataset` (a dict)::

    video            uint8 (3, T, H, W), cropped and resized, not normalised; (R, 3, T, H, W) when num_repeats = R > 1
                     (training only)
    label            int, class index of the video that was decoded
    video_index      int, index in the list of the video that was decoded
    view_index       int, test view = clip_index * num_crops + crop_index (0 for train and val)
    decode_failures  int, failed decode attempts it took to produce this item (0 normally)
    aug_flip         bool, flip the clip horizontally (training draws; False for val / test); (R,) with repeats
    aug_seed         int64, RandAugment seed of the clip (-1: none); (R,) with repeats
    stage_s          float64 (len(PROFILE_STAGES),), seconds per stage of this item; only when ``profile`` is set

Clips stay uint8 until they reach the device the model runs on: the DataModules' ``on_after_batch_transfer`` runs
:class:`~uv2.data.augment.BatchAugment` there (flip, RandAugment, ``(x / 255 - mean) / std``). The worker does what
needs the video file: decode, and crop + resize inside the decoder's scaler (the crop box is drawn from the frame
size before decoding, so only the crop is converted to RGB, at the model's size). :meth:`VideoDataset.load_view`
returns one view as the model takes it (float32, normalised), for tools that handle single videos.

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

Randomness. Training draws (temporal offsets, crops, flips, RandAugment seeds) of an item asked for by an
:class:`~uv2.data.sampler.ItemKey` (what the DataModules' training sampler hands out) come from that key's own
generator: a pure function of (seed, epoch, pass, position), whatever process loads the item and whatever it loaded
before, so a resumed run draws exactly what the uninterrupted one did (:mod:`uv2.data.sampler`). An item asked for by
a plain index (tools, tests) draws from a ``numpy.random.Generator`` created lazily in each process from
``torch.initial_seed()`` (which PyTorch sets to ``base_seed + worker_id`` in DataLoader workers). Val/test items are
deterministic.

Decoding: frames are decoded by the configured backend (``decoder``: ``pyav``, the default, or ``torchcodec``; see
:mod:`uv2.data.backends`) seeking and decoding only the needed frames; each file's
:class:`~uv2.data.decode.VideoIndex` is cached per process. If decoding corrects a file's frame count (the packet
count overstated what decodes), the clip's indices are re-sampled with the true count and decoded again. A record
that is a directory, or that its list format names one (ssv1, rawframes), is a frame folder (numbered images,
:mod:`uv2.data.frames`), read by the frame-folder backend behind the same interface, so its clips are sampled, cropped
and augmented by the code above, as a video's. With ``cache_decoded`` a video is decoded whole, once per process, and
kept in memory; with ``decoded_cache_dir`` too, its frames are also kept on disk, where other processes and later
runs load them instead of decoding (:mod:`uv2.data.decoded_cache`).

Repeated augmentation (``num_repeats = R``): one decode of the union of the R clips' frames gives R clips, each with
its own temporal offsets, crop, flip and RandAugment. With uniform sampling the R clips need about the frames one
clip needs (every reference frame up to the last wanted one), so R clips cost about one clip's decoding: the
cheapest way to feed a GPU that waits for data (``python -m uv2 bench-data --repeats R`` measures it).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset, default_collate

from uv2.data.augment import BatchAugment
from uv2.data.backends import DECODERS, DecoderName, VideoBackend, backend_unavailable, get_backend
from uv2.data.decode import FrameSpec, StageTimer, VideoDecodeError, VideoIndex, decode_all_frames
from uv2.data.decoded_cache import DecodedCache
from uv2.data.frames import FrameFolderBackend, parse_frame_template
from uv2.data.lists import VideoRecord
from uv2.data.sampler import ItemKey
from uv2.data.sampling import SAMPLING_MODES, SamplingMode, sample_indices
from uv2.data.transforms import (
    ClipDraw,
    EvalClipTransform,
    TrainClipTransform,
    TransformConfig,
    random_resized_crop_box,
    resize_short_side,
    short_side_size,
    uniform_crop,
)
from uv2.errors import InputError, SettingError

log = logging.getLogger(__name__)

__all__ = [
    "TooManyBadVideos",
    "VideoDatasetConfig",
    "VideoDataset",
    "ImageDataset",
    "collate_clips",
    "worker_init_fn",
    "PROFILE_STAGES",
]

#: the per-item seconds of ``stage_s`` (profiling): the decoder's stages, the worker's crop / draw work ("augment")
#: and the whole ``__getitem__`` ("item", which also holds what no stage names: sampling, bookkeeping)
PROFILE_STAGES: tuple[str, ...] = ("open", "probe", "seek", "decode", "convert", "augment", "item")

Mode = Literal["train", "val", "test"]
MODES: tuple[str, ...] = ("train", "val", "test")


class TooManyBadVideos(InputError, RuntimeError):
    """Too many videos of a list failed to decode (see :class:`VideoDataset`): bad data, which `python -m uv2` reports
    in one line naming the first bad files (uv2.errors); a bug in the decode path is not counted as a bad video."""


@dataclass
class VideoDatasetConfig:
    """Temporal sampling, views, repeats and bad-video handling of a :class:`VideoDataset`."""

    num_frames: int = 8  # T frames per clip
    sampling: SamplingMode = "uniform"  # "uniform" (TSN segments) or "dense" (stride over a window)
    frame_stride: int = 8  # dense sampling: frames between consecutive sampled frames
    num_test_clips: int = 1  # test: temporal clips per video
    num_test_crops: int = 1  # test: spatial crops per clip, 1 (centre) or 3 (along the long side)
    num_repeats: int = 1  # train: augmented clips of the same video per item (repeated augmentation)
    time_reversal: float = 0.0  # train: probability that a clip of a class with a time-reversed partner is played
    # backwards and labelled as the partner (the dataset's reversal_partners)
    max_bad_fraction: float = 0.01  # raise TooManyBadVideos above this fraction of bad videos ...
    min_attempts: int = 500  # ... once this many distinct videos were attempted in the process
    max_retries: int = 10  # replacement videos tried for one item before giving up
    cache_decoded: bool = False  # keep every decoded video in memory (small sets: decode once, augment each epoch)
    decoded_cache_dir: str | None = None  # with cache_decoded, also keep them on disk here for other processes
    # and later runs (uv2.data.decoded_cache)
    seed: int = 0  # seeds the (deterministic) choice of replacement videos
    decoder: DecoderName = "pyav"  # video decoder backend: "pyav" or "torchcodec" (uv2.data.backends)
    frame_template: str | None = None  # frame folders: frame file names, e.g. "img_{:05d}.jpg"; None: read off each
    # folder (uv2.data.frames)
    transform: TransformConfig = field(default_factory=TransformConfig)  # crops, flips, RandAugment, normalisation

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise SettingError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.sampling not in SAMPLING_MODES:
            raise SettingError(f"unknown sampling {self.sampling!r}; valid choices: {', '.join(SAMPLING_MODES)}")
        if self.frame_stride < 1:
            raise SettingError(f"frame_stride must be >= 1, got {self.frame_stride}")
        if self.num_test_clips < 1:
            raise SettingError(f"num_test_clips must be >= 1, got {self.num_test_clips}")
        if self.num_test_crops not in (1, 3):
            raise SettingError(f"num_test_crops must be 1 or 3, got {self.num_test_crops}")
        if self.num_repeats < 1:
            raise SettingError(f"num_repeats must be >= 1, got {self.num_repeats}")
        if not 0 <= self.time_reversal <= 1:
            raise SettingError(f"time_reversal must be a probability in [0, 1], got {self.time_reversal}")
        if not 0 <= self.max_bad_fraction <= 1:
            raise SettingError(f"max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        if self.decoder not in DECODERS:
            raise SettingError(f"unknown decoder {self.decoder!r}; valid choices: {', '.join(DECODERS)}")
        if self.frame_template is not None:
            parse_frame_template(self.frame_template)
        if self.decoded_cache_dir is not None and not self.cache_decoded:
            raise SettingError(f"decoded_cache_dir ({self.decoded_cache_dir}) keeps the videos that cache_decoded "
                               f"keeps in memory: set cache_decoded: true too, or drop decoded_cache_dir")
        if self.min_attempts < 1 or self.max_retries < 0:
            raise SettingError(
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
        frame_cache: with ``cfg.cache_decoded``, the path -> frames dict to keep decoded videos in; datasets given
            the same dict decode a video they share once (a data module's validation and test sets, often one list).
        reversal_partners: label -> the label of its time-reversed class (uv2.labels.read_reversal_pairs), which
            ``cfg.time_reversal`` needs in training: a clip of such a class played backwards is a clip of its partner.
    """

    def __init__(self, records: Sequence[VideoRecord], mode: Mode, cfg: VideoDatasetConfig | None = None,
                 frame_cache: dict[str, torch.Tensor] | None = None,
                 reversal_partners: dict[int, int] | None = None):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid choices: {', '.join(MODES)}")
        if not records:
            raise ValueError("VideoDataset needs at least one video")
        self.records = list(records)
        self.mode = mode
        self.cfg = cfg or VideoDatasetConfig()
        if mode == "train" and self.cfg.time_reversal > 0 and not reversal_partners:
            raise SettingError("time_reversal needs the dataset's time-reversed class pairs (reversal_partners; the "
                               "data module's reversal_pairs file)")
        self.reversal_partners = reversal_partners or {}
        reason = backend_unavailable(self.cfg.decoder)
        if reason is not None:
            raise RuntimeError(f"decoder {self.cfg.decoder!r} is not usable here: {reason}; or use decoder: pyav")
        self.train_transform = TrainClipTransform(self.cfg.transform) if mode == "train" else None
        self.eval_transform = EvalClipTransform(self.cfg.transform)
        # frame folders (records that are directories, or that the list format names so) are read by this backend
        self.frames = FrameFolderBackend(self.cfg.frame_template,
                                         {r.path: r.num_frames for r in self.records if r.num_frames is not None},
                                         [r.path for r in self.records if r.frame_folder])
        self.profile = False  # True: items carry "stage_s", the seconds of each of PROFILE_STAGES (bench-data)
        self._augment: BatchAugment | None = None  # the float work of load_view, made on first use
        self._index_cache: dict[str, VideoIndex] = {}
        self._attempted: set[int] = set()
        # path -> uint8 (N, C, H, W), with cfg.cache_decoded
        self._frame_cache: dict[str, torch.Tensor] = {} if frame_cache is None else frame_cache
        # the same videos' frames on disk, shared with other processes, with cfg.decoded_cache_dir
        self._disk_cache = DecodedCache(self.cfg.decoded_cache_dir) if self.cfg.decoded_cache_dir else None
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

    def _clip_indices(self, num_frames: int, view_index: int, rng: np.random.Generator | None) -> list[np.ndarray]:
        cfg = self.cfg
        if self.mode == "train":
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

    @property
    def backend(self) -> VideoBackend:
        return get_backend(self.cfg.decoder)

    def _backend_for(self, path: str) -> VideoBackend:
        """The frame-folder backend for a folder of frame images, else the configured video decoder."""
        return self.frames if self.frames.reads(path) else self.backend

    def _cached_frames(self, path: str, timer: StageTimer | None) -> torch.Tensor:
        """uint8 (N, C, H, W): every frame of ``path``, decoded once per process (``cache_decoded``), or loaded
        from ``decoded_cache_dir`` where another process left it."""
        if path not in self._frame_cache:
            start = time.perf_counter()
            self._frame_cache[path] = rearrange(torch.from_numpy(self._all_frames(path)), "n h w c -> n c h w")
            if timer is not None:
                timer.add("decode", time.perf_counter() - start)
        return self._frame_cache[path]

    def _all_frames(self, path: str) -> np.ndarray:
        """uint8 (N, H, W, 3): every frame of a frame folder, or of a video (through the disk cache, if any)."""
        if self.frames.reads(path):
            return self.frames.decode_all(path)
        frames = self._disk_cache.load(path) if self._disk_cache is not None else None
        if frames is None:
            frames = decode_all_frames(path)
            if self._disk_cache is not None:
                self._disk_cache.save(path, frames)
        return frames

    def _decode(
        self,
        path: str,
        view_index: int,
        specs_of: Callable[[VideoIndex, list[np.ndarray]], FrameSpec | list[FrameSpec] | None],
        timer: StageTimer | None,
        rng: np.random.Generator | None = None,
    ) -> tuple[list[torch.Tensor], list[np.ndarray], VideoIndex]:
        """uint8 (T, C, H, W) clips (one per sampled index array) of ``path``, decoded as ``specs_of(index, clips)``
        says (one FrameSpec per frame index), re-sampled when decoding corrects the frame count."""
        backend = self._backend_for(path)
        index = self._index_cache.get(path) or backend.probe(path, timer)
        clips = self._clip_indices(index.num_frames, view_index, rng)
        frames, new_index = backend.decode(path, np.concatenate(clips), index, specs_of(index, clips), timer)
        if new_index.num_frames != index.num_frames:  # the true frame count differs: sample again with it
            log.info(
                "%s: %d frames decode (index said %d); re-sampling the clip",
                path,
                new_index.num_frames,
                index.num_frames,
            )
            clips = self._clip_indices(new_index.num_frames, view_index, rng)
            frames, new_index = backend.decode(path, np.concatenate(clips), new_index, specs_of(new_index, clips),
                                               timer)
        self._index_cache[path] = new_index
        video = rearrange(torch.from_numpy(frames), "n h w c -> n c h w")
        return list(video.split([len(c) for c in clips])), clips, new_index

    def _train_clips(self, path: str, timer: StageTimer | None,
                     rng: np.random.Generator) -> tuple[list[torch.Tensor], list[ClipDraw]]:
        """uint8 (T, C, crop, crop) training clips (one per repeat) and their random choices, drawn from ``rng``
        (frame indices first, then the crop boxes, with the decode cache or without)."""
        transform = self.train_transform
        if self.cfg.cache_decoded:
            video = self._cached_frames(path, timer)
            indices = self._clip_indices(len(video), 0, rng)
            start = time.perf_counter()
            draws = [transform.draw(*video.shape[-2:], rng) for _ in indices]
            clips = [transform.crop(video[torch.from_numpy(np.asarray(c, dtype=np.int64))], d.box)
                     for c, d in zip(indices, draws)]
            if timer is not None:
                timer.add("augment", time.perf_counter() - start)
            return clips, draws
        draws: list[ClipDraw] = []
        size = self.cfg.transform.crop_size

        def specs_of(index: VideoIndex, clips: list[np.ndarray]) -> list[FrameSpec] | None:
            # the crop boxes are drawn before decoding, from the frame size alone, so the decoder converts only
            # them; a count correction re-draws them only when the size changed too
            if not (index.width and index.height):  # size unknown: full frames, cropped below
                return None
            start = time.perf_counter()
            fits = all(d.box[0] + d.box[2] <= index.height and d.box[1] + d.box[3] <= index.width for d in draws)
            if len(draws) != len(clips) or not fits:
                draws[:] = [transform.draw(index.height, index.width, rng) for _ in clips]
            if timer is not None:
                timer.add("augment", time.perf_counter() - start)
            return [FrameSpec(d.box, (size, size)) for d, c in zip(draws, clips) for _ in c]

        clips, _, index = self._decode(path, 0, specs_of, timer, rng)
        if not draws:  # the index had no frame size: crop the full frames here
            start = time.perf_counter()
            draws = [transform.draw(*clip.shape[-2:], rng) for clip in clips]
            clips = [transform.crop(clip, d.box) for clip, d in zip(clips, draws)]
            if timer is not None:
                timer.add("augment", time.perf_counter() - start)
        return clips, draws

    def _eval_clip(self, path: str, view_index: int, timer: StageTimer | None) -> torch.Tensor:
        """uint8 (T, C, crop, crop): the view's clip, short side resized in the decoder, then its crop."""
        crops = self.cfg.num_test_crops if self.mode == "test" else 1
        crop_index = view_index % self.cfg.num_test_crops if self.mode == "test" else 0
        if self.cfg.cache_decoded:
            video = self._cached_frames(path, timer)
            (indices,) = self._clip_indices(len(video), view_index, None)
            start = time.perf_counter()
            clip = self.eval_transform.crop(video[torch.from_numpy(np.asarray(indices, dtype=np.int64))], crop_index,
                                            crops)
            if timer is not None:
                timer.add("augment", time.perf_counter() - start)
            return clip
        short = self.cfg.transform.eval_short_side

        def specs_of(index: VideoIndex, clips: list[np.ndarray]) -> FrameSpec | None:
            if not (index.width and index.height):
                return None  # size unknown: full frames, resized below
            return FrameSpec(size=short_side_size(index.height, index.width, short))

        (clip,), _, _ = self._decode(path, view_index, specs_of, timer)
        start = time.perf_counter()
        clip = uniform_crop(resize_short_side(clip, short), self.cfg.transform.crop_size, crop_index, crops)
        if timer is not None:
            timer.add("augment", time.perf_counter() - start)
        return clip

    def load_view(self, video_index: int, view_index: int = 0) -> torch.Tensor:
        """One view of one video as the model takes it: float32 (3, T, H, W), normalised (and, in train mode,
        flipped / RandAugmented as drawn), without replacing a bad video.

        Raises :class:`~uv2.data.decode.VideoDecodeError` when the video cannot be decoded (``__getitem__`` is the
        robust path; this is for tools that handle single videos, e.g. prediction).
        """
        if not 0 <= video_index < len(self.records):
            raise IndexError(f"video_index {video_index} out of range for {len(self.records)} videos")
        if not 0 <= view_index < self.views:
            raise IndexError(f"view_index {view_index} out of range for {self.views} views ({self.mode} mode)")
        if self._augment is None:
            self._augment = BatchAugment(self.cfg.transform)
        video, flip, seed = self._load(video_index, view_index)
        if video.ndim == 4:  # one clip: a batch of one
            video, flip, seed = video[None], flip.view(1), seed.view(1)
        out = self._augment.clips(video.contiguous(), flip, seed)
        return out[0] if len(out) == 1 else out

    def _load(
        self, video_index: int, view_index: int, timer: StageTimer | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video, aug_flip, aug_seed) of an item: uint8 (3, T, H, W) or (R, 3, T, H, W), bool, int64; training
        draws from ``rng`` (default: this process's generator)."""
        path = self.records[video_index].path
        if self.mode == "train":
            clips, draws = self._train_clips(path, timer, rng if rng is not None else self.rng)
            videos = [rearrange(clip, "t c h w -> c t h w") for clip in clips]
            flips = torch.tensor([d.flip for d in draws])
            seeds = torch.tensor([d.seed for d in draws], dtype=torch.int64)
            if len(videos) == 1:
                return videos[0], flips[0], seeds[0]
            return torch.stack(videos), flips, seeds
        clip = self._eval_clip(path, view_index, timer)
        return rearrange(clip, "t c h w -> c t h w"), torch.tensor(False), torch.tensor(-1, dtype=torch.int64)

    def _maybe_reversed(self, video: torch.Tensor, label: int,
                        rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """With probability cfg.time_reversal, a clip of a class with a time-reversed partner played backwards,
        labelled as the partner (every repeat of the item: they share its label); other classes' clips unchanged,
        with nothing drawn."""
        partner = self.reversal_partners.get(label)
        if partner is None or rng.random() >= self.cfg.time_reversal:
            return video, label
        return video.flip(-3), partner  # (..., 3, T, H, W): T reversed

    def __getitem__(self, item: int | ItemKey) -> dict:
        """Item ``item``; an :class:`~uv2.data.sampler.ItemKey` also gives the generator of its training draws (a
        fresh one per attempt: a replacement draws the same whether this process knew the bad video before or not)."""
        start = time.perf_counter()
        timer = StageTimer() if self.profile else None
        key = item if isinstance(item, ItemKey) else None
        video_index, view_index = self.locate(key.index if key is not None else item)
        candidate, failures = video_index, 0
        for attempt in range(self.cfg.max_retries + 1):
            first_try = candidate not in self._attempted
            self._attempted.add(candidate)
            if candidate not in self._bad:
                rng = key.rng() if key is not None and self.mode == "train" else None
                try:
                    video, flip, seed = self._load(candidate, view_index, timer, rng)
                except VideoDecodeError as e:
                    self._bad[candidate] = e.reason
                    log.warning("bad video %s: %s", e.path, e.reason)
                else:
                    if first_try:
                        self._check_bad_fraction()
                    label = self.records[candidate].label
                    if self.mode == "train" and self.cfg.time_reversal > 0:
                        video, label = self._maybe_reversed(video, label, rng if rng is not None else self.rng)
                    out = {
                        "video": video,
                        "label": label,
                        "video_index": candidate,
                        "view_index": view_index,
                        "decode_failures": failures,
                        "aug_flip": flip,
                        "aug_seed": seed,
                    }
                    if timer is not None:
                        timer.add("item", time.perf_counter() - start)
                        out["stage_s"] = torch.tensor([timer.seconds.get(s, 0.0) for s in PROFILE_STAGES],
                                                      dtype=torch.float64)
                    return out
            failures += 1
            self._check_bad_fraction()
            if len(self.records) == 1:
                break
            candidate = self.replacement(video_index, attempt)
        raise TooManyBadVideos(
            f"no decodable video after {failures} attempts for item {key.index if key is not None else item} (video "
            f"{video_index}: {self.records[video_index].path}); first bad files: {self._first_bad()}"
        )


def collate_clips(batch: list[dict]) -> dict:
    """``default_collate`` (uint8 clips stay uint8), then fold repeated augmentation into the batch.

    With items of shape (R, 3, T, H, W) the batch ``video`` becomes (B*R, 3, T, H, W) (the R clips of an item are
    consecutive), ``aug_flip`` / ``aug_seed`` (B, R) become (B*R,), and ``label``, ``video_index``, ``view_index``
    are repeated to (B*R,) to match; ``decode_failures`` stays (B,) (one count per decoded video, so its sum is the
    number of failures).
    """
    out = default_collate(batch)
    video = out["video"]
    if video.ndim == 6:
        repeats = video.shape[1]
        out["video"] = rearrange(video, "b r c t h w -> (b r) c t h w")
        for key in ("aug_flip", "aug_seed"):
            if key in out:
                out[key] = rearrange(out[key], "b r -> (b r)")
        for key in ("label", "video_index", "view_index"):
            out[key] = out[key].repeat_interleave(repeats)
    return out


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: one intra-op thread per worker (decoding is single-threaded too)."""
    torch.set_num_threads(1)


class ImageDataset(Dataset):
    """Images listed as ``path,label`` (the synthetic ``images`` set), for image pretraining.

    Items: ``{"image": uint8 (3, crop, crop), "label": int, "index": int, "aug_flip": bool}``. Training: Inception
    crop (``cfg.scale``/``cfg.ratio``) here, and a flip drawn here (``cfg.flip``) that the DataModule's
    ``on_after_batch_transfer`` applies with the normalisation on the device (:class:`~uv2.data.augment.BatchAugment`);
    evaluation: short-side resize to ``cfg.eval_short_side`` and centre crop, no flip. Uses the same
    :class:`TransformConfig` as the videos (RandAugment is not applied).
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

    def __getitem__(self, index: int | ItemKey) -> dict:
        """Image ``index``; an :class:`~uv2.data.sampler.ItemKey` (the training sampler's) also gives the generator of
        its training draws (else this process's generator)."""
        from PIL import Image
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        rng = None
        if isinstance(index, ItemKey):
            index, rng = index.index, index.rng()
        record = self.records[index]
        try:
            with Image.open(record.path) as img:
                array = np.asarray(img.convert("RGB"))
        except (OSError, ValueError) as e:
            raise RuntimeError(f"cannot read image {record.path}: {e}") from e
        image = rearrange(torch.from_numpy(array.copy()), "h w c -> 1 c h w")
        cfg = self.cfg
        if self.train:
            rng = rng if rng is not None else self.rng
            top, left, h, w = random_resized_crop_box(*image.shape[-2:], cfg.scale, cfg.ratio, rng)
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
            flip = bool(cfg.flip and rng.random() < 0.5)
        else:
            image = uniform_crop(resize_short_side(image, cfg.eval_short_side), cfg.crop_size, 0, 1)
            flip = False
        return {"image": image[0].contiguous(), "label": record.label, "index": index, "aug_flip": flip}
