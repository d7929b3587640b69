"""FLOPs (MACs) against a hand count, the released designs, the flops CLI and the model summary of a fit."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.helpers import REPO
from uv2.__main__ import main as uv2_main
from uv2.models import ModelConfig, model_config
from uv2.models.flops import model_flops
from uv2.train.callbacks import ModelSummaryWithMacs
from uv2.train.module import VideoClassifier


def hand_count(cfg: ModelConfig) -> float:
    """MACs of one view, written out layer by layer from the model definition."""
    vit = cfg.vit_cfg
    C, P, side, T = vit.width, vit.patch_size, vit.img_size, cfg.num_frames
    S = (side // P) ** 2
    L = S + 1
    Tt = T // 2 if cfg.t_down else T
    kt = 3 if cfg.t_down else 1
    hidden = int(C * vit.mlp_ratio)
    macs = Tt * S * C * 3 * kt * P * P  # stem
    per_frame_layer = L * C * 3 * C + 2 * L * L * C + L * C * C + 2 * L * C * hidden  # qkv, attention, proj, FFN
    macs += vit.depth * Tt * per_frame_layer
    if cfg.local_type == "lmhra":
        r_hidden = int(C // cfg.local_reduction)
        per_module = Tt * S * (C * r_hidden + r_hidden * cfg.local_kernel + r_hidden * C)
        macs += len(cfg.local_layer_ids) * (2 if cfg.local_double else 1) * per_module
    Q, M, N = cfg.num_queries, Tt * L, len(cfg.global_layer_ids)
    g_hidden = round(C * cfg.global_mlp_ratio)
    for i in range(N):
        q = (i + 1) * Q if cfg.fusion == "hierarchical_q" else Q  # the previous output joins the queries
        m = M + Q if (cfg.fusion == "hierarchical_kv" and i > 0) else M  # ... or the keys and values
        macs += q * C * C + m * C * 2 * C + 2 * q * m * C + q * C * C + 2 * q * C * g_hidden
        macs += Tt * S * C * 27 if cfg.global_dpe else 0
    if cfg.fusion in ("parallel", "hierarchical_q"):
        macs += Q * N * C * C  # the projection of the concatenated stages
    return (macs + C * cfg.num_classes) / 1e9


SMALL_CONFIGS = [
    dict(local_type="none", global_layers="none"),
    dict(local_type="lmhra", global_layers="none"),
    dict(local_type="none", global_layers="3-4", global_dpe=False),
    dict(local_type="lmhra", local_double=True, t_down=True, num_frames=8, global_layers="2-4"),
    dict(local_type="lmhra", local_double=False, local_reduction=4.0, local_layers="1-2", global_layers="1-4",
         fusion="parallel", num_queries=4),
    dict(local_type="none", global_layers="2-4", fusion="hierarchical_q", num_queries=2, vit_overrides={"img_size": 64}),
    dict(local_type="none", global_layers="2-4", fusion="hierarchical_kv", num_queries=3),
]


@pytest.mark.parametrize("switches", SMALL_CONFIGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_flops_match_hand_count(switches):
    cfg = ModelConfig(**{"vit": "tiny", "num_frames": 4, "num_classes": 10, **switches})
    assert model_flops(cfg)["gflops"] == pytest.approx(hand_count(cfg), rel=1e-9)


def test_flops_of_released_designs():
    """The reference's figures: 148 GFLOPs / 114.6M (K400), 187 GFLOPs (SSv2), 141 for a plain ViT-B/16 x 8."""
    k400 = model_flops(model_config("uv2_b16_k400"))
    assert k400["gflops"] == pytest.approx(148, rel=0.02) and round(k400["params_m"], 1) == 114.6
    ssv2 = model_flops(model_config("uv2_b16_ssv2"))
    assert ssv2["gflops"] == pytest.approx(187, rel=0.02)
    assert round(model_flops(model_config("uv2_b16_ssv2", num_classes=400))["params_m"], 1) == 163.2
    plain = model_flops(ModelConfig(vit="clip_b16", local_type="none", global_layers="none"))
    assert plain["gflops"] == pytest.approx(141, rel=0.01)


# `python -m uv2 flops` through the entry point's main, in this process (tests/test_train.py runs the entry point
# as a process of its own)
@pytest.mark.parametrize("name,gflops,params", [("k400/k400_b16_8x224", 148, 114.6), ("ssv2/ssv2_b16_16x224", 187, 163.0)])
def test_flops_cli_json(name, gflops, params, capsys):
    assert uv2_main(["flops", "--config", str(REPO / f"experiments/{name}.yaml"), "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["gflops"] == pytest.approx(gflops, rel=0.02) and round(last["params_m"], 1) == params


def test_flops_cli_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  arch:\n    vit: clip_b16\n    fusion: zigzag\n")
    assert uv2_main(["flops", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "fusion" in err and "hierarchical_kv" in err


def test_flops_parts_add_up():
    from uv2.models import build_model
    from uv2.models.flops import count_flops

    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=10, local_type="lmhra", global_layers="2-4")
    flops = count_flops(build_model(cfg), (1, 3, 4, 32, 32))
    assert list(flops["parts"]) == ["patch_embed", "norm_pre", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "fusion", "head"]
    assert sum(flops["parts"].values()) == pytest.approx(flops["gflops"], rel=1e-9)
    assert flops["gflops"] == pytest.approx(hand_count(cfg), rel=1e-9)


def test_model_summary_shows_the_models_macs():
    """A fit's summary table carries uv2's count of one view (Lightning's own, without an example input, is 0): the
    whole model, and at depth 2 each part, the ModuleList of blocks (never called itself) as the sum of its blocks."""
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=10, local_type="lmhra", global_layers="2-4")
    flops = model_flops(cfg)
    table = ModelSummaryWithMacs(max_depth=2)._summary(SimpleNamespace(strategy=SimpleNamespace()),
                                                       VideoClassifier(arch=cfg))
    assert table.total_flops == pytest.approx(flops["gflops"] * 1e9, abs=1) and table.total_flops > 0
    counts = {name: sum(ops.values()) for name, ops in table.flop_counts.items()}
    blocks = sum(gflops for part, gflops in flops["parts"].items() if part.startswith("blocks."))
    assert counts["model"] == table.total_flops
    assert counts["model.blocks"] == pytest.approx(blocks * 1e9, abs=1)
    assert counts["model.head"] == pytest.approx(flops["parts"]["head"] * 1e9, abs=1) == cfg.vit_cfg.width * 10
