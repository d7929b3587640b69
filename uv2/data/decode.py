"""Video decoding with PyAV: probe a file once, then decode only the frames a clip needs.

Frame numbering. Frame ``i`` of a video is the ``i``-th frame in *presentation* order, i.e. sorted by the
presentation timestamp (pts) the container gives each video packet. Frames are never located by ``fps * time``, so
variable-frame-rate files and B-frames (decode order != presentation order) are handled exactly.

Frame counting. The container header is not trusted (real files claim 444 frames for 68 decodable ones, or 456 for
455). :func:`probe_video` counts video packets with a demux-only scan (no decoding: ~1 ms for a 10 s clip) and records
their pts and which ones are keyframes. Suspicious files (a packet flagged corrupt, as the partial last packet of a
cut-off download is; a demuxer error; a header count that disagrees with the packet count) are verified at once by
a full decode. Other counts are *verified lazily*: whenever :func:`decode_frames` asks
for a frame that does not come out of the decoder (the file is truncated, a packet is undecodable, timestamps are
broken, ...) it falls back to one full decode of the file, which yields the exact list of decodable frames, and
returns a corrected :class:`VideoIndex` with ``verified=True``. Callers cache the returned index (the dataset does),
so a damaged file pays for the full decode once. Requested frames that do not decode are replaced by the nearest
earlier decoded frame (the last decoded frame for indices past the end), never an exception.
:func:`count_decodable_frames` always decodes everything (what ``python -m uv2 check-videos`` reports).

Seek-and-decode. For each run of wanted frames :func:`decode_frames` seeks to the keyframe at or before the first
one, decodes forward and stops after the last one; it seeks again when the next wanted frame lies beyond another
keyframe. Packets of frames that are not wanted are decoded with ``skip_frame=NONREF``, so the decoder drops
non-reference frames (most B-frames) it does not need instead of reconstructing them, and only wanted frames are
converted to RGB. Decoding is single-threaded (``thread_count=1``): parallelism comes from DataLoader workers.

Where to seek. A seek asks for the keyframe's *presentation* timestamp; the first packet read after it tells where
the demuxer landed. FFmpeg's MP4 demuxer compares the request with times shifted by the B-frame delay, so asking
for the keyframe's decode timestamp (smaller than its presentation timestamp when B-frames delay the stream) landed
one keyframe too early and decoded a whole GOP for nothing (on x264 files with B-frames that nearly doubled the
decode time of a uniform clip). Demuxers that index by decode time may land one
keyframe too late when asked for the presentation time; the first packet then shows a timestamp past the keyframe,
and the seek is repeated with the keyframe's decode timestamp, which never lands late.

Output geometry. :class:`FrameSpec` says what a wanted frame becomes: an optional crop box in source pixels and an
output size. The crop is cut out of the decoded YUV planes (no copy of the rest of the frame), swscale scales it
in YUV (bilinear; for downscaling it widens the filter with the scale factor, so it is antialiased like
torchvision's ``antialias=True``), and swscale's unscaled converter turns the result into RGB, the same colours as
a full-size conversion (converting while scaling shifted them by up to 0.9 levels). Luma is cut exactly at the
box, chroma at the chroma sample at or before its corner (at most half a chroma pixel off). As the planes are
scaled at 4:2:0, the output's chroma has half the output's resolution (a full-size RGB conversion shrunk by
torchvision keeps more colour detail when it downscales; the luma and the mean colours agree, see
``tests/test_data_backends.py``). Pixel formats that are not 8-bit planar YUV or grey (e.g. Cinepak's RGB,
palettes) are converted to RGB at full size and cropped there. One ``VideoReformatter`` per kind of conversion
serves all frames of a call (an swscale context per frame cost 0.9 ms, the conversion itself 0.1-0.3 ms), on the
calling thread (see :func:`~uv2.data.pyav_compat.reformat_keywords`).

Timing. Every function that opens a file takes an optional :class:`StageTimer` that accumulates wall seconds per
stage: ``open``, ``probe`` (packet scan), ``seek``, ``decode`` (demuxing and decoding), ``convert`` (crop, colour
conversion and resize); ``python -m uv2 bench-data`` prints the split.

Errors. Anything in the file that prevents producing frames raises :class:`VideoDecodeError`, whose message names
the file: a missing, empty or garbage file, no video stream, no decodable frame, or a decoder error in the middle of
the stream (a frame decodes after the error). Only file errors become :class:`VideoDecodeError`
(:data:`~uv2.data.pyav_compat.DATA_ERRORS`: FFmpeg, OS and end-of-file errors); any other exception raised while
decoding (``TypeError``, ``AttributeError``, ...) is a bug or an incompatible PyAV and propagates unchanged, so it
is never counted as a bad video. PyAV differences between releases live in :mod:`uv2.data.pyav_compat`. Truncation is not an error: a demuxer error ends the stream, and a
decoder error after which no later packet decodes (the partial last packet of a cut-off download) ends it too; the
frames before it are the video, and the frame count is corrected as described above.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from uv2.data.pyav_compat import DATA_ERRORS, as_fraction, open_input, reformat_keywords

log = logging.getLogger(__name__)

__all__ = [
    "FrameSpec",
    "StageTimer",
    "STAGES",
    "VideoDecodeError",
    "VideoIndex",
    "VideoInfo",
    "probe_video",
    "decode_frames",
    "decode_all_frames",
    "count_decodable_frames",
    "inspect_video",
]


#: the stages a :class:`StageTimer` accumulates, in pipeline order
STAGES: tuple[str, ...] = ("open", "probe", "seek", "decode", "convert")


class StageTimer:
    """Wall seconds spent per stage (see :data:`STAGES`; other names are allowed), summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}  # stage -> accumulated seconds

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def merge(self, other: StageTimer) -> None:
        for stage, seconds in other.seconds.items():
            self.add(stage, seconds)

    def total(self) -> float:
        return sum(self.seconds.values())


@dataclass(frozen=True)
class FrameSpec:
    """What a decoded frame becomes: an optional crop of the source frame, then a resize (bilinear), in RGB."""

    crop: tuple[int, int, int, int] | None = None  # (top, left, height, width) in source pixels; None: whole frame
    size: tuple[int, int] | None = None  # (height, width) of the output; None: the crop's (or the frame's) size

    def __post_init__(self) -> None:
        if self.crop is not None:
            top, left, height, width = self.crop
            if top < 0 or left < 0 or height < 1 or width < 1:
                raise ValueError(f"FrameSpec.crop must be (top >= 0, left >= 0, height >= 1, width >= 1), got {self.crop}")
        if self.size is not None and (self.size[0] < 1 or self.size[1] < 1):
            raise ValueError(f"FrameSpec.size must be (height >= 1, width >= 1), got {self.size}")


class VideoDecodeError(RuntimeError):
    """A video file cannot be opened or decoded. ``path`` and ``reason`` are kept as attributes."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class VideoIndex:
    """What :func:`probe_video` learns about a file without decoding it (cache one per file)."""

    path: str  # the file this index describes
    num_frames: int  # decodable frames, in presentation order (packet count until verified)
    pts: np.ndarray | None  # (num_frames,) int64 sorted presentation timestamps; None: decode-output ordinals
    keyframe_pts: np.ndarray | None  # sorted pts of keyframes; None together with pts
    keyframe_seek: np.ndarray | None  # per keyframe, the timestamp to seek to (its dts, which demuxers index by)
    time_base: Fraction | None  # unit of pts
    fps: float  # average frame rate from the container (informational; sampling never uses it)
    width: int  # frame width in pixels (from the codec parameters)
    height: int  # frame height in pixels
    header_frames: int  # frame count claimed by the container header (0 when it claims none)
    verified: bool = False  # True once a full decode confirmed num_frames and pts
    seek_reliable: bool = True  # False once seeking missed frames a full decode found: decode from the start

    @property
    def seekable(self) -> bool:
        """Whether frames can be located by pts (else every decode starts at the beginning)."""
        return self.pts is not None


@dataclass
class VideoInfo:
    """One row of ``check-videos``: the status of a file after a full decode."""

    path: str  # the file as listed
    ok: bool  # True when at least one frame decodes and no decode error occurred
    frames: int  # decodable frames (0 when not ok)
    fps: float  # average frame rate claimed by the container (0.0 when unknown)
    width: int  # frame width (0 when unknown)
    height: int  # frame height (0 when unknown)
    error: str | None  # why the file is bad, None when ok
    header_frames: int = 0  # frame count claimed by the container header (0 when it claims none)


class _Opened:
    """Context manager: an input container and its first video stream, set up for single-threaded decoding."""

    def __init__(self, path: str, timer: StageTimer | None = None):
        self.path = path
        self.timer = timer
        self.container: av.container.InputContainer | None = None

    def __enter__(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        start = time.perf_counter()
        path = self.path
        if not os.path.exists(path):
            raise VideoDecodeError(path, "file does not exist")
        if os.path.isdir(path):
            raise VideoDecodeError(path, "is a directory, not a video file")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(path, "file is empty (0 bytes)")
        try:
            self.container = open_input(path)
        except DATA_ERRORS as e:
            raise VideoDecodeError(path, f"cannot open as a media file ({type(e).__name__}: {e})") from e
        streams = self.container.streams
        if not streams.video:
            kinds = ", ".join(s.type for s in streams) or "none"
            self.container.close()
            raise VideoDecodeError(path, f"has no video stream (streams: {kinds})")
        stream = streams.video[0]
        stream.thread_type = "NONE"  # one decode thread per DataLoader worker
        stream.thread_count = 1
        if self.timer is not None:
            self.timer.add("open", time.perf_counter() - start)
        return self.container, stream

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.container.close()


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    rate = as_fraction(stream.average_rate) or as_fraction(stream.guessed_rate) or as_fraction(stream.base_rate)
    return float(rate) if rate else 0.0


def probe_video(path: str | os.PathLike, verify: str = "auto", timer: StageTimer | None = None) -> VideoIndex:
    """Index a video by a demux-only packet scan: frame count, presentation timestamps and keyframes.

    Args:
        path: the video file.
        verify: when to confirm the packet count with a full decode (which makes the index exact,
            ``verified=True``): ``"auto"`` only for suspicious files (a packet flagged corrupt, e.g. the partial last
            packet of a cut-off download; a demuxer error; or a header frame count that disagrees with the packet
            count), ``"always"``, or ``"never"``. Unverified counts are still corrected lazily by
            :func:`decode_frames`.
        timer: accumulates the ``open`` and ``probe`` seconds (a verifying full decode counts as ``decode``).

    Raises :class:`VideoDecodeError` for files that cannot be opened or have no video packets (and, when verifying,
    for files with no decodable frame or a mid-stream decoding failure). Files whose packets lack timestamps or
    repeat them are indexed by a full decode instead (then frames are decode-output ordinals and every decode
    starts at the beginning).
    """
    if verify not in ("auto", "always", "never"):
        raise ValueError(f"verify must be 'auto', 'always' or 'never', got {verify!r}; valid choices: auto, always, never")
    path = os.fspath(path)
    try:
        return _probe(path, verify, timer)
    except DATA_ERRORS as e:  # the file fails; any other exception is a bug and propagates
        raise VideoDecodeError(path, f"probing failed ({type(e).__name__}: {e})") from e


def _probe(path: str, verify: str, timer: StageTimer | None) -> VideoIndex:
    suspicious: list[str] = []
    with _Opened(path, timer) as (container, stream):
        start = time.perf_counter()
        pts: list[int | None] = []
        keys: dict[int, int] = {}  # keyframe pts -> its dts (the fallback seek target)
        corrupt = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's final flush packet
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                pts.append(ts)
                corrupt += packet.is_corrupt
                if packet.is_keyframe and ts is not None:
                    keys[ts] = packet.dts if packet.dts is not None else ts
        except av.error.FFmpegError as e:  # truncated / corrupt container: what was read so far is the video
            log.info("%s: demuxing stopped after %d packets (%s); treating the rest as missing", path, len(pts), e)
            suspicious.append(f"demuxer error after {len(pts)} packets")
        if corrupt:
            suspicious.append(f"{corrupt} packets flagged corrupt")
        info = dict(
            path=path,
            time_base=as_fraction(stream.time_base),
            fps=_frame_rate(stream),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            header_frames=int(stream.frames or 0),
        )
        if timer is not None:
            timer.add("probe", time.perf_counter() - start)
    if not pts:
        raise VideoDecodeError(path, "has a video stream but no video packets")
    if any(p is None for p in pts) or len(set(pts)) != len(pts):
        log.debug("%s: packet timestamps missing or repeated; indexing by a full decode", path)
        return _index_by_full_decode(path, info)
    sorted_pts = np.sort(np.asarray(pts, dtype=np.int64))
    if not keys:  # no keyframe flags: always start from the beginning
        keys = {int(sorted_pts[0]): int(sorted_pts[0])}
    key_pts = np.asarray(sorted(keys), dtype=np.int64)
    key_seek = np.asarray([keys[k] for k in sorted(keys)], dtype=np.int64)
    index = VideoIndex(num_frames=len(sorted_pts), pts=sorted_pts, keyframe_pts=key_pts, keyframe_seek=key_seek, **info)
    if info["header_frames"] and info["header_frames"] != len(pts):
        suspicious.append(f"header claims {info['header_frames']} frames, {len(pts)} packets")
    if verify == "always" or (verify == "auto" and suspicious):
        log.debug("%s: verifying the frame count by a full decode (%s)", path, "; ".join(suspicious) or "asked")
        _, index = _decode_sequential(path, index, [], to_end=True, timer=timer)
    return index


def _index_by_full_decode(path: str, info: dict) -> VideoIndex:
    """Ordinal index (no pts): count the frames that decode."""
    count = 0
    width, height = info["width"], info["height"]
    with _Opened(path) as (container, stream):
        for frame in _iter_frames(container.demux(stream), stream, path, skip=None):
            if count == 0 and not (width and height):
                width, height = frame.width, frame.height
            count += 1
    if count == 0:
        raise VideoDecodeError(path, "no frame decodes")
    return VideoIndex(
        num_frames=count,
        pts=None,
        keyframe_pts=None,
        keyframe_seek=None,
        verified=True,
        **{**info, "width": width, "height": height},
    )


def _packet_ts(packet: av.Packet) -> int | None:
    return packet.pts if packet.pts is not None else packet.dts


def _iter_frames(
    packets: Iterable[av.Packet],
    stream: av.video.stream.VideoStream,
    path: str,
    skip: set[int] | None,
    timer: StageTimer | None = None,
) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream`` from ``packets`` (the container's demuxer from its current position).

    ``skip``: when given, packets whose pts is not in it are decoded with ``skip_frame=NONREF`` (non-reference frames
    among them are dropped by the decoder). ``timer``: demuxing and decoding seconds go to its ``decode`` stage.

    Errors: a demuxer error ends the stream (truncated file). A decoder error is held back: if no frame of a packet
    read after the error decodes until the end of the stream, it is a truncated tail (typically the last, partial
    packet of a cut-off download) and the stream simply ends (frames the decoder had buffered still come out); if a
    frame of a later packet does decode, the stream is corrupt mid-way and :class:`VideoDecodeError` is raised.
    """
    codec = stream.codec_context
    demuxer = iter(packets)
    error: Exception | None = None
    after_error: set[int | None] = set()  # timestamps of packets read after the first decoder error
    clock = time.perf_counter
    while True:
        start = clock()
        try:
            packet = next(demuxer)
        except StopIteration:
            break
        except av.error.FFmpegError as e:
            log.debug("%s: demuxer error treated as end of stream: %s", path, e)
            packet = None
        if skip is not None:
            ts = None if packet is None else _packet_ts(packet)
            wanted = packet is None or packet.size == 0 or ts in skip
            codec.skip_frame = "DEFAULT" if wanted else "NONREF"
        if error is not None and packet is not None and packet.size:
            after_error.add(_packet_ts(packet))
        try:
            frames = codec.decode(packet)  # packet None: flush the decoder's delayed frames
        except av.error.FFmpegError as e:
            if error is None:
                error = e
            frames = []
        if timer is not None:
            timer.add("decode", clock() - start)
        for frame in frames:
            if error is not None and (frame.pts in after_error or (frame.pts is None and after_error)):
                raise VideoDecodeError(
                    path,
                    f"decoding failed mid-stream, before the frame at pts {frame.pts} "
                    f"({type(error).__name__}: {error})",
                ) from error
            yield frame
        if packet is None:
            break
    if error is not None:
        log.debug("%s: decoder error at the end of the stream, treated as truncation: %s", path, error)


# 8-bit planar formats whose planes can be cropped in place: name -> (log2 chroma subsampling x, y)
_PLANAR_8BIT: dict[str, tuple[int, int]] = {
    "yuv420p": (1, 1),
    "yuvj420p": (1, 1),
    "yuv422p": (1, 0),
    "yuvj422p": (1, 0),
    "yuv440p": (0, 1),
    "yuvj440p": (0, 1),
    "yuv444p": (0, 0),
    "yuvj444p": (0, 0),
    "gray": (0, 0),
}


class _Converter:
    """Turns decoded frames into RGB arrays as a :class:`FrameSpec` says (see the module docstring), on one
    ``VideoReformatter`` (its swscale context is reused while the geometry stays the same)."""

    def __init__(self, width: int, height: int, timer: StageTimer | None = None):
        self.size = (width, height)  # the index's frame size: frames of another size are rescaled to it first
        self.timer = timer
        # one reformatter per kind of conversion: each keeps its swscale context while its geometry stays the same
        # (swscale re-initialises a context whose parameters change, 0.5-0.9 ms at these sizes)
        self.reformatters: dict[str, VideoReformatter] = {}
        self.keywords = reformat_keywords()

    def _reformat(self, frame: av.VideoFrame, format: str, width: int, height: int) -> av.VideoFrame:
        kind = "rgb" if format == "rgb24" else "scale"
        reformatter = self.reformatters.get(kind) or self.reformatters.setdefault(kind, VideoReformatter())
        return reformatter.reformat(frame, format=format, width=width, height=height, **self.keywords)

    def __call__(self, frame: av.VideoFrame, spec: FrameSpec | None) -> np.ndarray:
        """uint8 (H, W, 3) RGB."""
        start = time.perf_counter()
        width, height = self.size
        if width and height and (frame.width, frame.height) != (width, height):  # size changed mid-stream
            frame = self._reformat(frame, frame.format.name, width, height)
        width, height = frame.width, frame.height
        crop = spec.crop if spec is not None else None
        if crop is not None:
            top, left, h, w = crop
            if top + h > height or left + w > width:
                raise ValueError(f"crop {crop} (top, left, height, width) exceeds the {width}x{height} frame")
        out_h, out_w = (spec.size if spec is not None and spec.size else None) or (crop[2:] if crop else (height, width))
        if crop is not None and crop != (0, 0, height, width):
            frame = self._crop(frame, crop)
        fmt = frame.format.name
        if fmt in _PLANAR_8BIT and (frame.width, frame.height) != (out_w, out_h):
            # scale in YUV, then swscale's unscaled YUV -> RGB converter: its colours are those of a full-size
            # conversion (scaling straight to RGB shifted them by up to 0.9 levels) and it is cheaper
            frame = self._reformat(frame, fmt, out_w, out_h)
        out = self._reformat(frame, "rgb24", out_w, out_h).to_ndarray()
        if self.timer is not None:
            self.timer.add("convert", time.perf_counter() - start)
        return out

    def _crop(self, frame: av.VideoFrame, crop: tuple[int, int, int, int]) -> av.VideoFrame:
        top, left, h, w = crop
        fmt = frame.format.name
        shifts = _PLANAR_8BIT.get(fmt)
        if shifts is None:  # not planar 8-bit: RGB at full size, cropped there (one full-size copy)
            rgb = self._reformat(frame, "rgb24", frame.width, frame.height).to_ndarray()
            return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[top : top + h, left : left + w]), format="rgb24")
        sx, sy = shifts
        # luma is cut exactly; chroma from the chroma sample at or before the box's corner (at most half a chroma
        # pixel off, where moving the whole box onto the chroma grid would shift the picture by a pixel)
        out = av.VideoFrame(w, h, fmt)
        for i, (src_plane, dst_plane) in enumerate(zip(frame.planes, out.planes)):
            px, py = (sx, sy) if i in (1, 2) else (0, 0)  # plane 0: luma (or grey); 1, 2: chroma
            # planes are rows of line_size bytes, of which the first `width` are pixels
            src = np.frombuffer(src_plane, np.uint8).reshape(-1, src_plane.line_size)
            dst = np.frombuffer(dst_plane, np.uint8).reshape(-1, dst_plane.line_size)
            dst[: dst_plane.height, : dst_plane.width] = src[
                top >> py : (top >> py) + dst_plane.height, left >> px : (left >> px) + dst_plane.width
            ]
        out.colorspace, out.color_range = frame.colorspace, frame.color_range  # the same YUV -> RGB matrix and range
        return out


def _governing_keyframe(keys: list[int], ts: int) -> int:
    """Position in ``keys`` of the last keyframe pts at or before ``ts`` (0 when ``ts`` precedes all of them)."""
    return max(bisect.bisect_right(keys, ts) - 1, 0)


def _seek(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    key_pts: int,
    key_dts: int,
) -> Iterator[av.Packet]:
    """Seek to the keyframe with presentation timestamp ``key_pts`` (decode timestamp ``key_dts``) and return the
    packets from there (see "Where to seek" in the module docstring). Seeking also flushes the decoder."""

    def seek_to(ts: int) -> tuple[av.Packet | None, Iterator[av.Packet]]:
        container.seek(ts, stream=stream, backward=True, any_frame=False)
        packets = container.demux(stream)
        try:
            for packet in packets:
                if packet.size:
                    return packet, packets
        except av.error.FFmpegError as e:  # nothing readable there: the wanted frames go missing, and the caller
            log.debug("%s: demuxer error right after seeking: %s", container.name, e)  # decodes everything once
        return None, iter(())

    first, packets = seek_to(key_pts)
    landed = None if first is None else _packet_ts(first)
    if key_dts != key_pts and (landed is None or landed > key_pts):  # past the keyframe: index by decode time
        first, packets = seek_to(key_dts)
    return packets if first is None else itertools.chain([first], packets)


def _decode_by_seeking(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: VideoIndex,
    targets: list[int],
    timer: StageTimer | None,
) -> dict[int, av.VideoFrame]:
    """Decoded frames for the target pts (sorted, unique) that come out of the decoder; missing ones are absent."""
    keys = index.keyframe_pts.tolist()
    seek_ts = index.keyframe_seek.tolist()
    wanted = set(targets)
    got: dict[int, av.VideoFrame] = {}
    frames: Iterator[av.VideoFrame] | None = None
    last_seek = -1
    pos: int | None = None  # pts of the last frame the decoder produced
    i = 0  # next target not yet passed

    def should_seek(k: int) -> bool:  # k: keyframe position; seek only forward, past what was decoded
        return frames is None or (k > last_seek and (pos is None or keys[k] > pos))

    while i < len(targets):
        k = _governing_keyframe(keys, targets[i])
        if should_seek(k):
            start = time.perf_counter()
            packets = _seek(container, stream, keys[k], seek_ts[k])
            if timer is not None:
                timer.add("seek", time.perf_counter() - start)
            frames = _iter_frames(packets, stream, index.path, skip=wanted, timer=timer)
            last_seek = k
        exhausted = True
        for frame in frames:
            if frame.pts is None:
                continue
            pos = frame.pts
            if pos in wanted and pos not in got:
                got[pos] = frame
            while i < len(targets) and targets[i] <= pos:
                i += 1
            if i >= len(targets) or should_seek(_governing_keyframe(keys, targets[i])):
                exhausted = False
                break
        if exhausted:  # end of stream with targets left: they do not decode
            break
    return got


def _decode_sequential(
    path: str,
    index: VideoIndex,
    wanted: list[int],
    to_end: bool,
    timer: StageTimer | None = None,
) -> tuple[dict[int, av.VideoFrame], VideoIndex]:
    """Decode from the start without skipping; map each wanted key (pts, or ordinal for ordinal indexes) to a frame.

    A wanted key that does not come out gets the nearest earlier decoded frame (the first frame if none precedes it,
    the last frame past the end). With ``to_end`` the whole file is decoded and the returned index is exact.
    """
    by_pts = index.pts is not None
    got: dict[int, av.VideoFrame] = {}
    out_pts: list[int | None] = []
    prev: av.VideoFrame | None = None
    size = (index.width, index.height)
    j = 0
    reached_end = True
    with _Opened(path, timer) as (container, stream):
        for ordinal, frame in enumerate(_iter_frames(container.demux(stream), stream, path, skip=None, timer=timer)):
            if not size[0]:
                size = (frame.width, frame.height)
            key = frame.pts if by_pts else ordinal
            out_pts.append(frame.pts)
            if key is not None:
                while j < len(wanted) and wanted[j] < key:  # passed without decoding: a hole
                    got[wanted[j]] = prev if prev is not None else frame
                    j += 1
            prev = frame
            if key is not None and j < len(wanted) and wanted[j] == key:
                got[key] = frame
                j += 1
            if j >= len(wanted) and not to_end:
                reached_end = False
                break
    if prev is None:
        raise VideoDecodeError(path, "no frame decodes")
    while j < len(wanted):  # past the last decodable frame: clamp to it
        got[wanted[j]] = prev
        j += 1
    if not reached_end:  # stopped early: nothing learned about the frame count
        return got, index
    return got, _exact_index(index, out_pts, size)


def _exact_index(index: VideoIndex, out_pts: list[int | None], size: tuple[int, int]) -> VideoIndex:
    """The index implied by a complete decode that produced frames with timestamps ``out_pts`` in output order."""
    width, height = size
    clean = all(p is not None for p in out_pts) and all(a < b for a, b in zip(out_pts, out_pts[1:]))
    if clean and index.pts is not None:
        pts = np.asarray(out_pts, dtype=np.int64)
        keys = index.keyframe_pts[index.keyframe_pts <= pts[-1]]
        seek = index.keyframe_seek[index.keyframe_pts <= pts[-1]]
        if keys.size == 0 or keys[0] > pts[0]:
            keys, seek = np.concatenate([pts[:1], keys]), np.concatenate([pts[:1], seek])
        return replace(
            index,
            num_frames=len(pts),
            pts=pts,
            keyframe_pts=keys,
            keyframe_seek=seek,
            verified=True,
            width=width,
            height=height,
        )
    return replace(
        index,
        num_frames=len(out_pts),
        pts=None,
        keyframe_pts=None,
        keyframe_seek=None,
        verified=True,
        width=width,
        height=height,
    )




def _specs_for(spec: FrameSpec | Sequence[FrameSpec] | None, count: int) -> list[FrameSpec | None]:
    if spec is None or isinstance(spec, FrameSpec):
        return [spec] * count
    specs = list(spec)
    if len(specs) != count:
        raise ValueError(f"got {len(specs)} FrameSpecs for {count} frame indices; give one, or one per index")
    return specs


def decode_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    index: VideoIndex | None = None,
    spec: FrameSpec | Sequence[FrameSpec] | None = None,
    timer: StageTimer | None = None,
) -> tuple[np.ndarray, VideoIndex]:
    """Decode the frames at ``indices`` (presentation-order frame numbers, any order, repeats allowed).

    Args:
        path: the video file.
        indices: frame numbers; values outside ``[0, index.num_frames)`` are clamped into it.
        index: the file's :class:`VideoIndex` from :func:`probe_video` or a previous call (probed when None).
        spec: what each frame becomes (crop box in the index's ``width x height`` pixels, output size): one
            :class:`FrameSpec` for all, one per index, or None for the whole frame at its size. Every output must
            have the same size.
        timer: accumulates seconds per stage (``open``, ``probe``, ``seek``, ``decode``, ``convert``).

    Returns:
        ``(frames, index)``: ``frames`` is a uint8 array of shape (len(indices), H, W, 3) in RGB, in the order of
        ``indices``; ``index`` is the (possibly corrected, see the module docstring) index to cache for the file. When
        ``index.num_frames`` changed, the indices were interpreted against the old count; callers that sample
        indices from the frame count should resample and decode again.

    Raises:
        VideoDecodeError: the file cannot be opened, has no decodable frame, or the decoder fails.
    """
    path = os.fspath(path)
    if index is None:
        index = probe_video(path, timer=timer)
    idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, index.num_frames - 1)
    if idx.size == 0:
        raise ValueError(f"{path}: decode_frames needs at least one frame index")
    specs = _specs_for(spec, idx.size)
    wanted = np.unique(idx)
    try:
        if index.pts is None:
            got, new_index = _decode_sequential(path, index, wanted.tolist(), to_end=False, timer=timer)
            keys = idx.tolist()
        elif not index.seek_reliable:
            targets = index.pts[wanted].tolist()
            got, new_index = _decode_sequential(path, index, targets, to_end=False, timer=timer)
            keys = index.pts[idx].tolist()
        else:
            targets = index.pts[wanted].tolist()
            with _Opened(path, timer) as (container, stream):
                got = _decode_by_seeking(container, stream, index, targets, timer)
            new_index = index
            if len(got) < len(targets):  # some frame did not come out: decode everything once, exactly
                log.debug(
                    "%s: %d of %d wanted frames missing after seeking; full decode",
                    path,
                    len(targets) - len(got),
                    len(targets),
                )
                got, new_index = _decode_sequential(path, index, targets, to_end=True, timer=timer)
                if new_index.num_frames == index.num_frames and np.array_equal(new_index.pts, index.pts):
                    new_index = replace(new_index, seek_reliable=False)  # the frames exist; seeking missed them
            keys = index.pts[idx].tolist()
        convert = _Converter(new_index.width, new_index.height, timer)
        converted: dict[tuple[int, FrameSpec | None], np.ndarray] = {}  # one conversion per (frame, spec)
        frames = []
        for key, frame_spec in zip(keys, specs):
            if (key, frame_spec) not in converted:
                converted[key, frame_spec] = _to_rgb(convert, got[key], frame_spec)
            frames.append(converted[key, frame_spec])
    except DATA_ERRORS as e:  # the file fails; any other exception is a bug and propagates
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ValueError(f"{path}: the FrameSpecs give frames of different sizes in one clip")
    return np.stack(frames), new_index


def _to_rgb(convert: _Converter, frame: av.VideoFrame, spec: FrameSpec | None) -> np.ndarray:
    """One decoded frame as uint8 (H, W, 3) RGB (the single place where frames become arrays)."""
    return convert(frame, spec)


def decode_all_frames(path: str | os.PathLike) -> np.ndarray:
    """Every decodable frame as uint8 RGB (N, H, W, 3): the naive reference path (what ``read_video`` does)."""
    path = os.fspath(path)
    frames = []
    try:
        with _Opened(path) as (container, stream):
            convert = _Converter(stream.codec_context.width, stream.codec_context.height)
            for frame in _iter_frames(container.demux(stream), stream, path, skip=None):
                frames.append(_to_rgb(convert, frame, None))
    except DATA_ERRORS as e:
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e
    if not frames:
        raise VideoDecodeError(path, "no frame decodes")
    return np.stack(frames)


def count_decodable_frames(path: str | os.PathLike) -> int:
    """Number of frames that actually decode (a full decode without RGB conversion)."""
    return inspect_video(path).frames


def inspect_video(path: str | os.PathLike) -> VideoInfo:
    """Fully decode a file and report its status; never raises for a bad file (the error goes in ``error``)."""
    path = os.fspath(path)
    fps, width, height, frames, header = 0.0, 0, 0, 0, 0
    try:
        with _Opened(path) as (container, stream):
            fps = _frame_rate(stream)
            header = int(stream.frames or 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            for frame in _iter_frames(container.demux(stream), stream, path, skip=None):
                if frames == 0 and not (width and height):
                    width, height = frame.width, frame.height
                frames += 1
        if frames == 0:
            raise VideoDecodeError(path, "no frame decodes")
    except VideoDecodeError as e:
        return VideoInfo(path, False, frames, fps, width, height, e.reason, header)
    except DATA_ERRORS as e:  # anything a file can do; other exceptions are bugs and propagate
        return VideoInfo(path, False, frames, fps, width, height, f"{type(e).__name__}: {e}", header)
    return VideoInfo(path, True, frames, fps, width, height, None, header)
