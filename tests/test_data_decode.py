"""Decoding (uv2.data.decode): frame-exact seek-and-decode across codecs/containers, robust counting, bad files."""

import re
from fractions import Fraction

import numpy as np
import pytest

from tests.data_helpers import (
    X264_BFRAMES,
    encode,
    make_bad_files,
    numbered_frames,
    packet_timestamps,
    read_frame_numbers,
)
from uv2.data.decode import (
    VideoDecodeError,
    count_decodable_frames,
    decode_all_frames,
    decode_frames,
    inspect_video,
    probe_video,
)


def _check_random_clips(path, num_frames, trials=12, seed=0):
    """decode_frames returns exactly the requested frames (by the numbers drawn into them) in request order."""
    index = probe_video(path)
    assert index.num_frames == num_frames
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        k = int(rng.integers(1, 9))
        idx = rng.integers(0, num_frames, size=k)
        if trial % 3 == 0:
            idx = np.sort(idx)
        frames, new_index = decode_frames(path, idx, index)
        assert frames.dtype == np.uint8 and frames.shape[0] == k and frames.shape[-1] == 3
        assert read_frame_numbers(frames).tolist() == idx.tolist(), f"trial {trial}: {idx.tolist()}"
        assert new_index.num_frames == num_frames
        index = new_index
    return index


def test_bframes_presentation_order(tmp_path):
    path = encode(tmp_path / "b.mp4", numbered_frames(40), options=X264_BFRAMES | {"g": "12"})
    pts_in_decode_order = [p for p, _, _ in packet_timestamps(path)]
    assert pts_in_decode_order != sorted(pts_in_decode_order), "the encoder produced no B-frames"
    assert sum(k for _, _, k in packet_timestamps(path)) >= 3  # several keyframes: decoding seeks
    assert read_frame_numbers(decode_all_frames(path)).tolist() == list(range(40))
    index = _check_random_clips(path, 40)
    assert index.seek_reliable and not index.verified  # the packet scan was right, no fallback was needed


def test_vfr_indexes_by_frame_order_not_time(tmp_path):
    gaps = [1, 5, 1, 2, 9, 1, 1, 3]
    pts = np.cumsum([0] + [gaps[i % len(gaps)] for i in range(29)]).tolist()
    path = encode(
        tmp_path / "vfr.mp4",
        numbered_frames(30),
        fps=30,
        pts=pts,
        time_base=Fraction(1, 30),
        options={"bframes": "2", "g": "8", "preset": "veryfast", "crf": "12"},
    )
    index = probe_video(path)
    assert len(set(np.diff(index.pts).tolist())) > 1  # timestamps really are irregular
    frames, _ = decode_frames(path, [0, 4, 5, 29], index)
    assert read_frame_numbers(frames).tolist() == [0, 4, 5, 29]
    _check_random_clips(path, 30)


@pytest.mark.parametrize(
    "name, codec, options",
    [
        ("x264.mkv", "libx264", {"bframes": "3", "g": "10", "preset": "veryfast", "crf": "12"}),
        ("vp9.webm", "libvpx-vp9", {"g": "10", "deadline": "realtime", "cpu-used": "8", "crf": "10", "b": "0"}),
        ("mpeg4.avi", "mpeg4", {"g": "10", "bf": "2", "qscale": "2"}),
    ],
)
def test_containers_and_codecs(tmp_path, name, codec, options):
    path = encode(tmp_path / name, numbered_frames(30), codec=codec, options=options)
    assert read_frame_numbers(decode_all_frames(path)).tolist() == list(range(30))
    _check_random_clips(path, 30)


def test_odd_size(tmp_path):
    path = encode(
        tmp_path / "odd.mp4",
        numbered_frames(12, height=61, width=97),
        pix_fmt="yuv444p",
        options={"preset": "veryfast", "crf": "12"},
    )
    index = probe_video(path)
    assert (index.width, index.height) == (97, 61)
    frames, _ = decode_frames(path, [11, 0, 5], index)
    assert frames.shape == (3, 61, 97, 3)
    assert read_frame_numbers(frames).tolist() == [11, 0, 5]


def test_header_overcounts_truncated_download_clamps(tmp_path):
    """A faststart mp4 cut mid-download: header says 48 frames, fewer decode; requests past them clamp."""
    full = encode(
        tmp_path / "full.mp4",
        numbered_frames(48),
        options={"g": "12", "preset": "veryfast", "crf": "12"},
        container_options={"movflags": "+faststart"},
    )
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    truth = count_decodable_frames(cut)
    assert 0 < truth < 48
    checked = probe_video(cut)  # the partial last packet is flagged corrupt: verified by a full decode at once
    assert checked.header_frames == 48 and checked.verified and checked.num_frames == truth
    index = probe_video(cut, verify="never")  # packet count only: corrected lazily by the first decode past the end
    assert not index.verified and index.num_frames > truth
    frames, fixed = decode_frames(cut, [0, truth - 1, 47], index)  # 47 does not decode
    assert fixed.verified and fixed.num_frames == truth
    assert read_frame_numbers(frames).tolist() == [0, truth - 1, truth - 1]
    frames, again = decode_frames(cut, [truth - 1, 2], fixed)  # corrected index: no more surprises
    assert again is fixed and read_frame_numbers(frames).tolist() == [truth - 1, 2]
    info = inspect_video(cut)
    assert info.ok and info.frames == truth and info.header_frames == 48


def test_out_of_range_indices_clamp(tmp_path):
    path = encode(tmp_path / "a.mp4", numbered_frames(10), options={"preset": "veryfast", "crf": "12"})
    frames, _ = decode_frames(path, [-3, 4, 25])
    assert read_frame_numbers(frames).tolist() == [0, 4, 9]


def test_bad_files_raise_clear_errors(tmp_path):
    good = encode(tmp_path / "good.mp4", numbered_frames(30), options={"g": "10", "preset": "veryfast", "crf": "18"})
    bad = make_bad_files(tmp_path / "bad", good)
    expected = {
        "missing": "does not exist",
        "empty": "empty",
        "truncated": "cannot open",
        "garbage": "cannot open",
        "audio_only": "no video stream (streams: audio)",
        "no_streams": "no video stream (streams: none)",
        "data_only": "no video stream (streams: data)",
    }
    for kind, message in expected.items():
        if kind not in bad:  # PyAV 12 writes no data-only file
            continue
        with pytest.raises(VideoDecodeError, match=re.escape(message)) as err:
            frames, _ = decode_frames(bad[kind], [0, 1])
        assert str(bad[kind]) in str(err.value)
        info = inspect_video(bad[kind])
        assert not info.ok and message in info.error
    # mid-decode failure: the file opens and indexes, decoding through the corrupt packet fails
    index = probe_video(bad["mid_decode"])
    assert index.num_frames == 30
    with pytest.raises(VideoDecodeError, match="mid-stream"):
        decode_frames(bad["mid_decode"], list(range(30)), index)
    info = inspect_video(bad["mid_decode"])
    assert not info.ok and "mid-stream" in info.error and 0 < info.frames < 30
    assert inspect_video(good).ok
