"""Clip transforms: one set of random parameters per clip, applied identically to all of its frames.

Layout. Transforms take a uint8 clip tensor of shape **(T, C, H, W)** (frames as a batch of images, what
torchvision's functional ops expect) and return the model input: float32 **(C, T, H, W)**, normalised.

Training (:class:`TrainClipTransform`), following the UniFormerV2 recipe (PySlowFast ``spatial_sampling`` + timm
RandAugment), in this order:

1. spatial crop, one box for the whole clip, resized to ``crop_size`` (bilinear, antialiased):
   ``random_resized`` = Inception crop (area fraction in ``scale``, aspect ratio log-uniform in ``ratio``, 10 tries
   then the centre crop, exactly torchvision's rule) or ``jitter`` = short side resized to a random integer in
   ``jitter_short_side`` and a random ``crop_size`` square cropped (implemented as one crop+resize of the original);
2. horizontal flip with probability 0.5 (``flip``; turn it off for Something-Something, where left/right is the label);
3. timm RandAugment from a config string such as ``"rand-m7-n4-mstd0.5-inc1"`` (:class:`ClipRandAugment`): the same
   ops with the same magnitudes on every frame. timm draws its choices from Python's ``random`` and NumPy's global
   RNG; we seed both from one per-clip seed before each frame (saving and restoring their state), so every frame
   replays the identical draws. RandAugment runs after the crop (on ``crop_size`` images, cheaper than the
   official order, which augments the full frame first);
4. ``/255``, ``(x - mean) / std`` with the backbone's pretraining statistics (CLIP by default).

Evaluation (:class:`EvalClipTransform`): short side resized to ``short_side`` (default ``crop_size``), then one
``crop_size`` square: the centre crop, or with 3 crops the first / centre / last square along the long side
(left/centre/right for landscape frames, top/centre/bottom for portrait), as PySlowFast ``uniform_crop``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from uv2.errors import SettingError

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TransformConfig",
    "ClipDraw",
    "TrainClipTransform",
    "EvalClipTransform",
    "ClipRandAugment",
    "parse_rand_augment",
    "random_resized_crop_box",
    "jitter_crop_box",
    "short_side_size",
    "normalize_clip",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TrainCrop = Literal["random_resized", "jitter"]
TRAIN_CROPS: tuple[str, ...] = ("random_resized", "jitter")


@dataclass
class TransformConfig:
    """Spatial augmentation and normalisation of clips."""

    crop_size: int = 224  # output height = width
    short_side: int | None = None  # eval: short side resized to this before cropping (None: crop_size)
    train_crop: TrainCrop = "random_resized"  # "random_resized" (Inception crop) or "jitter" (short-side jitter + crop)
    scale: tuple[float, float] = (0.08, 1.0)  # random_resized: range of the crop's area fraction
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # random_resized: range of the crop's aspect ratio (w/h)
    jitter_short_side: tuple[int, int] | None = None  # jitter: short-side range (None: crop_size*(256, 320)/224)
    flip: bool = True  # random horizontal flip (off for datasets where left/right is the label)
    rand_augment: str | None = None  # timm RandAugment config, e.g. "rand-m7-n4-mstd0.5-inc1"; None: off
    mean: tuple[float, ...] = CLIP_MEAN  # per-channel mean of [0, 1] pixels
    std: tuple[float, ...] = CLIP_STD  # per-channel std of [0, 1] pixels

    def __post_init__(self) -> None:
        if self.crop_size < 1:
            raise SettingError(f"crop_size must be >= 1, got {self.crop_size}")
        if self.short_side is not None and self.short_side < self.crop_size:
            raise SettingError(f"short_side ({self.short_side}) must be >= crop_size ({self.crop_size})")
        if self.train_crop not in TRAIN_CROPS:
            raise SettingError(f"unknown train_crop {self.train_crop!r}; valid choices: {', '.join(TRAIN_CROPS)}")
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise SettingError(f"scale must satisfy 0 < min <= max <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise SettingError(f"ratio must satisfy 0 < min <= max, got {self.ratio}")
        if self.jitter_short_side is not None:
            jlo, jhi = self.jitter_short_side
            if not self.crop_size <= jlo <= jhi:
                raise SettingError(
                    f"jitter_short_side must satisfy crop_size <= min <= max, got {self.jitter_short_side}"
                )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise SettingError(f"mean and std need 3 values each (std > 0), got mean={self.mean} std={self.std}")
        if self.rand_augment is not None:
            parse_rand_augment(self.rand_augment)

    @property
    def eval_short_side(self) -> int:
        return self.short_side or self.crop_size

    @property
    def jitter_range(self) -> tuple[int, int]:
        if self.jitter_short_side is not None:
            return tuple(self.jitter_short_side)
        return round(self.crop_size * 256 / 224), round(self.crop_size * 320 / 224)


# ---------------------------------------------------------------------------------------------------------------------
# RandAugment


_RA_KEYS = {"m": int, "n": int, "p": float, "mstd": float, "mmax": int, "inc": int}
_RA_TRANSFORM_SETS = ("weights", "3a", "3aw")


def parse_rand_augment(config: str) -> dict[str, float | int | str]:
    """Validate a timm RandAugment string ("rand-m7-n4-mstd0.5-inc1") and return its fields.

    Sections after ``rand`` are ``m<int>`` magnitude, ``n<int>`` ops per image, ``p<float>`` op probability,
    ``mstd<float>`` magnitude noise, ``mmax<int>`` magnitude cap, ``inc<0|1>`` increasing ops, ``t<name>`` transform
    set. Raises a SettingError (a ValueError) naming the bad section and the valid ones (timm itself only asserts).
    """
    valid = "m<int>, n<int>, p<float>, mstd<float>, mmax<int>, inc<0|1>, t<" + "|".join(_RA_TRANSFORM_SETS) + ">"
    if not isinstance(config, str) or not config:
        raise SettingError(
            f"RandAugment config must be a non-empty string like 'rand-m7-n4-mstd0.5-inc1', got {config!r}"
        )
    head, *sections = config.split("-")
    if head != "rand":
        raise SettingError(f"RandAugment config {config!r} must start with 'rand', e.g. 'rand-m7-n4-mstd0.5-inc1'")
    out: dict[str, float | int | str] = {}
    for section in sections:
        if section.startswith("t"):
            name = section[1:]
            if name not in _RA_TRANSFORM_SETS:
                raise SettingError(
                    f"RandAugment config {config!r}: unknown transform set {section!r}; "
                    f"valid: t{', t'.join(_RA_TRANSFORM_SETS)}"
                )
            out["t"] = name
            continue
        match = re.fullmatch(r"([a-z]+)(\d+(?:\.\d*)?)", section)
        if match is None or match.group(1) not in _RA_KEYS:
            raise SettingError(f"RandAugment config {config!r}: bad section {section!r}; valid sections: {valid}")
        key, value = match.groups()
        cast = _RA_KEYS[key]
        try:
            out[key] = cast(value)
        except ValueError:
            raise SettingError(
                f"RandAugment config {config!r}: section {section!r} needs a {cast.__name__} value"
            ) from None
        if key == "inc" and out[key] not in (0, 1):
            raise SettingError(f"RandAugment config {config!r}: inc must be 0 or 1, got {value}")
    return out


class ClipRandAugment:
    """timm RandAugment applied with identical ops and magnitudes to every frame of a clip.

    Args:
        config: timm config string, validated by :func:`parse_rand_augment`.
        image_size: frame size the ops see (sets the translate range, as timm's ``create_transform`` does).
        mean: normalisation mean; its 0-255 version is the fill colour of geometric ops.
    """

    def __init__(self, config: str, image_size: int, mean: Sequence[float] = CLIP_MEAN):
        from timm.data.auto_augment import rand_augment_transform

        parse_rand_augment(config)
        hparams = dict(
            translate_const=int(image_size * 0.45),
            img_mean=tuple(round(255 * m) for m in mean),
            interpolation=Image.BILINEAR,
        )
        self.config = config
        self.augment = rand_augment_transform(config, hparams)

    def __call__(self, clip: torch.Tensor, seed: int) -> torch.Tensor:
        """uint8 (T, C, H, W) -> uint8 (T, C, H, W); ``seed`` fixes the ops (same seed, same ops)."""
        frames = rearrange(clip, "t c h w -> t h w c").numpy()
        py_state, np_state = random.getstate(), np.random.get_state()
        out = []
        try:
            for frame in frames:
                random.seed(seed)
                np.random.seed(seed % 2**32)
                out.append(np.asarray(self.augment(Image.fromarray(np.ascontiguousarray(frame)))))
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        return rearrange(torch.from_numpy(np.stack(out)), "t h w c -> t c h w")

    def __repr__(self) -> str:
        return f"ClipRandAugment({self.config!r})"


# ---------------------------------------------------------------------------------------------------------------------
# Geometry


def random_resized_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of an Inception-style crop: torchvision ``RandomResizedCrop.get_params`` with a numpy rng."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height  # fallback: central crop with the ratio clamped into range
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def jitter_crop_box(
    height: int, width: int, crop_size: int, short_range: tuple[int, int], rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(top, left, h, w) in the original frame of a random ``crop_size`` crop after a random short-side resize."""
    short = int(rng.integers(short_range[0], short_range[1] + 1))
    factor = short / min(height, width)
    side = min(crop_size / factor, height, width)  # the crop's size in original pixels
    side_h, side_w = max(1, round(side)), max(1, round(side))
    top = int(rng.integers(0, height - side_h + 1))
    left = int(rng.integers(0, width - side_w + 1))
    return top, left, side_h, side_w


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) after resizing so that the short side is ``size``, keeping the aspect ratio."""
    if height <= width:
        return size, max(1, round(width * size / height))
    return max(1, round(height * size / width)), size


def resize_short_side(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (..., H, W) so that min(H, W) == size, keeping the aspect ratio (bilinear, antialiased)."""
    h, w = clip.shape[-2:]
    if min(h, w) == size:
        return clip
    return TF.resize(clip, list(short_side_size(h, w, size)), interpolation=InterpolationMode.BILINEAR, antialias=True)


def uniform_crop(clip: torch.Tensor, size: int, crop_index: int, num_crops: int) -> torch.Tensor:
    """Crop a ``size`` square: the centre (``num_crops=1``) or the ``crop_index``-th of 3 along the long side."""
    if num_crops not in (1, 3):
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if not 0 <= crop_index < num_crops:
        raise ValueError(f"crop_index must be in [0, {num_crops}), got {crop_index}")
    h, w = clip.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot crop {size}x{size} from {h}x{w}; resize the short side first")
    position = 1 if num_crops == 1 else crop_index  # 0: first, 1: centre, 2: last along the long side
    top, left = (h - size) // 2, (w - size) // 2
    if h > w:
        top = (0, (h - size) // 2, h - size)[position]
    else:
        left = (0, (w - size) // 2, w - size)[position]
    return clip[..., top : top + size, left : left + size]


def normalize_clip(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, C, H, W) -> float32 (C, T, H, W) normalised: ``(x / 255 - mean) / std``."""
    x = clip.float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x = x.sub_(mean_t).div_(std_t)
    return rearrange(x, "t c h w -> c t h w").contiguous()


# ---------------------------------------------------------------------------------------------------------------------
# Pipelines


@dataclass(frozen=True)
class ClipDraw:
    """The random choices of one training clip, drawn before anything is decoded (only the frame size is needed)."""

    box: tuple[int, int, int, int]  # crop (top, left, height, width) in source pixels, resized to crop_size
    flip: bool  # flip horizontally
    seed: int  # RandAugment seed; -1: no RandAugment (nothing drawn for it)


@dataclass
class TrainClipTransform:
    """Random crop -> flip -> RandAugment -> normalise, with one draw per clip (see module docstring).

    This is the CPU path (everything on one clip, float32 out). Training batches take the fast path: the same
    :meth:`draw`, the crop and resize inside the decoder (:class:`~uv2.data.decode.FrameSpec`), the rest on the
    device (:class:`~uv2.data.augment.BatchAugment`); the tests hold the two paths to the same output.
    """

    cfg: TransformConfig = field(default_factory=TransformConfig)

    def __post_init__(self) -> None:
        self.rand_augment = (
            ClipRandAugment(self.cfg.rand_augment, self.cfg.crop_size, self.cfg.mean) if self.cfg.rand_augment else None
        )

    def draw(self, height: int, width: int, rng: np.random.Generator) -> ClipDraw:
        """The clip's crop box, flip and RandAugment seed, drawn from ``rng`` in this order."""
        cfg = self.cfg
        if cfg.train_crop == "random_resized":
            box = random_resized_crop_box(height, width, cfg.scale, cfg.ratio, rng)
        else:
            box = jitter_crop_box(height, width, cfg.crop_size, cfg.jitter_range, rng)
        flip = bool(cfg.flip and rng.random() < 0.5)
        seed = int(rng.integers(2**63 - 1)) if self.rand_augment is not None else -1
        return ClipDraw(box, flip, seed)

    def crop(self, clip: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
        """uint8 (..., H, W) -> uint8 (..., crop, crop): the box resized to ``crop_size`` (bilinear, antialiased)."""
        size = self.cfg.crop_size
        return TF.resized_crop(clip, *box, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)

    def apply(self, clip: torch.Tensor, draw: ClipDraw) -> torch.Tensor:
        """uint8 (T, C, H, W) -> float32 (C, T, crop, crop) with the given choices."""
        clip = self.crop(clip, draw.box)
        if draw.flip:
            clip = TF.horizontal_flip(clip)
        if self.rand_augment is not None and draw.seed >= 0:
            clip = self.rand_augment(clip, seed=draw.seed)
        return normalize_clip(clip, self.cfg.mean, self.cfg.std)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 (T, C, H, W) -> float32 (C, T, crop, crop)."""
        return self.apply(clip, self.draw(*clip.shape[-2:], rng))


@dataclass
class EvalClipTransform:
    """Short-side resize -> centre or 1-of-3 crop -> normalise (deterministic)."""

    cfg: TransformConfig = field(default_factory=TransformConfig)

    def crop(self, clip: torch.Tensor, crop_index: int = 0, num_crops: int = 1) -> torch.Tensor:
        """uint8 (T, C, H, W) -> uint8 (T, C, crop, crop): the resize and crop, without normalising."""
        clip = resize_short_side(clip, self.cfg.eval_short_side)
        return uniform_crop(clip, self.cfg.crop_size, crop_index, num_crops)

    def __call__(self, clip: torch.Tensor, crop_index: int = 0, num_crops: int = 1) -> torch.Tensor:
        """uint8 (T, C, H, W) -> float32 (C, T, crop, crop)."""
        return normalize_clip(self.crop(clip, crop_index, num_crops), self.cfg.mean, self.cfg.std)
