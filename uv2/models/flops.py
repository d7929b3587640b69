"""GFLOPs (multiply-accumulates of one view, attention matmuls included) and parameter counts.

Counted with torch's FlopCounterMode on the meta device (no memory, no compute): every matmul, convolution and
fused attention call. The model runs its GPU formulation for the count (uv2.models.dispatch), where the depth-wise
temporal convolutions are convolutions rather than the CPU's shifted multiply-adds, which no counter sees; the
CPU fused-attention kernel, which torch's table lacks, is registered below. The global blocks' cross-attention is
counted in its textbook form (every token projected to a key and a value), the paper's convention, although uv2
computes it with fewer MACs (see uv2.models.blocks.CrossAttention). FlopCounterMode counts 2 FLOPs per MAC; GFLOPs
here are MACs, as in the paper.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count

from uv2.experiment import load_experiment, model_section
from uv2.models.blocks import CrossAttention
from uv2.models.config import ModelConfig
from uv2.models.dispatch import force_path
from uv2.models.uniformerv2 import UniFormerV2


def _register_cpu_attention() -> None:
    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu

    @register_flop_formula(op)
    def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)


_register_cpu_attention()


def macs_by_module(model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """MACs of one forward on `input_shape` per module of `model`, by name as `named_modules` gives it ("": the whole
    model). Gradients are switched off for the count. A module that is not called itself (a ModuleList; fusion, whose
    methods are called directly) gets the sum of its outermost called descendants."""
    cross_attention = {m: m.project_tokens for m in model.modules() if isinstance(m, CrossAttention)}
    for m in cross_attention:
        m.project_tokens = True
    device = next(model.parameters()).device
    requires_grad = {p: p.requires_grad for p in model.parameters()}
    model.requires_grad_(False)  # FlopCounterMode's module tracker needs no autograd graph
    try:
        with FlopCounterMode(display=False) as counter, force_path("cuda"):  # every conv a visible conv op
            model(torch.empty(input_shape, device=device))
    finally:
        for p, flag in requires_grad.items():
            p.requires_grad_(flag)
        for m, flag in cross_attention.items():
            m.project_tokens = flag
    root = type(model).__name__
    # FlopCounterMode's keys are "<root class>.<name>"; it counts 2 FLOPs per MAC
    called = {("" if key == root else key.removeprefix(root + ".")): sum(ops.values()) / 2
              for key, ops in counter.get_flop_counts().items() if key == root or key.startswith(root + ".")}
    macs: dict[str, float] = {}
    for name, _ in model.named_modules():
        if name in called:
            macs[name] = called[name]
            continue
        # nested entries repeat their parents' counts, so only the outermost called descendants count
        inside = [k for k in called if name == "" or k.startswith(name + ".")]
        macs[name] = sum(called[k] for k in inside if not any(k.startswith(o + ".") for o in inside if o != k))
    return macs


def count_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """{"gflops": MACs / 1e9 of one forward on `input_shape`, "params_m": parameters / 1e6, "parts": GFLOPs of each
    top-level part (patch_embed, blocks.0, ..., fusion, head)}."""
    macs = macs_by_module(model, input_shape)
    parts: dict[str, float] = {}
    for name, child in model.named_children():
        children = [f"{name}.{i}" for i in range(len(child))] if isinstance(child, torch.nn.ModuleList) else [name]
        for part in children:
            parts[part] = macs[part] / 1e9
    return {"gflops": macs[""] / 1e9, "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "parts": parts}


def _meta_view(cfg: ModelConfig, frames: int | None, size: int | None) -> tuple[UniFormerV2, tuple[int, ...]]:
    """The model of `cfg` on the meta device (no memory, no compute) and the shape of one view of its input."""
    with torch.device("meta"):
        model = UniFormerV2(cfg).eval()
    size = size or cfg.vit_cfg.img_size
    return model, (1, 3, frames or cfg.num_frames, size, size)


def model_flops(cfg: ModelConfig, frames: int | None = None, size: int | None = None) -> dict[str, Any]:
    """FLOPs and parameters of one view (frames x size x size; defaults from the config) of a ModelConfig."""
    return count_flops(*_meta_view(cfg, frames, size))


def model_macs(cfg: ModelConfig, frames: int | None = None, size: int | None = None) -> dict[str, float]:
    """MACs of one view (as model_flops) per module of a ModelConfig's model (`macs_by_module`)."""
    return macs_by_module(*_meta_view(cfg, frames, size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uv2 flops", description="GFLOPs (MACs of one view) and "
                                     "parameters of an experiment's model")
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML (experiments/NAME.yaml)")
    parser.add_argument("--frames", type=int, default=None, help="input frames (default: model.arch.num_frames)")
    parser.add_argument("--size", type=int, default=None, help="input side in pixels (default: the ViT's img_size)")
    parser.add_argument("--json", action="store_true", help='print {"gflops": G, "params_m": P} as the last line')
    args = parser.parse_args(argv)
    try:
        cfg = ModelConfig(**model_section(load_experiment(args.config), str(args.config)))
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = model_flops(cfg, args.frames, args.size)
    frames, size = args.frames or cfg.num_frames, args.size or cfg.vit_cfg.img_size
    print(f"{args.config}: {frames}x{size}x{size} view, {result['gflops']:.1f} GFLOPs (MACs), "
          f"{result['params_m']:.1f}M parameters")
    if args.json:
        print(json.dumps({"gflops": round(result["gflops"], 3), "params_m": round(result["params_m"], 3)}))
    return 0
