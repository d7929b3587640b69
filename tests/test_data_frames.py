"""Frame folders (uv2.data.frames): the frames of a video and of its losslessly extracted images are the same pixels,
clip for clip; templates and frame counts; missing or unreadable frames are decode errors naming the frame. Torch-free
(``make test-pyav`` runs it under another PyAV)."""

import os
import re

import av
import numpy as np
import pytest

from tests.data_helpers import encode, extract_packets, numbered_frames, read_frame_numbers, write_images
from uv2.data.decode import FrameSpec, VideoDecodeError, decode_frames, probe_video
from uv2.data.frames import (
    FrameFolderBackend,
    decode_frame_folder,
    detect_frame_template,
    inspect_frame_folder,
    parse_frame_template,
    probe_frame_folder,
    read_all_frames,
)

NUM = 30


def _textured(num: int) -> np.ndarray:
    """Numbered frames with fine detail in blue (a crop or resize that is off by a pixel changes the pixels)."""
    frames = numbered_frames(num, 64, 96)
    yy, xx = np.mgrid[:64, :96]
    frames[..., 2] = ((xx * 37 + yy * 11) % 256).astype(np.uint8)
    return frames


@pytest.fixture(scope="module", params=["mjpeg", "png"])
def video_and_frames(request, tmp_path_factory):
    """An intra-only video (MJPEG in Matroska: YUV 4:2:0 frames; PNG in QuickTime: RGB frames) and the folder of its
    packets as image files, numbered as mmaction2 (img_00001.jpg) or from 0 (000000.png)."""
    d = tmp_path_factory.mktemp(request.param)
    if request.param == "mjpeg":
        video = encode(d / "v.mkv", _textured(NUM), codec="mjpeg", pix_fmt="yuvj420p")
        folder = extract_packets(video, d / "v", "img_{:05d}.jpg", first=1)
    else:
        video = encode(d / "v.mov", _textured(NUM), codec="png", pix_fmt="rgb24")
        folder = extract_packets(video, d / "v", "{:06d}.png", first=0)
    return video, folder


SPECS = [
    None,
    FrameSpec(size=(40, 60)),  # short side 40: the eval resize
    FrameSpec(crop=(3, 5, 41, 57), size=(32, 32)),  # odd corner: chroma cut at the sample before it
    FrameSpec(crop=(0, 16, 64, 64)),  # crop only
]


@pytest.mark.parametrize("spec", SPECS, ids=["full", "resize", "crop_resize", "crop"])
def test_folder_gives_the_videos_pixels(video_and_frames, spec):
    video, folder = video_and_frames
    index, video_index = probe_frame_folder(folder), probe_video(video)
    assert (index.num_frames, index.width, index.height) == (video_index.num_frames, 96, 64) == (NUM, 96, 64)
    rng = np.random.default_rng(0)
    for trial in range(4):
        idx = rng.integers(0, NUM, size=6)
        idx[0] = idx[1]  # a repeat
        if trial == 3:
            idx = np.array([-3, 0, NUM - 1, NUM + 4])  # clamped into the video, as decode_frames does
        got, same = decode_frame_folder(folder, idx, index, spec)
        expected, _ = decode_frames(video, idx, video_index, spec)
        assert same is index and got.dtype == np.uint8
        assert np.array_equal(got, expected), f"trial {trial}: {idx.tolist()}"
        if spec is None or spec.crop is None:
            assert read_frame_numbers(got).tolist() == np.clip(idx, 0, NUM - 1).tolist()
    several = [FrameSpec((0, 0, 50, 50), (24, 24)), FrameSpec((10, 40, 50, 50), (24, 24))] * 2  # repeated augmentation
    got, _ = decode_frame_folder(folder, [4, 9, 4, 9], index, several)
    assert np.array_equal(got, decode_frames(video, [4, 9, 4, 9], video_index, several)[0])


def test_backend_interface_and_all_frames(video_and_frames):
    video, folder = video_and_frames
    backend = FrameFolderBackend(listed_frames={str(folder): 12})
    index = backend.probe(str(folder))
    assert index.num_frames == 12 and index.header_frames == 12 and index.verified  # the list's count
    frames, _ = backend.decode(str(folder), [0, 11, 20], index, FrameSpec(size=(32, 48)))
    assert frames.shape == (3, 32, 48, 3)
    assert read_frame_numbers(frames).tolist() == [0, 11, 11]  # past the listed frames: the last listed one
    everything = read_all_frames(folder)
    assert everything.shape == (NUM, 64, 96, 3) and read_frame_numbers(everything).tolist() == list(range(NUM))
    with pytest.raises(TypeError, match="needs a FrameFolderIndex"):
        backend.decode(str(folder), [0], probe_video(video))


@pytest.mark.parametrize("template,prefix,suffix", [
    ("img_{:05d}.jpg", "img_", ".jpg"),
    ("{:05d}.jpg", "", ".jpg"),
    ("image_{}.png", "image_", ".png"),
    ("{0:06d}.JPEG", "", ".JPEG"),
    ("a{{b}}_{:d}.jpg", "a{b}_", ".jpg"),
])
def test_parse_frame_template(template, prefix, suffix):
    assert parse_frame_template(template) == (prefix, suffix)


@pytest.mark.parametrize("template,message", [
    ("img.jpg", "exactly one integer field"),
    ("{}_{:05d}.jpg", "holds 2"),
    ("{name}.jpg", "plain integer field"),
    ("{:s}.jpg", "plain integer field"),
    ("{!r}.jpg", "plain integer field"),
    ("{:05d}.txt", "extension one of .jpg"),
    ("rgb/{:05d}.jpg", "no '/'"),
    ("{:05d.jpg", "not a format string"),
])
def test_bad_templates_are_named(template, message):
    with pytest.raises(ValueError, match=re.escape(f"frame_template {template!r}")) as err:
        parse_frame_template(template)
    assert message in str(err.value) and "e.g. 'img_{:05d}.jpg'" in str(err.value)


@pytest.mark.parametrize("names,template", [
    (["img_00001.jpg", "img_00002.jpg", "notes.txt"], "img_{:05d}.jpg"),
    (["00001.jpg", "00002.jpg"], "{:05d}.jpg"),
    (["frame_0.png", "frame_1.png", "frame_10.png"], "frame_{:d}.png"),  # unpadded
    (["5.jpg", "6.jpg"], "{:d}.jpg"),
    (["v2_001.jpg", "v2_002.jpg"], "v2_{:03d}.jpg"),  # the number is the one before the extension
    (["a{b}_01.jpg"], "a{{b}}_{:02d}.jpg"),
])
def test_template_read_off_the_folder(names, template):
    assert detect_frame_template("/f", names) == template


@pytest.mark.parametrize("names,message", [
    (["img_00001.jpg", "flow_x_00001.jpg", "flow_y_00001.jpg"],
     r"several numbered image series \(flow_x_<n>.jpg \(1 files\), flow_y_<n>.jpg \(1 files\), img_<n>.jpg "
     r"\(1 files\)\); set frame_template"),
    (["01.jpg", "2.jpg"], "zero-padded to different widths"),
    (["cover.jpg", "notes.txt"], "no numbered image frames"),
])
def test_ambiguous_folders_ask_for_a_template(names, message):
    with pytest.raises(VideoDecodeError, match=message) as err:
        detect_frame_template("/data/f", names)
    assert err.value.path == "/data/f"


def test_frame_count_from_the_list_or_by_counting(tmp_path):
    folder = write_images(numbered_frames(6), tmp_path / "f")  # 00001.jpg .. 00006.jpg
    (folder / "extra.txt").write_text("not a frame")
    index = probe_frame_folder(folder)
    assert (index.num_frames, index.first, index.template, index.header_frames) == (6, 1, "{:05d}.jpg", 0)
    listed = probe_frame_folder(folder, listed_frames=4)
    assert listed.num_frames == 4 and listed.header_frames == 4
    assert read_frame_numbers(read_all_frames(folder, listed)).tolist() == [0, 1, 2, 3]
    with pytest.raises(VideoDecodeError, match=r"the list gives 8 frames but the folder holds 6 \(00001.jpg to "
                                               r"00006.jpg\)"):
        probe_frame_folder(folder, listed_frames=8)
    explicit = probe_frame_folder(folder, template="{:05d}.jpg")
    assert explicit == index
    with pytest.raises(VideoDecodeError, match=r"no frame named like 'img_\{:05d\}.jpg' \(the folder holds "
                                               r"00001.jpg, 00002.jpg, 00003.jpg, ...\)"):
        probe_frame_folder(folder, template="img_{:05d}.jpg")
    (folder / "00003.jpg").unlink()
    with pytest.raises(VideoDecodeError, match=r"frame 00003.jpg is missing \(00001.jpg to 00006.jpg expected\)"):
        probe_frame_folder(folder)
    assert probe_frame_folder(folder, listed_frames=2).num_frames == 2  # the gap is past the listed frames
    zero = write_images(numbered_frames(3), tmp_path / "z", "frame_{:d}.png", first=0)
    assert (probe_frame_folder(zero).first, probe_frame_folder(zero).num_frames) == (0, 3)


def test_missing_or_unreadable_frames_are_decode_errors(tmp_path):
    folder = write_images(numbered_frames(8), tmp_path / "f", "img_{:05d}.jpg")
    index = probe_frame_folder(folder)
    assert inspect_frame_folder(folder).ok and inspect_frame_folder(folder).frames == 8
    (folder / "img_00005.jpg").write_bytes(os.urandom(300))
    (folder / "img_00006.jpg").unlink()
    (folder / "img_00007.jpg").write_bytes(b"")
    for i, reason in [(4, r"frame img_00005.jpg: (cannot open|no image decodes|decoding failed)"),
                      (5, "frame img_00006.jpg: file does not exist"),
                      (6, r"frame img_00007.jpg: file is empty \(0 bytes\)")]:
        with pytest.raises(VideoDecodeError, match=reason) as err:
            decode_frame_folder(folder, [0, i], index)
        assert err.value.path == str(folder) and str(folder) in str(err.value)
    assert read_frame_numbers(decode_frame_folder(folder, [0, 3, 7], index)[0]).tolist() == [0, 3, 7]
    report = inspect_frame_folder(folder)
    assert not report.ok and report.error == "frame img_00006.jpg is missing (img_00001.jpg to img_00008.jpg expected)"
    (folder / "img_00006.jpg").write_bytes((folder / "img_00008.jpg").read_bytes())
    report = inspect_frame_folder(folder)
    assert not report.ok and report.frames == 4 and report.error.startswith("frame img_00005.jpg: ")
    assert (report.width, report.height) == (96, 64)
    (folder / "img_00001.jpg").write_bytes(os.urandom(300))
    with pytest.raises(VideoDecodeError, match="frame img_00001.jpg"):
        probe_frame_folder(folder, listed_frames=4)
    with pytest.raises(VideoDecodeError, match="frame folder does not exist"):
        probe_frame_folder(tmp_path / "nope")
    with pytest.raises(VideoDecodeError, match="is a file, not a frame folder"):
        probe_frame_folder(folder / "img_00002.jpg")
    missing = inspect_frame_folder(tmp_path / "nope")
    assert not missing.ok and missing.error == "frame folder does not exist"


def test_programming_errors_propagate(tmp_path, monkeypatch):
    folder = write_images(numbered_frames(3), tmp_path / "f")
    index = probe_frame_folder(folder)

    def broken(*args, **kwargs):
        raise TypeError("open() got an unexpected keyword argument 'made_up'")

    monkeypatch.setattr(av, "open", broken)
    with pytest.raises(TypeError, match="made_up"):
        decode_frame_folder(folder, [0], index)
    with pytest.raises(TypeError, match="made_up"):
        probe_frame_folder(folder)
    with pytest.raises(TypeError, match="made_up"):
        inspect_frame_folder(folder)  # the checker reports bad frames, not bugs
