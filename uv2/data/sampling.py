"""Temporal sampling: which frame numbers make a clip. Pure functions of the video length.

Two schemes, as in the UniFormerV2 / PySlowFast code:

``uniform`` (sparse, TSN-style; UniFormerV2's K400/SSv2 recipe). The video ``[0, n-1]`` is cut into T segments with
boundaries ``start_i = round(i * (n-1)/T)``, ``end_i = round((i+1) * (n-1)/T)`` (numpy round-half-even, like the
official ``get_seq_frames``).

- train: one random frame per segment, uniform on ``[start_i, end_i]`` (inclusive).
- test, K clips: clip k takes ``start_i + int((k + 1) * seg / (K + 1))`` with ``seg = (n-1)/T``, i.e. K evenly
  spaced offsets inside every segment, and one clip ``start_i + int(seg / 2)`` (the official sparse test for any K,
  SSv2's single clip included; ``(start_i + end_i) // 2`` would be a frame later in some segments).

``dense``: T frames at stride s, ``window = (T-1)*s + 1`` frames; ``delta = max(n - window, 0)``.

- train: window start uniform on ``[0, delta]``.
- test, 1 clip: start ``delta // 2`` (the centre window).
- test, K > 1 clips: start ``round(k * delta / (K-1))``: K windows evenly spaced from the first to the last frame.

Short videos are handled deterministically and never fail: with ``n < T`` the uniform formulas repeat frames in
order (each frame held for about T/n steps, e.g. n=3, T=8 at test -> 0,0,0,1,1,1,2,2); a dense window longer than the
video starts at 0 and indices past the end are clamped to the last frame (**padding** with the last frame, as
PySlowFast does; frames are never looped, so the order of events is preserved).

All functions return ``np.ndarray`` of int64 with values in ``[0, n-1]`` (non-decreasing).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["SamplingMode", "uniform_indices", "dense_indices", "sample_indices"]

SamplingMode = Literal["uniform", "dense"]
SAMPLING_MODES: tuple[str, ...] = ("uniform", "dense")


def _check(num_frames: int, num_samples: int, train: bool, rng, clip_index: int, num_clips: int) -> None:
    if num_frames < 1:
        raise ValueError(f"num_frames_in_video must be >= 1, got {num_frames}")
    if num_samples < 1:
        raise ValueError(f"num_samples (T) must be >= 1, got {num_samples}")
    if train and rng is None:
        raise ValueError("training sampling needs rng (a numpy.random.Generator)")
    if num_clips < 1 or not 0 <= clip_index < num_clips:
        raise ValueError(f"clip_index must be in [0, num_clips={num_clips}), got {clip_index}")


def uniform_indices(
    num_frames: int,
    num_samples: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """TSN-style sparse sampling: one frame from each of ``num_samples`` equal segments (see module docstring).

    Args:
        num_frames: decodable frames in the video (n).
        num_samples: frames per clip (T).
        train: random offset per segment (needs ``rng``) instead of the deterministic test positions.
        rng: random generator for training.
        clip_index: which of ``num_clips`` test clips (ignored when training).
        num_clips: number of test clips per video.
    """
    _check(num_frames, num_samples, train, rng, clip_index, num_clips)
    seg = (num_frames - 1) / num_samples
    i = np.arange(num_samples)
    starts = np.round(seg * i).astype(np.int64)
    ends = np.round(seg * (i + 1)).astype(np.int64)
    if train:
        return rng.integers(starts, ends + 1).astype(np.int64)
    offset = int(seg / (num_clips + 1) * (clip_index + 1))
    return np.minimum(starts + offset, num_frames - 1)


def dense_indices(
    num_frames: int,
    num_samples: int,
    stride: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Dense sampling: ``num_samples`` frames ``stride`` apart from one window (see module docstring)."""
    _check(num_frames, num_samples, train, rng, clip_index, num_clips)
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1, got {stride}")
    window = (num_samples - 1) * stride + 1
    delta = max(num_frames - window, 0)
    if train:
        start = int(rng.integers(0, delta + 1))
    elif num_clips == 1:
        start = delta // 2
    else:
        start = int(round(clip_index * delta / (num_clips - 1)))
    return np.minimum(start + stride * np.arange(num_samples, dtype=np.int64), num_frames - 1)


def sample_indices(
    mode: SamplingMode,
    num_frames: int,
    num_samples: int,
    *,
    stride: int = 1,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Dispatch to :func:`uniform_indices` (``mode="uniform"``) or :func:`dense_indices` (``mode="dense"``)."""
    if mode == "uniform":
        return uniform_indices(
            num_frames, num_samples, train=train, rng=rng, clip_index=clip_index, num_clips=num_clips
        )
    if mode == "dense":
        return dense_indices(
            num_frames, num_samples, stride, train=train, rng=rng, clip_index=clip_index, num_clips=num_clips
        )
    raise ValueError(f"unknown sampling mode {mode!r}; valid choices: {', '.join(SAMPLING_MODES)}")
