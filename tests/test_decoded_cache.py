"""Decoded videos on disk (uv2.data.decoded_cache): a process that finds a video's frames there serves the clips a
decoding one does without decoding; a rewritten video, an unreadable cache file or an unwritable folder are decoded
again rather than served stale or fatal; a synthetic set keeps its cache beside it, and generating the set again
removes it."""

import logging
import os

import numpy as np
import pytest
import torch

import uv2.data.dataset as dataset_module
from uv2.data.datamodule import VideoDataModule
from uv2.data.decode import decode_all_frames
from uv2.data.decoded_cache import DecodedCache
from uv2.data.lists import read_csv_list
from uv2.data.synthetic import DECODED_DIR, generate
from uv2.data.transforms import TransformConfig


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    root = tmp_path_factory.mktemp("micro")
    generate(root, size="micro", seed=0, sets=["temporal"], workers=1)
    records, _ = read_csv_list(root / "temporal" / "val.csv", root / "temporal" / "classes.txt")
    return root, records


def _dataset(records, folder=None, mode="test"):
    cfg = dataset_module.VideoDatasetConfig(num_frames=4, num_test_clips=2, cache_decoded=True,
                                            decoded_cache_dir=None if folder is None else str(folder),
                                            transform=TransformConfig(crop_size=24))
    return dataset_module.VideoDataset(records, mode, cfg)


def _count_decodes(monkeypatch) -> list[str]:
    decoded: list[str] = []
    monkeypatch.setattr(dataset_module, "decode_all_frames", lambda path: decoded.append(path) or decode_all_frames(path))
    return decoded


def test_round_trip_and_a_rewritten_video_gets_a_new_file(micro, tmp_path):
    _, records = micro
    video = tmp_path / "v.mp4"
    video.write_bytes(open(records[0].path, "rb").read())
    cache = DecodedCache(tmp_path / "cache")
    assert cache.load(video) is None
    frames = decode_all_frames(video)
    cache.save(video, frames)
    np.testing.assert_array_equal(cache.load(video), frames)
    first = cache.file_for(video)
    assert first.is_file() and not list(first.parent.glob("*.tmp"))
    stat = os.stat(video)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rewritten in place: a newer file
    assert cache.file_for(video) != first and cache.load(video) is None


def test_a_second_process_serves_the_same_items_without_decoding(micro, tmp_path, monkeypatch):
    """The first dataset decodes each video once and writes it; a fresh one (another process's: its memory cache is
    empty) loads every video from the folder, decodes none, and serves the very same uint8 items."""
    _, records = micro
    decoded = _count_decodes(monkeypatch)
    first = _dataset(records, tmp_path / "cache")
    items = [first[i]["video"] for i in range(len(first))]
    assert sorted(decoded) == sorted(r.path for r in records)
    decoded.clear()
    second = _dataset(records, tmp_path / "cache")
    for i, item in enumerate(items):
        assert torch.equal(second[i]["video"], item), f"item {i}"
    assert decoded == []
    memory_only = _dataset(records)  # and both are the clips of the cache in memory alone
    for i, item in enumerate(items):
        assert torch.equal(memory_only[i]["video"], item), f"item {i}"


def test_a_killed_writers_temporary_file_goes_at_the_next_processs_first_write(micro, tmp_path):
    """A writer killed mid-file leaves its temporary file; the next process to write removes it once it is older
    than any write takes, and leaves a fresh one (a live writer's) alone."""
    _, records = micro
    cache = DecodedCache(tmp_path / "cache")
    cache.save(records[0].path, decode_all_frames(records[0].path))
    folder = cache.file_for(records[0].path).parent
    abandoned, live = folder / ".abc.x1.tmp", folder / ".abc.x2.tmp"
    for tmp in (abandoned, live):
        tmp.write_bytes(b"part of an npy file")
    hours_ago = os.stat(abandoned).st_mtime_ns - 2 * 3600 * 10**9
    os.utime(abandoned, ns=(hours_ago, hours_ago))
    cache.save(records[1].path, decode_all_frames(records[1].path))  # this process has swept already
    assert abandoned.exists()
    DecodedCache(tmp_path / "cache").save(records[1].path, decode_all_frames(records[1].path))  # another process
    assert not abandoned.exists() and live.exists()
    assert cache.load(records[0].path) is not None and cache.load(records[1].path) is not None


def test_an_unreadable_cache_file_is_decoded_again(micro, tmp_path, monkeypatch, caplog):
    _, records = micro
    cache = DecodedCache(tmp_path / "cache")
    video = records[0].path
    cache.save(video, decode_all_frames(video))
    cache.file_for(video).write_bytes(b"not an npy file")
    decoded = _count_decodes(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="uv2.data.decoded_cache"):
        item = _dataset(records[:1], tmp_path / "cache")[0]["video"]
    assert decoded == [video] and f"cannot read {cache.file_for(video)}" in caplog.text
    assert torch.equal(item, _dataset(records[:1])[0]["video"])
    np.testing.assert_array_equal(cache.load(video), decode_all_frames(video))  # written again, whole


def test_an_unwritable_folder_is_reported_once_and_the_run_goes_on(micro, tmp_path, caplog):
    _, records = micro
    blocker = tmp_path / "a file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="uv2.data.decoded_cache"):
        ds = _dataset(records[:3], blocker / "cache")
        items = [ds[i]["video"] for i in range(len(ds))]
    assert caplog.text.count("cannot write to") == 1 and str(blocker / "cache") in caplog.text
    plain = _dataset(records[:3])
    assert all(torch.equal(plain[i]["video"], item) for i, item in enumerate(items))


def test_cache_dir_needs_cache_decoded():
    with pytest.raises(ValueError, match="set cache_decoded: true too, or drop decoded_cache_dir"):
        dataset_module.VideoDatasetConfig(decoded_cache_dir="somewhere")


def test_a_synthetic_set_keeps_its_cache_beside_it_until_generated_again(tmp_path):
    def module(**kw):
        return VideoDataModule(synthetic_set="temporal", synthetic_size="micro", synthetic_root=str(tmp_path),
                               num_frames=4, crop_size=24, batch_size=4, num_workers=0, **kw)

    root = tmp_path / "micro_seed0"
    assert module(cache_decoded=True).dataset_cfg.decoded_cache_dir == str(root / DECODED_DIR)
    assert module(cache_decoded=True, decoded_cache_dir=str(tmp_path / "mine")).dataset_cfg.decoded_cache_dir == str(
        tmp_path / "mine")
    assert module().dataset_cfg.decoded_cache_dir is None  # without cache_decoded, nothing is kept
    dm = module(cache_decoded=True)
    dm.prepare_data()
    dm.setup("validate")
    next(iter(dm.val_dataloader()))
    assert len(list((root / DECODED_DIR).rglob("*.npy"))) == 4  # the first batch's videos
    generate(root, size="micro", seed=0, sets=["temporal"], workers=1, force=True)
    assert not (root / DECODED_DIR).exists()


def test_the_benchmark_times_decoding_against_the_cache(tmp_path, capsys):
    """benchmarks/decoded_cache.py on a micro set: one row of seconds, the frames checked equal on the way."""
    from benchmarks.decoded_cache import main

    assert main(["--size", "micro", "--set", "temporal", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "micro temporal val: 10 videos of 8 frames 32x32" in out
    row = out.strip().splitlines()[-1].strip("| ").split(" | ")
    assert len(row) == 5 and row[3].endswith("x") and all(float(v) >= 0 for v in row[:3])
