"""Video decoders behind one interface, chosen by the data argument ``decoder``: ``pyav`` (default) or ``torchcodec``.

A backend has two methods, with the semantics of :mod:`uv2.data.decode` (frame ``i`` is the ``i``-th frame in
presentation order; the frame count is the number of frames that decode, corrected when a decode learns better)::

    probe(path, timer)                           -> VideoIndex
    decode(path, indices, index, spec, timer)    -> (uint8 (N, H, W, 3) RGB frames, VideoIndex to cache)

``pyav`` is :func:`~uv2.data.decode.probe_video` / :func:`~uv2.data.decode.decode_frames`: seek to the governing
keyframe, decode with ``skip_frame=NONREF`` for frames not wanted, crop and scale in one swscale pass.

``torchcodec`` (optional: ``pip install torchcodec`` matching the installed torch, plus FFmpeg's shared libraries,
which it does not bundle; on Debian ``apt-get install ffmpeg``) decodes with TorchCodec's ``VideoDecoder`` on one
FFmpeg thread, the crop and resize done by its decoder transforms (FFmpeg's filters), the frames picked by
presentation time from the PyAV index, handed to TorchCodec as its ``custom_frame_mappings`` (so both backends
number frames alike, variable frame rates included, and TorchCodec does not scan the file again). TorchCodec has no ``skip_frame``: it reconstructs every frame between a keyframe and
the last wanted one, which made it slower than PyAV on the H.264 benchmark videos (``python -m uv2 bench-data``
prints both), hence PyAV is the default. Damaged files: a decode that TorchCodec fails (its errors are
``RuntimeError``, or ``IndexError`` for frames it cannot reach) is decoded again by PyAV, which tells a truncated file (frame count corrected, frames clamped)
from a broken one (:class:`~uv2.data.decode.VideoDecodeError`, counted and replaced by the dataset); indexes PyAV
made by ordinal (files without timestamps) or whose seeking proved unreliable are decoded by PyAV directly.
Repeated augmentation with several crop boxes per decode decodes full frames once and crops them with torchvision.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from uv2.data.decode import FrameSpec, StageTimer, VideoIndex, decode_frames, probe_video

log = logging.getLogger(__name__)

__all__ = ["DECODERS", "DecoderName", "VideoBackend", "PyAVBackend", "TorchCodecBackend", "get_backend",
           "backend_unavailable"]

DecoderName = Literal["pyav", "torchcodec"]
DECODERS: tuple[str, ...] = ("pyav", "torchcodec")


class VideoBackend(Protocol):
    name: str  # the ``decoder`` value that selects it

    def probe(self, path: str, timer: StageTimer | None = None) -> VideoIndex: ...

    def decode(
        self,
        path: str,
        indices: Sequence[int] | np.ndarray,
        index: VideoIndex,
        spec: FrameSpec | Sequence[FrameSpec] | None = None,
        timer: StageTimer | None = None,
    ) -> tuple[np.ndarray, VideoIndex]: ...


class PyAVBackend:
    """PyAV: :mod:`uv2.data.decode`."""

    name = "pyav"

    def probe(self, path: str, timer: StageTimer | None = None) -> VideoIndex:
        return probe_video(path, timer=timer)

    def decode(self, path, indices, index, spec=None, timer=None):
        return decode_frames(path, indices, index, spec=spec, timer=timer)


@functools.cache
def backend_unavailable(name: str) -> str | None:
    """Why decoder ``name`` cannot run here (None when it can); ``ValueError`` for an unknown name."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; valid choices: {', '.join(DECODERS)}")
    if name == "pyav":
        return None
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  loads TorchCodec's FFmpeg bindings
    except ImportError as err:  # not installed
        return f"torchcodec is not installed ({err}); pip install torchcodec (the release matching torch)"
    except (OSError, RuntimeError) as err:  # installed, but FFmpeg's shared libraries are missing or do not match
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return (f"torchcodec cannot load FFmpeg's shared libraries ({first}); install them (Debian: apt-get install "
                "ffmpeg)")
    return None


@functools.cache
def get_backend(name: str) -> VideoBackend:
    """The decoder backend ``name`` (one instance per process); a clear error when it cannot run here."""
    reason = backend_unavailable(name)
    if reason is not None:
        raise RuntimeError(f"decoder {name!r} is not usable here: {reason}; or use decoder: pyav")
    return PyAVBackend() if name == "pyav" else TorchCodecBackend()


def frame_mappings(index: VideoIndex) -> str:
    """The index as TorchCodec's ``custom_frame_mappings`` (ffprobe's JSON: pts, duration, key_frame per frame), so
    that TorchCodec numbers frames as uv2 does without scanning the file again (its "approximate" mode computes
    frame times from the average rate, wrong for variable frame rates)."""
    pts = index.pts.tolist()
    keys = set(index.keyframe_pts.tolist())
    gaps = [b - a for a, b in zip(pts, pts[1:])]
    durations = gaps + [gaps[-1] if gaps else 1]
    return json.dumps({"frames": [{"pts": p, "duration": d, "key_frame": int(p in keys)}
                                  for p, d in zip(pts, durations)]})


class TorchCodecBackend:
    """TorchCodec (see the module docstring)."""

    name = "torchcodec"

    def __init__(self) -> None:
        from torchcodec.decoders import VideoDecoder
        from torchcodec.transforms import DecoderTransform, Resize

        class Crop(DecoderTransform):
            """A crop at a given place (TorchCodec's RandomCrop draws the place from torch's global RNG, which
            uv2 keeps out of the data path): FFmpeg's ``crop`` filter, TorchCodec's spec ``crop, h, w, x, y``."""

            def __init__(self, top: int, left: int, height: int, width: int):
                self.box = (top, left, height, width)

            def _make_transform_spec(self, input_dims: tuple[int | None, int | None]) -> str:
                top, left, height, width = self.box
                return f"crop, {height}, {width}, {left}, {top}"

            def _get_output_dims(self) -> tuple[int | None, int | None] | None:
                return self.box[2], self.box[3]

        self._decoder_class, self._crop, self._resize = VideoDecoder, Crop, Resize

    def probe(self, path: str, timer: StageTimer | None = None) -> VideoIndex:
        return probe_video(path, timer=timer)

    def decode(self, path, indices, index, spec=None, timer=None):
        path = os.fspath(path)
        if index.pts is None or not index.seek_reliable or index.time_base is None:
            return decode_frames(path, indices, index, spec=spec, timer=timer)
        idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, index.num_frames - 1)
        if idx.size == 0:
            raise ValueError(f"{path}: decode needs at least one frame index")
        specs = [spec] * idx.size if spec is None or isinstance(spec, FrameSpec) else list(spec)
        if len(specs) != idx.size:
            raise ValueError(f"got {len(specs)} FrameSpecs for {idx.size} frame indices; give one, or one per index")
        distinct = list(dict.fromkeys(specs))
        try:
            if len(distinct) == 1:
                frames = self._decode_at(path, index, idx, distinct[0], timer)
            else:  # several crops of the same frames (repeated augmentation): decode full frames once, crop each
                full = self._decode_at(path, index, idx, None, timer)
                frames = self._crop_each(full, specs, timer)
        except (RuntimeError, IndexError) as err:  # TorchCodec's decode errors (IndexError: a frame its demuxer
            # does not reach, e.g. a truncated file): let PyAV tell truncation from breakage
            log.info("%s: torchcodec failed (%s); decoding with PyAV", path, err)
            return decode_frames(path, indices, index, spec=spec, timer=timer)
        return frames, index

    def _decode_at(self, path: str, index: VideoIndex, idx: np.ndarray, spec: FrameSpec | None,
                   timer: StageTimer | None) -> np.ndarray:
        transforms = []
        if spec is not None and spec.crop is not None and spec.crop != (0, 0, index.height, index.width):
            transforms.append(self._crop(*spec.crop))
        if spec is not None and spec.size is not None:
            transforms.append(self._resize(spec.size))
        start = time.perf_counter()
        decoder = self._decoder_class(path, num_ffmpeg_threads=1, dimension_order="NHWC",
                                      transforms=transforms or None, custom_frame_mappings=frame_mappings(index))
        opened = time.perf_counter()
        unique, inverse = np.unique(idx, return_inverse=True)
        batch = decoder.get_frames_at(unique.tolist())
        frames = batch.data.numpy()[inverse]  # (N, H, W, 3), the order of idx
        if timer is not None:
            timer.add("open", opened - start)
            timer.add("decode", time.perf_counter() - opened)  # seeking, decoding and FFmpeg's crop/scale filters
        return frames

    def _crop_each(self, full: np.ndarray, specs: list[FrameSpec | None], timer: StageTimer | None) -> np.ndarray:
        import torch
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        start = time.perf_counter()
        out = []
        for frame, spec in zip(full, specs):
            image = torch.from_numpy(frame).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)
            height, width = image.shape[-2:]
            top, left, h, w = spec.crop if spec is not None and spec.crop else (0, 0, height, width)
            size = list(spec.size) if spec is not None and spec.size else [h, w]
            image = TF.resized_crop(image, top, left, h, w, size, interpolation=InterpolationMode.BILINEAR,
                                    antialias=True)
            out.append(image.permute(1, 2, 0).numpy())
        if timer is not None:
            timer.add("convert", time.perf_counter() - start)
        return np.stack(out)
