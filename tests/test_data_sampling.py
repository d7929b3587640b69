"""Exact frame indices of the temporal samplers (uv2.data.sampling)."""

import numpy as np
import pytest

from uv2.data.sampling import dense_indices, sample_indices, uniform_indices


def test_uniform_test_centres_exact():
    # n=100, T=8: seg = 99/8 = 12.375; starts 0,12,25,37,50,62,74,87; ends 12,25,37,50,62,74,87,99
    assert uniform_indices(100, 8, train=False).tolist() == [6, 18, 31, 43, 56, 68, 80, 93]


def test_uniform_single_test_clip_is_the_officials():
    # n=16, T=4: seg = 3.75; starts 0, 4, 8, 11 (round half to even: 7.5 -> 8); the official takes start + int(seg / 2)
    # = start + 1 (PySlowFast's get_seq_frames with one clip), where the segment centres (start + end) // 2 of ends
    # 4, 8, 11, 15 would be 2, 6, 9, 13
    assert uniform_indices(16, 4, train=False).tolist() == [1, 5, 9, 12]
    assert uniform_indices(16, 4, train=False, clip_index=0, num_clips=1).tolist() == [1, 5, 9, 12]


def test_uniform_multi_clip_offsets_exact():
    # K=3: offset_k = int(seg / 4 * (k + 1)) = 3, 6, 9 added to the segment starts
    starts = np.array([0, 12, 25, 37, 50, 62, 74, 87])
    for k, offset in enumerate([3, 6, 9]):
        got = uniform_indices(100, 8, train=False, clip_index=k, num_clips=3)
        assert got.tolist() == (starts + offset).tolist()


def test_uniform_train_seeded_exact_and_in_segments():
    got = uniform_indices(100, 8, train=True, rng=np.random.default_rng(0))
    assert got.tolist() == uniform_indices(100, 8, train=True, rng=np.random.default_rng(0)).tolist()
    assert got.tolist() == [11, 20, 31, 40, 54, 62, 75, 87]  # regression value for seed 0
    starts = [0, 12, 25, 37, 50, 62, 74, 87]
    ends = [12, 25, 37, 50, 62, 74, 87, 99]
    rng = np.random.default_rng(1)
    seen = [set() for _ in range(8)]
    for _ in range(2000):
        idx = uniform_indices(100, 8, train=True, rng=rng)
        for i, v in enumerate(idx):
            assert starts[i] <= v <= ends[i]
            seen[i].add(int(v))
    assert all(seen[i] == set(range(starts[i], ends[i] + 1)) for i in range(8))  # whole segment reachable


def test_uniform_short_video_repeats_in_order():
    assert uniform_indices(3, 8, train=False).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert uniform_indices(1, 8, train=False).tolist() == [0] * 8
    rng = np.random.default_rng(0)
    for _ in range(100):
        idx = uniform_indices(3, 8, train=True, rng=rng)
        assert idx.min() >= 0 and idx.max() <= 2
        assert np.all(np.diff(idx) >= 0)
    for k in range(4):
        idx = uniform_indices(5, 8, train=False, clip_index=k, num_clips=4)
        assert idx.max() <= 4 and np.all(np.diff(idx) >= 0)


def test_dense_test_exact():
    # T=8, s=4: window 29, delta = 71
    assert dense_indices(100, 8, 4, train=False).tolist() == list(range(35, 64, 4))
    assert dense_indices(100, 8, 4, train=False, clip_index=0, num_clips=3).tolist() == list(range(0, 29, 4))
    assert dense_indices(100, 8, 4, train=False, clip_index=1, num_clips=3).tolist() == list(range(36, 65, 4))
    assert dense_indices(100, 8, 4, train=False, clip_index=2, num_clips=3).tolist() == list(range(71, 100, 4))


def test_dense_train_seeded():
    got = dense_indices(100, 8, 4, train=True, rng=np.random.default_rng(0))
    assert got.tolist() == dense_indices(100, 8, 4, train=True, rng=np.random.default_rng(0)).tolist()
    assert got.tolist() == list(range(61, 90, 4))  # regression value for seed 0
    assert np.all(np.diff(got) == 4)
    starts = {int(dense_indices(100, 8, 4, train=True, rng=np.random.default_rng(s))[0]) for s in range(3000)}
    assert starts == set(range(0, 72))


def test_dense_short_video_pads_with_last_frame():
    assert dense_indices(10, 8, 2, train=False).tolist() == [0, 2, 4, 6, 8, 9, 9, 9]
    rng = np.random.default_rng(0)
    assert dense_indices(10, 8, 2, train=True, rng=rng).tolist() == [0, 2, 4, 6, 8, 9, 9, 9]
    assert dense_indices(1, 4, 3, train=False).tolist() == [0, 0, 0, 0]


def test_sample_indices_dispatch_and_errors():
    assert sample_indices("uniform", 100, 8, train=False).tolist() == [6, 18, 31, 43, 56, 68, 80, 93]
    assert sample_indices("dense", 100, 8, stride=4, train=False).tolist() == list(range(35, 64, 4))
    with pytest.raises(ValueError, match="valid choices: uniform, dense"):
        sample_indices("sparse", 100, 8, train=False)
    with pytest.raises(ValueError, match="rng"):
        uniform_indices(100, 8, train=True)
    with pytest.raises(ValueError, match="num_frames_in_video"):
        uniform_indices(0, 8, train=False)
    with pytest.raises(ValueError, match="clip_index"):
        dense_indices(100, 8, 2, train=False, clip_index=3, num_clips=3)
    with pytest.raises(ValueError, match="stride"):
        dense_indices(100, 8, 0, train=False)
