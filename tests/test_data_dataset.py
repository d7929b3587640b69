"""VideoDataset / VideoDataModule: views, items, bad-video replacement and threshold, workers, repeats; frame folders
give the items of the video they were extracted from."""

import json
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests.data_helpers import (
    corrupt_last_packet,
    encode,
    extract_packets,
    make_bad_files,
    numbered_frames,
    read_frame_numbers,
    write_images,
)
from uv2.data.dataset import (
    ImageDataset,
    TooManyBadVideos,
    VideoDataset,
    VideoDatasetConfig,
    collate_clips,
    worker_init_fn,
)
from uv2.data.decode import count_decodable_frames, probe_video
from uv2.data.frames import FrameFolderIndex
from uv2.data.lists import VideoRecord, read_csv_list
from uv2.data.sampler import ItemKey
from uv2.data.sampling import dense_indices, uniform_indices
from uv2.data.synthetic import IMAGE_APPEARANCES, TEMPORAL_CLASSES, generate
from uv2.data.transforms import CLIP_MEAN, CLIP_STD, TransformConfig

LENGTHS = [20, 25, 30]
X264 = {"g": "8", "preset": "veryfast", "crf": "12"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return [encode(d / f"v{i}.mp4", numbered_frames(n), options=X264) for i, n in enumerate(LENGTHS)]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, videos):
    return make_bad_files(tmp_path_factory.mktemp("bad"), videos[0])


def _cfg(**kw):
    transform = kw.pop("transform", TransformConfig(crop_size=32))
    return VideoDatasetConfig(num_frames=4, transform=transform, **kw)


def _frames_of(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) uint8 (an item) or float32 normalised (a view) -> uint8 (T, H, W, 3)."""
    if video.dtype != torch.uint8:
        mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1, 1)
        video = ((video * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
    return video.permute(1, 2, 3, 0).numpy()


def test_test_views_indices_and_crops(videos):
    records = [VideoRecord(str(p), i % 2) for i, p in enumerate(videos)]
    ds = VideoDataset(records, "test", _cfg(num_test_clips=2, num_test_crops=3))
    assert len(ds) == 3 * 2 * 3 and ds.views == 6 and ds.num_videos == 3
    seen = set()
    for item in range(len(ds)):
        out = ds[item]
        v, view = out["video_index"], out["view_index"]
        assert (v, view) == divmod(item, 6) and out["label"] == v % 2 and out["decode_failures"] == 0
        assert out["video"].shape == (3, 4, 32, 32) and out["video"].dtype == torch.uint8
        assert out["aug_flip"].item() is False and out["aug_seed"].item() == -1
        clip, crop = divmod(view, 3)
        expected = uniform_indices(LENGTHS[v], 4, train=False, clip_index=clip, num_clips=2)
        assert read_frame_numbers(_frames_of(out["video"])).tolist() == expected.tolist()
        seen.add((v, view))
    assert len(seen) == 18
    red = [ds[i]["video"][0].float().mean().item() for i in range(3)]  # red ramp: crops go left -> centre -> right
    assert red[0] < red[1] < red[2]


def test_val_single_centre_view(videos):
    ds = VideoDataset([VideoRecord(str(p), 0) for p in videos], "val", _cfg(num_test_clips=4, num_test_crops=3))
    assert len(ds) == 3
    for v in range(3):
        out = ds[v]
        assert out["view_index"] == 0 and out["video_index"] == v
        assert (
            read_frame_numbers(_frames_of(out["video"])).tolist()
            == uniform_indices(LENGTHS[v], 4, train=False).tolist()
        )


def test_train_clip_and_repeated_augmentation(videos):
    full_frame = TransformConfig(crop_size=32, scale=(1.0, 1.0), ratio=(1.5, 1.5), flip=False)  # 96x64 kept whole
    ds = VideoDataset(
        [VideoRecord(str(p), i) for i, p in enumerate(videos)], "train", _cfg(num_repeats=3, transform=full_frame)
    )
    assert len(ds) == 3
    item = ds[2]
    assert item["video"].shape == (3, 3, 4, 32, 32)
    seg = (LENGTHS[2] - 1) / 4
    for r in range(3):
        numbers = read_frame_numbers(_frames_of(item["video"][r]))
        for i, n in enumerate(numbers):
            assert round(seg * i) <= n <= round(seg * (i + 1))
    batch = collate_clips([ds[0], ds[1]])
    assert batch["video"].shape == (6, 3, 4, 32, 32)
    assert batch["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["video_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["decode_failures"].tolist() == [0, 0]
    single = collate_clips([VideoDataset(ds.records, "val", _cfg())[0]] * 2)
    assert single["video"].shape == (2, 3, 4, 32, 32)


def test_bad_files_are_replaced_and_counted(videos, bad_files, caplog):
    good = [VideoRecord(str(p), 100 + i) for i, p in enumerate(videos)]
    bad = [VideoRecord(str(p), 7) for p in bad_files.values()]
    records = good + bad
    for mode in ("val", "train"):
        ds = VideoDataset(records, mode, _cfg(min_attempts=1000))
        with caplog.at_level(logging.WARNING, logger="uv2.data.dataset"):
            for i in range(len(records)):
                out = ds[i]
                assert out["video"].shape[-4:] == (3, 4, 32, 32)
                if i < len(good):
                    assert out["decode_failures"] == 0 and out["video_index"] == i
                else:
                    assert out["decode_failures"] >= 1
                    assert out["video_index"] < len(good) and out["label"] == 100 + out["video_index"]
        assert set(ds.bad_videos) == {r.path for r in bad}
        for kind, path in bad_files.items():
            assert str(path) in caplog.text, kind
        assert "mid-stream" in ds.bad_videos[str(bad_files["mid_decode"])]
        caplog.clear()


def test_keyed_item_draws_do_not_depend_on_known_bad_videos(videos, bad_files):
    """A training item asked for by an ItemKey whose video fails mid-decode is replaced with the same draws whether
    the process meets the bad video for the first time (after drawing for it) or knows it already (a resumed run,
    another worker): its draws come from a fresh generator per attempt."""
    records = [VideoRecord(str(p), i) for i, p in enumerate(videos)] + [VideoRecord(str(bad_files["mid_decode"]), 7)]
    ds = VideoDataset(records, "train", _cfg(min_attempts=1000))
    key = ItemKey(len(videos), (5, 1, 0, 0, 3))
    first, again = ds[key], ds[key]
    assert first["decode_failures"] >= 1 and first["video_index"] == again["video_index"] < len(videos)
    assert torch.equal(first["video"], again["video"]) and torch.equal(first["aug_seed"], again["aug_seed"])


def test_replacement_is_deterministic_and_never_itself(videos):
    records = [VideoRecord(str(videos[0]), 0)] * 7
    a, b = VideoDataset(records, "val", _cfg(seed=3)), VideoDataset(records, "val", _cfg(seed=3))
    picks = [[a.replacement(v, t) for t in range(5)] for v in range(7)]
    assert picks == [[b.replacement(v, t) for t in range(5)] for v in range(7)]
    assert all(p != v for v, row in enumerate(picks) for p in row)
    assert len({p for row in picks for p in row}) > 3


def test_too_many_bad_videos_names_first_bad_files(videos, bad_files):
    records = [
        VideoRecord(str(videos[0]), 0),
        VideoRecord(str(bad_files["garbage"]), 0),
        VideoRecord(str(bad_files["empty"]), 0),
        VideoRecord(str(bad_files["missing"]), 0),
        VideoRecord(str(videos[1]), 0),
    ]
    ds = VideoDataset(records, "val", _cfg(min_attempts=4, max_bad_fraction=0.25))
    with pytest.raises(TooManyBadVideos) as err:
        for i in range(len(records)):
            ds[i]
    message = str(err.value)
    assert "max_bad_fraction=25.00%" in message
    assert message.index(str(bad_files["garbage"])) < message.index("cannot open")
    assert "first bad files: " + str(bad_files["garbage"]) in message
    # the same files under a lenient threshold are simply replaced
    lenient = VideoDataset(records, "val", _cfg(min_attempts=4, max_bad_fraction=0.9))
    assert sum(lenient[i]["decode_failures"] for i in range(len(records))) >= 3


def test_all_bad_gives_up_after_max_retries(bad_files):
    records = [VideoRecord(str(p), 0) for p in bad_files.values()]
    ds = VideoDataset(records, "train", _cfg(min_attempts=10_000, max_retries=3))
    with pytest.raises(TooManyBadVideos, match="no decodable video after 4 attempts"):
        ds[0]


def test_too_many_bad_videos_is_bad_input_in_its_own_words_from_a_worker(bad_files):
    """Too many bad videos is bad data (an InputError: one line at the command line, exit status 2), and raised in a
    DataLoader worker it keeps its own message for that line and the grid's record, not torch's traceback text."""
    from uv2.errors import error_message, input_error_in

    ds = VideoDataset([VideoRecord(str(p), 0) for p in bad_files.values()], "val", _cfg(max_retries=1))
    with pytest.raises(TooManyBadVideos) as here:
        ds[0]
    with pytest.raises(TooManyBadVideos) as from_worker:
        next(iter(DataLoader(ds, batch_size=1, num_workers=1)))
    assert input_error_in(from_worker.value) is from_worker.value
    assert "Original Traceback" in str(from_worker.value)
    assert error_message(from_worker.value) == error_message(here.value) == str(here.value)
    assert str(here.value).startswith("no decodable video after 2 attempts for item 0")


def test_true_frame_count_is_used(tmp_path):
    full = encode(
        tmp_path / "full.mp4", numbered_frames(48), options=X264, container_options={"movflags": "+faststart"}
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    truth = count_decodable_frames(cut)
    assert truth < 48
    ds = VideoDataset([VideoRecord(str(cut), 0)], "val", _cfg())
    out = ds[0]
    assert out["decode_failures"] == 0
    assert read_frame_numbers(_frames_of(out["video"])).tolist() == uniform_indices(truth, 4, train=False).tolist()
    assert ds._index_cache[str(cut)].num_frames == truth and ds._index_cache[str(cut)].verified


def test_lazy_count_correction_resamples(tmp_path, caplog):
    """Header and packets claim 40 frames, the last packet does not decode: the first clip reaching past the true
    end corrects the cached count and the clip is sampled again with it."""
    good = encode(tmp_path / "good.mp4", numbered_frames(40), options=X264)
    broken = corrupt_last_packet(good, tmp_path / "broken.mp4")
    truth = count_decodable_frames(broken)
    index = probe_video(broken)
    assert truth < index.num_frames == 40 and not index.verified  # nothing suspicious before decoding
    ds = VideoDataset(
        [VideoRecord(str(broken), 0)],
        "test",
        _cfg(sampling="dense", frame_stride=3, num_test_clips=2, num_test_crops=1),
    )
    with caplog.at_level(logging.INFO, logger="uv2.data.dataset"):
        last_clip = ds[1]  # window ending at the last frame
    assert f"{truth} frames decode (index said 40); re-sampling" in caplog.text
    expected = dense_indices(truth, 4, 3, train=False, clip_index=1, num_clips=2)
    assert read_frame_numbers(_frames_of(last_clip["video"])).tolist() == expected.tolist()
    assert last_clip["decode_failures"] == 0
    assert ds._index_cache[str(broken)].num_frames == truth


def _loader(records, workers, seed):
    ds = VideoDataset(records, "train", _cfg(transform=TransformConfig(crop_size=32, rand_augment="rand-m9-n2")))
    torch.manual_seed(seed)
    return DataLoader(ds, batch_size=1, num_workers=workers, worker_init_fn=worker_init_fn, collate_fn=collate_clips,
                      multiprocessing_context="forkserver")  # as the DataModules do: fork can deadlock


def test_workers_get_different_streams_and_runs_reproduce(videos):
    records = [VideoRecord(str(videos[2]), 0)] * 4  # the same video four times: only augmentation differs
    run1 = [(b["video"], b["aug_flip"], b["aug_seed"]) for b in _loader(records, 2, seed=0)]
    run2 = [(b["video"], b["aug_flip"], b["aug_seed"]) for b in _loader(records, 2, seed=0)]
    run3 = [(b["video"], b["aug_flip"], b["aug_seed"]) for b in _loader(records, 2, seed=1)]
    run1, run2, run3 = ([torch.cat([v.flatten(), f.long(), s]) for v, f, s in run] for run in (run1, run2, run3))
    assert all(torch.equal(x, y) for x, y in zip(run1, run2))  # same seed: same augmentation
    assert not all(torch.equal(x, y) for x, y in zip(run1, run3))  # new seed: new augmentation
    assert not torch.equal(run1[0], run1[1])  # items 0 and 1 come from workers 0 and 1: different draws


def test_datamodule_on_synthetic_micro(tmp_path):
    from uv2.data.datamodule import VideoDataModule

    dm = VideoDataModule(
        synthetic_set="temporal",
        synthetic_size="micro",
        synthetic_root=str(tmp_path),
        num_frames=4,
        crop_size=24,
        flip=False,
        num_test_clips=2,
        num_test_crops=3,
        num_repeats=2,
        batch_size=4,
        num_workers=0,
        rand_augment="rand-m7-n4-mstd0.5-inc1",
    )
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert dm.num_classes == 10 and dm.class_names == TEMPORAL_CLASSES
    assert dm.num_test_videos == 10 and len(dm.test_dataloader().dataset) == 60
    train = next(iter(dm.train_dataloader()))
    assert train["video"].shape == (8, 3, 4, 24, 24) and train["label"].shape == (8,)
    assert train["video"].dtype == torch.uint8  # uint8 from the decoder to the device
    assert train["decode_failures"].shape == (4,)
    assert train["aug_flip"].shape == (8,) and train["aug_seed"].shape == (8,) and (train["aug_seed"] >= 0).all()
    # what Lightning does around the transfer: RandAugment plans on the host, the float work after the transfer
    model_input = dm.on_after_batch_transfer(dm.on_before_batch_transfer(train, 0), 0)
    assert model_input["video"].shape == (8, 3, 4, 24, 24) and model_input["video"].dtype == torch.float32
    assert not {"aug_flip", "aug_seed", "aug_program"} & set(model_input)
    assert torch.equal(model_input["label"], train["label"])
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (4, 3, 4, 24, 24) and val["view_index"].tolist() == [0, 0, 0, 0]
    assert val["video"].dtype == torch.uint8 and not val["aug_flip"].any() and (val["aug_seed"] == -1).all()
    test = next(iter(dm.test_dataloader()))
    assert test["video_index"].tolist() == [0, 0, 0, 0] and test["view_index"].tolist() == [0, 1, 2, 3]


def test_datamodule_from_yaml_like_config(tmp_path):
    """jsonargparse (what LightningCLI uses) can build the DataModule from plain typed values."""
    from jsonargparse import ArgumentParser

    from uv2.data.datamodule import VideoDataModule

    generate(tmp_path / "gen", size="micro", seed=0, sets=["scene_b"], workers=1)
    parser = ArgumentParser()
    parser.add_class_arguments(VideoDataModule, "data")
    cfg = parser.parse_object(
        {
            "data": {
                "list_format": "csv",
                "train_list": str(tmp_path / "gen/scene_b/train.csv"),
                "val_list": str(tmp_path / "gen/scene_b/val.csv"),
                "classes_file": str(tmp_path / "gen/scene_b/classes.txt"),
                "num_frames": 4,
                "crop_size": 24,
                "num_test_crops": 3,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.5, 0.5, 0.5],
                "num_workers": 0,
            }
        }
    )
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    dm = instantiate(cfg).data
    dm.setup("fit")
    assert dm.num_classes == 8 and dm.class_names == (tmp_path / "gen/scene_b/classes.txt").read_text().split()
    with pytest.raises(ValueError, match="valid choices: 1 or 3|num_test_crops must be 1 or 3"):
        VideoDataModule(synthetic_set="scene", num_test_crops=2)
    with pytest.raises(ValueError, match="unknown synthetic_set 'kinetics'"):
        VideoDataModule(synthetic_set="kinetics")


def test_image_dataset_on_synthetic_images(tmp_path):
    generate(tmp_path, size="micro", seed=0, sets=["images"], workers=1)
    records, names = read_csv_list(tmp_path / "images/train.csv", tmp_path / "images/classes.txt")
    cfg = TransformConfig(crop_size=24, scale=(0.5, 1.0))
    for train in (True, False):
        ds = ImageDataset(records, train=train, cfg=cfg)
        item = ds[5]
        assert item["image"].shape == (3, 24, 24) and item["image"].dtype == torch.uint8
        assert isinstance(item["aug_flip"], bool) and (train or not item["aug_flip"])
        assert item["label"] == records[5].label and 0 <= item["label"] < len(names) == len(IMAGE_APPEARANCES)


def test_load_view_matches_items_and_raises_for_bad_videos(videos, bad_files):
    from uv2.data.decode import VideoDecodeError

    records = [VideoRecord(str(videos[1]), 0), VideoRecord(str(bad_files["garbage"]), 0)]
    ds = VideoDataset(records, "test", _cfg(num_test_clips=2, num_test_crops=3))
    for view in (0, 4):  # the model's input: the item's uint8 clip, normalised
        expected = ((ds[view]["video"].float() / 255 - torch.tensor(CLIP_MEAN).view(3, 1, 1, 1))
                    / torch.tensor(CLIP_STD).view(3, 1, 1, 1))
        torch.testing.assert_close(ds.load_view(0, view), expected)
    with pytest.raises(VideoDecodeError, match="cannot open"):
        ds.load_view(1, 0)
    with pytest.raises(IndexError, match="view_index 6 out of range for 6 views"):
        ds.load_view(0, 6)


def test_cache_decoded_gives_the_same_clips(tmp_path):
    """Decoding every frame once and indexing it serves the clips of seek-and-decode: the same frames and crops; the
    resize differs only in rounding (torchvision on the cached RGB frames, swscale inside the decoder)."""
    generate(tmp_path, size="micro", seed=0, sets=["temporal"], workers=1)
    records, _ = read_csv_list(tmp_path / "temporal" / "val.csv", tmp_path / "temporal" / "classes.txt")
    plain = VideoDataset(records, "test", _cfg(num_test_clips=2, transform=TransformConfig(crop_size=24)))
    cached = VideoDataset(records, "test", _cfg(num_test_clips=2, cache_decoded=True,
                                                transform=TransformConfig(crop_size=24)))
    for item in range(len(plain)):
        a, b = plain[item]["video"].float(), cached[item]["video"].float()
        assert a.shape == b.shape == (3, 4, 24, 24)
        assert (a - b).abs().mean() < 2.0, f"item {item}: mean difference {(a - b).abs().mean():.2f} levels"
    assert len(cached._frame_cache) == len(records)  # each video decoded once for all its views


def test_datamodule_decodes_a_shared_video_once(tmp_path, monkeypatch):
    """With cache_decoded, the validation and the test set of a data module (the synthetic sets test on their
    validation list) decode each video once between them: the test's views come from the frames validation decoded."""
    import uv2.data.dataset as dataset_module
    from uv2.data.datamodule import VideoDataModule

    decoded = []
    decode_all_frames = dataset_module.decode_all_frames
    monkeypatch.setattr(dataset_module, "decode_all_frames", lambda path: decoded.append(path) or decode_all_frames(path))
    dm = VideoDataModule(synthetic_set="temporal", synthetic_size="micro", synthetic_root=str(tmp_path), num_frames=4,
                         crop_size=24, num_test_clips=2, batch_size=4, num_workers=0, cache_decoded=True)
    dm.prepare_data()
    dm.setup("validate")
    val = torch.cat([b["video"] for b in dm.val_dataloader()])
    assert len(decoded) == len(set(decoded)) == len(val) == 10
    dm.setup("test")
    test = torch.cat([b["video"] for b in dm.test_dataloader()])
    assert len(test) == 20 and len(decoded) == 10  # 2 views of each of the 10 videos, none decoded again


@pytest.mark.parametrize("rand_augment", [None, "rand-m5-n2"])
@pytest.mark.parametrize("scale", [(1.0, 1.0), (0.3, 1.0)])
def test_train_items_follow_the_cpu_path(videos, scale, rand_augment):
    """With one seed, a training item (crop cut by the decoder, uint8) and the CPU path (full frames decoded, then
    TrainClipTransform) draw the same frames, crop box, flip and RandAugment seed; after BatchAugment the clips agree
    to within resampling differences (swscale in the decoder, torchvision on the CPU path). With RandAugment the
    draws are compared (its ops turn resampling differences into large ones, e.g. at a solarize threshold; the ops
    themselves are held to timm's in test_data_augment.py)."""
    from einops import rearrange

    from uv2.data.augment import BatchAugment
    from uv2.data.decode import decode_frames
    from uv2.data.sampling import sample_indices
    from uv2.data.transforms import TrainClipTransform

    whole = scale == (1.0, 1.0)
    transform_cfg = TransformConfig(crop_size=32, scale=scale, ratio=(1.5, 1.5) if whole else (0.75, 1.33),
                                    rand_augment=rand_augment)
    cfg = _cfg(transform=transform_cfg)
    dataset = VideoDataset([VideoRecord(str(videos[2]), 0)], "train", cfg)
    transform, augment = TrainClipTransform(transform_cfg), BatchAugment(transform_cfg)
    for seed in range(4):
        torch.manual_seed(seed)
        item = dataset[0]
        rng = np.random.default_rng([torch.initial_seed() % 2**63, cfg.seed])  # the dataset's generator, replayed
        indices = sample_indices("uniform", LENGTHS[2], 4, train=True, rng=rng)
        draw = transform.draw(64, 96, rng)
        assert (item["aug_flip"].item(), item["aug_seed"].item()) == (draw.flip, draw.seed)
        if rand_augment is not None:
            continue
        frames, _ = decode_frames(videos[2], indices)
        expected = transform.apply(rearrange(torch.from_numpy(frames), "t h w c -> t c h w"), draw)
        got = augment(augment.before_transfer(collate_clips([item])))["video"][0]
        if whole:  # the whole frame: its number survives the resize
            assert read_frame_numbers(_frames_of(got)).tolist() == indices.tolist()
        levels = (got - expected).abs() * torch.tensor(CLIP_STD).view(3, 1, 1, 1) * 255
        assert levels.mean() < 3.0, f"seed {seed}: mean difference {levels.mean():.2f} levels"


# -- frame folders (uv2.data.frames): the same items as the video they were extracted from ----------------------------


@pytest.fixture(scope="module")
def mjpeg_and_frames(tmp_path_factory):
    """An MJPEG video of numbered frames and its frames extracted losslessly (its packets as img_00001.jpg, ...)."""
    d = tmp_path_factory.mktemp("mjpeg")
    video = encode(d / "v.mkv", numbered_frames(LENGTHS[2]), codec="mjpeg", pix_fmt="yuvj420p")
    return video, extract_packets(video, d / "v_frames", "img_{:05d}.jpg", first=1)


@pytest.mark.parametrize("cache_decoded", [False, True])
@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_frame_folder_items_equal_the_videos(mjpeg_and_frames, mode, cache_decoded):
    """A video and the folder of its losslessly extracted frames give the same items in every mode: the same test
    views (clips x crops), the same validation view, and with one seed the same training clips (frames, crop boxes,
    flips, RandAugment seeds; two repeats), read by the same sampling, crop and resize code."""
    video, folder = mjpeg_and_frames
    transform = TransformConfig(crop_size=32, rand_augment="rand-m7-n4-mstd0.5-inc1")
    cfg = _cfg(num_test_clips=3, num_test_crops=3, num_repeats=2 if mode == "train" else 1,
               cache_decoded=cache_decoded, transform=transform)
    from_video = VideoDataset([VideoRecord(str(video), 3)], mode, cfg)
    from_frames = VideoDataset([VideoRecord(str(folder), 3)], mode, cfg)
    draws = 3 if mode == "train" else len(from_video)
    assert len(from_frames) == len(from_video) == (9 if mode == "test" else 1)
    for draw in range(draws):
        item = draw if mode == "test" else 0
        torch.manual_seed(100 + draw)
        a = from_video[item]
        torch.manual_seed(100 + draw)
        b = from_frames[item]
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), (mode, draw, key)
        assert b["decode_failures"] == 0 and b["label"] == 3
        if mode != "train":  # the eval views' frames, by the numbers drawn into them
            clips = 3 if mode == "test" else 1
            expected = uniform_indices(LENGTHS[2], 4, train=False, clip_index=item // 3, num_clips=clips)
            assert read_frame_numbers(_frames_of(b["video"])).tolist() == expected.tolist()
    if cache_decoded:
        assert len(from_frames._frame_cache[str(folder)]) == LENGTHS[2]
    else:
        assert isinstance(from_frames._index_cache[str(folder)], FrameFolderIndex)


def test_frame_folder_lists_and_bad_folders(tmp_path, caplog):
    """SSv1 lists (`id;label`, folders of 00001.jpg ...) and rawframe lists (`frame_dir total_frames label`) through the
    data module; a folder with a missing frame, a listed count its folder cannot hold and a missing folder are bad
    items, counted and replaced like bad videos."""
    from uv2.data.datamodule import VideoDataModule

    root = tmp_path / "20bn-something-something-v1"
    for i, n in enumerate([12, 20, 9, 10]):
        write_images(numbered_frames(n), root / str(100 + i))
    (root / "102" / "00004.jpg").unlink()  # a gap
    labels = tmp_path / "labels.csv"
    labels.write_text("Pushing something\nPulling something, then letting go\n")
    ssv1 = tmp_path / "train.csv"
    ssv1.write_text("100;Pushing something\n101;Pulling something, then letting go\n102;Pushing something\n"
                    "404;Pushing something\n")
    dm = VideoDataModule(list_format="ssv1", train_list=str(ssv1), val_list=str(ssv1), classes_file=str(labels),
                         data_root=str(root), num_frames=4, crop_size=32, num_workers=0, min_bad_attempts=1000,
                         batch_size=2)
    dm.setup("validate")
    val = dm.val_dataset
    with caplog.at_level(logging.WARNING, logger="uv2.data.dataset"):
        items = [val[i] for i in range(4)]
    assert [i["decode_failures"] for i in items[:2]] == [0, 0] and [i["label"] for i in items[:2]] == [0, 1]
    assert read_frame_numbers(_frames_of(items[1]["video"])).tolist() == uniform_indices(20, 4, train=False).tolist()
    assert all(i["decode_failures"] >= 1 and i["video_index"] in (0, 1) for i in items[2:])
    assert val.bad_videos == {str(root / "102"): "frame 00004.jpg is missing (00001.jpg to 00009.jpg expected)",
                              str(root / "404"): "frame folder does not exist"}
    assert "bad video " + str(root / "102") in caplog.text
    raw = tmp_path / "rawframes.txt"
    raw.write_text(f"{root / '100'} 8 0\n{root / '101'} 20 1\n{root / '103'} 11 1\n")  # 103 holds 10 frames
    dm = VideoDataModule(list_format="rawframes", val_list=str(raw), num_frames=4, crop_size=32, num_workers=0,
                         min_bad_attempts=1000)
    dm.setup("validate")
    val = dm.val_dataset
    first = val[0]  # the list's count (8 of the folder's 12 frames) is the video
    assert read_frame_numbers(_frames_of(first["video"])).tolist() == uniform_indices(8, 4, train=False).tolist()
    assert val[2]["decode_failures"] == 1
    assert val.bad_videos == {str(root / "103"): "the list gives 11 frames but the folder holds 10 (00001.jpg to "
                                                 "00010.jpg)"}
    with pytest.raises(ValueError, match=r"frame_template 'img.jpg' must hold exactly one integer field"):
        VideoDataModule(list_format="rawframes", val_list=str(raw), frame_template="img.jpg")


@pytest.mark.parametrize("recipe", ["anet/anet_l14_16x224", "hacs/hacs_l14_32x224"])
def test_untrimmed_recipes_sample_the_whole_video(tmp_path, recipe):
    """ActivityNet / HACS as the official configs train them (kinetics_sparse on video-level lists): lists made by
    `untrimmed-lists` from the annotations, the recipe's data settings; every training clip spans the whole untrimmed
    video (one frame in each of T equal segments, frames before and after the annotated action included), and the
    recipe's 10 test clips do too, at 10 evenly spaced offsets inside every segment."""
    from tests.helpers import REPO
    from uv2.data.cli import untrimmed_lists_main
    from uv2.data.datamodule import VideoDataModule
    from uv2.experiment import load_experiment

    n = 200  # frames of the untrimmed video; its action is annotated over 40-60 % of it
    video = encode(tmp_path / "anet" / "v_abc.mkv", numbered_frames(n), codec="mjpeg", pix_fmt="yuvj420p")
    (tmp_path / "anet" / "v_def.mkv").write_bytes(video.read_bytes())
    database = {vid: {"subset": subset, "duration": 20.0, "annotations": [{"segment": [8.0, 12.0], "label": "Shot put"}]}
                for vid, subset in (("abc", "training"), ("def", "validation"))}
    (tmp_path / "anet.json").write_text(json.dumps({"database": database}))
    assert untrimmed_lists_main(["--annotations", str(tmp_path / "anet.json"), "--data-root", str(tmp_path / "anet")]) == 0
    experiment = load_experiment(REPO / "experiments" / f"{recipe}.yaml")
    args, frames = experiment["data"]["init_args"], experiment["model"]["arch"]["num_frames"]
    assert (args["list_format"], args.get("sampling", "uniform"), args["num_test_clips"]) == ("csv", "uniform", 10)
    root = tmp_path / "anet"
    dm = VideoDataModule(**{**args, "data_root": str(root), "train_list": str(root / "train.csv"),
                            "val_list": str(root / "val.csv"), "test_list": str(root / "val.csv"),
                            "classes_file": str(root / "classes.txt"), "num_frames": frames, "num_workers": 0,
                            "crop_size": 32, "short_side": 32, "num_test_crops": 1, "rand_augment": None,
                            "scale_min": 1.0, "scale_max": 1.0, "ratio_min": 1.5, "ratio_max": 1.5})  # whole frames
    dm.setup("fit")
    dm.setup("test")
    seg = (n - 1) / frames
    starts, ends = np.round(seg * np.arange(frames)), np.round(seg * np.arange(1, frames + 1))
    for draw in range(3):
        torch.manual_seed(draw)
        numbers = read_frame_numbers(_frames_of(dm.train_dataset[0]["video"]))
        assert ((starts <= numbers) & (numbers <= ends)).all(), numbers.tolist()
        assert numbers.min() < 0.4 * n and numbers.max() > 0.6 * n  # not only the annotated segment
    test = dm.test_dataset
    assert len(test) == 10 and test.num_videos == 1
    clips = np.stack([read_frame_numbers(_frames_of(test[k]["video"])) for k in range(10)])
    for k, clip in enumerate(clips):
        assert clip.tolist() == uniform_indices(n, frames, train=False, clip_index=k, num_clips=10).tolist()
    assert ((starts <= clips) & (clips <= ends)).all()  # every clip spans the whole video
    # inside each segment the clips sit at offsets that grow with the clip (tied where a segment is shorter than 10)
    assert (np.diff(clips, axis=0) >= 0).all() and (clips[-1] > clips[0]).all()
    assert clips.min() <= seg / 10 and clips.max() >= n - 2 - seg / 10  # from the video's first frames to its last


def test_time_reversal_plays_a_paired_class_backwards(tmp_path):
    """With time_reversal, a training clip of a class with a time-reversed partner is, with that probability, the
    same draws' clip played backwards under the partner's label (the synthetic temporal set's reversal_pairs.json);
    at 0 nothing more is drawn, so the data stream is the one without the option."""
    from uv2.data.datamodule import VideoDataModule

    dm = VideoDataModule(synthetic_set="temporal", synthetic_size="micro", synthetic_root=str(tmp_path), num_frames=4,
                         crop_size=32, num_workers=0, time_reversal=0.5)
    dm.prepare_data()
    dm.setup("fit")  # the pairs of the set's reversal_pairs.json
    records, names, partners = dm.train_dataset.records, dm.class_names, dm.train_dataset.reversal_partners
    assert {names[a]: names[b] for a, b in partners.items()}["move_left"] == "move_right"
    assert all(partners[partners[label]] == label for label in partners) and len(partners) == 10

    def items(p: float, n: int = 20) -> list[dict]:
        ds = VideoDataset(records, "train", _cfg(time_reversal=p, cache_decoded=True), reversal_partners=partners)
        return [ds[ItemKey(i % len(records), (7, 1, 0, 0, i))] for i in range(n)]

    plain, always, half = items(0.0), items(1.0), items(0.5)
    for a, b in zip(plain, always):
        assert torch.equal(b["video"], a["video"].flip(1)) and b["label"] == partners[a["label"]]
        assert torch.equal(a["aug_seed"], b["aug_seed"])  # the reversal is drawn after the item's own draws
    reversed_ = [not torch.equal(a["video"], h["video"]) for a, h in zip(plain, half)]
    assert 0 < sum(reversed_) < len(half)
    for a, h, flipped in zip(plain, half, reversed_):
        assert h["label"] == (partners[a["label"]] if flipped else a["label"])
    first_pair = VideoDataset(records, "train", _cfg(time_reversal=1.0, cache_decoded=True),
                              reversal_partners={0: 1, 1: 0})  # a class without a partner is left as it is
    for i, a in enumerate(plain):
        item = first_pair[ItemKey(i % len(records), (7, 1, 0, 0, i))]
        paired = a["label"] in (0, 1)
        assert item["label"] == (1 - a["label"] if paired else a["label"])
        assert torch.equal(item["video"], a["video"].flip(1) if paired else a["video"])


def test_time_reversal_refuses_what_it_cannot_use(tmp_path):
    from uv2.data.datamodule import VideoDataModule
    from uv2.errors import SettingError
    from uv2.labels import ListFormatError, read_reversal_pairs

    with pytest.raises(SettingError, match=r"time_reversal must be a probability in \[0, 1\], got 1.5"):
        _cfg(time_reversal=1.5)
    with pytest.raises(SettingError, match="time_reversal needs the dataset's time-reversed class pairs"):
        VideoDataset([VideoRecord("v.mp4", 0)], "train", _cfg(time_reversal=0.5))
    names = ["move_left", "move_right", "grow"]
    pairs = tmp_path / "pairs.json"
    for content, message in [("[1, 2]", "not a JSON object"), ('{"pairs": [["move_left"]]}', '"pairs" must be'),
                             ('{"pairs": [["move_lef", "move_right"]]}', "'move_lef' \\(closest: 'move_left'\\)"),
                             ('{"pairs": [["move_left", "move_right"], ["grow", "move_left"]]}',
                              "'move_left' is in more than one reversal pair"),
                             ('{"pairs": [["grow", "grow"]]}', "'grow' is paired with itself")]:
        pairs.write_text(content)
        with pytest.raises(ListFormatError, match=message) as raised:
            read_reversal_pairs(pairs, names)
        assert str(pairs) in str(raised.value)
    generate(tmp_path / "synth" / "micro_seed0", size="micro", seed=0, sets=["scene"], workers=1)
    common = dict(synthetic_size="micro", synthetic_root=str(tmp_path / "synth"), num_frames=4, crop_size=24,
                  num_workers=0, time_reversal=0.5)
    with pytest.raises(SettingError, match="the synthetic set 'scene' has no time-reversed classes"):
        VideoDataModule(synthetic_set="scene", **common).setup("fit")
    scene = tmp_path / "synth" / "micro_seed0" / "scene"
    with pytest.raises(SettingError, match="time_reversal needs data.init_args.reversal_pairs"):
        VideoDataModule(train_list=str(scene / "train.csv"), classes_file=str(scene / "classes.txt"),
                        **{k: v for k, v in common.items() if not k.startswith("synthetic")}).setup("fit")
