"""Frame folders: videos stored as numbered images (Something-Something V1 as released, mmaction2's rawframes, any
extraction), read behind the decoder interface of :mod:`uv2.data.backends`, so that
:class:`~uv2.data.dataset.VideoDataset` samples, crops and augments them exactly as it does videos.

Why a backend. The dataset asks a backend for an index (frame count and frame size) and then for frames ``i`` of a
clip, each cut to a crop box and resized (:class:`~uv2.data.decode.FrameSpec`). A frame folder answers the same two
questions: its index is its frames in order, and decoding reads the images of the wanted indices. Everything above
(temporal sampling, crop boxes drawn before decoding, test views, repeats, the device-side flip / RandAugment /
normalisation, bad-item replacement) is the video path's code, unchanged, so the two cannot drift apart. The dataset
picks this backend for every record that is a directory (:meth:`VideoDataset._backend_for`); list formats need not
say which records are folders.

Frame numbering. A folder holds one image per frame, named by a template with one integer field (``img_{:05d}.jpg``
as mmaction2 extracts them, ``{:05d}.jpg`` as SSv1 is released, ``image_{:05d}.jpg``, ...). Frame ``i`` of the video
is the file numbered ``first + i``, ``first`` being the smallest number in the folder (1 for both releases above, 0
for some extractors). The template is ``frame_template`` when given; otherwise it is read off the folder: the image
files (:data:`IMAGE_EXTENSIONS`) whose names end in a number right before the extension, grouped by the text around
the number. One group gives the template (zero-padded to the width its numbers share, or unpadded when the widths
differ and none has a leading zero); several groups (an mmaction2 folder keeps ``flow_x_`` / ``flow_y_`` images next
to ``img_``) are an error that names them and asks for ``frame_template``.

Frame count. From the list when it gives one (mmaction2's ``frame_dir total_frames label`` rows): that many frames,
as mmaction2 reads them (files numbered past them are ignored). Otherwise the numbered files of the folder. Either
way the frames ``first .. first + count - 1`` must all be there: a gap, or fewer files than the list says, is a
missing frame.

Decoding. Each wanted frame's file is decoded by FFmpeg through PyAV (its image decoders: mjpeg for JPEG, png, bmp,
tiff, webp) and converted by the video path's converter (:mod:`uv2.data.decode`): a JPEG's crop is cut from its
YUV planes and scaled by swscale before the conversion to RGB, a PNG's is cut from its RGB. A folder of a video's
frames extracted losslessly (the packets of an MJPEG or PNG video written out as files, which is what ``ffmpeg -i
video.mkv -c copy %05d.jpg`` does) therefore gives the very pixels the video gives, clip for clip
(``tests/test_data_frames.py``, ``tests/test_data_dataset.py``). PIL would decode a 176x100 JPEG in 0.36 ms against
PyAV's 0.58 ms (opening a container per file), and both take about 2 ms at 704x400 on this machine; the shared
converter is worth the difference. Every distinct frame of a call is read once; repeats and several crop boxes of
the same frame reuse it.

Errors. A folder that does not exist, holds no numbered image, has a gap, holds fewer frames than its list says, or
a frame that cannot be opened or decoded raises :class:`~uv2.data.decode.VideoDecodeError` naming the folder and
the frame file; the dataset counts it and replaces the item like a bad video. Only file errors
(:data:`~uv2.data.pyav_compat.DATA_ERRORS`) become that error: anything else is a bug and propagates.
"""

from __future__ import annotations

import os
import re
import string
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import av
import numpy as np

from uv2.data.decode import (
    FrameSpec,
    StageTimer,
    VideoDecodeError,
    VideoIndex,
    VideoInfo,
    _Converter,
    _iter_frames,
    _Opened,
    _specs_for,
    _to_rgb,
)
from uv2.data.pyav_compat import DATA_ERRORS

__all__ = [
    "IMAGE_EXTENSIONS",
    "FrameFolderBackend",
    "FrameFolderIndex",
    "decode_frame_folder",
    "detect_frame_template",
    "inspect_frame_folder",
    "parse_frame_template",
    "probe_frame_folder",
    "read_all_frames",
]

#: extensions of the image files a frame folder may hold (FFmpeg decodes each of them)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# a file name that ends in a number right before its extension: the text before, the number, the extension
_NUMBERED = re.compile(r"(?P<prefix>.*?)(?P<number>\d+)(?P<suffix>\.[A-Za-z0-9]+)")
_EXAMPLES = "e.g. 'img_{:05d}.jpg' (mmaction2) or '{:05d}.jpg' (Something-Something V1)"


@dataclass(frozen=True)
class FrameFolderIndex(VideoIndex):
    """A frame folder's :class:`~uv2.data.decode.VideoIndex` (no timestamps, ``fps`` 0, ``verified``: the count is
    the folder's), with the names of its frames."""

    template: str = "{:05d}.jpg"  # file name of frame number n: template.format(n)
    first: int = 1  # the number of frame 0 (the smallest number in the folder)

    def frame_file(self, i: int) -> str:
        """The file name of frame ``i`` (0-based)."""
        return self.template.format(self.first + i)


def parse_frame_template(template: str) -> tuple[str, str]:
    """The text before and after the one integer field of a frame-name template (``"img_{:05d}.jpg"`` ->
    ``("img_", ".jpg")``); ``ValueError`` naming the template when it is not one."""
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"frame_template {template!r} is not a format string ({e}); {_EXAMPLES}") from None
    fields = [k for k, (_, name, _, _) in enumerate(pieces) if name is not None]
    if len(fields) != 1:
        raise ValueError(f"frame_template {template!r} must hold exactly one integer field such as {{:05d}}, it holds "
                         f"{len(fields)}; {_EXAMPLES}")
    k = fields[0]
    _, name, spec, conversion = pieces[k]
    if name not in ("", "0") or conversion is not None or (spec and spec[-1].isalpha() and spec[-1] != "d"):
        raise ValueError(f"frame_template {template!r}: its field must be a plain integer field ({{}}, {{:d}}, "
                         f"{{:05d}}), got {{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}; "
                         f"{_EXAMPLES}")
    try:
        example = template.format(1)
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(f"frame_template {template!r} does not format a frame number ({e}); {_EXAMPLES}") from None
    if "/" in example or os.sep in example or not example.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f"frame_template {template!r} must name an image file inside the folder (no '/'; extension "
                         f"one of {', '.join(IMAGE_EXTENSIONS)}); {_EXAMPLES}")
    prefix = "".join(literal for literal, _, _, _ in pieces[: k + 1])
    suffix = "".join(literal for literal, _, _, _ in pieces[k + 1 :])
    return prefix, suffix


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def detect_frame_template(folder: str, names: Iterable[str]) -> str:
    """The template of the numbered images among ``names`` (the folder's files; see the module docstring);
    :class:`~uv2.data.decode.VideoDecodeError` when there are none, several series, or inconsistent padding."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in names:
        match = _NUMBERED.fullmatch(name)
        if match and match["suffix"].lower() in IMAGE_EXTENSIONS:
            groups.setdefault((match["prefix"], match["suffix"]), []).append(match["number"])
    if not groups:
        raise VideoDecodeError(folder, f"no numbered image frames in the folder ({_EXAMPLES}; extensions "
                                       f"{', '.join(IMAGE_EXTENSIONS)})")
    if len(groups) > 1:
        series = ", ".join(f"{prefix}<n>{suffix} ({len(numbers)} files)"
                           for (prefix, suffix), numbers in sorted(groups.items()))
        raise VideoDecodeError(folder, f"several numbered image series ({series}); set frame_template to the frames' "
                                       f"names, {_EXAMPLES}")
    (prefix, suffix), numbers = next(iter(groups.items()))
    widths = {len(n) for n in numbers}
    if len(widths) == 1:
        width = widths.pop()
        field = f"{{:0{width}d}}" if width > 1 else "{:d}"
    elif any(len(n) > 1 and n.startswith("0") for n in numbers):
        raise VideoDecodeError(folder, f"the numbers of {prefix}<n>{suffix} are zero-padded to different widths "
                                       f"({', '.join(map(str, sorted({len(n) for n in numbers})))} digits); set "
                                       f"frame_template, {_EXAMPLES}")
    else:
        field = "{:d}"
    return _escape(prefix) + field + _escape(suffix)


def _frame_numbers(names: Iterable[str], template: str) -> list[int]:
    """Sorted numbers n of the names that are exactly ``template.format(n)``."""
    prefix, suffix = parse_frame_template(template)
    numbers = []
    for name in names:
        if name.startswith(prefix) and name.endswith(suffix) and len(name) > len(prefix) + len(suffix):
            middle = name[len(prefix) : len(name) - len(suffix)]
            if middle.isdigit() and template.format(int(middle)) == name:
                numbers.append(int(middle))
    return sorted(numbers)


def probe_frame_folder(
    folder: str | os.PathLike,
    template: str | None = None,
    listed_frames: int | None = None,
    timer: StageTimer | None = None,
) -> FrameFolderIndex:
    """Index a frame folder: its template, first number, frame count and frame size (see the module docstring).

    Args:
        folder: the folder of frame images.
        template: the frames' file names, e.g. ``"img_{:05d}.jpg"``; None: read off the folder.
        listed_frames: the frame count the list gives (None: count the folder's frames).
        timer: the listing counts as ``probe``, reading the first frame's header as ``open``.
    """
    folder = os.fspath(folder)
    if listed_frames is not None and listed_frames < 1:
        raise ValueError(f"{folder}: listed_frames must be >= 1, got {listed_frames}")
    start = time.perf_counter()
    if not os.path.isdir(folder):
        reason = "is a file, not a frame folder" if os.path.exists(folder) else "frame folder does not exist"
        raise VideoDecodeError(folder, reason)
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.is_file()]
    except OSError as e:
        raise VideoDecodeError(folder, f"cannot list the frame folder ({type(e).__name__}: {e})") from e
    if template is None:
        template = detect_frame_template(folder, names)
    numbers = _frame_numbers(names, template)
    if not numbers:
        shown = ", ".join(sorted(names)[:3]) or "nothing"
        raise VideoDecodeError(folder, f"no frame named like {template!r} (the folder holds {shown}"
                                       f"{', ...' if len(names) > 3 else ''})")
    first = numbers[0]
    count = listed_frames if listed_frames is not None else numbers[-1] - first + 1  # from the first to the last
    present = set(numbers)
    missing = next((n for n in range(first, first + count) if n not in present), None)
    if missing is not None:
        if listed_frames is not None and missing > numbers[-1]:
            reason = (f"the list gives {listed_frames} frames but the folder holds {len(numbers)} "
                      f"({template.format(first)} to {template.format(numbers[-1])})")
        else:
            reason = f"frame {template.format(missing)} is missing ({template.format(first)} to " \
                     f"{template.format(first + count - 1)} expected)"
        raise VideoDecodeError(folder, reason)
    if timer is not None:
        timer.add("probe", time.perf_counter() - start)
    width, height = _frame_size(folder, template.format(first), timer)
    return FrameFolderIndex(path=folder, num_frames=count, pts=None, keyframe_pts=None, keyframe_seek=None,
                            time_base=None, fps=0.0, width=width, height=height, header_frames=listed_frames or 0,
                            verified=True, template=template, first=first)


def _frame_size(folder: str, name: str, timer: StageTimer | None) -> tuple[int, int]:
    """(width, height) of a frame image, from its header (decoded when the header does not say)."""
    path = os.path.join(folder, name)
    try:
        with _Opened(path, timer) as (_, stream):
            width, height = stream.codec_context.width, stream.codec_context.height
    except VideoDecodeError as e:
        raise VideoDecodeError(folder, f"frame {name}: {e.reason}") from e
    except DATA_ERRORS as e:
        raise VideoDecodeError(folder, f"frame {name}: reading failed ({type(e).__name__}: {e})") from e
    if not (width and height):
        frame = _read_frame(folder, name, timer)
        width, height = frame.width, frame.height
    return width, height


def _read_frame(folder: str, name: str, timer: StageTimer | None) -> av.VideoFrame:
    """The decoded image ``folder/name``; :class:`VideoDecodeError` naming the folder and the frame otherwise."""
    path = os.path.join(folder, name)
    try:
        with _Opened(path, timer) as (container, stream):
            for frame in _iter_frames(container.demux(stream), stream, path, skip=None, timer=timer):
                return frame
    except VideoDecodeError as e:
        raise VideoDecodeError(folder, f"frame {name}: {e.reason}") from e
    except DATA_ERRORS as e:  # the file fails; any other exception is a bug and propagates
        raise VideoDecodeError(folder, f"frame {name}: decoding failed ({type(e).__name__}: {e})") from e
    raise VideoDecodeError(folder, f"frame {name}: no image decodes")


def decode_frame_folder(
    folder: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    index: FrameFolderIndex,
    spec: FrameSpec | Sequence[FrameSpec] | None = None,
    timer: StageTimer | None = None,
) -> tuple[np.ndarray, FrameFolderIndex]:
    """The frames at ``indices`` as :func:`~uv2.data.decode.decode_frames` gives a video's: uint8 (N, H, W, 3) RGB
    in the order of ``indices`` (clamped into ``[0, index.num_frames)``), each cut and resized as its
    :class:`~uv2.data.decode.FrameSpec` says (crop boxes in the index's ``width x height`` pixels; a frame of
    another size is rescaled to it first), and the index (unchanged: a folder's count is exact)."""
    folder = os.fspath(folder)
    idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, index.num_frames - 1)
    if idx.size == 0:
        raise ValueError(f"{folder}: decode needs at least one frame index")
    specs = _specs_for(spec, idx.size)
    read = {i: _read_frame(folder, index.frame_file(i), timer) for i in np.unique(idx).tolist()}
    convert = _Converter(index.width, index.height, timer)
    converted: dict[tuple[int, FrameSpec | None], np.ndarray] = {}  # one conversion per (frame, spec)
    frames = []
    try:
        for i, frame_spec in zip(idx.tolist(), specs):
            if (i, frame_spec) not in converted:
                converted[i, frame_spec] = _to_rgb(convert, read[i], frame_spec)
            frames.append(converted[i, frame_spec])
    except DATA_ERRORS as e:
        raise VideoDecodeError(folder, f"converting frames failed ({type(e).__name__}: {e})") from e
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ValueError(f"{folder}: the FrameSpecs give frames of different sizes in one clip")
    return np.stack(frames), index


def read_all_frames(folder: str | os.PathLike, index: FrameFolderIndex | None = None) -> np.ndarray:
    """Every frame of a folder as uint8 RGB (N, H, W, 3), at the index's frame size (probed when None)."""
    index = index or probe_frame_folder(folder)
    return decode_frame_folder(folder, np.arange(index.num_frames), index)[0]


def inspect_frame_folder(
    folder: str | os.PathLike, template: str | None = None, listed_frames: int | None = None
) -> VideoInfo:
    """Decode every frame of a folder and report its status (``check-videos``); never raises for bad data (the
    error goes in ``error``; ``header_frames`` is the count the list gives, 0 when it gives none)."""
    folder = os.fspath(folder)
    width = height = frames = 0
    try:
        index = probe_frame_folder(folder, template, listed_frames)
        width, height = index.width, index.height
        for i in range(index.num_frames):
            _read_frame(folder, index.frame_file(i), None)
            frames += 1
    except VideoDecodeError as e:
        return VideoInfo(folder, False, frames, 0.0, width, height, e.reason, listed_frames or 0)
    return VideoInfo(folder, True, frames, 0.0, width, height, None, listed_frames or 0)


class FrameFolderBackend:
    """Frame folders behind the decoder interface (:class:`~uv2.data.backends.VideoBackend`).

    Args:
        template: the frames' file names (``frame_template``); None: read off each folder.
        listed_frames: {folder path: frame count} from the list (rawframes lists); folders not in it are counted.
        folders: paths the list says are frame folders (ssv1, rawframes): read here even when missing, so the error
            says "frame folder does not exist"; any other path is a frame folder when it is a directory.
    """

    name = "frames"

    def __init__(
        self,
        template: str | None = None,
        listed_frames: Mapping[str, int] | None = None,
        folders: Iterable[str] = (),
    ) -> None:
        if template is not None:
            parse_frame_template(template)
        self.template = template
        self.listed_frames = dict(listed_frames or {})
        self.folders = frozenset(folders)

    def reads(self, path: str) -> bool:
        """Whether ``path`` is a frame folder (listed as one, or a directory), not a video file."""
        return path in self.folders or os.path.isdir(path)

    def probe(self, path: str, timer: StageTimer | None = None) -> FrameFolderIndex:
        path = os.fspath(path)
        return probe_frame_folder(path, self.template, self.listed_frames.get(path), timer)

    def decode(
        self,
        path: str,
        indices: Sequence[int] | np.ndarray,
        index: VideoIndex,
        spec: FrameSpec | Sequence[FrameSpec] | None = None,
        timer: StageTimer | None = None,
    ) -> tuple[np.ndarray, VideoIndex]:
        if not isinstance(index, FrameFolderIndex):
            raise TypeError(f"{path}: the frame-folder backend needs a FrameFolderIndex, got {type(index).__name__}")
        return decode_frame_folder(path, indices, index, spec, timer)

    def decode_all(self, path: str) -> np.ndarray:
        """Every frame of the folder (``cache_decoded``)."""
        return read_all_frames(path, self.probe(path))
