"""The UniFormerV2 model: every switch builds and trains, fusion strategies differ, zero-init, config errors."""

from __future__ import annotations

import pytest
import torch

from benchmarks.official_layout import randomize_
from uv2.models import ConfigError, ModelConfig, build_model
from uv2.models.arming import build_vit
from uv2.models.uniformerv2 import UniFormerV2

TINY = dict(vit="tiny", num_frames=4, num_classes=5, global_layers="3-4", head_dropout=0.0, global_mlp_dropout=0.0)
LOCAL_TYPES = ["none", "lmhra", "temporal_mhsa", "temporal_conv", "st_adapter"]
FUSIONS = ["sequential", "parallel", "hierarchical_kv", "hierarchical_q"]


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{**TINY, **overrides})


def video(batch: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size)


def check_trains(model: UniFormerV2, x: torch.Tensor) -> None:
    """Forward gives (B, classes) logits; backward reaches every trainable parameter with finite gradients."""
    model.train()
    logits = model(x)
    assert logits.shape == (x.shape[0], model.cfg.num_classes)
    logits.logsumexp(-1).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("local_type", LOCAL_TYPES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_local_type_and_fusion_train(local_type, fusion):
    check_trains(build_model(tiny(local_type=local_type, fusion=fusion)), video())


@pytest.mark.parametrize(
    "switches",
    [
        dict(local_layers="1-2", local_reduction=4.0),
        dict(local_layers="2,4", local_double=False, local_dpe=True),
        dict(local_type="st_adapter", local_dpe=True, local_reduction=1.0),
        dict(t_down=True),
        dict(global_layers="none"),
        dict(global_layers="1-4", global_dpe=False),
        dict(num_queries=4),
        dict(num_queries=16, fusion="hierarchical_q"),
        dict(num_queries=4, fusion="parallel"),
        dict(drop_path=0.3, global_drop_path=0.4, head_dropout=0.5, global_mlp_dropout=0.5),
        dict(checkpoint_blocks=2),
        dict(local_kernel=5, vit_overrides={"img_size": 48}),
    ],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_switches_train(switches):
    cfg = tiny(**switches)
    size = cfg.vit_cfg.img_size
    check_trains(build_model(cfg), video(size=size))


def test_t_down_halves_token_frames():
    model = build_model(tiny(t_down=True, num_frames=8)).eval()
    tokens, grid = model.embed(video(frames=8))
    assert grid == (2, 4, 4, 4) and tokens.shape == (2 * 4, 17, 128)


def test_frozen_backbone_trains_only_new_modules():
    model = build_model(tiny(frozen_backbone=True, local_type="lmhra"))
    frozen = {id(p) for p in model.backbone_parameters()}
    assert frozen and all(not p.requires_grad for p in model.backbone_parameters())
    assert model.head.balance is None  # logits from the global branch only
    check_trains(model, video())
    assert all(p.grad is None for p in model.parameters() if id(p) in frozen)
    assert all(p.requires_grad for p in model.new_parameters())


def test_new_parameters_partition():
    model = build_model(tiny(local_type="lmhra"))
    backbone, new = model.backbone_parameters(), model.new_parameters()
    assert len(backbone) + len(new) == len(list(model.parameters()))
    vit_params = sum(p.numel() for n, p in build_vit(model.cfg.vit_cfg).named_parameters()
                     if not n.startswith(("norm.", "head.")))
    assert sum(p.numel() for p in backbone) == vit_params


def test_activation_checkpointing_same_gradients():
    cfg = tiny(local_type="lmhra", drop_path=0.0)
    plain, ckpt = build_model(cfg), build_model(tiny(local_type="lmhra", checkpoint_blocks=4))
    randomize_(plain)
    ckpt.load_state_dict(plain.state_dict())
    x = video()
    for model in (plain, ckpt):
        model.train()
        model(x).square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def _shared_weights_model(fusion: str, reference: UniFormerV2) -> UniFormerV2:
    """A model of another fusion strategy holding `reference`'s weights wherever the two share a role."""
    model = build_model(tiny(fusion=fusion, num_queries=2))
    model.load_state_dict(reference.state_dict(), strict=False)
    if fusion != "sequential":
        with torch.no_grad():
            model.fusion.queries.copy_(reference.fusion.query.expand_as(model.fusion.queries))
    return model.eval()


def test_fusion_strategies_differ():
    reference = randomize_(build_model(tiny(num_queries=2)))
    x = video()
    with torch.no_grad():
        outputs = {f: _shared_weights_model(f, reference)(x) for f in FUSIONS}
        torch.testing.assert_close(outputs["sequential"], reference.eval()(x))
    for i, a in enumerate(FUSIONS):
        for b in FUSIONS[i + 1:]:
            assert (outputs[a] - outputs[b]).abs().max() > 1e-3, f"{a} and {b} give the same logits"


def test_fusion_starts_at_zero():
    """Zero queries and zero-initialised residual branches: F = 0 for every strategy at init."""
    for fusion in FUSIONS:
        model = build_model(tiny(fusion=fusion, num_queries=4)).eval()
        with torch.no_grad():
            parts = model.forward_intermediates(video())
        assert parts["global"].abs().max() == 0, fusion


@pytest.mark.parametrize("local_type", LOCAL_TYPES)
@pytest.mark.parametrize("t_down", [False, True])
def test_zero_init_matches_image_vit(local_type, t_down):
    """A freshly armed model gives, per frame, the image ViT's last-layer class token."""
    cfg = tiny(local_type=local_type, t_down=t_down, local_dpe=local_type != "none", num_frames=4)
    vit = build_vit(cfg.vit_cfg).eval()
    with torch.no_grad():
        for p in vit.parameters():  # non-trivial pretrained weights, including the LayerNorms
            p.add_(0.05 * torch.randn_like(p))
    model = UniFormerV2(cfg, vit).eval()
    clip = video(frames=4)
    with torch.no_grad():
        parts = model.forward_intermediates(clip)
        ours = parts["frame_cls"]  # (B, T', C), last layer
        frames = clip[:, :, ::2] if t_down else clip  # T-Down: the centre tap of each stride-2 window
        images = frames.transpose(1, 2).flatten(0, 1)  # (B*T', 3, H, W)
        tokens = vit.norm_pre(vit._pos_embed(vit.patch_embed(images)))
        expected = vit.blocks(tokens)[:, 0].unflatten(0, ours.shape[:2])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_cpu():
    model = randomize_(build_model(tiny(local_type="lmhra", t_down=True))).eval()
    x = video()
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), reference, rtol=0.1, atol=0.1)


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("local_type", "lmhra3", ["local_type", "lmhra", "st_adapter"]),
        ("fusion", "hierarchical", ["fusion", "sequential", "hierarchical_q"]),
        ("local_layers", "0-3", ["local_layers", "1-4"]),
        ("global_layers", "9-12", ["global_layers", "1-4"]),
        ("global_layers", "one-two", ["global_layers", "'1-12'"]),
        ("vit", "clip_x99", ["vit", "clip_b16"]),
        ("vit_overrides", {"depthh": 3}, ["vit_overrides", "depth"]),
        ("num_queries", 0, ["num_queries"]),
        ("drop_path", 1.5, ["drop_path"]),
        ("t_down", "yes", ["t_down", "true/false"]),
    ],
)
def test_config_errors_name_field_and_choices(field, value, words):
    with pytest.raises(ConfigError) as err:
        tiny(**{field: value})
    for word in words:
        assert word in str(err.value)


def test_t_down_needs_even_frames():
    with pytest.raises(ConfigError, match="num_frames"):
        tiny(t_down=True, num_frames=5)


def test_layer_specs():
    from uv2.models.config import format_layers, parse_layers

    assert parse_layers("1-12", 12) == list(range(12))
    assert parse_layers("9-12", 12) == [8, 9, 10, 11]
    assert parse_layers("1,3,5-6", 12) == [0, 2, 4, 5]
    assert parse_layers("all", 4) == [0, 1, 2, 3] and parse_layers("none", 4) == []
    assert format_layers([8, 9, 10, 11]) == "9-12" and format_layers([0, 2, 4, 5]) == "1,3,5-6"


@pytest.mark.parametrize("heads,queries", [(2, 1), (4, 1), (4, 16)])
def test_cross_attention_on_raw_tokens_equals_projected_keys_values(heads, queries):
    """The global blocks' attention with the key / value projections moved onto the queries gives the textbook
    outputs, attention weights and gradients (non-zero biases included: the key bias drops out of the softmax)."""
    from uv2.models.blocks import CrossAttention

    attention = CrossAttention(64, heads)
    for p in attention.parameters():
        torch.nn.init.normal_(p, std=0.2)
    query, tokens = torch.randn(3, queries, 64), torch.randn(3, 50, 64)
    results = []
    for projected in (False, True):
        attention.project_tokens = projected
        attention.zero_grad()
        x = tokens.clone().requires_grad_()
        out, weights = attention(query, x, return_weights=True)
        (out * torch.linspace(-1, 1, 64)).sum().backward()
        fused = attention(query, tokens)
        results.append((out, weights, fused, x.grad, attention.kv.weight.grad.clone(), attention.q.weight.grad.clone()))
    for raw, textbook in zip(*results):
        torch.testing.assert_close(raw, textbook, atol=1e-5, rtol=1e-4)


def test_depthwise_conv3d_gradients_match_conv3d():
    """The DPE's convolution (input gradient as a flipped-kernel convolution) gives Conv3d's outputs and gradients."""
    from uv2.models.blocks import DepthwiseConv3d

    dpe = DepthwiseConv3d(16)
    torch.nn.init.normal_(dpe.conv.bias)
    x = torch.randn(2, 4, 5, 6, 16)
    grad = torch.randn(2, 4, 5, 6, 16)
    results = []
    for forward in (dpe, lambda t: dpe.conv(t.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)):
        dpe.zero_grad()
        inputs = x.clone().requires_grad_()
        out = forward(inputs)
        out.backward(grad)
        results.append((out, inputs.grad, dpe.conv.weight.grad.clone(), dpe.conv.bias.grad.clone()))
    for ours, conv3d in zip(*results):
        torch.testing.assert_close(ours, conv3d, atol=1e-5, rtol=1e-5)


def test_depthwise_conv3d_bf16_gradients_on_cpu():
    """Under bf16 autocast on the CPU the DPE's weight and bias gradients are fp32's up to bf16 rounding, whatever
    the memory held before: torch's own bf16 weight gradient on channels-last-3d inputs reads memory it never wrote
    (NaN or wrong values from call to call; torch 2.14), which the DPE does not call: it sums in fp32
    (blocks.depthwise_weight_grad)."""
    from uv2.models.blocks import DepthwiseConv3d

    torch.manual_seed(0)
    dpe = DepthwiseConv3d(128)
    torch.nn.init.normal_(dpe.conv.weight)
    x, grad = torch.randn(1, 2, 4, 4, 128), torch.randn(1, 2, 4, 4, 128)
    dpe(x).backward(grad)
    reference = dpe.conv.weight.grad.clone(), dpe.conv.bias.grad.clone()
    for _ in range(5):
        garbage = [torch.full((1024, 1024), float("nan")) for _ in range(16)]  # freed memory full of NaN
        del garbage
        dpe.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = dpe(x)
        out.float().backward(grad)
        for ours, fp32 in zip((dpe.conv.weight.grad, dpe.conv.bias.grad), reference):
            torch.testing.assert_close(ours, fp32, rtol=0.05, atol=0.3)

