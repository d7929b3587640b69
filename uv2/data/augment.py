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

Batches, not clips. The ops fall into families that one pass applies to many clips at once, each clip with its own
op and parameters: lookup tables (Invert ... Equalize: a table per frame and channel), blends (Brightness ...
Sharpness: a degenerate frame per op) and affine maps (Rotate, Shear, Translate: a matrix per clip).
:class:`AugmentProgram` groups a batch's plans on the host (before the transfer) into rounds, the ``k``-th op of every
clip in round ``k``, and a round into one pass per family: about 10 passes and 580 tensor operations for 32 clips
with rand-m7-n4, where a loop over clips took about 1,850, most of them small kernels whose launches cost more than
their work on a GPU. On the CPU a pass runs clip by clip (there are no launches to save, and a group's temporaries
would cost fresh memory pages at every call); GaussianBlur runs clip by clip everywhere.

``tests/test_data_augment.py`` compares every op with timm's PIL op, whole clips with the CPU path, and a program over
a batch with each clip augmented alone (grouped and clip by clip on the CPU, and on a GPU where one is present).
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
# PIL's operations on uint8 clips (G, C, T, H, W), C = 3 (RGB), every frame as PIL sees it. An op's parameters are
# per clip ((G,) tensors), so that one call applies the ops of many clips: RandAugment gives each clip its own ops
# and magnitudes, and a GPU runs one pass over a group of clips for the cost of a few kernel launches, where one
# pass per clip launched ~30 small kernels each (about 1,850 per batch of 32 clips).


def _per_clip(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """(G,) -> (G, 1, ..., 1) with ``ndim`` dims, to broadcast against a group's tensors."""
    return values.view(-1, *([1] * (ndim - 1)))


def _by_code(code: torch.Tensor, codes: frozenset[int], candidates: dict[int, Callable[[], torch.Tensor]],
             ndim: int) -> torch.Tensor:
    """Each clip's candidate by its ``code`` (G,): the candidates are built only for the ``codes`` present (known on
    the host), and combined with one ``where`` per code beyond the first; ``ndim``: the candidates' dims."""
    present = sorted(codes)
    out = candidates[present[0]]()
    if len(present) > 1:
        per_clip_code = _per_clip(code, ndim)
        for c in present[1:]:
            out = torch.where(per_clip_code == c, candidates[c](), out)
    return out


def _grey(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: ``(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`` (ITU-R 601-2 luma, fixed point);
    (G, 3, T, H, W) uint8 -> (G, 1, T, H, W) uint8."""
    r, g, b = x.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def _lut(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Look every value up in its frame and channel's table: ``table`` (G or 1, C or 1, T or 1, 256)."""
    g, c, t = x.shape[:3]
    table = table.to(torch.uint8).expand(g, c, t, 256).reshape(g * c * t, 256)
    flat = rearrange(x, "g c t h w -> (g c t) (h w)").long()
    return torch.gather(table, 1, flat).view_as(x)


def _histogram(x: torch.Tensor) -> torch.Tensor:
    """(G, C, T, 256) int64 histograms of each frame and channel of uint8 (G, C, T, H, W)."""
    g, c, t = x.shape[:3]
    flat = rearrange(x, "g c t h w -> (g c t) (h w)").long()
    hist = torch.zeros(g * c * t, 256, dtype=torch.int64, device=x.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat))
    return hist.view(g, c, t, 256)


def _auto_contrast_table(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.autocontrast`` per frame and channel: ``int(v * scale + offset)`` with
    ``scale = 255 / (hi - lo)``, ``offset = -lo * scale`` (in double, as PIL), identity where ``hi <= lo``;
    (G, C, T, 256)."""
    lo = x.amin(dim=(-2, -1)).double()  # (G, C, T)
    hi = x.amax(dim=(-2, -1)).double()
    flat = hi <= lo
    # a true division (torch turns ``255.0 / tensor`` into ``reciprocal * 255``, one rounding more than PIL)
    scale = torch.full_like(hi, 255.0) / torch.where(flat, torch.ones_like(hi), hi - lo)
    offset = -lo * scale
    levels = torch.arange(256, dtype=torch.float64, device=x.device)
    table = (levels * scale[..., None] + offset[..., None]).clamp_(0, 255).floor_()  # int() of non-negatives
    return torch.where(flat[..., None], levels, table).long()


def _equalize_table(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageOps.equalize`` per frame and channel: ``step = (pixels - count of the last used level) // 255``,
    ``table[i] = (step // 2 + pixels below level i) // step``; identity with one used level or step 0;
    (G, C, T, 256)."""
    hist = _histogram(x)
    levels = torch.arange(256, device=x.device)
    used = hist > 0
    last = torch.where(used, levels, -1).amax(-1, keepdim=True)  # (G, C, T, 1) highest used level
    last_count = torch.gather(hist, -1, last.clamp(min=0))
    step = (hist.sum(-1, keepdim=True) - last_count) // 255
    below = hist.cumsum(-1) - hist  # pixels strictly below each level
    identity = (used.sum(-1, keepdim=True) <= 1) | (step == 0)
    table = (step // 2 + below) // step.clamp(min=1)
    return torch.where(identity, levels, table.clamp(max=255))


# codes of the lookup-table ops (each a table per frame and channel: the pass applies one table per clip)
INVERT, POSTERIZE, SOLARIZE, SOLARIZE_ADD, AUTO_CONTRAST, EQUALIZE = range(6)


def lut_ops(x: torch.Tensor, code: torch.Tensor, params: torch.Tensor, codes: frozenset[int]) -> torch.Tensor:
    """The lookup-table ops, clip ``g`` getting op ``code[g]`` with ``params[g]``:

    - INVERT: ``255 - v``;
    - POSTERIZE (mask): ``v & mask``, the mask keeping the high bits (0 bits: black, as PIL did before it started
      rejecting 0, which makes the CPU path fail there);
    - SOLARIZE (threshold): values at or above it inverted (PIL compares in Python: the integer level with the
      threshold as a double, so a threshold of 256 never wraps);
    - SOLARIZE_ADD (add, threshold): values below the threshold get ``add``, capped at 255 (timm ``solarize_add``);
    - AUTO_CONTRAST, EQUALIZE: PIL's integer algorithms per frame and channel.

    ``codes``: the codes present (known on the host), so that only their tables are built.
    """
    levels = torch.arange(256, device=x.device)
    first, second = (_per_clip(p, 4) for p in params[:, :2].unbind(1))  # (G, 1, 1, 1) against (G, C, T, 256)
    tables = {
        INVERT: lambda: 255 - levels,
        POSTERIZE: lambda: levels & first.long(),
        SOLARIZE: lambda: torch.where(levels >= first, 255 - levels, levels),
        SOLARIZE_ADD: lambda: torch.where(levels < second, (levels + first.long()).clamp(max=255), levels),
        AUTO_CONTRAST: lambda: _auto_contrast_table(x),
        EQUALIZE: lambda: _equalize_table(x),
    }
    return _lut(x, _by_code(code, codes, tables, ndim=4))


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL ``ImageFilter.SMOOTH`` of every frame: ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13``, rounded; the one-pixel
    border is the frame's own, as PIL's 3x3 filter leaves it. In integers (``floor(s / 13 + 1/2)`` as
    ``(2 s + 13) // 26``), so every device gives the same values: a float convolution may run in TF32 on a GPU."""
    h, w = x.shape[-2], x.shape[-1]
    if h < 3 or w < 3:
        return x
    v = x.int()
    total = 4 * v[..., 1:-1, 1:-1]  # the centre's weight is 5: 4 here and 1 in the 3x3 sum below
    for dy in range(3):
        for dx in range(3):
            total = total + v[..., dy:dy + h - 2, dx:dx + w - 2]
    smooth = x.clone()
    smooth[..., 1:-1, 1:-1] = ((2 * total + 13) // 26).to(torch.uint8)
    return smooth


# codes of the blend ops (PIL ``ImageEnhance``: a blend of the frame with a degenerate version of it)
BRIGHTNESS, COLOR, CONTRAST, SHARPNESS = range(4)


def blend_ops(x: torch.Tensor, code: torch.Tensor, params: torch.Tensor, codes: frozenset[int]) -> torch.Tensor:
    """PIL ``Image.blend(degenerate, frame, factor)``, clip ``g`` by ``code[g]`` with ``factor = params[g, 0]``:
    ``degenerate + factor * (frame - degenerate)`` in float32, clipped to [0, 255] and truncated (PIL's C code casts
    to UINT8). The degenerate frame: black (BRIGHTNESS), the frame's grey (COLOR), a flat image of the frame's mean
    grey level ``int(mean + 0.5)`` (CONTRAST), the SMOOTH-filtered frame (SHARPNESS)."""
    degenerates = {
        BRIGHTNESS: lambda: torch.zeros((), device=x.device),
        COLOR: lambda: _grey(x).float(),  # (G, 1, T, H, W)
        CONTRAST: lambda: _grey(x).double().mean(dim=(-2, -1), keepdim=True).add_(0.5).floor_().float(),
        SHARPNESS: lambda: _smooth(x).float(),
    }
    degenerate = _by_code(code, codes, degenerates, ndim=5)
    factor = _per_clip(params[:, 0].float(), 5)
    out = x.float().sub_(degenerate).mul_(factor).add_(degenerate)
    return out.clamp_(0, 255).to(torch.uint8)


def affine_ops(x: torch.Tensor, code: torch.Tensor, params: torch.Tensor, codes: frozenset[int],
               fill: Sequence[int]) -> torch.Tensor:
    """PIL ``Image.transform(size, AFFINE, matrix, BILINEAR, fillcolor=fill)``, clip ``g`` by the matrix
    ``params[g] = (a, b, c, d, e, f)``: output pixel (x, y) samples the input at ``(a x' + b y' + c, d x' + e y' + f)``
    with ``(x', y') = (x + 0.5, y + 0.5)`` (pixel centres); a sample outside the frame is the fill colour, inside it is
    bilinear between the four nearest pixel centres (neighbours clamped to the frame), in double as PIL."""
    g, c, t, h, w = x.shape
    dtype = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no double
    ys = torch.arange(h, dtype=dtype, device=x.device).add_(0.5).view(1, h, 1)
    xs = torch.arange(w, dtype=dtype, device=x.device).add_(0.5).view(1, 1, w)
    a, b, c0, d, e, f = (_per_clip(p, 3) for p in params.to(dtype).unbind(1))  # (G, 1, 1) each
    xin = a * xs + b * ys + c0  # (G, H, W) sample positions in input pixels
    yin = d * xs + e * ys + f
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    xin, yin = xin - 0.5, yin - 0.5  # to pixel-centre coordinates
    x0, y0 = xin.floor(), yin.floor()
    dx, dy = (xin - x0).unsqueeze(1), (yin - y0).unsqueeze(1)  # (G, 1, H, W)
    x0, y0 = x0.long(), y0.long()
    xa, xb = x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1)
    ya = y0.clamp(0, h - 1)
    # PIL: the second row is the first one below the frame (clamped at 0 only for samples outside the frame, whose
    # value is the fill colour)
    yb = torch.where(y0 + 1 < h, y0 + 1, ya).clamp_(min=0)
    # the four neighbours of every output pixel, for every frame and channel of the clip, in one gather
    corners = torch.stack([ya * w + xa, ya * w + xb, yb * w + xa, yb * w + xb], dim=1)  # (G, 4, H, W) flat indices
    flat = rearrange(x, "g c t h w -> g (c t) (h w)")
    picked = torch.gather(flat, 2, corners.view(g, 1, 4 * h * w).expand(g, c * t, 4 * h * w)).to(dtype)
    top_left, top_right, bottom_left, bottom_right = picked.view(g, c * t, 4, h, w).unbind(2)
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    value = (top + (bottom - top) * dy).clamp_(0, 255).to(torch.uint8)  # PIL truncates
    value = rearrange(value, "g (c t) h w -> g c t h w", c=c)
    fill_t = _on_device(list(fill)[:c], x.device, torch.uint8).view(1, c, 1, 1, 1)
    return torch.where(inside.view(g, 1, 1, h, w), value, fill_t)


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
    """PIL ``ImageFilter.GaussianBlur(radius)`` of every frame of uint8 (..., H, W): three box blurs per direction
    whose fractional radius matches the Gaussian's variance (PIL's ``_gaussian_blur_radius``: Gwosdek et al.,
    "Theoretical foundations of Gaussian convolution by extended box filtering"), horizontal passes first. One
    radius for the whole tensor: the batch path runs it clip by clip (only timm's "3a" op sets have it)."""
    if radius <= 0:
        return x.clone()
    passes = 3
    sigma2 = radius * radius / passes
    length = math.sqrt(12.0 * sigma2 + 1.0)
    whole = math.floor((length - 1.0) / 2.0)
    frac = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2) / (6 * (sigma2 - (whole + 1) * (whole + 1)))
    box = whole + frac
    y = x.double()  # double: a float convolution may run in TF32 on a GPU, and each pass rounds to levels
    for dim in (-1, -2):  # width, then height
        for _ in range(passes):
            y = _box_blur_pass(y, box, dim)
    return y.to(torch.uint8)


def _rotation_matrix(degrees: float, width: int, height: int) -> tuple[float, ...]:
    """PIL ``Image.rotate``'s inverse affine matrix about the frame centre (counter-clockwise ``degrees``)."""
    angle = -math.radians(degrees % 360.0)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    d, e = round(-math.sin(angle), 15), round(math.cos(angle), 15)
    cx, cy = width / 2, height / 2
    return (a, b, a * -cx + b * -cy + cx, d, e, d * -cx + e * -cy + cy)


# ---------------------------------------------------------------------------------------------------------------------
# timm's RandAugment ops as (family, code, parameters)

LUT, BLEND, AFFINE, BLUR = "lut", "blend", "affine", "blur"  # an op family: ops that one pass applies together
Encoded = tuple[int, tuple[float, ...]] | None  # (code in its family, parameters); None: the op changes nothing


def _posterize(h: int, w: int, bits_to_keep: int) -> Encoded:
    if bits_to_keep >= 8:  # timm returns the image unchanged
        return None
    return POSTERIZE, (~(2 ** (8 - int(bits_to_keep)) - 1) & 0xFF,)


def _affine(*matrix: float) -> Encoded:
    return 0, tuple(float(v) for v in matrix)


#: timm op name -> (family, the encoder of timm's level arguments: ``encode(height, width, *args)``)
RAND_AUGMENT_OPS: dict[str, tuple[str, Callable[..., Encoded]]] = {
    "AutoContrast": (LUT, lambda h, w: (AUTO_CONTRAST, ())),
    "Equalize": (LUT, lambda h, w: (EQUALIZE, ())),
    "Invert": (LUT, lambda h, w: (INVERT, ())),
    "Posterize": (LUT, _posterize),
    "PosterizeIncreasing": (LUT, _posterize),
    "PosterizeOriginal": (LUT, _posterize),
    "Solarize": (LUT, lambda h, w, thresh: (SOLARIZE, (thresh,))),
    "SolarizeIncreasing": (LUT, lambda h, w, thresh: (SOLARIZE, (thresh,))),
    "SolarizeAdd": (LUT, lambda h, w, add, thresh=128: (SOLARIZE_ADD, (int(add), thresh))),
    "Color": (BLEND, lambda h, w, factor: (COLOR, (factor,))),
    "ColorIncreasing": (BLEND, lambda h, w, factor: (COLOR, (factor,))),
    "Desaturate": (BLEND, lambda h, w, factor: (COLOR, (min(1.0, max(0.0, 1.0 - factor)),))),  # timm desaturate
    "Contrast": (BLEND, lambda h, w, factor: (CONTRAST, (factor,))),
    "ContrastIncreasing": (BLEND, lambda h, w, factor: (CONTRAST, (factor,))),
    "Brightness": (BLEND, lambda h, w, factor: (BRIGHTNESS, (factor,))),
    "BrightnessIncreasing": (BLEND, lambda h, w, factor: (BRIGHTNESS, (factor,))),
    "Sharpness": (BLEND, lambda h, w, factor: (SHARPNESS, (factor,))),
    "SharpnessIncreasing": (BLEND, lambda h, w, factor: (SHARPNESS, (factor,))),
    "Rotate": (AFFINE, lambda h, w, degrees: _affine(*_rotation_matrix(degrees, w, h))),
    "ShearX": (AFFINE, lambda h, w, factor: _affine(1, factor, 0, 0, 1, 0)),
    "ShearY": (AFFINE, lambda h, w, factor: _affine(1, 0, 0, factor, 1, 0)),
    "TranslateX": (AFFINE, lambda h, w, pixels: _affine(1, 0, pixels, 0, 1, 0)),
    "TranslateY": (AFFINE, lambda h, w, pixels: _affine(1, 0, 0, 0, 1, pixels)),
    "TranslateXRel": (AFFINE, lambda h, w, pct: _affine(1, 0, pct * w, 0, 1, 0)),
    "TranslateYRel": (AFFINE, lambda h, w, pct: _affine(1, 0, 0, 0, 1, pct * h)),
    "GaussianBlur": (BLUR, lambda h, w, radius: (0, (radius,))),
    "GaussianBlurRand": (BLUR, lambda h, w, radius: (0, (radius,))),  # its radius is drawn while planning (_record)
}
FAMILY_OPS: dict[str, Callable[..., torch.Tensor]] = {LUT: lut_ops, BLEND: blend_ops, AFFINE: affine_ops}
PARAMS = 6  # parameters per op (an affine matrix; the other ops use fewer)

Plan = list[tuple[str, tuple[Any, ...]]]  # (timm op name, its arguments) in the order applied


class AugmentProgram:
    """A batch's RandAugment plans as a few passes, each one family's ops over a group of clips (built on the host).

    Clip ``b``'s ``k``-th op runs in round ``k``; a round holds one pass per family present, so a pass touches each of
    its clips once and the passes of a round commute. A batch of 32 clips with rand-m7-n4 has about 10 passes.

    Attributes:
        passes: (family, start, stop, codes present) per pass, in order; ``start:stop`` are the pass's columns.
        index: int64 (2, ops): the clip of each op and its code.
        params: float64 (ops, PARAMS): each op's parameters.
    """

    def __init__(self, passes: list[tuple[str, int, int, frozenset[int]]], index: torch.Tensor, params: torch.Tensor):
        self.passes, self.index, self.params = passes, index, params

    @classmethod
    def build(cls, plans: Sequence[Plan], height: int, width: int) -> AugmentProgram:
        """The program of ``plans`` (one per clip, ``[]`` for none) on frames of ``height`` x ``width``."""
        rounds: list[dict[str, list[tuple[int, int, tuple[float, ...]]]]] = []
        for clip, plan in enumerate(plans):
            k = 0
            for name, args in plan:
                family, encode = RAND_AUGMENT_OPS[name]
                encoded = encode(height, width, *args)
                if encoded is None:
                    continue
                if k == len(rounds):
                    rounds.append({})
                rounds[k].setdefault(family, []).append((clip, *encoded))
                k += 1
        passes, clips, codes, rows = [], [], [], []
        for families in rounds:
            for family, ops in families.items():
                passes.append((family, len(clips), len(clips) + len(ops), frozenset(code for _, code, _ in ops)))
                for clip, code, params in ops:
                    clips.append(clip)
                    codes.append(code)
                    rows.append(params + (0.0,) * (PARAMS - len(params)))
        index = torch.tensor([clips, codes], dtype=torch.int64).view(2, len(clips))
        return cls(passes, index, torch.tensor(rows, dtype=torch.float64).view(len(rows), PARAMS))

    def pin_memory(self) -> AugmentProgram:
        """Pinned copies, so that the transfer in :meth:`run` never waits for the device's queue."""
        return AugmentProgram(self.passes, self.index.pin_memory(), self.params.pin_memory())

    def run(self, video: torch.Tensor, fill: Sequence[int], grouped: bool | None = None) -> torch.Tensor:
        """Apply the passes in place to uint8 clips (B, C, T, H, W) (any device); returns ``video``. ``grouped``: a
        pass over its clips at once (default: off the CPU) or clip by clip (default on the CPU); the values are
        the same (the tests run both on the CPU)."""
        if not self.passes:
            return video
        if grouped is None:
            grouped = video.device.type != "cpu"
        index = self.index.to(video.device, non_blocking=True)
        params = self.params.to(video.device, non_blocking=True)
        for family, start, stop, codes in self.passes:
            if family == BLUR:  # one radius per clip: clip by clip, from the host's copy
                for clip, radius in zip(self.index[0, start:stop].tolist(), self.params[start:stop, 0].tolist()):
                    video[clip] = gaussian_blur(video[clip], radius)
                continue
            op = FAMILY_OPS[family]
            extra = (fill,) if family == AFFINE else ()
            if not grouped:
                # clip by clip on a CPU: a group's float temporaries (hundreds of MB) get fresh pages from the
                # allocator at every call, whose faults made a grouped pass 3-5x slower per clip here; a CPU has no
                # launches to save
                for i, (clip, code) in enumerate(zip(*self.index[:, start:stop].tolist()), start):
                    one = slice(clip, clip + 1)
                    video[one] = op(video[one], index[1, i:i + 1], params[i:i + 1], frozenset([code]), *extra)
                continue
            clips = index[0, start:stop]
            group = op(video.index_select(0, clips), index[1, start:stop], params[start:stop], codes, *extra)
            video.index_copy_(0, clips, group)
        return video

    def __len__(self) -> int:
        return self.index.shape[1]


def apply_plan(frames: torch.Tensor, plan: Plan, fill: Sequence[int]) -> torch.Tensor:
    """uint8 (T, C, H, W) frames of one clip -> the same with ``plan``'s ops applied in order."""
    program = AugmentProgram.build([plan], frames.shape[-2], frames.shape[-1])
    video = rearrange(frames, "t c h w -> 1 c t h w").clone()
    return rearrange(program.run(video, fill), "1 c t h w -> t c h w")


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
        """uint8 (T, 3, H, W) frames of one clip -> the same with the plan's ops applied in order."""
        return apply_plan(frames, plan, self.fill)

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

    def program(self, seeds: torch.Tensor | None, height: int, width: int) -> AugmentProgram | None:
        """The RandAugment program of a batch's ``aug_seed`` on frames of ``height`` x ``width`` (CPU work: call it
        before the transfer while the seeds are on the host, so that reading them never waits for the device)."""
        if self.rand_augment is None or seeds is None:
            return None
        plans = [self.rand_augment.plan(int(s)) if s >= 0 else [] for s in seeds.tolist()]
        return AugmentProgram.build(plans, height, width)

    def clips(
        self,
        video: torch.Tensor,
        flip: torch.Tensor | None = None,
        seeds: torch.Tensor | None = None,
        program: AugmentProgram | None = None,
    ) -> torch.Tensor:
        """uint8 (B, 3, T, H, W) -> float32 (B, 3, T, H, W): flip where ``flip``, RandAugment by ``program`` (or the
        ``seeds``' program), normalise."""
        if video.dtype != torch.uint8:
            raise TypeError(f"BatchAugment expects uint8 clips, got {video.dtype}")
        if flip is not None:
            video = torch.where(flip.to(video.device).view(-1, 1, 1, 1, 1), video.flip(-1), video)
        if program is None:
            program = self.program(seeds, video.shape[-2], video.shape[-1])
        if program is not None and len(program):
            video = program.run(video if flip is not None else video.clone(), self.rand_augment.fill)
        return normalize(video, self.cfg.mean, self.cfg.std)

    def before_transfer(self, batch: Any) -> Any:
        """Plan RandAugment on the host: ``aug_seed`` -> ``aug_program`` (pinned where a GPU is present; an object
        the transfer leaves alone, its tensors move in :meth:`AugmentProgram.run`)."""
        frames = batch.get("video", batch.get("image")) if isinstance(batch, dict) else None
        if frames is None or self.rand_augment is None or "aug_seed" not in batch:
            return batch
        batch = dict(batch)
        program = self.program(batch.pop("aug_seed"), *frames.shape[-2:])
        batch["aug_program"] = program.pin_memory() if torch.cuda.is_available() else program
        return batch

    def __call__(self, batch: Any) -> Any:
        """A batch dict with uint8 ``video`` or ``image`` -> the model's float input; other batches pass unchanged."""
        if not isinstance(batch, dict):
            return batch
        key = "video" if "video" in batch else "image" if "image" in batch else None
        if key is None or batch[key].dtype != torch.uint8:
            return batch
        batch = dict(batch)
        flip, seeds, program = batch.pop("aug_flip", None), batch.pop("aug_seed", None), batch.pop("aug_program", None)
        if key == "video":
            batch[key] = self.clips(batch[key], flip, seeds, program)
        else:  # images (B, 3, H, W): one-frame clips
            clips = self.clips(batch[key].unsqueeze(2), flip, seeds, program)
            batch[key] = clips.squeeze(2)
        return batch
