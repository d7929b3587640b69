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
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import av
import numpy as np

from uv2.data.pyav_compat import DATA_ERRORS, as_fraction, open_input

log = logging.getLogger(__name__)

__all__ = [
    "VideoDecodeError",
    "VideoIndex",
    "VideoInfo",
    "probe_video",
    "decode_frames",
    "decode_all_frames",
    "count_decodable_frames",
    "inspect_video",
]


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

    def __init__(self, path: str):
        self.path = path
        self.container: av.container.InputContainer | None = None

    def __enter__(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
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
        return self.container, stream

    def __exit__(self, *exc) -> None:
        if self.container is not None:
            self.container.close()


def _frame_rate(stream: av.video.stream.VideoStream) -> float:
    rate = as_fraction(stream.average_rate) or as_fraction(stream.guessed_rate) or as_fraction(stream.base_rate)
    return float(rate) if rate else 0.0


def probe_video(path: str | os.PathLike, verify: str = "auto") -> VideoIndex:
    """Index a video by a demux-only packet scan: frame count, presentation timestamps and keyframes.

    Args:
        path: the video file.
        verify: when to confirm the packet count with a full decode (which makes the index exact,
            ``verified=True``): ``"auto"`` only for suspicious files (a packet flagged corrupt, e.g. the partial last
            packet of a cut-off download; a demuxer error; or a header frame count that disagrees with the packet
            count), ``"always"``, or ``"never"``. Unverified counts are still corrected lazily by
            :func:`decode_frames`.

    Raises :class:`VideoDecodeError` for files that cannot be opened or have no video packets (and, when verifying,
    for files with no decodable frame or a mid-stream decoding failure). Files whose packets lack timestamps or
    repeat them are indexed by a full decode instead (then frames are decode-output ordinals and every decode
    starts at the beginning).
    """
    if verify not in ("auto", "always", "never"):
        raise ValueError(f"verify must be 'auto', 'always' or 'never', got {verify!r}")
    path = os.fspath(path)
    try:
        return _probe(path, verify)
    except DATA_ERRORS as e:  # the file fails; any other exception is a bug and propagates
        raise VideoDecodeError(path, f"probing failed ({type(e).__name__}: {e})") from e


def _probe(path: str, verify: str) -> VideoIndex:
    suspicious: list[str] = []
    with _Opened(path) as (container, stream):
        pts: list[int | None] = []
        keys: dict[int, int] = {}  # keyframe pts -> seek timestamp
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
        _, index = _decode_sequential(path, index, [], (index.width, index.height), to_end=True)
    return index


def _index_by_full_decode(path: str, info: dict) -> VideoIndex:
    """Ordinal index (no pts): count the frames that decode."""
    count = 0
    width, height = info["width"], info["height"]
    with _Opened(path) as (container, stream):
        for frame in _iter_frames(container, stream, path, skip=None):
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


def _iter_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    path: str,
    skip: set[int] | None,
) -> Iterator[av.VideoFrame]:
    """Decoded frames of ``stream`` from the container's current position.

    ``skip``: when given, packets whose pts is not in it are decoded with ``skip_frame=NONREF`` (non-reference frames
    among them are dropped by the decoder).

    Errors: a demuxer error ends the stream (truncated file). A decoder error is held back: if no frame of a packet
    read after the error decodes until the end of the stream, it is a truncated tail (typically the last, partial
    packet of a cut-off download) and the stream simply ends (frames the decoder had buffered still come out); if a
    frame of a later packet does decode, the stream is corrupt mid-way and :class:`VideoDecodeError` is raised.
    """
    codec = stream.codec_context
    demuxer = container.demux(stream)
    error: Exception | None = None
    after_error: set[int | None] = set()  # timestamps of packets read after the first decoder error
    while True:
        try:
            packet = next(demuxer)
        except StopIteration:
            break
        except av.error.FFmpegError as e:
            log.debug("%s: demuxer error treated as end of stream: %s", path, e)
            packet = None
        if skip is not None:
            ts = None if packet is None else (packet.pts if packet.pts is not None else packet.dts)
            wanted = packet is None or packet.size == 0 or ts in skip
            codec.skip_frame = "DEFAULT" if wanted else "NONREF"
        if error is not None and packet is not None and packet.size:
            after_error.add(packet.pts if packet.pts is not None else packet.dts)
        try:
            frames = codec.decode(packet)  # packet None: flush the decoder's delayed frames
        except av.error.FFmpegError as e:
            if error is None:
                error = e
            frames = []
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


def _to_rgb(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB at the index's size (frames that change size mid-stream are rescaled)."""
    if (frame.width, frame.height) != (width, height) and width and height:
        return frame.to_ndarray(format="rgb24", width=width, height=height)
    return frame.to_ndarray(format="rgb24")


def _governing_keyframe(keys: list[int], ts: int) -> int:
    """Position in ``keys`` of the last keyframe pts at or before ``ts`` (0 when ``ts`` precedes all of them)."""
    return max(bisect.bisect_right(keys, ts) - 1, 0)


def _decode_by_seeking(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    index: VideoIndex,
    targets: list[int],
    size: tuple[int, int],
) -> dict[int, np.ndarray]:
    """RGB frames for the target pts (sorted, unique) that come out of the decoder; missing ones are absent."""
    keys = index.keyframe_pts.tolist()
    seek_ts = index.keyframe_seek.tolist()
    wanted = set(targets)
    got: dict[int, np.ndarray] = {}
    frames: Iterator[av.VideoFrame] | None = None
    last_seek = -1
    pos: int | None = None  # pts of the last frame the decoder produced
    i = 0  # next target not yet passed

    def should_seek(k: int) -> bool:  # k: keyframe position; seek only forward, past what was decoded
        return frames is None or (k > last_seek and (pos is None or keys[k] > pos))

    while i < len(targets):
        k = _governing_keyframe(keys, targets[i])
        if should_seek(k):
            # Demuxers index by dts (<= pts), so seeking to the keyframe's dts never lands after it.
            container.seek(seek_ts[k], stream=stream, backward=True, any_frame=False)  # also flushes the decoder
            frames = _iter_frames(container, stream, index.path, skip=wanted)
            last_seek = k
        exhausted = True
        for frame in frames:
            if frame.pts is None:
                continue
            pos = frame.pts
            if pos in wanted and pos not in got:
                got[pos] = _to_rgb(frame, *size)
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
    size: tuple[int, int],
    to_end: bool,
) -> tuple[dict[int, np.ndarray], VideoIndex]:
    """Decode from the start without skipping; map each wanted key (pts, or ordinal for ordinal indexes) to a frame.

    A wanted key that does not come out gets the nearest earlier decoded frame (the first frame if none precedes it,
    the last frame past the end). With ``to_end`` the whole file is decoded and the returned index is exact.
    """
    by_pts = index.pts is not None
    got: dict[int, np.ndarray] = {}
    out_pts: list[int | None] = []
    prev: av.VideoFrame | None = None
    prev_rgb: np.ndarray | None = None
    j = 0
    reached_end = True

    def rgb_of_prev() -> np.ndarray:
        nonlocal prev_rgb
        if prev_rgb is None:
            prev_rgb = _to_rgb(prev, *size)
        return prev_rgb

    with _Opened(path) as (container, stream):
        for ordinal, frame in enumerate(_iter_frames(container, stream, path, skip=None)):
            if not size[0]:
                size = (frame.width, frame.height)
            key = frame.pts if by_pts else ordinal
            out_pts.append(frame.pts)
            if key is not None:
                while j < len(wanted) and wanted[j] < key:  # passed without decoding: a hole
                    got[wanted[j]] = rgb_of_prev() if prev is not None else _to_rgb(frame, *size)
                    j += 1
            prev, prev_rgb = frame, None
            if key is not None and j < len(wanted) and wanted[j] == key:
                got[key] = rgb_of_prev()
                j += 1
            if j >= len(wanted) and not to_end:
                reached_end = False
                break
    if prev is None:
        raise VideoDecodeError(path, "no frame decodes")
    while j < len(wanted):  # past the last decodable frame: clamp to it
        got[wanted[j]] = rgb_of_prev()
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


def decode_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | np.ndarray,
    index: VideoIndex | None = None,
) -> tuple[np.ndarray, VideoIndex]:
    """Decode the frames at ``indices`` (presentation-order frame numbers, any order, repeats allowed).

    Args:
        path: the video file.
        indices: frame numbers; values outside ``[0, index.num_frames)`` are clamped into it.
        index: the file's :class:`VideoIndex` from :func:`probe_video` or a previous call (probed when None).

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
        index = probe_video(path)
    idx = np.clip(np.asarray(indices, dtype=np.int64).reshape(-1), 0, index.num_frames - 1)
    if idx.size == 0:
        raise ValueError(f"{path}: decode_frames needs at least one frame index")
    wanted = np.unique(idx)
    size = (index.width, index.height)
    try:
        if index.pts is None:
            got, new_index = _decode_sequential(path, index, wanted.tolist(), size, to_end=False)
            keys = idx.tolist()
        elif not index.seek_reliable:
            targets = index.pts[wanted].tolist()
            got, new_index = _decode_sequential(path, index, targets, size, to_end=False)
            keys = index.pts[idx].tolist()
        else:
            targets = index.pts[wanted].tolist()
            with _Opened(path) as (container, stream):
                got = _decode_by_seeking(container, stream, index, targets, size)
            new_index = index
            if len(got) < len(targets):  # some frame did not come out: decode everything once, exactly
                log.debug(
                    "%s: %d of %d wanted frames missing after seeking; full decode",
                    path,
                    len(targets) - len(got),
                    len(targets),
                )
                got, new_index = _decode_sequential(path, index, targets, size, to_end=True)
                if new_index.num_frames == index.num_frames and np.array_equal(new_index.pts, index.pts):
                    new_index = replace(new_index, seek_reliable=False)  # the frames exist; seeking missed them
            keys = index.pts[idx].tolist()
    except DATA_ERRORS as e:  # the file fails; any other exception is a bug and propagates
        raise VideoDecodeError(path, f"decoding failed ({type(e).__name__}: {e})") from e
    frames = [got[k] for k in keys]
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):  # only possible when the index had no size; rescale to the first
        raise VideoDecodeError(path, "frames of different sizes in one clip")
    return np.stack(frames), new_index


def decode_all_frames(path: str | os.PathLike) -> np.ndarray:
    """Every decodable frame as uint8 RGB (N, H, W, 3): the naive reference path (what ``read_video`` does)."""
    path = os.fspath(path)
    frames = []
    try:
        with _Opened(path) as (container, stream):
            size = (stream.codec_context.width, stream.codec_context.height)
            for frame in _iter_frames(container, stream, path, skip=None):
                frames.append(_to_rgb(frame, *size))
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
            for frame in _iter_frames(container, stream, path, skip=None):
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
