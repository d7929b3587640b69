"""Checkpoint conversion: official parity, architecture inference, image weights, weights_only refusal."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from benchmarks.official_layout import OfficialLayoutUniFormerV2, official_layout_unsupported, randomize_
from tests.helpers import REPO
from uv2.__main__ import main as uv2_main
from uv2.io import CheckpointError, safe_load
from uv2.labels import class_rows, union_classes
from uv2.models import ModelConfig, build_model
from uv2.models.arming import build_vit
from uv2.models.convert import (
    OFFICIAL_NORMALISATION,
    checkpoint_normalisation,
    convert_official,
    from_official,
    infer_official_config,
    init_from_image_weights,
    init_model,
    load_image_weights,
    load_model,
    official_state_dict,
    save_checkpoint,
    slice_head,
)
from uv2.models.convert import main as convert_main
from uv2.models.uniformerv2 import UniFormerV2


# ------------------------------------------------------------------------------------------ the official fixture
def test_fixture_parity(official_fixture):
    path, io = official_fixture
    model = from_official(path)
    assert not model.training
    with torch.no_grad():
        logits = model(io["input"])
    torch.testing.assert_close(logits, io["logits"], rtol=0, atol=1e-4)


def test_fixture_inputs_forms(official_fixture):
    """A .pyth path, a {"model_state": ...} dict and a bare state dict give the same model."""
    path, io = official_fixture
    checkpoint = torch.load(path, weights_only=True)
    with torch.no_grad():
        from_dict = from_official(checkpoint)(io["input"])
        from_bare = from_official(checkpoint["model_state"])(io["input"])
    torch.testing.assert_close(from_dict, io["logits"], rtol=0, atol=1e-4)
    torch.testing.assert_close(from_bare, io["logits"], rtol=0, atol=1e-4)


def test_fixture_architecture_inferred(official_fixture):
    path, _ = official_fixture
    cfg = from_official(path).cfg
    vit = cfg.vit_cfg
    assert (vit.width, vit.depth, vit.patch_size, vit.img_size, vit.num_heads) == (128, 4, 8, 32, 2)
    assert cfg.t_down and cfg.local_type == "lmhra" and cfg.local_double and cfg.local_layers == "1-4"
    assert cfg.local_reduction == 1.5 and cfg.global_layers == "2-4" and cfg.num_classes == 10


def test_reference_layout_reproduces_fixture(official_fixture):
    """The official-layout oracle used below is itself checked against the official model's logits."""
    path, io = official_fixture
    reference = OfficialLayoutUniFormerV2().eval()
    state = official_state_dict(path)
    reference.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(reference(io["input"]), io["logits"], rtol=0, atol=1e-4)


OFFICIAL_DESIGNS = [
    # width, depth, patch, img, t_down, local, r, global blocks, classes, heads
    dict(width=128, depth=4, patch_size=8, img_size=32, t_down=False, local="none", num_global=4, num_classes=7),
    dict(width=128, depth=6, patch_size=8, img_size=48, t_down=True, local="single", reduction=2.0, num_global=2),
    dict(width=192, depth=3, patch_size=16, img_size=32, t_down=False, local="double", reduction=4.0, num_global=1,
         heads=3),
    dict(width=64, depth=5, patch_size=4, img_size=16, t_down=True, local="double", reduction=1.0, num_global=5),
]


@pytest.mark.parametrize("design", OFFICIAL_DESIGNS, ids=lambda d: f"w{d['width']}-{d['local']}-g{d['num_global']}")
def test_official_designs_parity_and_inference(design):
    generator = torch.Generator().manual_seed(1)
    reference = randomize_(OfficialLayoutUniFormerV2(**design), generator).eval()
    heads = design.get("heads")
    overrides = {"vit_overrides": {"heads": heads}} if heads else {}
    model = from_official(reference.official_state_dict(), num_frames=8, **overrides)
    cfg = model.cfg
    depth, num_global = design["depth"], design["num_global"]
    assert cfg.vit_cfg.width == design["width"] and cfg.vit_cfg.depth == depth
    assert cfg.vit_cfg.patch_size == design["patch_size"] and cfg.vit_cfg.img_size == design["img_size"]
    assert cfg.t_down == design["t_down"]
    assert cfg.local_type == ("none" if design["local"] == "none" else "lmhra")
    if design["local"] != "none":
        assert cfg.local_double == (design["local"] == "double")
        assert cfg.local_reduction == design.get("reduction", 1.5)
        assert cfg.local_layer_ids == list(range(depth))
    assert cfg.global_layer_ids == list(range(depth - num_global, depth))
    assert cfg.num_classes == design.get("num_classes", 10)
    x = torch.randn(2, 3, 8, design["img_size"], design["img_size"])
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-4)


FROM_CONFIG = [
    # K400-like: no local blocks at all (the official model's no_lmhra), global blocks on the last layers
    dict(local_type="none", global_layers="3-4"),
    # SSv2-like: local MHRA x2 everywhere, T-Down, with the training-time regularisation of the SSv2 recipe
    dict(local_type="lmhra", local_double=True, t_down=True, global_layers="2-4", drop_path=0.2,
         global_drop_path=0.4, checkpoint_blocks=2),
    # single local MHRA, global blocks on non-contiguous layers (the official return_list can be any list)
    dict(local_type="lmhra", local_double=False, local_reduction=2.0, global_layers="1,3"),
]


@pytest.mark.parametrize("arch", FROM_CONFIG, ids=["k400_like", "ssv2_like", "single_global_1_3"])
def test_reference_from_config_matches_uv2(arch):
    """OfficialLayoutUniFormerV2.from_config builds the design of a ModelConfig: its official state dict (no
    lmhra keys when local_type is none) loads into uv2 strictly and both give the same logits."""
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=7, **arch)
    reference = randomize_(OfficialLayoutUniFormerV2.from_config(cfg), torch.Generator().manual_seed(2)).eval()
    state = reference.state_dict()
    assert any(".lmhra" in k for k in state) == (arch["local_type"] != "none")
    assert any(".lmhra2." in k for k in state) == arch.get("local_double", False)
    assert reference.transformer.return_list == cfg.global_layer_ids
    model = UniFormerV2(cfg).eval()
    model.load_state_dict(convert_official(state, model), strict=True)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch,words", [
    (dict(local_type="st_adapter"), "local MHRA"),
    (dict(local_type="lmhra", local_layers="1-2"), "every layer"),
    (dict(local_type="lmhra", local_dpe=True), "no local DPE"),
    (dict(global_layers="none"), "global blocks"),
    (dict(global_dpe=False), "DPE"),
    (dict(fusion="parallel"), "Sequential"),
    (dict(num_queries=4), "one query"),
    (dict(vit_overrides={"act": "gelu"}), "CLIP-style"),
    (dict(frozen_backbone=True), "frozen"),
])
def test_reference_from_config_refuses_what_official_cannot_express(arch, words):
    cfg = ModelConfig(**{"vit": "tiny", "num_frames": 4, "global_layers": "3-4", **arch})
    assert words in official_layout_unsupported(cfg)
    with pytest.raises(ValueError, match=words):
        OfficialLayoutUniFormerV2.from_config(cfg)


def test_heads_default_to_width_over_64():
    reference = OfficialLayoutUniFormerV2(width=256, depth=2, num_global=1)
    fields = infer_official_config(official_state_dict(reference.official_state_dict()))
    assert fields["vit_overrides"]["heads"] == 4


def test_num_frames_read_from_pyslowfast_cfg(tmp_path, official_fixture):
    path, _ = official_fixture
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["cfg"] = "DATA:\n  NUM_FRAMES: 12\nMODEL:\n  NUM_CLASSES: 10\n"
    assert from_official(checkpoint).cfg.num_frames == 12


def test_not_an_official_checkpoint(tmp_path):
    bogus = tmp_path / "bogus.pyth"
    torch.save({"model_state": {"backbone.foo.weight": torch.zeros(2)}}, bogus)
    with pytest.raises(CheckpointError, match="bogus.pyth.*not an official"):
        from_official(bogus)


# ------------------------------------------------------------------------------------------- weights_only refusal
class _CodeRunningPickle:
    """Unpickling this would create a marker file (what a malicious checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pyth"
    torch.save({"model_state": {"backbone.conv1.weight": torch.zeros(1)}, "extra": _CodeRunningPickle(marker)}, evil)
    for loader in (from_official, load_model):
        with pytest.raises(CheckpointError, match=r"evil\.pyth.*refused"):
            loader(evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_image_weights(build_vit(ModelConfig(vit="tiny", global_layers="none").vit_cfg), evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=r"rejected it: [^()]*GLOBAL \w+"):  # torch's line naming it
        safe_load(evil)


@pytest.mark.parametrize("content,says", [
    (b"", "an empty file, not a checkpoint"),
    (b"not a checkpoint", "not a PyTorch checkpoint"),
    ("half", "a zip archive cut short or corrupted"),
    ("foreign zip", "a zip archive, but not one torch.save wrote"),
    ("legacy head", "not a readable PyTorch checkpoint, truncated or corrupted"),
    ("safetensors cut", "not a readable safetensors file, truncated or corrupted"),
], ids=["empty", "other format", "truncated", "foreign zip", "truncated legacy", "truncated safetensors"])
def test_a_file_that_is_no_checkpoint_is_named_as_such(tmp_path, content, says):
    """Bad files, not refusals: each raises a CheckpointError naming the file and what is wrong with it."""
    whole = tmp_path / "whole.pt"
    torch.save({"w": torch.ones(3)}, whole, _use_new_zipfile_serialization=content != "legacy head")
    data = whole.read_bytes()
    bad = tmp_path / "bad.pt"
    if content == "foreign zip":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("weights.npy", b"0")
    elif content == "safetensors cut":
        save_file({"w": torch.ones(64)}, bad)
        bad.write_bytes(bad.read_bytes()[:-16])
    else:
        bad.write_bytes({"half": data[: len(data) // 2], "legacy head": data[:20]}.get(content, content))
    with pytest.raises(CheckpointError, match=f"bad.pt: {says}") as caught:
        safe_load(bad)
    assert "refused" not in str(caught.value)


# ------------------------------------------------------------------------------------------- image weights
_TIMM_TO_CLIP = [
    ("patch_embed.proj", "conv1"), ("pos_embed", "positional_embedding"), ("cls_token", "class_embedding"),
    ("blocks.", "transformer.resblocks."), ("norm_pre", "ln_pre"), ("norm1", "ln_1"), ("norm2", "ln_2"),
    ("attn.qkv.", "attn.in_proj_"), ("attn.proj", "attn.out_proj"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj"),
    ("norm.", "ln_post."),
]


def clip_visual_state(vit: nn.Module) -> dict[str, torch.Tensor]:
    """An OpenAI-CLIP-format visual state dict holding `vit`'s weights (what clip's vit_b16.pth holds)."""
    out = {}
    for key, value in vit.state_dict().items():
        if key.startswith("head"):
            continue
        for old, new in _TIMM_TO_CLIP:
            key = key.replace(old, new)
        if key == "class_embedding":
            value = value.flatten()
        elif key == "positional_embedding":
            value = value[0]
        out[key] = value.clone()
    out["proj"] = torch.randn(vit.embed_dim, 16)
    return out


class _Tree(nn.Module):
    """A module whose state dict is exactly the given tensors (to write a TorchScript archive of a CLIP model)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        children: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            head, _, rest = key.partition(".")
            if rest:
                children.setdefault(head, {})[rest] = value
            else:
                self.register_parameter(head, nn.Parameter(value))
        for name, sub in children.items():
            self.add_module(name, _Tree(sub))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.fixture(scope="module")
def pretrained_vit():
    cfg = ModelConfig(vit="tiny", global_layers="none").vit_cfg
    vit = build_vit(cfg)
    with torch.no_grad():
        for p in vit.parameters():
            p.copy_(torch.randn_like(p))
    return vit


def _write_clip_forms(vit: nn.Module, folder: Path) -> dict[str, Path]:
    visual = clip_visual_state(vit)
    forms = {"extracted": folder / "vit_visual.pth", "full_clip": folder / "clip_full.pt",
             "torchscript": folder / "clip_jit.pt", "timm": folder / "timm_vit.pth",
             "open_clip_timm": folder / "open_clip_timm.pt", "timm_safetensors": folder / "model.safetensors",
             "open_clip_safetensors": folder / "open_clip_model.safetensors"}
    torch.save(visual, forms["extracted"])
    full = {f"visual.{k}": v for k, v in visual.items()}
    full.update({"token_embedding.weight": torch.randn(10, 8), "logit_scale": torch.tensor(4.6)})
    torch.save(full, forms["full_clip"])
    with pytest.warns(FutureWarning):
        torch.jit.save(torch.jit.script(_Tree(full)), forms["torchscript"])
    torch.save(vit.state_dict(), forms["timm"])
    torch.save({f"visual.trunk.{k}": v for k, v in vit.state_dict().items()}, forms["open_clip_timm"])
    # the hub's format for timm and open_clip weights
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, forms["timm_safetensors"])
    save_file({f"visual.{k}": v.contiguous() for k, v in visual.items()}, forms["open_clip_safetensors"])
    return forms


def test_image_weights_every_format(tmp_path, pretrained_vit):
    forms = _write_clip_forms(pretrained_vit, tmp_path)
    expected = {k: v for k, v in pretrained_vit.state_dict().items() if not k.startswith(("head", "norm."))}
    for name, path in forms.items():
        target = build_vit(ModelConfig(vit="tiny", global_layers="none").vit_cfg)
        report = load_image_weights(target, path)
        assert not report.missing, (name, report.summary())
        assert set(expected) <= set(report.loaded), name
        state = target.state_dict()
        for key, value in expected.items():
            torch.testing.assert_close(state[key], value, msg=f"{name}: {key}")


def test_image_weights_report_unexpected(tmp_path, pretrained_vit):
    state = dict(pretrained_vit.state_dict())
    state["blocks.0.extra.weight"] = torch.zeros(3)
    del state["blocks.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "partial.pth")
    report = load_image_weights(build_vit(pretrained_vit_cfg()), tmp_path / "partial.pth")
    assert report.unexpected == ["blocks.0.extra.weight"]
    assert report.missing == ["blocks.1.mlp.fc2.bias"]
    assert "1 missing" in report.summary() and "blocks.0.extra.weight" in report.summary()


def pretrained_vit_cfg():
    return ModelConfig(vit="tiny", global_layers="none").vit_cfg


def test_not_a_vit_state_dict(tmp_path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pth")
    with pytest.raises(CheckpointError, match="resnet.pth: not a CLIP, open_clip or timm"):
        load_image_weights(build_vit(pretrained_vit_cfg()), tmp_path / "resnet.pth")


@pytest.mark.parametrize("t_down", [False, True])
def test_init_from_clip_inflates_stem(tmp_path, pretrained_vit, t_down):
    torch.save(clip_visual_state(pretrained_vit), tmp_path / "clip.pth")
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=3, global_layers="3-4", t_down=t_down)
    model, report = init_from_image_weights(cfg, tmp_path / "clip.pth")
    assert not report.missing
    weight_3d, weight_2d = model.patch_embed.proj.weight, pretrained_vit.patch_embed.proj.weight
    assert weight_3d.shape[2] == (3 if t_down else 1)
    centre = weight_3d.shape[2] // 2
    torch.testing.assert_close(weight_3d[:, :, centre], weight_2d)
    assert weight_3d.abs().sum().item() == pytest.approx(weight_2d.abs().sum().item(), rel=1e-5)  # other slices zero
    torch.testing.assert_close(model.blocks[2].mlp.fc1.weight, pretrained_vit.blocks[2].mlp.fc1.weight)


def test_init_model_reads_extracted_clip_weights_as_image_weights(tmp_path, pretrained_vit):
    """CLIP's extracted visual weights share their keys with an official checkpoint (conv1, transformer.resblocks)
    but hold a 2D patch kernel: model.init_from arms them as image weights (the stem inflated for T-Down), and
    from_official refuses them, naming the file."""
    torch.save(clip_visual_state(pretrained_vit), tmp_path / "clip.pth")
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=3, global_layers="3-4", t_down=True)
    model, report = init_model(cfg, tmp_path / "clip.pth")
    assert not report.missing and report.normalisation is None
    torch.testing.assert_close(model.patch_embed.proj.weight[:, :, 1], pretrained_vit.patch_embed.proj.weight)
    with pytest.raises(CheckpointError, match=r"clip\.pth: not an official UniFormerV2 checkpoint: its conv1"):
        from_official(tmp_path / "clip.pth")


def test_init_from_clip_resamples_position_embedding(tmp_path, pretrained_vit):
    torch.save(clip_visual_state(pretrained_vit), tmp_path / "clip.pth")
    cfg = ModelConfig(vit="tiny", vit_overrides={"img_size": 48}, num_classes=3, global_layers="4")
    model, report = init_from_image_weights(cfg, tmp_path / "clip.pth")
    assert model.pos_embed.shape == (1, 1 + 36, 128) and not report.missing


# ------------------------------------------------------------------------------------- uv2 checkpoints and CLI
def test_uv2_checkpoint_roundtrip(tmp_path):
    model = randomize_(UniFormerV2Tiny()).eval()
    save_checkpoint(model, tmp_path / "m.ckpt")
    loaded = load_model(tmp_path / "m.ckpt")
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert loaded.cfg == model.cfg


def UniFormerV2Tiny():
    from uv2.models import build_model

    return build_model(ModelConfig(vit="tiny", num_frames=4, num_classes=6, global_layers="2-4", fusion="parallel"))


def test_load_with_other_class_count_resets_head(tmp_path):
    model = UniFormerV2Tiny()
    save_checkpoint(model, tmp_path / "m.ckpt")
    loaded = load_model(tmp_path / "m.ckpt", num_classes=9)
    assert loaded.head.fc.out_features == 9
    torch.testing.assert_close(loaded.blocks[0].attn.qkv.weight, model.blocks[0].attn.qkv.weight)


def test_convert_cli(tmp_path, official_fixture):
    path, io = official_fixture
    out = tmp_path / "tiny_A.ckpt"
    result = subprocess.run([sys.executable, "-m", "uv2", "convert", "official", str(path), str(out)],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert "width 128, depth 4" in result.stdout and "T-Down True" in result.stdout
    with torch.no_grad():
        torch.testing.assert_close(load_model(out)(io["input"]), io["logits"], rtol=0, atol=1e-4)


def test_checkpoints_say_what_normalisation_their_weights_trained_on(tmp_path):
    """An official .pyth: PySlowFast's 0.45 / 0.225, which `convert official` and `slice-head` write into the uv2
    checkpoint; a uv2 checkpoint that records none, and image weights: unknown."""
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=3, local_type="none", global_layers="3-4")
    official = tmp_path / "official.pyth"
    torch.save(randomize_(OfficialLayoutUniFormerV2.from_config(cfg)).official_state_dict(), official)
    assert checkpoint_normalisation(safe_load(official)) == OFFICIAL_NORMALISATION
    assert convert_main(["official", str(official), str(tmp_path / "converted.ckpt")]) == 0
    assert checkpoint_normalisation(safe_load(tmp_path / "converted.ckpt")) == OFFICIAL_NORMALISATION
    classes = _classes_file(tmp_path / "classes.txt", ["a", "b", "c"])
    assert convert_main(["slice-head", str(official), str(tmp_path / "sliced.ckpt"), "--target-classes",
                         str(_classes_file(tmp_path / "target.txt", ["c", "a"])), "--source-classes", str(classes)]) == 0
    assert checkpoint_normalisation(safe_load(tmp_path / "sliced.ckpt")) == OFFICIAL_NORMALISATION
    save_checkpoint(UniFormerV2(cfg), tmp_path / "plain.ckpt")
    assert checkpoint_normalisation(safe_load(tmp_path / "plain.ckpt")) is None
    assert checkpoint_normalisation(clip_visual_state(build_vit(cfg.vit_cfg))) is None


def test_convert_cli_bad_file(tmp_path, capsys):
    """Through the entry point's main, in this process: exit status 2, the file named, nothing written."""
    (tmp_path / "garbage.pyth").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exit_:  # convert's argparse error
        uv2_main(["convert", "official", str(tmp_path / "garbage.pyth"), str(tmp_path / "o.ckpt")])
    assert exit_.value.code == 2 and "garbage.pyth: not a PyTorch checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "o.ckpt").exists()
    assert uv2_main(["convert", "official", str(tmp_path / "garbage.pyth"), str(tmp_path / "garbage.pyth" / "o")]) == 2
    assert f"dst {tmp_path / 'garbage.pyth'}: cannot create this folder" in capsys.readouterr().err  # said first


# ------------------------------------------------------------------------------ K710 heads sliced by class name
# Kinetics-like class lists: K600 / K700 add classes and respell two of K400's, so the union has 8 names, not 6
K400 = ["abseiling", "dying hair", "passing American football (in game)", "zumba"]
K600 = ["abseiling", "dyeing hair", "passing American football (in game)", "tasting wine", "zumba"]
K700 = ["abseiling", "dyeing hair", "passing american football (in game)", "tasting wine", "zumba", "yarn spinning"]


def _classes_file(path: Path, names: list[str]) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


def test_k710_label_set_round_trips_class_names():
    """The union of the three sets by name, and each set's classes read back through its rows of the union; the
    official K710 order (K400's 400 classes first) puts K400 at rows 0..399, which the official code slices as
    [:400]."""
    k710 = union_classes([K400, K600, K700])
    assert len(k710) == 8 and k710 == sorted(set(K400 + K600 + K700))
    for names in (K400, K600, K700):
        assert [k710[i] for i in class_rows(k710, names)] == names
    official_order = K400 + [n for n in k710 if n not in K400]
    assert class_rows(official_order, K400) == list(range(len(K400)))
    assert [official_order[i] for i in class_rows(official_order, K700)] == K700
    with pytest.raises(ValueError, match=r"not in .*'dyeing hair' \(closest: 'dying hair'\)"):
        class_rows(K400, K600)


def test_slice_head_cli_uv2_checkpoint(tmp_path, capsys):
    """A K710-like head sliced to a set's classes keeps the logits of exactly those classes, in the set's order, and
    the written checkpoint stores the set's names, so a second slice (K600 -> two of its classes) works too."""
    k710 = union_classes([K400, K600, K700])
    model = randomize_(build_model(ModelConfig(vit="tiny", num_frames=4, num_classes=len(k710),
                                               global_layers="2-4"))).eval()
    save_checkpoint(model, tmp_path / "k710.ckpt", class_names=k710)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        full = model(x)
    for name, names in (("k600", K600), ("k700", K700)):
        out = tmp_path / f"{name}_head.ckpt"
        assert convert_main(["slice-head", str(tmp_path / "k710.ckpt"), str(out), "--target-classes",
                             str(_classes_file(tmp_path / f"{name}.txt", names))]) == 0
        assert f"the {len(names)} classes of" in capsys.readouterr().out
        sliced = load_model(out)
        assert sliced.cfg.num_classes == len(names) and safe_load(out)["class_names"] == names
        with torch.no_grad():
            torch.testing.assert_close(sliced(x), full[:, [k710.index(n) for n in names]])
    again = slice_head(tmp_path / "k600_head.ckpt", ["zumba", "abseiling"])
    with torch.no_grad():
        torch.testing.assert_close(again(x), full[:, [k710.index("zumba"), k710.index("abseiling")]])


def test_slice_head_official_checkpoint(tmp_path, official_fixture, capsys):
    """An official .pyth stores no class names: --source-classes gives its head's order; without it, or with a list
    of another length, the error says what to give."""
    path, io = official_fixture
    names = [f"class {i}" for i in range(10)]
    source = _classes_file(tmp_path / "k710_order.txt", names)
    target = _classes_file(tmp_path / "target.txt", ["class 7", "class 2"])
    out = tmp_path / "sliced.ckpt"
    argv = ["slice-head", str(path), str(out), "--target-classes", str(target)]
    assert convert_main([*argv, "--source-classes", str(source)]) == 0
    with torch.no_grad():
        torch.testing.assert_close(load_model(out)(io["input"]), io["logits"][:, [7, 2]], rtol=0, atol=1e-4)
    with pytest.raises(SystemExit) as exit_info:
        convert_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "stores no class names (an official .pyth)" in err and "--source-classes" in err
    with pytest.raises(CheckpointError, match="its head has 10 classes but the source class list names 3"):
        slice_head(path, ["class 1"], names[:3])


def test_class_rows_repeats():
    """Stacked co-training heads repeat a class once per set; a source head naming a class twice is ambiguous."""
    assert class_rows(["a", "b", "c"], ["b", "a", "b"]) == [1, 0, 1]
    with pytest.raises(ValueError, match=r"the source classes: class names listed twice: 'a'"):
        class_rows(["a", "b", "a"], ["b"])
