"""Helpers for the data-layer tests: tiny test videos whose frames carry their own frame number, and broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LEVEL0, LEVEL_STEP = 20, 14  # code levels: 20, 34, ..., 230 (16 levels, robust to lossy codecs)


def numbered_frames(num: int, height: int = 64, width: int = 96) -> np.ndarray:
    """uint8 (num, H, W, 3) frames encoding their index.

    Green and blue carry the frame number: the top half at level ``i // 16``, the bottom half at level ``i % 16``;
    red is a horizontal ramp 0..255 (tells crops apart). Up to 256 frames.
    """
    if num > 256:
        raise ValueError("at most 256 numbered frames")
    frames = np.zeros((num, height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width).astype(np.uint8)
    for i in range(num):
        frames[i, :, :, 0] = ramp[None, :]
        frames[i, : height // 2, :, 1:] = LEVEL0 + LEVEL_STEP * (i // 16)
        frames[i, height // 2 :, :, 1:] = LEVEL0 + LEVEL_STEP * (i % 16)
    return frames


def read_frame_numbers(frames: np.ndarray) -> np.ndarray:
    """Frame numbers of decoded (N, H, W, 3) uint8 RGB frames made by :func:`numbered_frames`."""
    frames = np.asarray(frames)
    h = frames.shape[1]
    top = np.median(frames[:, h // 8 : 3 * h // 8, :, 1].reshape(len(frames), -1), axis=1)
    bottom = np.median(frames[:, 5 * h // 8 : 7 * h // 8, :, 1].reshape(len(frames), -1), axis=1)
    hi = np.rint((top - LEVEL0) / LEVEL_STEP).astype(int)
    lo = np.rint((bottom - LEVEL0) / LEVEL_STEP).astype(int)
    return hi * 16 + lo


def encode(
    path: str | Path,
    frames: np.ndarray,
    codec: str = "libx264",
    fps: int = 15,
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode uint8 RGB frames with PyAV; ``pts`` (in ``time_base``) gives irregular timestamps (VFR)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.thread_count = 1
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        stream.options = options or {}
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


X264_BFRAMES = {"bframes": "3", "b-adapt": "0", "scenecut": "0", "preset": "veryfast", "crf": "12"}


def packet_timestamps(path: str | Path) -> list[tuple[int, int, bool]]:
    """(pts, dts, keyframe) of the video packets in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.dts, p.is_keyframe) for p in container.demux(stream) if p.size]


def write_audio_only(path: str | Path) -> Path:
    """An mp4 with one AAC audio stream and no video."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_no_streams(path: str | Path) -> Path:
    """A valid media file (FFmpeg metadata format) with zero streams."""
    path = Path(path)
    path.write_text(";FFMETADATA1\ntitle=no streams here\n")
    return path


def write_data_stream_only(path: str | Path) -> Path:
    """An MPEG-TS file whose only stream is a data stream."""
    path = Path(path)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_data_stream()
        packet = av.Packet(b"not a video")
        packet.stream, packet.pts, packet.dts = stream, 0, 0
        container.mux(packet)
    return path


def corrupt_middle_packet(src: str | Path, dst: str | Path, fill: int = 0xFF) -> Path:
    """Copy ``src`` with the payload of the video packet in the middle (decode order) overwritten by ``fill``."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        packets = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    pos, size = packets[len(packets) // 2]
    data = bytearray(Path(src).read_bytes())
    data[pos : pos + size] = bytes([fill]) * size
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def corrupt_last_packet(src: str | Path, dst: str | Path, fill: int = 0x00) -> Path:
    """Copy ``src`` with the payload of its last video packet (decode order) overwritten: the header and packet
    count still claim every frame, but the last frame(s) do not decode."""
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        packets = [(p.pos, p.size) for p in container.demux(stream) if p.size]
    pos, size = packets[-1]
    data = bytearray(Path(src).read_bytes())
    data[pos : pos + size] = bytes([fill]) * size
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def make_bad_files(directory: str | Path, good_video: str | Path) -> dict[str, Path]:
    """Every kind of bad input, next to nothing else: name -> path (no "data_only" file on PyAV 12, which cannot
    write a data stream)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    good = Path(good_video).read_bytes()
    bad = {
        "missing": d / "missing.mp4",
        "empty": d / "empty.mp4",
        "truncated": d / "truncated.mp4",
        "garbage": d / "garbage.mp4",
        "audio_only": write_audio_only(d / "audio_only.mp4"),
        "no_streams": write_no_streams(d / "no_streams.mp4"),
        "mid_decode": corrupt_middle_packet(good_video, d / "mid_decode.mp4"),
    }
    if hasattr(av.container.OutputContainer, "add_data_stream"):  # PyAV >= 13
        bad["data_only"] = write_data_stream_only(d / "data_only.ts")
    bad["empty"].write_bytes(b"")
    bad["truncated"].write_bytes(good[: len(good) // 2])  # moov atom at the end: cut off
    bad["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return bad


def extract_packets(video: str | Path, folder: str | Path, template: str = "img_{:05d}.jpg", first: int = 1) -> Path:
    """Write every video packet of an intra-only video (MJPEG, PNG) as one image file: the lossless frame extraction
    of ``ffmpeg -i video -c copy folder/%05d.jpg`` (each packet of these codecs is a complete image file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        packets = [bytes(p) for p in container.demux(stream) if p.size]
    for i, data in enumerate(packets):
        (folder / template.format(first + i)).write_bytes(data)
    return folder


def write_images(frames: np.ndarray, folder: str | Path, template: str = "{:05d}.jpg", first: int = 1) -> Path:
    """uint8 RGB frames as numbered image files (JPEG by FFmpeg's mjpeg encoder, or PNG, by the template's
    extension), without PIL (the decode tests run with PyAV and numpy alone)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    png = template.lower().endswith(".png")
    for i, array in enumerate(frames):
        codec = av.CodecContext.create("png" if png else "mjpeg", "w")
        codec.width, codec.height = array.shape[1], array.shape[0]
        codec.pix_fmt = "rgb24" if png else "yuvj420p"
        codec.time_base = Fraction(1, 25)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        if not png:
            frame = frame.reformat(format="yuvj420p")
        data = b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])
        (folder / template.format(first + i)).write_bytes(data)
    return folder


def _set_lists(set_dir: Path) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """A synthetic set's {split: [(video path relative to the set, label)]} and class names."""
    splits = {}
    for split in ("train", "val"):
        rows = [line.rsplit(",", 1) for line in (set_dir / f"{split}.csv").read_text().splitlines() if line]
        splits[split] = [(path, int(label)) for path, label in rows]
    return splits, (set_dir / "classes.txt").read_text().splitlines()


def write_ssv1_layout(set_dir: str | Path, out: str | Path) -> dict[str, str]:
    """A synthetic set (its videos, lists and classes) as Something-Something V1 is released: frame folders
    ``20bn-something-something-v1/<id>/00001.jpg``, ``id;class name`` split files and the labels file. Returns the
    data module's arguments for it (list_format ssv1)."""
    from uv2.data.decode import decode_all_frames

    set_dir, out = Path(set_dir), Path(out)
    splits, classes = _set_lists(set_dir)
    frames_root = out / "20bn-something-something-v1"
    video_id = 0
    lists = {}
    for split, name in (("train", "train"), ("val", "validation")):
        lines = []
        for path, label in splits[split]:
            video_id += 1
            write_images(decode_all_frames(set_dir / path), frames_root / str(video_id))
            lines.append(f"{video_id};{classes[label]}")
        lists[split] = out / f"something-something-v1-{name}.csv"
        lists[split].write_text("\n".join(lines) + "\n")
    labels = out / "something-something-v1-labels.csv"
    labels.write_text("\n".join(classes) + "\n")
    return {"list_format": "ssv1", "train_list": str(lists["train"]), "val_list": str(lists["val"]),
            "test_list": str(lists["val"]), "classes_file": str(labels), "data_root": str(frames_root)}


def write_mit_layout(set_dir: str | Path, out: str | Path) -> dict[str, str]:
    """A synthetic set as Moments in Time is released: ``moments_categories.txt`` (``class,index``),
    ``trainingSet.csv`` / ``validationSet.csv`` rows ``filename,class,votes,votes`` with the videos under
    ``training/`` and ``validation/`` (links to the set's folder). Returns the data module's arguments (list_format
    mit)."""
    set_dir, out = Path(set_dir), Path(out)
    splits, classes = _set_lists(set_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "moments_categories.txt").write_text("".join(f"{c},{i}\n" for i, c in enumerate(classes)))
    lists = {}
    for split, name, sub in (("train", "trainingSet.csv", "training"), ("val", "validationSet.csv", "validation")):
        (out / sub).symlink_to(set_dir.resolve(), target_is_directory=True)
        lists[split] = out / name
        lists[split].write_text("".join(f"{path},{classes[label]},3,0\n" for path, label in splits[split]))
    return {"list_format": "mit", "train_list": str(lists["train"]), "val_list": str(lists["val"]),
            "test_list": str(lists["val"]), "classes_file": str(out / "moments_categories.txt"), "data_root": str(out)}
