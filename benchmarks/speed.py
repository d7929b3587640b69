"""Speed of UniFormerV2 against the official code's layout: train-step and inference clips/s, peak memory.

    python benchmarks/speed.py                      # the reference setting (ViT-S SSv2 design, 16x112, batch 4)
    python benchmarks/speed.py --device cuda --dtype bf16 --batch 8
    python benchmarks/speed.py --impl uv2 --config experiments/k400/k400_b16_8x224.yaml --frames 8 --size 224
    python benchmarks/speed.py --official-code ~/src/UniFormerV2   # time the official repository's own model too

Default setting, from the reference: width 384, 12 layers, 6 heads, T-Down, local MHRA x2 in all layers, 8 global
blocks, 16x112x112 input, batch 4, 174 classes, fp32. "official" is uv2.models.reference (the official layout:
(L, N*T, C) tokens, nn.MultiheadAttention, Conv3d local MHRA/DPE); both hold the same weights, and the script
checks that their outputs agree before timing. Each measurement runs in its own process so that peak memory
(max RSS on CPU, max allocated on GPU) is its own. A shared or throttled machine drifts by several percent over a
minute, so the implementations alternate for --rounds rounds and the table shows the median over rounds (with each
round's speed-up, to show the spread).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from uv2.experiment import load_experiment, model_section
from uv2.models import ModelConfig, build_model
from uv2.models.reference import OfficialLayoutUniFormerV2, randomize_

DEFAULT_ARCH = dict(vit="vit_s16", vit_overrides=dict(img_size=112, act="quick_gelu", norm_eps=1e-5, pre_norm=True),
                    num_frames=16, num_classes=174, local_type="lmhra", local_layers="all", local_double=True,
                    t_down=True, global_layers="5-12", head_dropout=0.0, global_mlp_dropout=0.0)


def official_code_model(checkout: str, cfg: ModelConfig) -> torch.nn.Module:
    """The official repository's VisionTransformer (slowfast/models/uniformerv2_model.py of a local checkout of
    OpenGVLab/UniFormerV2), loaded from that one file: the package's __init__ files import SlowFast's whole
    training stack, so the file is loaded alone, with the logging helper it imports provided by Python's logging."""
    import importlib.util
    import logging
    import sys
    import types

    path = Path(checkout).expanduser() / "slowfast" / "models" / "uniformerv2_model.py"
    if not path.is_file():
        raise FileNotFoundError(f"--official-code: no {path}; give a checkout of OpenGVLab/UniFormerV2")
    for name in ("slowfast", "slowfast.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules.setdefault("slowfast.utils.logging", types.SimpleNamespace(get_logger=logging.getLogger))
    spec = importlib.util.spec_from_file_location("uniformerv2_official", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    vit, depth = cfg.vit_cfg, cfg.vit_cfg.depth
    return module.VisionTransformer(
        input_resolution=vit.img_size, patch_size=vit.patch_size, width=vit.width, layers=depth,
        heads=vit.num_heads, output_dim=512, t_size=cfg.num_frames, dw_reduction=cfg.local_reduction,
        temporal_downsample=cfg.t_down, no_lmhra=cfg.local_type == "none", double_lmhra=cfg.local_double,
        return_list=cfg.global_layer_ids, n_layers=len(cfg.global_layer_ids), n_dim=vit.width, n_head=vit.num_heads,
        mlp_dropout=[0.0] * len(cfg.global_layer_ids), cls_dropout=0.0, num_classes=cfg.num_classes)


def build(impl: str, cfg: ModelConfig, official_code: str | None = None) -> torch.nn.Module:
    """uv2, official-layout or official-code model with identical (random, non-zero) weights."""
    torch.manual_seed(0)
    vit = cfg.vit_cfg
    reference = OfficialLayoutUniFormerV2(
        width=vit.width, depth=vit.depth, patch_size=vit.patch_size, img_size=vit.img_size, t_down=cfg.t_down,
        local="double" if cfg.local_double else "single", reduction=cfg.local_reduction,
        num_global=len(cfg.global_layer_ids), num_classes=cfg.num_classes, heads=vit.num_heads)
    randomize_(reference, torch.Generator().manual_seed(0), scale=0.02)
    if impl == "official":
        return reference
    if impl == "official_code":
        model = official_code_model(official_code, cfg)
        model.load_state_dict(reference.state_dict())
        return model
    from uv2.models.convert import convert_official

    model = build_model(cfg)
    model.load_state_dict(convert_official(reference.state_dict(), model))
    return model


def supported_by_official(cfg: ModelConfig) -> bool:
    """Whether the official layout can express `cfg`: local MHRA in every layer or none, global blocks with DPE on
    the last layers, Sequential fusion with one query."""
    depth = cfg.vit_cfg.depth
    local_ok = cfg.local_type == "none" or (cfg.local_type == "lmhra" and len(cfg.local_layer_ids) == depth
                                            and not cfg.local_dpe)
    global_ids = cfg.global_layer_ids
    global_ok = bool(global_ids) and cfg.global_dpe and global_ids == list(range(depth - len(global_ids), depth))
    return local_ok and global_ok and cfg.fusion == "sequential" and cfg.num_queries == 1


def measure(impl: str, mode: str, cfg_dict: dict, args: dict) -> dict:
    torch.set_num_threads(args["threads"])
    cfg = ModelConfig(**cfg_dict)
    device = torch.device(args["device"])
    model = build(impl, cfg, args["official_code"]).to(device)
    size = args["size"] or cfg.vit_cfg.img_size
    x = torch.randn(args["batch"], 3, args["frames"] or cfg.num_frames, size, size,
                    generator=torch.Generator().manual_seed(1)).to(device)
    labels = torch.randint(0, cfg.num_classes, (args["batch"],), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args["dtype"] == "bf16")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None
    model.train(mode == "train")

    def step():
        if mode == "train":
            with autocast:
                loss = torch.nn.functional.cross_entropy(model(x), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), autocast:
                model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args["warmup"]):
        step()
    times = []
    for _ in range(args["iters"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
               else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024)
    outputs = None
    if args["check"]:
        model.eval()
        with torch.no_grad():
            outputs = model(x[:2]).float().cpu().tolist()
    return dict(impl=impl, mode=mode, seconds=statistics.median(times), peak_mb=peak_mb, outputs=outputs)


def run_one(impl: str, mode: str, cfg: ModelConfig, args: dict) -> dict:
    """`measure` in a fresh process (its own peak memory); a crash there raises here."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure, impl, mode, cfg.to_dict(), args).result()


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None, help="experiment YAML (default: the reference setting)")
    parser.add_argument("--impl", choices=["both", "uv2", "official"], default="both")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every measurement (median)")
    parser.add_argument("--official-code", default=None, metavar="CHECKOUT",
                        help="also time the official repository's model from this local checkout of it")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    args = parser.parse_args()
    cfg = ModelConfig(**(model_section(load_experiment(args.config)) if args.config else DEFAULT_ARCH))
    impls = ["official", "uv2"] if args.impl == "both" else [args.impl]
    if "official" in impls and not supported_by_official(cfg):
        print("the official layout has only Sequential fusion, one query, local MHRA in all layers or none: "
              "timing uv2 alone")
        impls = ["uv2"]
    elif args.official_code:
        impls = ["official_code", *impls]
    opts = dict(vars(args), config=None, check="uv2" in impls and len(impls) > 1)
    frames, size = args.frames or cfg.num_frames, args.size or cfg.vit_cfg.img_size
    print(f"machine: {machine()}, {args.threads} threads, {args.device}, {args.dtype}")
    print(f"setting: width {cfg.vit_cfg.width}, depth {cfg.vit_cfg.depth}, local {cfg.local_type} "
          f"x{2 if cfg.local_double else 1}, T-Down {cfg.t_down}, global {cfg.global_layers}, "
          f"{frames}x{size}x{size}, batch {args.batch}")
    rounds = [{(impl, mode): run_one(impl, mode, cfg, opts) for mode in ("train", "eval")
               for impl in (impls if r % 2 == 0 else impls[::-1])} for r in range(args.rounds)]
    results = {key: dict(rounds[0][key], seconds=statistics.median(r[key]["seconds"] for r in rounds),
                         peak_mb=max(r[key]["peak_mb"] for r in rounds)) for key in rounds[0]}
    others = [impl for impl in impls if impl != "uv2"] if opts["check"] else []
    for other in others:
        a, b = (torch.tensor(results[(i, "eval")]["outputs"]) for i in (other, "uv2"))
        diff = (a - b).abs().max().item()
        print(f"outputs: max |uv2 - {other}| = {diff:.2e} ({'identical to 1e-4' if diff < 1e-4 else 'DIFFER'})")
    print(f"{'impl':<15}{'mode':<7}{'s/step':>9}{'clips/s':>10}{'peak MB':>10}")
    for (impl, mode), r in results.items():
        print(f"{impl:<15}{mode:<7}{r['seconds']:>9.3f}{args.batch / r['seconds']:>10.2f}{r['peak_mb']:>10.0f}")
    for other in others:
        for mode in ("train", "eval"):
            speedup = results[(other, mode)]["seconds"] / results[("uv2", mode)]["seconds"]
            each = ", ".join(f"{r[(other, mode)]['seconds'] / r[('uv2', mode)]['seconds']:.2f}x" for r in rounds)
            print(f"speed-up over {other} {mode}: {speedup:.2f}x (rounds: {each})")
    if args.json:
        print(json.dumps({f"{i}_{m}_s": round(r["seconds"], 4) for (i, m), r in results.items()}))


if __name__ == "__main__":
    main()
