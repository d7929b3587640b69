"""Clip transforms (uv2.data.transforms): one set of ops per clip, RandAugment parsing, eval crops, normalisation."""

import numpy as np
import pytest
import torch

from uv2.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    ClipRandAugment,
    EvalClipTransform,
    TrainClipTransform,
    TransformConfig,
    parse_rand_augment,
)

RA = "rand-m7-n4-mstd0.5-inc1"


def _clip(t=6, h=40, w=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, 3, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize("train_crop", ["random_resized", "jitter"])
@pytest.mark.parametrize("rand_augment", [None, RA])
def test_train_ops_identical_on_every_frame(train_crop, rand_augment):
    """Each output frame equals the transform of that frame alone with the same RNG: same crop/flip/RandAugment."""
    cfg = TransformConfig(crop_size=24, train_crop=train_crop, rand_augment=rand_augment, jitter_short_side=(28, 40))
    transform = TrainClipTransform(cfg)
    clip = _clip()
    for seed in range(4):
        out = transform(clip, np.random.default_rng(seed))
        assert out.shape == (3, 6, 24, 24) and out.dtype == torch.float32
        for t in range(clip.shape[0]):
            alone = transform(clip[t : t + 1], np.random.default_rng(seed))
            torch.testing.assert_close(out[:, t], alone[:, 0], rtol=0, atol=1e-6)


def test_rand_augment_same_ops_and_magnitudes_for_all_frames():
    """With magnitude noise (mstd) and random op choice, identical frames must still come out identical."""
    aug = ClipRandAugment(RA, image_size=32)
    frame = _clip(1, 32, 32)
    clip = frame.repeat(8, 1, 1, 1)
    changed = 0
    for seed in range(10):
        out = aug(clip, seed)
        assert all(torch.equal(out[0], out[t]) for t in range(8)), f"seed {seed}: frames got different ops"
        changed += not torch.equal(out[0], frame[0])
        assert torch.equal(out, aug(clip, seed))  # the seed fixes the ops
    assert changed >= 5  # it really augments
    outs = {aug(clip, s)[0].numpy().tobytes() for s in range(10)}
    assert len(outs) > 3  # different seeds, different ops


def test_rand_augment_restores_global_rng_state():
    import random

    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    ClipRandAugment(RA, image_size=16)(_clip(2, 16, 16), seed=5)
    assert (random.random(), np.random.rand()) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ("augmix-m5", "must start with 'rand'"),
        ("rand-m7-x4", "bad section 'x4'"),
        ("rand-m7-n", "bad section 'n'"),
        ("rand-inc3", "inc must be 0 or 1"),
        ("rand-tnope", "unknown transform set"),
        ("rand-m7.5", "needs a int value"),
        ("", "non-empty string"),
    ],
)
def test_rand_augment_string_errors(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_rand_augment(bad)
    assert "valid" in str(err.value) or "rand" in str(err.value)
    with pytest.raises(ValueError):
        TransformConfig(rand_augment=bad)


def test_rand_augment_string_parsing():
    assert parse_rand_augment("rand-m7-n4-mstd0.5-inc1") == {"m": 7, "n": 4, "mstd": 0.5, "inc": 1}
    assert parse_rand_augment("rand-m9-mstd0.5-tweights") == {"m": 9, "mstd": 0.5, "t": "weights"}


def test_flip_off_never_flips_and_on_flips_sometimes():
    clip = _clip(2, 24, 24)
    cfg = dict(crop_size=24, scale=(1.0, 1.0), ratio=(1.0, 1.0))  # full-frame crop: only the flip can change it
    no_flip = TrainClipTransform(TransformConfig(flip=False, **cfg))
    flip = TrainClipTransform(TransformConfig(flip=True, **cfg))
    base = EvalClipTransform(TransformConfig(crop_size=24))(clip)
    flips = 0
    for seed in range(20):
        torch.testing.assert_close(no_flip(clip, np.random.default_rng(seed)), base)
        out = flip(clip, np.random.default_rng(seed))
        if not torch.allclose(out, base):
            torch.testing.assert_close(out, base.flip(-1))
            flips += 1
    assert 3 <= flips <= 17


def test_eval_three_crops_along_long_side_and_normalisation():
    h, w = 32, 64
    ramp = torch.linspace(0, 255, w).round().to(torch.uint8)
    clip = ramp.view(1, 1, 1, w).expand(2, 3, h, w).contiguous()
    cfg = TransformConfig(crop_size=16, short_side=16)  # 32x64 -> 16x32, crops at x = 0, 8, 16
    ev = EvalClipTransform(cfg)
    means = [ev(clip, i, 3)[0].mean().item() for i in range(3)]
    assert means[0] < means[1] < means[2]
    torch.testing.assert_close(ev(clip, 1, 3), ev(clip, 0, 1))  # the centre of 3 is the single centre crop
    portrait = clip.transpose(-1, -2).contiguous()  # 64x32: crops go top/centre/bottom
    pmeans = [ev(portrait, i, 3)[0].mean().item() for i in range(3)]
    assert pmeans[0] < pmeans[1] < pmeans[2]
    flat = torch.full((1, 3, 16, 16), 128, dtype=torch.uint8)
    out = EvalClipTransform(TransformConfig(crop_size=16))(flat)
    expected = (128 / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(out[:, 0, 0, 0], expected)
    assert out.shape == (3, 1, 16, 16)


def test_config_validation_messages():
    with pytest.raises(ValueError, match="valid choices: random_resized, jitter"):
        TransformConfig(train_crop="center")
    with pytest.raises(ValueError, match="short_side"):
        TransformConfig(crop_size=32, short_side=16)
    with pytest.raises(ValueError, match="scale"):
        TransformConfig(scale=(0.5, 1.5))
