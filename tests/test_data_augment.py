"""The per-batch work after the transfer (uv2.data.augment): every RandAugment op against timm's PIL op, whole
RandAugment plans against the CPU path, and the batch path (decoder crop + BatchAugment) against TrainClipTransform."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image
from timm.data import auto_augment as timm_aa

from uv2.data.augment import RAND_AUGMENT_OPS, AugmentProgram, BatchAugment, BatchRandAugment, apply_plan, normalize
from uv2.data.transforms import (
    CLIP_MEAN,
    CLIP_STD,
    ClipRandAugment,
    EvalClipTransform,
    TrainClipTransform,
    TransformConfig,
    normalize_clip,
)

FILL = (123, 117, 104)  # round(255 * CLIP_MEAN): timm's fill colour for geometric ops


def _frames(seed: int = 0) -> torch.Tensor:
    """uint8 (8, 3, 40, 56): four noise frames and four smooth ones (natural images are mostly the latter)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(0, 256, (4, 3, 40, 56), dtype=torch.uint8, generator=g)
    smooth = F.avg_pool2d(noise.float(), 5, 1, 2).round().to(torch.uint8)
    return torch.cat([noise, smooth])


# (timm op name, timm's image function, arguments): every op of the increasing, plain, weights and 3a sets
CASES = [
    ("AutoContrast", timm_aa.auto_contrast, ()),
    ("Equalize", timm_aa.equalize, ()),
    ("Invert", timm_aa.invert, ()),
    ("Posterize", timm_aa.posterize, (3,)),
    ("Posterize", timm_aa.posterize, (8,)),
    ("Solarize", timm_aa.solarize, (100,)),
    ("Solarize", timm_aa.solarize, (256,)),
    ("SolarizeAdd", timm_aa.solarize_add, (60,)),
    ("Color", timm_aa.color, (1.6,)),
    ("Color", timm_aa.color, (0.3,)),
    ("Contrast", timm_aa.contrast, (1.7,)),
    ("Contrast", timm_aa.contrast, (0.2,)),
    ("Brightness", timm_aa.brightness, (1.4,)),
    ("Brightness", timm_aa.brightness, (0.35,)),
    ("Sharpness", timm_aa.sharpness, (1.8,)),
    ("Sharpness", timm_aa.sharpness, (0.1,)),
    ("Desaturate", timm_aa.desaturate, (0.7,)),
    ("Rotate", timm_aa.rotate, (17.3,)),
    ("Rotate", timm_aa.rotate, (-30.0,)),
    ("Rotate", timm_aa.rotate, (0.0,)),
    ("ShearX", timm_aa.shear_x, (0.21,)),
    ("ShearY", timm_aa.shear_y, (-0.3,)),
    ("TranslateXRel", timm_aa.translate_x_rel, (0.23,)),
    ("TranslateYRel", timm_aa.translate_y_rel, (-0.37,)),
    ("TranslateX", timm_aa.translate_x_abs, (7.5,)),
    ("TranslateY", timm_aa.translate_y_abs, (-4.0,)),
    ("GaussianBlur", timm_aa.gaussian_blur, (1.3,)),
    ("GaussianBlur", timm_aa.gaussian_blur, (0.4,)),
]


@pytest.mark.parametrize("name, pil_op, args", CASES, ids=[f"{c[0]}{c[2]}" for c in CASES])
def test_each_op_matches_timm_pil(name, pil_op, args):
    """Each torch op gives PIL's uint8 values: exactly, but for GaussianBlur (PIL's fixed-point box passes)."""
    frames = _frames()
    images = rearrange(frames, "n c h w -> n h w c").numpy()
    expected = np.stack([np.asarray(pil_op(Image.fromarray(im), *args, fillcolor=FILL, resample=Image.BILINEAR))
                         for im in images])
    out = apply_plan(frames, [(name, args)], FILL)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    diff = np.abs(rearrange(out, "n c h w -> n h w c").numpy().astype(int) - expected.astype(int))
    if name == "GaussianBlur":
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    else:
        assert diff.max() == 0, f"{name}{args}: {int((diff > 0).sum())} values differ, by up to {diff.max()}"
    if name not in ("Posterize", "Solarize", "Rotate") or args not in ((8,), (256,), (0.0,)):
        assert not torch.equal(out, frames), f"{name}{args} changed nothing: the comparison would prove little"


@pytest.mark.parametrize("config", ["rand-m7-n4-mstd0.5-inc1", "rand-m9-n3-mstd0.5", "rand-m9-n3-tweights",
                                    "rand-m6-n2-t3aw"])
def test_plans_replay_timm_and_match_the_cpu_path(config):
    """The plan of a seed holds timm's draws: the torch ops applied by it reproduce ClipRandAugment (timm on PIL,
    every frame seeded alike) to the value, over seeds that hit many different ops."""
    cpu = ClipRandAugment(config, image_size=40)
    batch = BatchRandAugment(config, image_size=40, mean=CLIP_MEAN)
    clip = _frames(1)[4:]  # smooth frames
    names = set()
    for seed in range(12):
        plan = batch.plan(seed)
        names |= {name for name, _ in plan}
        expected = cpu(clip, seed)
        out = batch.apply(clip, plan)
        diff = (out.int() - expected.int()).abs()
        if any(name.startswith("GaussianBlur") for name, _ in plan):
            assert diff.max() <= 2 and (diff > 0).float().mean() < 0.02, f"seed {seed}: {plan}"
        else:
            assert diff.max() == 0, f"seed {seed}: plan {plan} differs by up to {int(diff.max())}"
        assert batch.plan(seed) == plan  # the seed fixes the plan
    assert len(names) >= 6, names


# (device, grouped): the CPU's clip-by-clip and grouped passes (the GPU's way, tested here on the CPU), the GPU's
RUNS = [("cpu", False), ("cpu", True)] + ([("cuda", None)] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device, grouped", RUNS)
def test_a_batch_program_equals_each_clip_alone(device, grouped):
    """One program over a batch of clips with mixed plans (every op of CASES, 0-4 ops per clip, so that the passes
    mix codes of a family and clips of different rounds) gives each clip what its plan gives it alone, in a few
    passes: one per family and round. Grouped or clip by clip, on a GPU (where present) too, the values are the
    same."""
    rng = random.Random(5)
    plans = [[CASES[rng.randrange(len(CASES))][::2] for _ in range(rng.randrange(5))] for _ in range(24)]
    plans[0] = [(name, args) for name, _, args in CASES]  # every op in one clip
    g = torch.Generator().manual_seed(2)
    video = F.avg_pool3d(torch.randint(0, 256, (24, 3, 3, 20, 28), generator=g).float(), 3, 1, 1).round()
    video = video.to(torch.uint8)
    expected = torch.stack([rearrange(apply_plan(rearrange(clip, "c t h w -> t c h w"), plan, FILL),
                                      "t c h w -> c t h w") for clip, plan in zip(video, plans)])
    program = AugmentProgram.build(plans, 20, 28)
    out = program.run(video.clone().to(device), FILL, grouped).cpu()
    assert torch.equal(out, expected)
    assert not torch.equal(out, video)
    rounds = [set() for _ in range(max(map(len, plans)))]  # the families of each round
    for plan in plans:
        ops = [name for name, args in plan if not (name == "Posterize" and args == (8,))]  # 8 bits: no op
        for k, name in enumerate(ops):
            rounds[k].add(RAND_AUGMENT_OPS[name][0])
    assert len(program.passes) == sum(map(len, rounds))
    few = AugmentProgram.build(plans[1:], 20, 28)  # 0-4 ops per clip: at most 4 rounds of 4 families
    assert len(few.passes) <= 16 < len(few)


def test_posterize_to_zero_bits_is_black():
    """timm's PosterizeIncreasing reaches 0 bits at magnitude 10, which recent Pillow rejects; the batch op keeps
    PIL's former answer."""
    assert not apply_plan(_frames(), [("PosterizeIncreasing", (0,))], FILL).any()


def test_planning_leaves_the_global_random_state_alone():
    batch = BatchRandAugment("rand-m9-n4-mstd0.5-inc1", image_size=32, mean=CLIP_MEAN)
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    batch.plan(123)
    assert (random.random(), np.random.rand()) == expected


def test_an_op_without_a_batched_version_is_named(monkeypatch):
    """A timm op set that gains an op uv2 has no torch version of fails at construction, naming it."""
    import uv2.data.augment as augment_module

    monkeypatch.delitem(augment_module.RAND_AUGMENT_OPS, "Rotate")
    with pytest.raises(ValueError, match=r"ops \['Rotate'\] have no batched version; supported: AutoContrast"):
        BatchRandAugment("rand-m9-n2", image_size=32, mean=CLIP_MEAN)


@pytest.mark.parametrize("rand_augment", [None, "rand-m7-n4-mstd0.5-inc1"])
@pytest.mark.parametrize("train_crop", ["random_resized", "jitter"])
def test_batch_path_equals_cpu_path(rand_augment, train_crop):
    """The same draws (crop box, flip, RandAugment seed) give the same float clips on both paths: the CPU path
    (TrainClipTransform, one clip at a time) and the batch path (the crop, then BatchAugment on a batch)."""
    cfg = TransformConfig(crop_size=24, train_crop=train_crop, rand_augment=rand_augment, jitter_short_side=(28, 40))
    transform = TrainClipTransform(cfg)
    augment = BatchAugment(cfg)
    g = torch.Generator().manual_seed(3)
    clips = [F.avg_pool2d(torch.randint(0, 256, (6, 3, 40, 56), generator=g).float(), 3, 1, 1).round().to(torch.uint8)
             for _ in range(6)]
    rng = np.random.default_rng(0)
    draws = [transform.draw(40, 56, rng) for _ in clips]
    assert any(d.flip for d in draws) and not all(d.flip for d in draws)
    expected = torch.stack([transform.apply(clip, d) for clip, d in zip(clips, draws)])
    video = torch.stack([rearrange(transform.crop(clip, d.box), "t c h w -> c t h w") for clip, d in zip(clips, draws)])
    batch = {"video": video, "label": torch.arange(6), "aug_flip": torch.tensor([d.flip for d in draws]),
             "aug_seed": torch.tensor([d.seed for d in draws])}
    out = augment(augment.before_transfer(batch))
    assert out["video"].dtype == torch.float32 and out["video"].shape == expected.shape == (6, 3, 6, 24, 24)
    assert set(out) == {"video", "label"}
    torch.testing.assert_close(out["video"], expected, rtol=0, atol=1e-6)


def test_eval_batches_are_only_normalised():
    cfg = TransformConfig(crop_size=16)
    clip = _frames()[:4, :, :16, :16]  # (T, C, H, W)
    expected = EvalClipTransform(cfg)(clip)
    batch = {"video": rearrange(clip, "t c h w -> 1 c t h w").contiguous(), "aug_flip": torch.tensor([False]),
             "aug_seed": torch.tensor([-1])}
    out = BatchAugment(cfg)(batch)["video"][0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(normalize(clip, CLIP_MEAN, CLIP_STD), rearrange(normalize_clip(clip, CLIP_MEAN, CLIP_STD),
                                                                               "c t h w -> t c h w"))


def test_images_and_float_batches():
    cfg = TransformConfig(crop_size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    augment = BatchAugment(cfg)
    image = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 3, 8, 8)
    out = augment({"image": image, "label": torch.tensor([0, 1]), "aug_flip": torch.tensor([True, False])})
    expected = (image.float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(out["image"][0], expected[0].flip(-1))
    torch.testing.assert_close(out["image"][1], expected[1])
    floats = {"video": torch.zeros(1, 3, 2, 8, 8), "label": torch.tensor([0])}
    assert augment(floats) is floats  # a float batch (a custom loader) passes unchanged
    with pytest.raises(TypeError, match="uint8"):
        augment.clips(torch.zeros(1, 3, 2, 8, 8))
