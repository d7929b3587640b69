"""Synthetic video benchmark: small procedurally generated datasets that train in minutes on a CPU.

Every video is real H.264 in an ``.mp4`` (libx264, yuv420p, ``threads=1``, ``mbtree=0`` and otherwise fixed
options, so the output is deterministic), rendered with NumPy from a seed, and listed in the Kinetics-style CSV
format of :mod:`uv2.data.lists`, so the ordinary loaders read it. Sets:

``scene`` (Kinetics-like). The class is the *appearance*: object shape (circle, square, triangle, diamond, ring,
cross), texture (solid, stripes, checker, dots), colour and background pattern (dark, light, gradient, grid, noise).
Classes are compositional (e.g. ``red_circle`` vs ``red_striped_circle`` differ only in texture,
``green_triangle`` vs ``green_triangle_on_grid`` only in background), so a model must look at several attributes.
Motion is a nuisance, drawn independently of the class: random drift, slow rotation, scale change, per-frame jitter;
plus a smaller distractor object (p=0.4), colour jitter and pixel noise. One frame suffices in principle.

``temporal`` (Something-Something-like). The class is the *motion* of one object: ``move_right``/``move_left``,
``move_down``/``move_up``, ``grow``/``shrink`` (approaching/receding), ``right_then_down``/``up_then_left`` (an
L-shaped path: half the clip one way, then half the other), ``appear``/``disappear`` (fade in/out). Appearance
(shape among triangle / L / half-disc / T, which have no rotational symmetry, texture, colour, background) and the
nuisances (small common drift, jitter, a static distractor with p=0.5, noise) are drawn independently of the class.
How much of that nuisance there is, and how large the motion, is set per size (``SizeSpec.temporal_nuisance``): none
at micro and tiny (motion over 55-70 % of the frame on a plain background, so a tiny ViT learns it in a few epochs),
half at small, all of it at medium; ``SizeSpec.motion_scale`` (``python -m uv2 synth --motion-scale``) scales the
translations of a probe's set, ``SizeSpec.object_scale`` (``--object-scale``) its objects' radius. Classes come in
**time-reversal pairs** listed in ``temporal/reversal_pairs.json``: :func:`render_temporal` of ``partner(c)`` with
the same :class:`TemporalParams` is exactly the frames of ``c`` in reverse order (every time-dependent quantity,
noise included, runs on reversed time), and both classes of a pair draw params from the same distribution. The set
of frames therefore carries no information about which of the two classes a video belongs to: a model that ignores
frame order is at chance within each pair, i.e. at most 50 % overall with 10 classes (chance is 10 %).

``scene_a``, ``scene_b``, ``scene_c`` (for the paper's table (e), a union "K710"-like set is built from them later).
Three 8-class scene sets drawn from one catalogue of 16 appearance classes: a and b share 4 classes, a and c share 2,
b and c share 2; the rest are unique. A shared name has the identical generative definition in every set (the
videos themselves differ: every set has its own seeds).

``images``. Single frames (PNG) at the video resolution, to pretrain small image ViTs (read by
:class:`uv2.data.dataset.ImageDataset`), as CLIP pretrains the paper's ViTs on other data than the videos': the class
is an appearance as in the scene sets (shape - the temporal set's shapes too -, colour, texture, background), but
combined otherwise: none of the 16 :data:`IMAGE_APPEARANCES` is a class of a video set, so fine-tuning on ``scene``
learns its classes rather than finding them already learnt.

Sizes (per class, train/val videos; the frame count is that of every video)::

    size    resolution  frames  fps  scene    temporal  scene_a/b/c  images
    micro   32x32       8       8    2/1      2/1       2/1          1/1       (tests)
    tiny    48x48       16      15   64/256   64/64     32/32        70/14     (CI, default ablations)
    small   64x64       16      15   200/80   200/80    100/20       250/50
    medium  112x112     32      15   500/100  500/100   250/50       600/60

tiny: 10 scene classes (640 train / 2560 val), 10 temporal classes (640 / 640), 3 x 8 classes (256 / 256 each), 16
image classes (1120 / 224 images). The ablation tables test on the validation videos: with 160 the test set alone
moved a temporal cell by ~3.6 points; with 640 scene videos, which of them a run got right was most of a scene
cell's spread over seeds (0.8-1.0 points), and with 64 per scene_a/b/c set the test videos' part of a paired
difference kept every difference of table (e) unresolved. The temporal cells' spread is their runs' own, so its test
set stays at 640. Objects have a radius of ~15-23 % of the frame, so a model cropping 32x32 from the 48x48 frames
(crop scale >= ~0.4) still sees them; motions span 30-45 % of the frame (translation; the L-shaped path as far along
each of its sides), a 2-3x scale change or a full fade over the clip, so the 4 or 8 frames the presets sample from
16 show them clearly. tiny's scene, temporal and image sets take 75 MB, and the frames the data modules decode from
the scene and temporal sets and keep beside them (``decoded/``, :mod:`uv2.data.decoded_cache`) 474 MB. Sanity check
(generator version 2, 160 validation videos; 8 centre frames at 32x32, plain PyTorch, 2 shared CPU cores): a
3-conv-layer early-fusion CNN (frames stacked as channels, so order-aware) reached 92 % val accuracy on temporal
after 90 s of training, 85 % on scene after 50 s and 94 % on scene_a after 35 s.

Layout: ``DIR/<set>/{train.csv,val.csv,classes.txt,videos/<split>/<class>/<n>.mp4}`` (``images/...png`` for the
image set), ``DIR/temporal/reversal_pairs.json``, and ``DIR/manifest.json`` (generator version, size, seed,
resolution, frames, fps, codec, and per set its kind, class and video counts), written last; ``DIR/decoded/`` holds
the data modules' decoded frames (:data:`DECODED_DIR`). :func:`generate` skips sets whose manifest entry matches
(idempotent) and :func:`ensure_synthetic` is the entry point for training code.
Same seed => byte-identical lists and manifest, and identical decoded frames (in fact byte-identical videos: x264
runs single-threaded with fixed options and without mbtree, see :data:`X264_OPTIONS`); each video depends only on
(seed, set, split, index), so generating sets separately or in parallel gives the same files.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from uv2.data.lists import write_lines_atomic
from uv2.errors import MissingFileError
from uv2.io import exclusive_lock

log = logging.getLogger(__name__)

__all__ = [
    "GENERATOR_VERSION",
    "SizeSpec",
    "SIZES",
    "ALL_SETS",
    "APPEARANCES",
    "SCENE_SETS",
    "TEMPORAL_PAIRS",
    "TEMPORAL_CLASSES",
    "TRANSLATION_CLASSES",
    "IMAGE_APPEARANCES",
    "appearance_of",
    "reversal_partner",
    "TemporalParams",
    "sample_temporal_params",
    "render_temporal",
    "temporal_video_params",
    "SceneParams",
    "sample_scene_params",
    "render_scene",
    "write_video",
    "generate",
    "ensure_synthetic",
    "set_dir",
]

# 2: temporal nuisance level per size (SizeSpec.temporal_nuisance); 3: image classes of their own (not the scene
# classes), scene / temporal validation sets as large as their training sets at tiny; 4: the rotation pair replaced
# by right_then_down / up_then_left (no design learnt the direction of a rotation or of an orbit at tiny scale);
# 5: tiny's scene and scene_a/b/c test sets 4x larger (256 and 32 videos per class; the first 64 and 8 are version
# 4's, byte for byte): on 64 test videos per set no difference of table (e) was resolved, whatever the number of
# seeds, and on the scene set's 640 the test videos' part was most of a scene cell's spread (README)
GENERATOR_VERSION = 5
MANIFEST = "manifest.json"
# the data modules' decoded videos of the root's sets (uv2.data.decoded_cache), removed when a set is generated again
DECODED_DIR = "decoded"


@dataclass(frozen=True)
class SizeSpec:
    """How big a generated benchmark is."""

    resolution: int  # frames are resolution x resolution (even, for yuv420p)
    frames: int  # frames per video
    fps: int  # nominal frame rate written to the container
    train_per_class: int  # scene / temporal training videos per class
    val_per_class: int  # temporal validation videos per class
    scene_val_per_class: int  # scene validation videos per class
    abc_train_per_class: int  # scene_a/b/c training videos per class
    abc_val_per_class: int  # scene_a/b/c validation videos per class
    images_train_per_class: int  # images training PNGs per class
    images_val_per_class: int  # images validation PNGs per class
    noise: float = 4.0  # std of per-pixel Gaussian noise (0-255 scale)
    temporal_nuisance: float = 1.0  # 0 = clean temporal videos (big motion, plain background), 1 = every nuisance
    motion_scale: float = 1.0  # the temporal set's translations over this fraction of their drawn distance (a probe)
    object_scale: float = 1.0  # the temporal set's objects this many times their drawn radius (a probe)


SIZES: dict[str, SizeSpec] = {
    "micro": SizeSpec(32, 8, 8, 2, 1, 1, 2, 1, 1, 1, temporal_nuisance=0.0),
    # tiny trains in about a minute per run on 2 cores, so its temporal set is the clean one: a from-scratch-sized
    # ViT learns motion from it in a few epochs (measured: with the full nuisances it stays at chance for 10+ epochs)
    "tiny": SizeSpec(48, 16, 15, 64, 64, 256, 32, 32, 70, 14, temporal_nuisance=0.0),
    "small": SizeSpec(64, 16, 15, 200, 80, 80, 100, 20, 250, 50, temporal_nuisance=0.5),
    "medium": SizeSpec(112, 32, 15, 500, 100, 100, 250, 50, 600, 60, temporal_nuisance=1.0),
}

# Fixed options => deterministic output. mbtree=0: with macroblock-tree rate control x264 (core 165) encodes the same
# frames to different bytes from run to run (it depends on uninitialised memory); everything else is the preset.
X264_OPTIONS = {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
CODEC_DESCRIPTION = "libx264 yuv420p crf18 preset=veryfast threads=1 mbtree=0 (mp4)"

# ---------------------------------------------------------------------------------------------------------------------
# Class definitions

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 40),
    "green": (50, 175, 65),
    "blue": (45, 85, 220),
    "yellow": (230, 205, 45),
    "purple": (150, 60, 190),
    "orange": (240, 135, 30),
    "cyan": (45, 195, 210),
    "white": (235, 235, 235),
}
SCENE_SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross")
TEMPORAL_SHAPES = ("triangle", "L", "half_disc", "T")  # the moving object's shapes
TEXTURES = ("solid", "stripes", "checker", "dots")
BACKGROUNDS = ("dark", "light", "gradient", "grid", "noise")


@dataclass(frozen=True)
class Appearance:
    """The generative definition of a scene class."""

    shape: str  # one of SCENE_SHAPES
    colour: str  # key of COLOURS
    texture: str  # one of TEXTURES
    background: str  # one of BACKGROUNDS


def _appearances(rows: list[tuple[str, str, str, str, str]]) -> dict[str, Appearance]:
    """Classes by name from (name, shape, colour, texture, background) rows."""
    return {name: Appearance(*attrs) for name, *attrs in rows}


APPEARANCES: dict[str, Appearance] = _appearances(
    [
        ("red_circle", "circle", "red", "solid", "dark"),
        ("red_striped_circle", "circle", "red", "stripes", "dark"),
        ("red_square", "square", "red", "solid", "light"),
        ("blue_circle", "circle", "blue", "solid", "light"),
        ("blue_checker_square", "square", "blue", "checker", "dark"),
        ("green_triangle", "triangle", "green", "solid", "dark"),
        ("green_triangle_on_grid", "triangle", "green", "solid", "grid"),
        ("yellow_diamond", "diamond", "yellow", "solid", "gradient"),
        ("yellow_dotted_diamond", "diamond", "yellow", "dots", "gradient"),
        ("purple_ring", "ring", "purple", "solid", "light"),
        ("purple_cross", "cross", "purple", "solid", "dark"),
        ("orange_striped_square", "square", "orange", "stripes", "gradient"),
        ("orange_circle_on_grid", "circle", "orange", "solid", "grid"),
        ("cyan_cross_on_noise", "cross", "cyan", "solid", "noise"),
        ("cyan_checker_triangle", "triangle", "cyan", "checker", "noise"),
        ("white_ring_on_grid", "ring", "white", "solid", "grid"),
    ]
)
_CATALOGUE = list(APPEARANCES)
SCENE_SETS: dict[str, list[str]] = {
    "scene": _CATALOGUE[:10],
    "scene_a": _CATALOGUE[0:8],
    "scene_b": _CATALOGUE[4:12],
    "scene_c": _CATALOGUE[0:2] + _CATALOGUE[10:16],
}
TEMPORAL_PAIRS: list[tuple[str, str]] = [
    ("move_right", "move_left"),
    ("move_down", "move_up"),
    ("grow", "shrink"),
    ("right_then_down", "up_then_left"),
    ("appear", "disappear"),
]
TEMPORAL_CLASSES: list[str] = [c for pair in TEMPORAL_PAIRS for c in pair]
# the pairs whose motion moves the object (the others change its size or opacity where it stands)
TRANSLATION_CLASSES: tuple[str, ...] = ("move_right", "move_left", "move_down", "move_up", "right_then_down",
                                        "up_then_left")
# image pretraining classes (the images set): appearances like the scene classes' - the same shapes (the temporal
# set's too), colours, textures and backgrounds - combined otherwise, so that none is a class of a video set
IMAGE_APPEARANCES: dict[str, Appearance] = _appearances(
    [
        ("green_circle", "circle", "green", "solid", "light"),
        ("blue_triangle", "triangle", "blue", "solid", "dark"),
        ("red_diamond_on_grid", "diamond", "red", "solid", "grid"),
        ("yellow_striped_ring", "ring", "yellow", "stripes", "dark"),
        ("white_square", "square", "white", "solid", "gradient"),
        ("orange_checker_cross", "cross", "orange", "checker", "light"),
        ("purple_dotted_circle", "circle", "purple", "dots", "gradient"),
        ("cyan_square_on_grid", "square", "cyan", "solid", "grid"),
        ("blue_striped_diamond", "diamond", "blue", "stripes", "light"),
        ("green_ring_on_noise", "ring", "green", "solid", "noise"),
        ("red_checker_triangle", "triangle", "red", "checker", "gradient"),
        ("yellow_cross", "cross", "yellow", "solid", "dark"),
        ("white_dotted_triangle", "triangle", "white", "dots", "noise"),
        ("orange_L", "L", "orange", "solid", "dark"),
        ("cyan_T", "T", "cyan", "solid", "light"),
        ("purple_striped_half_disc", "half_disc", "purple", "stripes", "gradient"),
    ]
)
_PARTNER = {a: b for a, b in TEMPORAL_PAIRS} | {b: a for a, b in TEMPORAL_PAIRS}
_FORWARD = {a for a, _ in TEMPORAL_PAIRS}
ALL_SETS: tuple[str, ...] = ("scene", "temporal", "scene_a", "scene_b", "scene_c", "images")
# where the DataModules keep a generated benchmark by default: <DEFAULT_ROOT>/<size>_seed<seed>/<set>
DEFAULT_ROOT, DEFAULT_SIZE, DEFAULT_SEED = "data/synthetic", "tiny", 0


def reversal_partner(name: str) -> str:
    """The temporal class whose videos are this class's videos played backwards."""
    if name not in _PARTNER:
        raise ValueError(f"unknown temporal class {name!r}; valid: {', '.join(TEMPORAL_CLASSES)}")
    return _PARTNER[name]


def set_classes(set_name: str) -> list[str]:
    """Class names of a set, in label order."""
    if set_name in SCENE_SETS:
        return list(SCENE_SETS[set_name])
    if set_name == "temporal":
        return list(TEMPORAL_CLASSES)
    if set_name == "images":
        return list(IMAGE_APPEARANCES)
    raise ValueError(f"unknown synthetic set {set_name!r}; valid: {', '.join(ALL_SETS)}")


# ---------------------------------------------------------------------------------------------------------------------
# Rendering


def _box(u: np.ndarray, v: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
    return np.maximum(np.abs(u) - half_w, np.abs(v) - half_h)


def _shape_sdf(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (object units, radius 1; negative inside) of a shape centred at the origin."""
    if shape == "circle":
        return np.hypot(u, v) - 1.0
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.7) - 0.3
    if shape == "square":
        return _box(u, v, 0.82, 0.82)
    if shape == "diamond":
        return (np.abs(u) + np.abs(v) - 1.1) / math.sqrt(2)
    if shape == "cross":
        return np.minimum(_box(u, v, 1.0, 0.34), _box(u, v, 0.34, 1.0))
    if shape == "triangle":  # equilateral, circumradius 1, apex up (v < 0 is up)
        k = math.sqrt(3) / 2
        return np.maximum(np.maximum(v - 0.5, k * u - 0.5 * v - 0.5), -k * u - 0.5 * v - 0.5)
    if shape == "L":
        return np.minimum(_box(u + 0.45, v, 0.3, 1.0), _box(u, v - 0.7, 0.75, 0.3))
    if shape == "half_disc":
        return np.maximum(np.hypot(u, v - 0.4) - 1.0, v - 0.4)
    if shape == "T":
        return np.minimum(_box(u, v + 0.7, 1.0, 0.3), _box(u, v - 0.1, 0.3, 0.9))
    raise ValueError(f"unknown shape {shape!r}")


def _texture_weight(texture: str, u: np.ndarray, v: np.ndarray) -> np.ndarray | float:
    """Where the secondary (darker) colour shows, in object coordinates (moves and rotates with the object)."""
    if texture == "solid":
        return 0.0
    if texture == "stripes":
        return (np.sin(u * (2 * math.pi * 1.25)) > 0).astype(np.float32)
    if texture == "checker":
        return ((np.floor(u * 1.8) + np.floor(v * 1.8)) % 2).astype(np.float32)
    if texture == "dots":
        fu, fv = np.mod(u * 2.0, 1.0) - 0.5, np.mod(v * 2.0, 1.0) - 0.5
        return (fu * fu + fv * fv < 0.09).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


def _hsv_colour(
    rng: np.random.Generator, value: tuple[float, float], sat: tuple[float, float] = (0.3, 0.8)
) -> np.ndarray:
    """A random RGB colour (0-255) with value and saturation in the given ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*value)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.array(rgb, dtype=np.float32) * 255


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(size, size, 3) float32 background of a kind; colours random."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if kind == "dark":
        return np.broadcast_to(_hsv_colour(rng, (0.1, 0.3)), (size, size, 3)).copy()
    if kind == "light":
        return np.broadcast_to(_hsv_colour(rng, (0.7, 0.9), (0.1, 0.4)), (size, size, 3)).copy()
    if kind == "gradient":
        a, b = _hsv_colour(rng, (0.3, 0.8)), _hsv_colour(rng, (0.3, 0.8))
        angle = rng.uniform(0, 2 * math.pi)
        t = ((xs - size / 2) * math.cos(angle) + (ys - size / 2) * math.sin(angle)) / size + 0.5
        t = np.clip(t, 0, 1)[..., None]
        return a * (1 - t) + b * t
    if kind == "grid":
        base, line = _hsv_colour(rng, (0.35, 0.6)), _hsv_colour(rng, (0.75, 0.95), (0.0, 0.3))
        period = size / 6
        ox, oy = rng.uniform(0, period, size=2)
        on = (np.mod(xs + ox, period) < 1.5) | (np.mod(ys + oy, period) < 1.5)
        return np.where(on[..., None], line, base).astype(np.float32)
    if kind == "noise":
        coarse = np.stack([_hsv_colour(rng, (0.2, 0.8)) for _ in range(16)]).reshape(4, 4, 3)
        idx = np.clip((np.arange(size) + 0.5) / size * 3, 0, 3 - 1e-6)
        i0 = idx.astype(int)
        w = (idx - i0)[:, None]
        rows = coarse[i0] * (1 - w[..., None]) + coarse[i0 + 1] * w[..., None]  # (size, 4, 3)
        out = rows[:, i0] * (1 - w.T[..., None]) + rows[:, i0 + 1] * w.T[..., None]  # (size, size, 3)
        return out.astype(np.float32)
    raise ValueError(f"unknown background {kind!r}")


@dataclass
class ObjectTrack:
    """One object over T frames: static appearance, per-frame pose."""

    shape: str  # see _shape_sdf
    texture: str  # see _texture_weight
    colour: np.ndarray  # (3,) RGB 0-255
    cx: np.ndarray  # (T,) centre x in pixels
    cy: np.ndarray  # (T,) centre y in pixels
    radius: np.ndarray  # (T,) radius in pixels
    angle: np.ndarray  # (T,) rotation in radians, clockwise on screen
    alpha: np.ndarray  # (T,) opacity in [0, 1]


def _composite(background: np.ndarray, objects: Sequence[ObjectTrack], noise: np.ndarray | None) -> np.ndarray:
    """Draw objects (in order) over a static background; returns uint8 (T, H, W, 3)."""
    size = background.shape[0]
    steps = len(objects[0].cx)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    canvas = np.broadcast_to(background, (steps, size, size, 3)).astype(np.float32)
    for obj in objects:
        r = obj.radius[:, None, None].astype(np.float32)
        dx = xs[None] - obj.cx[:, None, None]
        dy = ys[None] - obj.cy[:, None, None]
        cos, sin = np.cos(obj.angle)[:, None, None], np.sin(obj.angle)[:, None, None]
        u = (cos * dx + sin * dy) / r  # object frame; angle grows clockwise on screen (y points down)
        v = (-sin * dx + cos * dy) / r
        cover = np.clip(0.5 - _shape_sdf(obj.shape, u, v) * r, 0.0, 1.0) * obj.alpha[:, None, None]
        dark = _texture_weight(obj.texture, u, v)
        colour = obj.colour * (1 - 0.6 * np.asarray(dark)[..., None])
        canvas = canvas * (1 - cover[..., None]) + colour * cover[..., None]
    if noise is not None:
        canvas = canvas + noise
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _random_distractor(
    rng: np.random.Generator, size: int, steps: int, radius: float, shapes: Sequence[str]
) -> ObjectTrack:
    """A small static object (jittering by a fraction of a pixel) at a random place."""
    r = radius * rng.uniform(0.45, 0.6)
    cx, cy = rng.uniform(r, size - r, size=2)
    return ObjectTrack(
        shape=str(rng.choice(shapes)),
        texture="solid",
        colour=np.asarray(COLOURS[str(rng.choice(list(COLOURS)))], dtype=np.float32),
        cx=cx + rng.normal(0, 0.2, steps),
        cy=cy + rng.normal(0, 0.2, steps),
        radius=np.full(steps, r),
        angle=np.full(steps, rng.uniform(0, 2 * math.pi)),
        alpha=np.ones(steps),
    )


# --- temporal set ---------------------------------------------------------------------------------------------------


@dataclass
class TemporalParams:
    """Latent parameters of a temporal video; shared by both classes of a reversal pair (class-independent)."""

    size: int  # frame side in pixels
    frames: int  # number of frames (T)
    shape: str  # object shape (TEMPORAL_SHAPES)
    texture: str  # object texture
    colour: list[float]  # object RGB
    background: str  # background kind
    background_seed: int  # seeds the background's random colours/pattern
    radius: float  # object radius in pixels (mid-clip for grow/shrink)
    cx: float  # path centre x
    cy: float  # path centre y
    amplitude: float  # translation over the whole clip (move_*), pixels
    scale_ratio: float  # end/start radius ratio of grow
    angle0: float  # rotation of the object, radians (static)
    fade_centre: float  # canonical time of half opacity (appear)
    fade_width: float  # canonical duration of the fade
    drift: list[float]  # common (dx, dy) drift over the clip, pixels (nuisance, all classes)
    jitter: list[list[float]]  # (T, 2) per-frame position jitter, canonical time order
    distractor_seed: int | None  # seeds a static distractor object; None: no distractor
    noise_seed: int  # seeds per-frame pixel noise, canonical time order
    noise: float  # noise std


def sample_temporal_params(
    rng: np.random.Generator, size: int, frames: int, noise: float = 4.0, nuisance: float = 1.0,
    motion_scale: float = 1.0,
    object_scale: float = 1.0,
) -> TemporalParams:
    """Draw class-independent latent parameters for one temporal video.

    ``nuisance`` in [0, 1] sets how much hides the motion: at 1 the motion spans 30-45 % of the frame over any
    background, with drift, jitter, a distractor half the time and pixel noise; at 0 it spans 55-70 % of the frame
    over a plain dark or light background with none of those. Values between interpolate. ``motion_scale`` scales
    the translations' distance (0.5: half as far), the path's centre drawn within the margins that distance leaves;
    every draw is the same, so every property but the path is as at 1. ``object_scale`` scales the object's radius
    (and so the margins) in the same way.
    """
    if not 0.0 <= nuisance <= 1.0:
        raise ValueError(f"nuisance must be in [0, 1], got {nuisance}")
    if motion_scale <= 0:
        raise ValueError(f"motion_scale must be > 0, got {motion_scale}")
    if object_scale <= 0:
        raise ValueError(f"object_scale must be > 0, got {object_scale}")
    clean = 1.0 - nuisance
    radius = size * rng.uniform(0.15, 0.2) * object_scale
    amplitude = size * rng.uniform(0.3 + 0.25 * clean, 0.45 + 0.25 * clean) * motion_scale
    margin = min(radius + amplitude / 2, size / 2)
    plain = ("dark", "light")
    background = str(rng.choice(BACKGROUNDS)) if rng.random() < nuisance else str(rng.choice(plain))
    return TemporalParams(
        size=size,
        frames=frames,
        shape=str(rng.choice(TEMPORAL_SHAPES)),
        texture=str(rng.choice(TEXTURES)),
        colour=(np.asarray(COLOURS[str(rng.choice(list(COLOURS)))]) + rng.uniform(-20, 20, 3)).tolist(),
        background=background,
        background_seed=int(rng.integers(2**31)),
        radius=float(radius),
        cx=float(rng.uniform(margin, size - margin)),
        cy=float(rng.uniform(margin, size - margin)),
        amplitude=float(amplitude),
        scale_ratio=float(rng.uniform(2.0, 3.0)),
        angle0=float(rng.uniform(0, 2 * math.pi)),
        fade_centre=float(rng.uniform(0.35, 0.65)),
        fade_width=float(rng.uniform(0.2, 0.4)),
        drift=(rng.uniform(-0.06, 0.06, 2) * size * nuisance).tolist(),
        jitter=(rng.normal(0, 0.3, (frames, 2)) * nuisance).tolist(),
        distractor_seed=int(rng.integers(2**31)) if rng.random() < 0.5 * nuisance else None,
        noise_seed=int(rng.integers(2**31)),
        noise=float(noise * max(nuisance, 0.25)),
    )


def render_temporal(class_name: str, params: TemporalParams) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of ``class_name`` with latent ``params``.

    The forward class of a pair runs on canonical time ``tau = k / (T-1)``; its partner runs every time-dependent
    quantity (motion, drift, jitter, noise) on ``1 - tau``, so ``render_temporal(reversal_partner(c), p)`` equals
    ``render_temporal(c, p)[::-1]``.
    """
    if class_name not in _PARTNER:
        raise ValueError(f"unknown temporal class {class_name!r}; valid: {', '.join(TEMPORAL_CLASSES)}")
    p = params
    steps, size = p.frames, p.size
    order = np.arange(steps) if class_name in _FORWARD else np.arange(steps)[::-1]  # canonical frame per output frame
    tau = order / max(steps - 1, 1) - 0.5  # centred canonical time in [-0.5, 0.5]
    kind = class_name if class_name in _FORWARD else _PARTNER[class_name]

    jitter = np.asarray(p.jitter, dtype=np.float32)[order]
    cx = p.cx + p.drift[0] * tau + jitter[:, 0]
    cy = p.cy + p.drift[1] * tau + jitter[:, 1]
    radius = np.full(steps, p.radius)
    angle = np.full(steps, p.angle0)
    alpha = np.ones(steps)
    if kind == "move_right":
        cx = cx + p.amplitude * tau
    elif kind == "move_down":
        cy = cy + p.amplitude * tau
    elif kind == "grow":
        radius = p.radius * p.scale_ratio**tau
    elif kind == "right_then_down":  # across the top of an amplitude-sided square, then down its right side
        first = tau < 0
        cx = cx + p.amplitude * np.where(first, 2 * tau + 0.5, 0.5)
        cy = cy + p.amplitude * np.where(first, -0.5, 2 * tau - 0.5)
    elif kind == "appear":
        x = np.clip((tau + 0.5 - p.fade_centre) / p.fade_width + 0.5, 0, 1)
        alpha = x * x * (3 - 2 * x)  # smoothstep 0 -> 1
    obj = ObjectTrack(p.shape, p.texture, np.asarray(p.colour, dtype=np.float32), cx, cy, radius, angle, alpha)

    background = _background(p.background, size, np.random.default_rng(p.background_seed))
    objects = [obj]
    if p.distractor_seed is not None:
        d = _random_distractor(np.random.default_rng(p.distractor_seed), size, steps, p.radius, TEMPORAL_SHAPES)
        d.cx, d.cy = d.cx[order], d.cy[order]
        objects.insert(0, d)
    noise = np.random.default_rng(p.noise_seed).normal(0, p.noise, (steps, size, size, 3)).astype(np.float32)[order]
    return _composite(background, objects, noise if p.noise > 0 else None)


# --- scene sets -----------------------------------------------------------------------------------------------------


@dataclass
class SceneParams:
    """Latent parameters of a scene video (the appearance class plus class-independent nuisances)."""

    appearance: str  # key of APPEARANCES (the class)
    size: int  # frame side in pixels
    frames: int  # number of frames
    colour: list[float]  # object RGB (class colour + jitter)
    background_seed: int  # seeds the background's random colours
    radius: float  # object radius, pixels
    scale_change: float  # end/start radius ratio (nuisance)
    start: list[float]  # (x, y) start position, pixels
    velocity: list[float]  # (dx, dy) displacement over the clip, pixels
    angle0: float  # initial rotation
    spin: float  # rotation over the clip, radians
    jitter: list[list[float]]  # (T, 2) per-frame position jitter
    distractor_seed: int | None  # seeds a distractor object; None: no distractor
    noise_seed: int  # seeds pixel noise
    noise: float  # noise std


def appearance_of(name: str) -> Appearance:
    """The definition of a scene class (:data:`APPEARANCES`) or an image class (:data:`IMAGE_APPEARANCES`)."""
    look = APPEARANCES.get(name) or IMAGE_APPEARANCES.get(name)
    if look is None:
        raise ValueError(f"unknown appearance class {name!r}; valid: {', '.join([*APPEARANCES, *IMAGE_APPEARANCES])}")
    return look


def sample_scene_params(
    appearance: str, rng: np.random.Generator, size: int, frames: int, noise: float = 4.0
) -> SceneParams:
    """Draw nuisance parameters for one video (or image) of an appearance class."""
    look = appearance_of(appearance)
    radius = size * rng.uniform(0.17, 0.23)
    start = rng.uniform(radius, size - radius, 2)
    velocity = rng.uniform(-0.2, 0.2, 2) * size
    end = np.clip(start + velocity, radius * 0.8, size - radius * 0.8)
    return SceneParams(
        appearance=appearance,
        size=size,
        frames=frames,
        colour=(np.asarray(COLOURS[look.colour]) + rng.uniform(-20, 20, 3)).tolist(),
        background_seed=int(rng.integers(2**31)),
        radius=float(radius),
        scale_change=float(rng.uniform(0.85, 1.15)),
        start=start.tolist(),
        velocity=(end - start).tolist(),
        angle0=float(rng.uniform(0, 2 * math.pi)),
        spin=float(rng.uniform(-0.5, 0.5)),
        jitter=rng.normal(0, 0.3, (frames, 2)).tolist(),
        distractor_seed=int(rng.integers(2**31)) if rng.random() < 0.4 else None,
        noise_seed=int(rng.integers(2**31)),
        noise=float(noise),
    )


def render_scene(params: SceneParams) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of a scene video (one frame: an image of the images set)."""
    p = params
    look = appearance_of(p.appearance)
    steps, size = p.frames, p.size
    t = np.arange(steps) / max(steps - 1, 1)
    jitter = np.asarray(p.jitter, dtype=np.float32)
    obj = ObjectTrack(
        shape=look.shape,
        texture=look.texture,
        colour=np.asarray(p.colour, dtype=np.float32),
        cx=p.start[0] + p.velocity[0] * t + jitter[:, 0],
        cy=p.start[1] + p.velocity[1] * t + jitter[:, 1],
        radius=p.radius * p.scale_change**t,
        angle=p.angle0 + p.spin * t,
        alpha=np.ones(steps),
    )
    background = _background(look.background, size, np.random.default_rng(p.background_seed))
    objects = [obj]
    if p.distractor_seed is not None:
        objects.insert(
            0, _random_distractor(np.random.default_rng(p.distractor_seed), size, steps, p.radius, SCENE_SHAPES)
        )
    noise = np.random.default_rng(p.noise_seed).normal(0, p.noise, (steps, size, size, 3)).astype(np.float32)
    return _composite(background, objects, noise if p.noise > 0 else None)


# ---------------------------------------------------------------------------------------------------------------------
# Encoding


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 15,
    options: dict[str, str] | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) to ``path`` (container from the extension), atomically.

    ``options`` are the encoder's private options (default: deterministic x264, :data:`X264_OPTIONS`).
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.thread_count = 1
        stream.options = dict(X264_OPTIONS if options is None and codec == "libx264" else (options or {}))
        time_base = Fraction(1, fps)
        stream.codec_context.time_base = time_base
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = i, time_base  # explicit timestamps: x264's rate control reads them
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    Image.fromarray(image).save(tmp, format="PNG", optimize=False, compress_level=6)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------------------------
# Generation


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


@dataclass(frozen=True)
class _Job:
    set_name: str
    split: str
    index: int  # position within the split
    label: int
    class_name: str
    rel_path: str  # relative to the set directory


def _split_counts(set_name: str, spec: SizeSpec) -> tuple[int, int]:
    if set_name == "scene":
        return spec.train_per_class, spec.scene_val_per_class
    if set_name == "temporal":
        return spec.train_per_class, spec.val_per_class
    if set_name == "images":
        return spec.images_train_per_class, spec.images_val_per_class
    return spec.abc_train_per_class, spec.abc_val_per_class


def _jobs(set_name: str, spec: SizeSpec) -> list[_Job]:
    classes = set_classes(set_name)
    jobs = []
    for split, per_class in zip(("train", "val"), _split_counts(set_name, spec)):
        for i in range(per_class * len(classes)):
            label = i % len(classes)
            name = classes[label]
            ext = "png" if set_name == "images" else "mp4"
            folder = "images" if set_name == "images" else "videos"
            jobs.append(_Job(set_name, split, i, label, name, f"{folder}/{split}/{name}/{i:05d}.{ext}"))
    return jobs


def _job_rng(seed: int, set_name: str, split: str, index: int) -> np.random.Generator:
    """Each file's own generator: a file's draws depend on nothing but the root's seed and the file's place."""
    return np.random.default_rng([seed, _stable_id(set_name), _stable_id(split), index])


def _temporal_job_params(spec: SizeSpec, rng: np.random.Generator) -> TemporalParams:
    return sample_temporal_params(rng, spec.resolution, spec.frames, spec.noise, spec.temporal_nuisance,
                                  spec.motion_scale, spec.object_scale)


def _run_job(job: _Job, root: str, spec: SizeSpec, seed: int) -> None:
    rng = _job_rng(seed, job.set_name, job.split, job.index)
    out = Path(root) / job.set_name / job.rel_path
    if job.set_name == "temporal":
        write_video(out, render_temporal(job.class_name, _temporal_job_params(spec, rng)), spec.fps)
    elif job.set_name == "images":
        params = sample_scene_params(job.class_name, rng, spec.resolution, 1, spec.noise)
        _write_png(out, render_scene(params)[0])
    else:
        params = sample_scene_params(job.class_name, rng, spec.resolution, spec.frames, spec.noise)
        write_video(out, render_scene(params), spec.fps)


def process_context():
    """Multiprocessing context for helper pools: ``spawn`` (fork is unsafe once CUDA or threads are running)."""
    import multiprocessing as mp

    return mp.get_context("spawn")


def can_spawn() -> bool:
    """Whether spawned children can re-import ``__main__`` (false for ``python - <<EOF`` style scripts)."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or os.path.exists(path)


def _run_chunk(jobs: list[_Job], root: str, spec: SizeSpec, seed: int) -> int:
    for job in jobs:
        _run_job(job, root, spec, seed)
    return len(jobs)


def set_dir(root: str | os.PathLike, set_name: str) -> Path:
    """Directory of one generated set."""
    return Path(root) / set_name


def _set_entry(set_name: str, spec: SizeSpec) -> dict:
    train, val = _split_counts(set_name, spec)
    classes = len(set_classes(set_name))
    entry = {
        "kind": "image" if set_name == "images" else "video",
        "classes": classes,
        "train": train * classes,
        "val": val * classes,
        "resolution": [spec.resolution, spec.resolution],
    }
    if set_name != "images":
        entry |= {"frames": spec.frames, "fps": spec.fps}
    if set_name == "temporal":
        entry["reversal_pairs"] = len(TEMPORAL_PAIRS)
    return entry


def _manifest_header(size: str, seed: int, spec: SizeSpec | None = None) -> dict:
    spec = spec or SIZES[size]
    return {
        "generator": "uv2.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": seed,
        "resolution": [spec.resolution, spec.resolution],
        "frames": spec.frames,
        "fps": spec.fps,
        "codec": CODEC_DESCRIPTION,
        "size_spec": _spec_record(spec),
    }


# the probes' fields of SizeSpec, left out of a manifest at their defaults
PROBE_FIELDS = ("motion_scale", "object_scale")


def _spec_record(spec: SizeSpec) -> dict:
    """The manifest's ``size_spec``: the spec's fields, but the probes' at their defaults left out, as in the
    manifests written before those fields existed (which still describe their roots)."""
    record = asdict(spec)
    for field in PROBE_FIELDS:
        if record[field] == getattr(SizeSpec, field):
            del record[field]
    return record


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest of a generated root, or None when there is none (or it is unreadable)."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def temporal_video_params(root: str | os.PathLike, split: str, index: int) -> TemporalParams:
    """The latent draws of one video of a generated root's temporal set (``index``: the number in its file name,
    videos/<split>/<class>/<index>.mp4), drawn again from the root's manifest (seed and size): the object's shape,
    radius, path and the nuisances that video shows, to ask which videos a model gets wrong
    (benchmarks/error_latents.py)."""
    manifest = read_manifest(root)
    if manifest is None:
        raise MissingFileError(f"{Path(root) / MANIFEST}: no manifest of a generated synthetic root")
    spec = SizeSpec(**manifest["size_spec"])  # the probes' fields left out of it are at SizeSpec's defaults
    return _temporal_job_params(spec, _job_rng(manifest["seed"], "temporal", split, index))


def _set_complete(root: Path, set_name: str, manifest: dict | None, size: str, seed: int,
                  spec: SizeSpec | None = None) -> bool:
    if manifest is None:
        return False
    header = _manifest_header(size, seed, spec)
    if any(manifest.get(k) != v for k, v in header.items()):
        return False
    if manifest.get("sets", {}).get(set_name) != _set_entry(set_name, spec or SIZES[size]):
        return False
    d = set_dir(root, set_name)
    return all((d / f).is_file() for f in ("train.csv", "val.csv", "classes.txt"))


def _write_set_lists(root: Path, set_name: str, spec: SizeSpec) -> None:
    d = set_dir(root, set_name)
    jobs = _jobs(set_name, spec)
    write_lines_atomic(d / "classes.txt", set_classes(set_name))
    for split in ("train", "val"):
        write_lines_atomic(d / f"{split}.csv", [f"{j.rel_path},{j.label}" for j in jobs if j.split == split])
    if set_name == "temporal":
        index = {c: i for i, c in enumerate(TEMPORAL_CLASSES)}
        pairs = {
            "description": "each pair: the second class's videos are the first class's videos reversed in time",
            "pairs": [list(p) for p in TEMPORAL_PAIRS],
            "pair_indices": [[index[a], index[b]] for a, b in TEMPORAL_PAIRS],
        }
        write_lines_atomic(d / "reversal_pairs.json", [json.dumps(pairs, indent=2)])


def generate(
    root: str | os.PathLike,
    size: str = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    sets: Sequence[str] | None = None,
    workers: int | None = None,
    force: bool = False,
    val_per_class: int | None = None,
    motion_scale: float | None = None,
    object_scale: float | None = None,
) -> dict:
    """Generate the synthetic benchmark under ``root`` and return its manifest.

    Args:
        root: output directory (created).
        size: "micro", "tiny", "small" or "medium" (see module docstring).
        seed: generation seed.
        sets: which sets (default: all of :data:`ALL_SETS`).
        workers: processes rendering/encoding in parallel (default: available CPUs).
        force: regenerate even when the manifest says a set is complete.
        val_per_class: validation videos per class of the scene and temporal sets instead of the size's (a larger
            test set). Every video has its own seed, so the training videos and the size's validation videos are
            the same, byte for byte, and listed first (where N is the larger); the manifest records the counts
            (``size_spec``), and a root holds one spec (``ensure_synthetic`` refuses a root of another rather than
            write over it).
        motion_scale: the temporal set's translations over this fraction of their distance instead of all of it,
            the paths' centres within the margins that leaves and every other draw the same
            (``sample_temporal_params``): a benchmark to probe what the size of a step between frames does
            (docs/tiny_scale.md). Recorded in the manifest as ``val_per_class`` is.
        object_scale: the temporal set's objects this many times their drawn radius, every other draw the same; as
            ``motion_scale``.

    A root generated with another size, seed or generator version is refused (use another directory); sets already
    complete for this (size, seed) are skipped unless ``force``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown synthetic size {size!r}; valid: {', '.join(SIZES)}")
    sets = list(ALL_SETS if sets is None else sets)
    for s in sets:
        if s not in ALL_SETS:
            raise ValueError(f"unknown synthetic set {s!r}; valid: {', '.join(ALL_SETS)}")
    if val_per_class is not None and val_per_class < 1:
        raise ValueError(f"val_per_class must be >= 1, got {val_per_class}")
    probes = {name: scale for name, scale in (("motion_scale", motion_scale), ("object_scale", object_scale))
              if scale is not None}
    for name, scale in probes.items():
        if not scale > 0:  # NaN too
            raise ValueError(f"{name} must be > 0, got {scale}")
    root = Path(root)  # created once the arguments are known to be valid
    root.mkdir(parents=True, exist_ok=True)
    spec = SIZES[size]
    if val_per_class is not None:
        spec = replace(spec, val_per_class=val_per_class, scene_val_per_class=val_per_class)
    spec = replace(spec, **probes)
    manifest = read_manifest(root)
    header = _manifest_header(size, seed, spec)
    if manifest is not None and not force:
        differs = [f"{k}={manifest.get(k)!r}, asked {header[k]!r}" for k in ("generator_version", "size", "seed")
                   if manifest.get(k) != header[k]]
        if not differs:  # the same size with another spec (val_per_class, a probe's): name the fields that differ
            defaults = {field: getattr(SizeSpec, field) for field in PROBE_FIELDS}
            held, asked = (defaults | d for d in (manifest.get("size_spec") or {}, header["size_spec"]))
            differs = [f"{k}={held.get(k)!r}, asked {v!r}" for k, v in asked.items() if held.get(k) != v]
        if differs:
            raise ValueError(f"{root / MANIFEST} describes a different benchmark ({', '.join(differs)}); generate into "
                             f"another directory or pass force=True")
    todo = [s for s in sets if force or not _set_complete(root, s, manifest, size, seed, spec)]
    if not todo:
        log.info("synthetic %s (seed %d) already complete in %s", size, seed, root)
        return manifest
    jobs = [job for s in todo for job in _jobs(s, spec)]
    shutil.rmtree(root / DECODED_DIR, ignore_errors=True)  # frames of the videos about to be written over
    workers = max(1, workers or len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    log.info("generating %d files for sets %s (%s, seed %d) with %d workers", len(jobs), todo, size, seed, workers)
    if workers > 1 and not can_spawn():
        log.info("__main__ cannot be re-imported by worker processes; generating serially")
        workers = 1
    if workers == 1 or len(jobs) < 16:
        _run_chunk(jobs, str(root), spec, seed)
    else:
        chunks = [jobs[i :: workers * 4] for i in range(workers * 4)]
        with ProcessPoolExecutor(workers, mp_context=process_context()) as pool:
            list(pool.map(_run_chunk, chunks, *zip(*[(str(root), spec, seed)] * len(chunks))))
    for s in todo:
        _write_set_lists(root, s, spec)
    kept = (manifest or {}).get("sets", {}) if manifest and not force else {}
    kept = {k: v for k, v in kept.items() if k not in todo}
    new_manifest = header | {"sets": dict(sorted((kept | {s: _set_entry(s, spec) for s in todo}).items()))}
    write_lines_atomic(root / MANIFEST, [json.dumps(new_manifest, indent=2, sort_keys=True)])
    log.info("generated %d files in %.1f s", len(jobs), time.perf_counter() - start)
    return new_manifest


def ensure_synthetic(
    root: str | os.PathLike,
    size: str = DEFAULT_SIZE,
    seed: int = DEFAULT_SEED,
    sets: Sequence[str] | None = None,
    workers: int | None = None,
) -> Path:
    """Make sure ``root`` holds the (size, seed) benchmark with ``sets`` (default all); generate what is missing.

    Safe to call from several processes at once (an exclusive lock file serialises generation). Returns ``root``.
    A root an older generator wrote (same size and seed) is a cache of this one: it is generated again, with a warning.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    wanted = list(ALL_SETS if sets is None else sets)
    manifest = read_manifest(root)
    if all(_set_complete(root, s, manifest, size, seed) for s in wanted):
        return root

    def unless_parent_holds_it(holder: str) -> None:
        parent = multiprocessing.parent_process()
        if parent is not None and holder == str(parent.pid):
            # a helper process re-running the main script of the process that holds the lock (multiprocessing's
            # spawn re-imports __main__): waiting would deadlock both, so say what to fix instead. A sibling that
            # holds it (the ablation grid's workers) is waited for, as another run is.
            raise RuntimeError(
                f"ensure_synthetic({root}) was called in a worker process while its parent generates the set: "
                f"the main script runs again in every spawned worker; put its code under "
                f"`if __name__ == \"__main__\":`") from None

    with exclusive_lock(root / ".generate.lock", before_waiting=unless_parent_holds_it):
        manifest = read_manifest(root)  # again: another process may have generated it while this one waited
        stale = manifest is not None and manifest.get("generator_version") != GENERATOR_VERSION and all(
            manifest.get(k) == v for k, v in (("size", size), ("seed", seed)))
        if stale:
            log.warning("%s was generated by synthetic generator version %s; generating version %d again in its place",
                        root, manifest.get("generator_version"), GENERATOR_VERSION)
        generate(root, size=size, seed=seed, sets=wanted, workers=workers, force=stale)
    return root
