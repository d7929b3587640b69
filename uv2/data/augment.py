"""Per-batch work done where the batch lives after the transfer: flips, RandAugment and normalisation of uint8 clips.

Why. A worker's clips stay uint8 from the decoder to the device (a quarter of float32's bytes through the worker
queue, the pinned buffer and the host-to-device copy), and the float work of a batch runs as batched tensor ops on
the device the model trains on: Lightning calls ``on_after_batch_transfer`` of the DataModules
(:class:`~uv2.data.datamodule.VideoDataModule` and friends), which calls :class:`BatchAugment`. On a CPU-only run
the same code runs on the CPU.

Batches (dicts from :func:`~uv2.data.dataset.collate_clips`; the ``aug_*`` keys are consumed)::

    video     uint8 (B, 3, T, H, W)  ->  float32 (B, 3, T, H, W), normalised; images: ``image`` uint8 (B, 3, H, W)
    aug_flip  bool (B,)    flip this clip horizontally (drawn in the worker)
    aug_seed  int64 (B,)   RandAugment seed of this clip (drawn in the worker); -1: no RandAugment

Order, as the CPU path (:class:`~uv2.data.transforms.TrainClipTransform`) after its crop: flip, RandAugment,
``(x / 255 - mean) / std``. The crop and resize happened in the worker, inside the decoder's scaler
(:class:`~uv2.data.decode.FrameSpec`).

Randomness. Every random draw happened in the worker, from the dataset's seedable generator (the same draws, in the
same order, as the CPU path); this module is deterministic given the batch, so a seeded run reproduces and a resumed
run continues the same stream.

RandAugment (:class:`BatchRandAugment`). The plan of a clip (which ops, in which order, with which magnitudes) is what
timm's ``RandAugment`` draws with the clip's seed: timm's own sampling code runs with the per-clip seeding of
:class:`~uv2.data.transforms.ClipRandAugment`, on ops whose image function only records its arguments, so op
choice, probabilities, magnitude noise and sign flips are timm's, draw for draw. Each op is a torch version of the
PIL operation timm applies, on uint8 frames, per frame as PIL sees them:

- the same uint8 values as PIL (measured on random and smooth frames): Invert, Posterize, Solarize, SolarizeAdd,
  AutoContrast, Equalize (PIL's integer algorithms), Brightness, Color, Contrast, Desaturate, Sharpness (PIL's
  integer grey, per-frame mean, SMOOTH kernel with the border kept, truncating blend), Rotate, ShearX/Y,
  TranslateX/Y(Rel) (PIL's affine sampling in double precision: pixel centres, bilinear, the fill colour outside
  the frame; on MPS, which has no double, within one level);
- GaussianBlur(Rand) as PIL computes it (three box blurs of fractional radius per direction, edges extended), within
  one level on a few pixels.

``tests/test_data_augment.py`` compares every op with timm's PIL op, and whole clips with the CPU path.
"""

from __future__ import annotations

import copy
import functools
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from uv2.data.transforms import ClipRandAugment, TransformConfig, parse_rand_augment

__all__ = ["BatchAugment", "BatchRandAugment", "normalize", "RAND_AUGMENT_OPS"]

AUG_KEYS: tuple[str, ...] = ("aug_flip", "aug_seed")  # per-clip draws a worker ships with a batch


def _on_device(values: Sequence[float], device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A small constant built on ``device`` by fill kernels: ``torch.tensor(values, device=cuda)`` copies from
    pageable host memory, which waits for every kernel queued before it, once per call."""
    return torch.stack([torch.full((), float(v), dtype=dtype, device=device) for v in values])


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int = 1) -> torch.Tensor:
    """uint8 -> float32 ``(x / 255 - mean) / std`` per channel (the CPU path's arithmetic, op for op)."""
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    mean_t = _on_device(mean, x.device).view(shape)
    std_t = _on_device(std, x.device).view(shape)
    return x.float().div_(255.0).sub_(mean_t).div_(std_t)


# ---------------------------------------------------------------------------------------------------------------------
# PIL's operations on uint8 frames (N, C, H, W), C = 3 (RGB)


def _blend(degenerate: torch.Tensor, image: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, image, factor)``: ``degenerate + factor * (image - degenerate)`` in float,
    clipped to [0, 255] and truncated (PIL's C code casts to UINT8)."""
    d = degenerate.float()
    return d.add_(image.float().sub_(d).mul_(factor)).clamp_(0, 255).to(torch.uint8)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: ``(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`` (ITU-R 601-2 luma, fixed point);
    (N, 3, H, W) uint8 -> (N, 1, H, W) uint8."""
    r, g, b = x.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def _lut(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Apply a lookup table: ``table`` (256,) for all pixels, or (N, C, 256) per frame and channel."""
    if table.ndim == 1:
        return table[x.long()]
    n, c = x.shape[:2]
    flat = rearrange(x, "n c h w -> n c (h w)").long()
    return torch.gather(table, 2, flat).view_as(x)


def _histogram(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 256) int64 per-frame, per-channel histograms of uint8 (N, C, H, W)."""
    n, c = x.shape[:2]
    flat = rearrange(x, "n c h w -> (n c) (h w)").long()
    hist = torch.zeros(n * c, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    return hist.view(n, c, 256)


def invert(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def posterize(x: torch.Tensor, bits_to_keep: int) -> torch.Tensor:
    """Keep the ``bits_to_keep`` high bits; 0 bits (timm's PosterizeIncreasing at magnitude 10) gives black, as PIL
    did before it started rejecting 0 (which makes the CPU path fail there)."""
    if bits_to_keep >= 8:  # timm returns the image unchanged
        return x
    mask = ~(2 ** (8 - int(bits_to_keep)) - 1) & 0xFF
    return x & mask


def solarize(x: torch.Tensor, thresh: float) -> torch.Tensor:
    """PIL ``ImageOps.solarize``: values at or above ``thresh`` are inverted (compared as integers: a threshold of
    256 must not wrap to a uint8 0)."""
    return torch.where(x.int() >= thresh, 255 - x, x)


def solarize_add(x: torch.Tensor, add: int, thresh: int = 128) -> torch.Tensor:
    """timm ``solarize_add``: values below ``thresh`` get ``add`` (capped at 255)."""
    table = torch.arange(256, device=x.device)
    table = torch.where(table < thresh, (table + int(add)).clamp(max=255), table).to(torch.uint8)
    return _lut(x, table)


def auto_contrast(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.autocontrast`` per frame and channel: ``int(v * scale + offset)`` with
    ``scale = 255 / (hi - lo)``, ``offset = -lo * scale`` (in double, as PIL), identity where ``hi <= lo``."""
    lo = x.amin(dim=(2, 3)).double()  # (N, C)
    hi = x.amax(dim=(2, 3)).double()
    flat = hi <= lo
    # a true division (torch turns ``255.0 / tensor`` into ``reciprocal * 255``, one rounding more than PIL)
    scale = torch.full_like(hi, 255.0) / torch.where(flat, torch.ones_like(hi), hi - lo)
    offset = -lo * scale
    levels = torch.arange(256, dtype=torch.float64, device=x.device)
    table = (levels * scale[..., None] + offset[..., None]).clamp_(0, 255).floor_()  # int() of non-negatives
    table = torch.where(flat[..., None], levels, table).to(torch.uint8)
    return _lut(x, table)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.equalize`` per frame and channel: ``step = (pixels - count of the last used level) // 255``,
    ``table[i] = (step // 2 + pixels below level i) // step``; identity with one used level or step 0."""
    hist = _histogram(x)  # (N, C, 256)
    levels = torch.arange(256, device=x.device)
    used = hist > 0
    last = torch.where(used, levels, -1).amax(-1, keepdim=True)  # (N, C, 1) highest used level
    last_count = torch.gather(hist, 2, last.clamp(min=0))
    step = (hist.sum(-1, keepdim=True) - last_count) // 255
    below = hist.cumsum(-1) - hist  # pixels strictly below each level
    identity = (used.sum(-1, keepdim=True) <= 1) | (step == 0)
    table = (step // 2 + below) // step.clamp(min=1)
    table = torch.where(identity, levels, table.clamp(max=255)).to(torch.uint8)
    return _lut(x, table)


def brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(torch.zeros_like(x), x, factor)


def color(x: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(_grey(x).expand_as(x), x, factor)


def desaturate(x: torch.Tensor, factor: float) -> torch.Tensor:
    """timm ``desaturate``: Color with ``1 - factor`` clamped to [0, 1]."""
    return color(x, min(1.0, max(0.0, 1.0 - factor)))


def contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``ImageEnhance.Contrast``: blend with a flat image of the frame's mean grey level, ``int(mean + 0.5)``."""
    mean = _grey(x).double().mean(dim=(1, 2, 3), keepdim=True).add_(0.5).floor_()
    return _blend(mean.to(torch.uint8).expand_as(x), x, factor)


def sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL ``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered frame (rounded; the one-pixel border is the
    frame's own, as PIL's 3x3 filter leaves it)."""
    n, c, h, w = x.shape
    if h < 3 or w < 3:
        return x.clone()
    kernel = torch.ones(3, 3, device=x.device)  # PIL ImageFilter.SMOOTH: [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13
    kernel[1, 1] = 5.0
    kernel = (kernel / 13).expand(c, 1, 3, 3)
    inner = F.conv2d(x.float(), kernel, groups=c).add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)
    smooth = x.clone()
    smooth[..., 1:-1, 1:-1] = inner
    return _blend(smooth, x, factor)


def _box_blur_pass(x: torch.Tensor, radius: float, dim: int) -> torch.Tensor:
    """One pass of PIL's box blur along ``dim`` (float in, float out): a box of ``2 r + 1`` pixels with fractional
    ends (weight ``r - floor(r)``), edge pixels extended, each pass rounded to uint8 levels as PIL stores it."""
    whole = int(math.floor(radius))
    frac = radius - whole
    size = 2 * whole + 3  # the whole box plus one fractional tap on each side
    weights = torch.ones(size, dtype=x.dtype, device=x.device)
    weights[0] = weights[-1] = frac
    weights /= 2 * radius + 1
    moved = x.movedim(dim, -1)
    shape = moved.shape
    line = moved.reshape(-1, 1, shape[-1])
    line = F.pad(line, (whole + 1, whole + 1), mode="replicate")
    out = F.conv1d(line, weights.view(1, 1, -1)).add_(0.5).floor_().clamp_(0, 255)
    return out.view(shape).movedim(-1, dim)


def gaussian_blur(x: torch.Tensor, radius: float) -> torch.Tensor:
    """PIL ``ImageFilter.GaussianBlur(radius)``: three box blurs per direction whose fractional radius matches the
    Gaussian's variance (PIL's ``_gaussian_blur_radius``: Gwosdek et al., "Theoretical foundations of Gaussian
    convolution by extended box filtering"), horizontal passes first."""
    if radius <= 0:
        return x.clone()
    passes = 3
    sigma2 = radius * radius / passes
    length = math.sqrt(12.0 * sigma2 + 1.0)
    whole = math.floor((length - 1.0) / 2.0)
    frac = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2) / (6 * (sigma2 - (whole + 1) * (whole + 1)))
    box = whole + frac
    y = x.float()
    for dim in (3, 2):  # width, then height
        for _ in range(passes):
            y = _box_blur_pass(y, box, dim)
    return y.to(torch.uint8)


def _affine(x: torch.Tensor, matrix: Sequence[float], fill: Sequence[int]) -> torch.Tensor:
    """PIL ``Image.transform(size, AFFINE, matrix, BILINEAR, fillcolor=fill)``: output pixel (x, y) samples the input
    at ``(a, b, c, d, e, f) . (x + 0.5, y + 0.5, 1)`` (pixel centres); a sample outside the frame is the fill colour,
    inside it is bilinear between the four nearest pixel centres (neighbours clamped to the frame)."""
    n, c, h, w = x.shape
    a, b, c0, d, e, f = (float(v) for v in matrix)
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # PIL computes in double (MPS has none)
    ys = torch.arange(h, dtype=dtype, device=x.device).add_(0.5).view(h, 1)
    xs = torch.arange(w, dtype=dtype, device=x.device).add_(0.5).view(1, w)
    xin = a * xs + b * ys + c0  # (H, W) sample positions in input pixels
    yin = d * xs + e * ys + f
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    xin, yin = xin - 0.5, yin - 0.5  # to pixel-centre coordinates
    x0, y0 = xin.floor(), yin.floor()
    dx, dy = xin - x0, yin - y0
    x0, y0 = x0.long(), y0.long()
    xa, xb = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
    ya = y0.clamp(0, h - 1)
    yb = torch.where(y0 + 1 < h, y0 + 1, ya)  # PIL: the second row is the first one below the frame
    flat = x.reshape(n, c, h * w).to(dtype)  # (N, C, H*W): pixels addressed by y * W + x
    # the four neighbours of every output pixel in one gather (few, large kernels: on a GPU each op is a launch)
    corners = torch.stack([ya * w + xa, ya * w + xb, yb * w + xa, yb * w + xb])  # (4, H, W) flat input indices
    top_left, top_right, bottom_left, bottom_right = flat[:, :, corners.view(-1)].view(n, c, 4, h, w).unbind(2)
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    value = (top + (bottom - top) * dy).clamp_(0, 255).to(torch.uint8)  # PIL truncates
    fill_t = _on_device(list(fill)[:c], x.device, torch.uint8).view(1, c, 1, 1)
    return torch.where(inside, value, fill_t)


def _rotation_matrix(degrees: float, width: int, height: int) -> list[float]:
    """PIL ``Image.rotate``'s inverse affine matrix about the frame centre (counter-clockwise ``degrees``)."""
    angle = -math.radians(degrees % 360.0)
    matrix = [round(math.cos(angle), 15), round(math.sin(angle), 15), 0.0,
              round(-math.sin(angle), 15), round(math.cos(angle), 15), 0.0]
    cx, cy = width / 2, height / 2
    a, b, _, d, e, _ = matrix
    matrix[2] = a * -cx + b * -cy + cx
    matrix[5] = d * -cx + e * -cy + cy
    return matrix


def rotate(x: torch.Tensor, degrees: float, fill: Sequence[int]) -> torch.Tensor:
    return _affine(x, _rotation_matrix(degrees, x.shape[-1], x.shape[-2]), fill)


def shear_x(x: torch.Tensor, factor: float, fill: Sequence[int]) -> torch.Tensor:
    return _affine(x, (1, factor, 0, 0, 1, 0), fill)


def shear_y(x: torch.Tensor, factor: float, fill: Sequence[int]) -> torch.Tensor:
    return _affine(x, (1, 0, 0, factor, 1, 0), fill)


def translate_x_abs(x: torch.Tensor, pixels: float, fill: Sequence[int]) -> torch.Tensor:
    return _affine(x, (1, 0, pixels, 0, 1, 0), fill)


def translate_y_abs(x: torch.Tensor, pixels: float, fill: Sequence[int]) -> torch.Tensor:
    return _affine(x, (1, 0, 0, 0, 1, pixels), fill)


def translate_x_rel(x: torch.Tensor, pct: float, fill: Sequence[int]) -> torch.Tensor:
    return translate_x_abs(x, pct * x.shape[-1], fill)


def translate_y_rel(x: torch.Tensor, pct: float, fill: Sequence[int]) -> torch.Tensor:
    return translate_y_abs(x, pct * x.shape[-2], fill)


#: timm op name -> (torch op, whether it takes the fill colour); the op's other arguments are timm's level arguments
RAND_AUGMENT_OPS: dict[str, tuple[Callable[..., torch.Tensor], bool]] = {
    "AutoContrast": (auto_contrast, False),
    "Equalize": (equalize, False),
    "Invert": (invert, False),
    "Rotate": (rotate, True),
    "Posterize": (posterize, False),
    "PosterizeIncreasing": (posterize, False),
    "PosterizeOriginal": (posterize, False),
    "Solarize": (solarize, False),
    "SolarizeIncreasing": (solarize, False),
    "SolarizeAdd": (solarize_add, False),
    "Color": (color, False),
    "ColorIncreasing": (color, False),
    "Contrast": (contrast, False),
    "ContrastIncreasing": (contrast, False),
    "Brightness": (brightness, False),
    "BrightnessIncreasing": (brightness, False),
    "Sharpness": (sharpness, False),
    "SharpnessIncreasing": (sharpness, False),
    "ShearX": (shear_x, True),
    "ShearY": (shear_y, True),
    "TranslateX": (translate_x_abs, True),
    "TranslateY": (translate_y_abs, True),
    "TranslateXRel": (translate_x_rel, True),
    "TranslateYRel": (translate_y_rel, True),
    "Desaturate": (desaturate, False),
    "GaussianBlur": (gaussian_blur, False),
    "GaussianBlurRand": (gaussian_blur, False),  # its radius is drawn while planning (see _record)
}

Plan = list[tuple[str, tuple[Any, ...]]]  # (timm op name, its arguments) in the order applied


def _record(name: str, plan: Plan, *args: Any, **kwargs: Any) -> Plan:
    """Stands in for timm's image function of op ``name``: records the arguments instead of touching an image.
    ``gaussian_blur_rand`` draws its radius inside the image function; the draw is replayed here so that the
    random streams stay aligned with timm's."""
    if name == "GaussianBlurRand":
        (factor,) = args
        args = (random.uniform(0.1, 2.0 * factor),)
    return plan + [(name, tuple(args))]


class BatchRandAugment:
    """timm RandAugment on batches of uint8 clips: timm's plan per clip seed, torch ops (see the module docstring).

    Args:
        config: timm config string, validated by :func:`~uv2.data.transforms.parse_rand_augment`.
        image_size: frame size the ops see (sets the translate range, as timm's ``create_transform`` does).
        mean: normalisation mean; its 0-255 version is the fill colour of geometric ops.
    """

    def __init__(self, config: str, image_size: int, mean: Sequence[float]):
        parse_rand_augment(config)
        reference = ClipRandAugment(config, image_size, mean)  # the CPU path's timm object, same hparams
        self.config = config
        self.fill = tuple(round(255 * m) for m in mean)
        self.planner = copy.copy(reference.augment)
        unknown = [op.name for op in self.planner.ops if op.name not in RAND_AUGMENT_OPS]
        if unknown:
            raise ValueError(f"RandAugment config {config!r}: ops {unknown} have no batched version; "
                             f"supported: {', '.join(RAND_AUGMENT_OPS)}")
        recorders = []
        for op in self.planner.ops:
            recorder = copy.copy(op)
            recorder.aug_fn = functools.partial(_record, op.name)
            recorders.append(recorder)
        self.planner.ops = recorders

    def plan(self, seed: int) -> Plan:
        """The ops timm applies to every frame of a clip augmented with ``seed`` (as ClipRandAugment seeds it)."""
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            return self.planner([])
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)

    def apply(self, frames: torch.Tensor, plan: Plan) -> torch.Tensor:
        """uint8 (N, 3, H, W) frames of one clip -> the same with the plan's ops applied in order."""
        for name, args in plan:
            op, takes_fill = RAND_AUGMENT_OPS[name]
            frames = op(frames, *args, fill=self.fill) if takes_fill else op(frames, *args)
        return frames

    def __repr__(self) -> str:
        return f"BatchRandAugment({self.config!r})"


class BatchAugment:
    """Flip, RandAugment and normalisation of uint8 batches (see the module docstring).

    Args:
        cfg: the transform settings of the data (``rand_augment``, ``crop_size``, ``mean``, ``std``).
    """

    def __init__(self, cfg: TransformConfig):
        self.cfg = cfg
        self.rand_augment = BatchRandAugment(cfg.rand_augment, cfg.crop_size, cfg.mean) if cfg.rand_augment else None

    def plans(self, seeds: torch.Tensor | None) -> list[Plan] | None:
        """RandAugment plans of a batch's ``aug_seed`` (CPU work: call before the transfer when the seeds are on the
        host, so that reading them never waits for the device)."""
        if self.rand_augment is None or seeds is None:
            return None
        return [self.rand_augment.plan(int(s)) if s >= 0 else [] for s in seeds.tolist()]

    def clips(
        self,
        video: torch.Tensor,
        flip: torch.Tensor | None = None,
        seeds: torch.Tensor | None = None,
        plans: list[Plan] | None = None,
    ) -> torch.Tensor:
        """uint8 (B, 3, T, H, W) -> float32 (B, 3, T, H, W): flip where ``flip``, RandAugment by ``plans`` (or the
        ``seeds``' plans), normalise."""
        if video.dtype != torch.uint8:
            raise TypeError(f"BatchAugment expects uint8 clips, got {video.dtype}")
        if flip is not None:
            video = torch.where(flip.to(video.device).view(-1, 1, 1, 1, 1), video.flip(-1), video)
        if plans is None:
            plans = self.plans(seeds)
        if plans is not None and any(plans):
            video = video.clone()
            for b, plan in enumerate(plans):
                if plan:
                    frames = rearrange(video[b], "c t h w -> t c h w")
                    video[b] = rearrange(self.rand_augment.apply(frames, plan), "t c h w -> c t h w")
        return normalize(video, self.cfg.mean, self.cfg.std)

    def before_transfer(self, batch: Any) -> Any:
        """Plan RandAugment on the host: ``aug_seed`` -> ``aug_plan`` (a list, which the transfer leaves alone)."""
        if isinstance(batch, dict) and self.rand_augment is not None and "aug_seed" in batch:
            batch = dict(batch)
            batch["aug_plan"] = self.plans(batch.pop("aug_seed"))
        return batch

    def __call__(self, batch: Any) -> Any:
        """A batch dict with uint8 ``video`` or ``image`` -> the model's float input; other batches pass unchanged."""
        if not isinstance(batch, dict):
            return batch
        key = "video" if "video" in batch else "image" if "image" in batch else None
        if key is None or batch[key].dtype != torch.uint8:
            return batch
        batch = dict(batch)
        flip, seeds, plans = batch.pop("aug_flip", None), batch.pop("aug_seed", None), batch.pop("aug_plan", None)
        if key == "video":
            batch[key] = self.clips(batch[key], flip, seeds, plans)
        else:  # images (B, 3, H, W): one-frame clips
            clips = self.clips(batch[key].unsqueeze(2), flip, seeds, plans)
            batch[key] = clips.squeeze(2)
        return batch
