"""Decoder backends (uv2.data.backends): every backend decodes the same frames of the same files (exactly, for
lossless files), crops and resizes like torchvision, and keeps bad input safe; unknown or unusable decoders fail
with clear errors. TorchCodec's cases skip where it (or FFmpeg's shared libraries) is not installed."""

from fractions import Fraction

import numpy as np
import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from tests.data_helpers import (
    X264_BFRAMES,
    corrupt_last_packet,
    encode,
    make_bad_files,
    numbered_frames,
    packet_timestamps,
    read_frame_numbers,
)
from uv2.data import backends
from uv2.data.backends import DECODERS, backend_unavailable, get_backend
from uv2.data.bench import make_bench_videos
from uv2.data.dataset import VideoDataset, VideoDatasetConfig
from uv2.data.decode import FrameSpec, count_decodable_frames, decode_frames, probe_video
from uv2.data.lists import VideoRecord
from uv2.data.sampling import dense_indices, uniform_indices
from uv2.data.transforms import TransformConfig

TORCHCODEC_MISSING = backend_unavailable("torchcodec")
BACKENDS = ["pyav", pytest.param("torchcodec", marks=pytest.mark.skipif(TORCHCODEC_MISSING is not None,
                                                                        reason=str(TORCHCODEC_MISSING)))]
VFR_PTS = np.cumsum([0] + [[1, 5, 1, 2, 9, 1, 1, 3][i % 8] for i in range(39)]).tolist()  # irregular gaps


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("backends")
    frames = numbered_frames(40)
    lossless = encode(d / "lossless_vfr.mkv", frames, codec="libx264rgb", pix_fmt="rgb24", fps=30, pts=VFR_PTS,
                      time_base=Fraction(1, 30), options={"qp": "0", "g": "12", "preset": "veryfast"})
    bframes = encode(d / "bframes.mp4", frames, options=X264_BFRAMES | {"g": "12"})
    vfr_bframes = encode(d / "vfr_bframes.mp4", frames, fps=30, pts=VFR_PTS, time_base=Fraction(1, 30),
                         options={"bframes": "2", "g": "8", "preset": "veryfast", "crf": "12"})
    mpeg4 = encode(d / "mpeg4.avi", frames, codec="mpeg4", options={"g": "10", "bf": "2", "qscale": "2"})
    return {"frames": frames, "lossless": lossless, "bframes": bframes, "vfr_bframes": vfr_bframes, "mpeg4": mpeg4}


def _random_requests(count: int, trials: int = 6, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    requests = [rng.integers(0, count, size=int(rng.integers(1, 9))) for _ in range(trials)]
    return requests + [np.array([count - 1, 0, 0, count // 2])]  # reversed, repeated


@pytest.mark.parametrize("backend", BACKENDS)
def test_lossless_file_decodes_exactly(files, backend):
    """A lossless RGB H.264 file with variable frame rate: every backend returns the encoded pixels, exactly, for
    the requested frames in the requested order."""
    decoder = get_backend(backend)
    path = str(files["lossless"])
    index = decoder.probe(path)
    assert index.num_frames == 40 and len(set(np.diff(index.pts).tolist())) > 1  # really variable
    for request in _random_requests(40):
        frames, index = decoder.decode(path, request, index)
        assert frames.dtype == np.uint8 and frames.shape == (len(request), 64, 96, 3)
        assert np.array_equal(frames, files["frames"][request]), request.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["bframes", "vfr_bframes", "mpeg4"])
def test_presentation_order_with_bframes(files, backend, name):
    """Files with B-frames (decode order != presentation order), also with irregular timestamps: the frame numbers
    drawn into the frames come back as requested, and full frames are the same arrays on every backend."""
    path = str(files[name])
    pts_in_decode_order = [p for p, _, _ in packet_timestamps(path)]
    assert pts_in_decode_order != sorted(pts_in_decode_order), "the encoder produced no B-frames"
    decoder = get_backend(backend)
    index = decoder.probe(path)
    for request in _random_requests(40, seed=1):
        frames, index = decoder.decode(path, request, index)
        assert read_frame_numbers(frames).tolist() == request.tolist()
        reference, _ = decode_frames(path, request, index)  # PyAV
        assert np.array_equal(frames, reference)


@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_to_size_matches_torchvision(tmp_path, backend):
    """A crop box and an output size given to the decoder give what torchvision's antialiased bilinear
    resized_crop gives on the full RGB frames: the same picture (luma within resampling differences) and the same
    colours on average. Chroma detail differs: the decoder scales 4:2:0 planes, so the output's chroma has half its
    resolution (this video's per-pixel colour grain is the worst case). A repeated frame with two specs is converted
    twice."""
    (path,) = make_bench_videos(tmp_path, num_videos=1, seconds=1, fps=12, width=160, height=96, keyint=6)
    path = str(path)
    decoder = get_backend(backend)
    index = decoder.probe(path)
    request = np.array([0, 5, 11])
    full, _ = decoder.decode(path, request, index)
    full_t = torch.from_numpy(full).permute(0, 3, 1, 2)
    for spec in [FrameSpec((10, 30, 60, 80), (32, 32)), FrameSpec((1, 3, 95, 150), (48, 48)),
                 FrameSpec(size=(40, 67)), FrameSpec((20, 20, 40, 40))]:
        frames, _ = decoder.decode(path, request, index, spec)
        top, left, h, w = spec.crop or (0, 0, 96, 160)
        size = list(spec.size or (h, w))
        expected = TF.resized_crop(full_t, top, left, h, w, size, interpolation=InterpolationMode.BILINEAR,
                                   antialias=True).permute(0, 2, 3, 1).numpy()
        assert frames.shape == expected.shape
        luma = np.array([0.299, 0.587, 0.114])
        diff = np.abs(frames.astype(float) @ luma - expected.astype(float) @ luma)
        assert diff.mean() < 1.5, f"{spec}: mean luma difference {diff.mean():.2f} levels"
        colour = frames.reshape(-1, 3).mean(0) - expected.reshape(-1, 3).mean(0)
        assert np.abs(colour).max() < 1.0, f"{spec}: mean colour differs by {colour} levels"
    specs = [FrameSpec((0, 0, 96, 96), (16, 16)), FrameSpec((0, 64, 96, 96), (16, 16))]
    two, _ = decoder.decode(path, [3, 3], index, specs)  # one frame, two crops (repeated augmentation)
    assert not np.array_equal(two[0], two[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_files_are_replaced_and_counted_on_every_backend(tmp_path, backend):
    """Broken, truncated, empty, missing files (and the rest of make_bad_files) are counted and replaced by good
    videos, in training (crop boxes cut by the decoder) and validation, on each backend."""
    good = [encode(tmp_path / f"g{i}.mp4", numbered_frames(20 + 5 * i), options={"g": "8", "preset": "veryfast"})
            for i in range(2)]
    bad = make_bad_files(tmp_path / "bad", good[0])
    records = [VideoRecord(str(p), 10 + i) for i, p in enumerate(good)] + [VideoRecord(str(p), 0) for p in bad.values()]
    for mode in ("train", "val"):
        cfg = VideoDatasetConfig(num_frames=4, decoder=backend, min_attempts=1000, max_retries=40,
                                 transform=TransformConfig(crop_size=32))
        dataset = VideoDataset(records, mode, cfg)
        failures = 0
        for i in range(len(records)):
            item = dataset[i]
            assert item["video"].dtype == torch.uint8 and item["video"].shape == (3, 4, 32, 32)
            assert item["video_index"] < 2 and item["label"] == 10 + item["video_index"]
            failures += item["decode_failures"]
        assert failures >= len(bad) and set(dataset.bad_videos) == {str(p) for p in bad.values()}
        assert "mid-stream" in dataset.bad_videos[str(bad["mid_decode"])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_true_frame_count_on_every_backend(tmp_path, backend):
    """A header that overstates the frame count (a cut download) and a last packet that does not decode: the clip is
    sampled from the frames that decode, on each backend."""
    full = encode(tmp_path / "full.mp4", numbered_frames(48), options={"g": "8", "preset": "veryfast", "crf": "12"},
                  container_options={"movflags": "+faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    broken = corrupt_last_packet(encode(tmp_path / "g.mp4", numbered_frames(40), options={"g": "8"}),
                                 tmp_path / "broken.mp4")
    # the cut file is verified by its probe (the header disagrees with the packets); the broken one is corrected
    # lazily by the first clip that reaches past its true end: the last of two dense test clips
    for path, claimed, sampling in ((cut, 48, "uniform"), (broken, 40, "dense")):
        truth = count_decodable_frames(path)
        assert truth < claimed
        cfg = VideoDatasetConfig(num_frames=4, decoder=backend, transform=TransformConfig(crop_size=32),
                                 sampling=sampling, frame_stride=3, num_test_clips=2)
        dataset = VideoDataset([VideoRecord(str(path), 0)], "test", cfg)
        item = dataset[1]
        frames = item["video"].permute(1, 2, 3, 0).numpy()  # (3, T, H, W) -> (T, H, W, 3)
        assert item["decode_failures"] == 0
        expected = (uniform_indices(truth, 4, train=False, clip_index=1, num_clips=2) if sampling == "uniform"
                    else dense_indices(truth, 4, 3, train=False, clip_index=1, num_clips=2))
        assert read_frame_numbers(frames).tolist() == expected.tolist()
        assert dataset._index_cache[str(path)].num_frames == truth


def test_unknown_and_unusable_decoders_are_named(monkeypatch):
    with pytest.raises(ValueError, match="unknown decoder 'decord'; valid choices: pyav, torchcodec"):
        VideoDatasetConfig(decoder="decord")
    with pytest.raises(ValueError, match="valid choices: pyav, torchcodec"):
        backend_unavailable("decord")
    from uv2.data.datamodule import VideoDataModule

    with pytest.raises(ValueError, match="unknown decoder 'decord'"):
        VideoDataModule(synthetic_set="scene", decoder="decord")
    assert DECODERS == ("pyav", "torchcodec") and backend_unavailable("pyav") is None
    monkeypatch.setattr(backends, "backend_unavailable", lambda name: "torchcodec is not installed (test)")
    get_backend.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="decoder 'torchcodec' is not usable here: torchcodec is not installed "
                                               r"\(test\); or use decoder: pyav"):
            get_backend("torchcodec")
    finally:
        get_backend.cache_clear()


def test_probe_and_decode_report_their_stages(files):
    from uv2.data.decode import StageTimer

    timer = StageTimer()
    path = str(files["bframes"])
    index = probe_video(path, timer=timer)
    decode_frames(path, [3, 30], index, FrameSpec((0, 0, 32, 32), (16, 16)), timer=timer)
    assert {"open", "probe", "seek", "decode", "convert"} <= set(timer.seconds)
    assert all(v >= 0 for v in timer.seconds.values()) and timer.seconds["decode"] > 0
