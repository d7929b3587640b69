"""Speed of UniFormerV2 against the official code's layout: train-step and inference clips/s, MFU, peak memory.

    python benchmarks/speed.py                      # the reference setting (ViT-S SSv2 design, 16x112, batch 4)
    python benchmarks/speed.py --device cuda --dtype bf16 --config experiments/k400/k400_b16_8x224.yaml --batch 32
    python benchmarks/speed.py --table c --row 1    # a row of an ablation table (paper scale, its first dataset)
    python benchmarks/speed.py --official-code ~/src/UniFormerV2   # time the official repository's own model too
    python benchmarks/speed.py --compile --json     # add torch.compile'd uv2; one JSON line at the end
    python benchmarks/speed.py --impl uv2 --profile 15   # then uv2's 15 costliest kernels / ops of a training step

Default setting, from the reference: width 384, 12 layers, 6 heads, T-Down, local MHRA x2 in all layers, 8 global
blocks, 16x112x112 input, batch 4, 174 classes, fp32. "official" is benchmarks/official_layout.py (the official layout:
(L, N*T, C) tokens, nn.MultiheadAttention, Conv3d local MHRA/DPE) built for the same design, "official_code" the
official repository's model from a local checkout; all hold the same weights, and the script checks that their
fp32 outputs agree. Each implementation and mode is measured in a process of its own, which builds (and compiles)
its model once and keeps it for every round, so that peak memory (max allocated on GPU, the process's model and input
included; on CPU the growth of max RSS during the first round's timed steps, 0 when they stay below the peak of
building the model) is its own, and a round after the first costs its steps alone. A shared or throttled machine
drifts by several percent over a minute, so the implementations alternate for --rounds rounds and the table shows
the median over rounds (with each round's speed-up); the outputs are checked and the step profiled in the first.

MFU (model FLOPs utilisation): model FLOPs per clip over the time per clip, divided by the card's peak. The model
FLOPs of a training clip are 3 x 2 x the paper-convention MACs of uv2.models.flops (forward, and a backward of
twice the forward; 2 FLOPs per MAC), of an eval clip 2 x the MACs. The peak is the dense bf16 tensor-core peak
(989 TFLOP/s for H100 SXM and H200) with --dtype bf16 on a known card, else --peak-tflops; without one, no MFU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from uv2.experiment import load_experiment, model_section
from uv2.models import ModelConfig, build_model
from uv2.models.dispatch import set_path
from uv2.train.optim import FUSED_ADAMW_DEVICES

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: the benchmarks folder is importable from the repository root
from benchmarks.official_layout import OfficialLayoutUniFormerV2, official_layout_unsupported, randomize_  # noqa: E402

DEFAULT_ARCH = dict(vit="vit_s16", vit_overrides=dict(img_size=112, act="quick_gelu", norm_eps=1e-5, pre_norm=True),
                    num_frames=16, num_classes=174, local_type="lmhra", local_layers="all", local_double=True,
                    t_down=True, global_layers="5-12", head_dropout=0.0, global_mlp_dropout=0.0)
# dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, by a substring of torch.cuda.get_device_name(); first match
PEAK_BF16_TFLOPS: dict[str, float] = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}
IMPLS = ("official_code", "official", "uv2", "uv2_compiled")  # table order


# ---------------------------------------------------------------------------------------------------- models
def official_code_model(checkout: str, cfg: ModelConfig) -> torch.nn.Module:
    """The official repository's VisionTransformer (slowfast/models/uniformerv2_model.py of a local checkout of
    OpenGVLab/UniFormerV2), loaded from that one file: the package's __init__ files import SlowFast's whole
    training stack, so the file is loaded alone, with the logging helper it imports provided by Python's logging."""
    import importlib.util
    import logging
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
    vit, num_global = cfg.vit_cfg, len(cfg.global_layer_ids)
    return module.VisionTransformer(
        input_resolution=vit.img_size, patch_size=vit.patch_size, width=vit.width, layers=vit.depth,
        heads=vit.num_heads, output_dim=512, t_size=cfg.num_frames, dw_reduction=cfg.local_reduction,
        temporal_downsample=cfg.t_down, no_lmhra=not cfg.local_layer_ids, double_lmhra=cfg.local_double,
        return_list=cfg.global_layer_ids, n_layers=num_global, n_dim=vit.width, n_head=vit.num_heads,
        backbone_drop_path_rate=cfg.drop_path, drop_path_rate=cfg.global_drop_path,
        use_checkpoint=cfg.checkpoint_blocks > 0, checkpoint_num=[cfg.checkpoint_blocks],
        mlp_dropout=[cfg.global_mlp_dropout] * num_global, cls_dropout=cfg.head_dropout, num_classes=cfg.num_classes)


def build(impl: str, cfg: ModelConfig, official_code: str | None = None) -> torch.nn.Module:
    """The model of `impl` with (random, non-zero) weights shared by every implementation of the design."""
    torch.manual_seed(0)
    if official_layout_unsupported(cfg) is not None:  # uv2 alone
        return randomize_(build_model(cfg), torch.Generator().manual_seed(0), scale=0.02)
    reference = randomize_(OfficialLayoutUniFormerV2.from_config(cfg), torch.Generator().manual_seed(0), scale=0.02)
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


# ------------------------------------------------------------------------------------------------ measuring
_MODELS: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}  # in a measuring process: (eager, as timed), by impl


def measure(impl: str, mode: str, cfg_dict: dict, args: dict) -> dict:
    """Median seconds per step of one implementation in one mode and its peak memory; in the process's first call
    (round), which builds the model, also its outputs (eval) and its profile (uv2 training, with --profile)."""
    torch.set_num_threads(args["threads"])
    if impl.startswith("uv2") and args["path"] != "auto":
        set_path(args["path"])  # this process only
    cfg = ModelConfig(**cfg_dict)
    device = torch.device(args["device"])
    first = impl not in _MODELS
    if first:
        eager = build(impl, cfg, args["official_code"]).to(device)
        # compiled in the first warm-up step, once for every round
        _MODELS[impl] = eager, torch.compile(eager) if impl == "uv2_compiled" else eager
    result = time_steps(impl, mode, cfg, *_MODELS[impl], device, args, first)
    if device.type == "cuda":  # the step's tensors are freed: between rounds the process holds its model alone
        torch.cuda.empty_cache()
    return result


def time_steps(impl: str, mode: str, cfg: ModelConfig, eager: torch.nn.Module, model: torch.nn.Module,
               device: torch.device, args: dict, first: bool) -> dict:
    """`measure`'s timed steps of `model` (`eager` itself, or compiled from it) on a fixed input."""
    size = cfg.vit_cfg.img_size
    x = torch.randn(args["batch"], 3, cfg.num_frames, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    labels = torch.randint(0, cfg.num_classes, (args["batch"],), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args["dtype"] == "bf16" else nullcontext()
    # every implementation steps with the AdamW that uv2's training builds (fused on CPUs and GPUs, one kernel over
    # all parameters; uv2.train.optim): the optimiser's own cost is then that of a training run
    fused = device.type in FUSED_ADAMW_DEVICES or None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused) if mode == "train" else None
    model.train(mode == "train")

    def step() -> torch.Tensor:
        if mode == "train":
            with autocast:
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            with torch.no_grad(), autocast:
                logits = model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return logits

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(args["warmup"]):
        step()
    times = []
    for _ in range(args["iters"]):
        start = time.perf_counter()
        logits = step()
        times.append(time.perf_counter() - start)
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
               else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024)
    result = dict(impl=impl, mode=mode, seconds=statistics.median(times), peak_mb=peak_mb)
    if first and args["profile"] and impl == "uv2" and mode == "train":
        result["profile"] = profile_step(step, device, args["profile"])
    if first and mode == "eval" and args["check"]:  # the eval process's model is never trained: its first weights
        result["timed_outputs"] = logits[:2].float().cpu().tolist()  # as timed (dtype, compiled)
        result["fp32_outputs"] = fp32_outputs(eager, x[:2])
    return result


def profile_step(step, device: torch.device, top: int) -> list[dict[str, Any]]:
    """One more step under torch.profiler: the `top` operations (CPU) or kernels (CUDA) by their own time on the
    device, each with its milliseconds, calls and share of the step's device time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()

    def own_us(event) -> float:  # self time where the work runs (the attribute is self_cuda_* before torch 2.4)
        if not cuda:
            return event.self_cpu_time_total
        return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)

    events = [e for e in prof.key_averages() if own_us(e) > 0]
    total = sum(own_us(e) for e in events) or 1.0
    events.sort(key=own_us, reverse=True)
    return [dict(name=e.key[:120], ms=round(own_us(e) / 1000, 3), calls=e.count, share=round(own_us(e) / total, 4))
            for e in events[:top]]


def fp32_outputs(model: torch.nn.Module, x: torch.Tensor) -> list:
    """Eval-mode logits in true fp32 (no autocast, no TF32), for the parity check between implementations."""
    matmul_tf32, cudnn_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            return model.eval()(x).float().cpu().tolist()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul_tf32, cudnn_tf32


class Measurers:
    """One process per implementation and mode, started on its first measurement and kept for every round (its own
    model and peak memory); a crash there raises here.

    The processes fork from a server that has imported this script (torch, uv2, timm, the official layout) once,
    where each would otherwise start an interpreter and import them again (about 6 s per process on a 2-core CPU,
    four to six processes a run: tests/test_speed.py's runs take half the time). The server has run no torch
    operation and not touched CUDA, so forking it is safe."""

    def __init__(self) -> None:
        self.pools: dict[tuple[str, str], ProcessPoolExecutor] = {}
        if "forkserver" in mp.get_all_start_methods():
            self.context = mp.get_context("forkserver")
            self.context.set_forkserver_preload(["benchmarks.speed"])
        else:  # Windows: a fresh interpreter per process
            self.context = mp.get_context("spawn")

    def __enter__(self) -> Measurers:
        return self

    def __exit__(self, *exc: object) -> None:
        for pool in self.pools.values():
            pool.shutdown(cancel_futures=True)

    def measure(self, impl: str, mode: str, cfg: ModelConfig, args: dict) -> dict:
        if (impl, mode) not in self.pools:
            self.pools[(impl, mode)] = ProcessPoolExecutor(max_workers=1, mp_context=self.context)
        return self.pools[(impl, mode)].submit(measure, impl, mode, cfg.to_dict(), args).result()


# ---------------------------------------------------------------------------------------------- the setting
def machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


def peak_tflops(args: argparse.Namespace, name: str) -> float | None:
    """--peak-tflops, else the dense bf16 peak of a known card when timing bf16 on it, else None (no MFU)."""
    if args.peak_tflops:
        return args.peak_tflops
    if args.device.startswith("cuda") and args.dtype == "bf16":
        return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)
    return None


def design(args: argparse.Namespace) -> tuple[ModelConfig, str]:
    """The ModelConfig to time (an ablation row, an experiment or the reference setting, then --arch, --frames and
    --size) and a name for it. The model is built for the timed input: --size sets the ViT's img_size."""
    if args.table is not None:
        from uv2.ablation.grid import cell_config, load_datasets, load_table

        table = load_table(args.table, REPO / "ablations" / "tables")
        if not 0 <= args.row < len(table.rows):
            raise SystemExit(f"--row: table {table.name} has rows 0-{len(table.rows) - 1}")
        row, dataset = table.rows[args.row], args.dataset or table.datasets[0]
        datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
        if dataset not in datasets:
            raise SystemExit(f"--dataset: {dataset!r} is not in ablations/datasets.yaml ({', '.join(datasets)})")
        config = cell_config(row, dataset, datasets[dataset], args.scale, 0, {}, None, REPO,
                             **table.changes(dataset, args.scale))
        arch = config["model"]["arch"]
        name = f"table ({table.name}) row {args.row} \"{row.label}\" on {dataset}, {args.scale} scale"
    elif args.config is not None:
        arch, name = model_section(load_experiment(args.config), str(args.config)), str(args.config)
    else:
        arch, name = dict(DEFAULT_ARCH), "the reference setting"
    arch = {**arch, **json.loads(args.arch or "{}")}
    if args.frames:
        arch["num_frames"] = args.frames
    if args.size:
        arch["vit_overrides"] = {**arch.get("vit_overrides", {}), "img_size": args.size}
    return ModelConfig(**arch), name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_argument_group("what to time (default: the reference setting)")
    what.add_argument("--config", type=Path, default=None, help="experiment YAML (its model.arch)")
    what.add_argument("--table", default=None, help="an ablation table (ablations/tables/NAME.yaml): time --row")
    what.add_argument("--row", type=int, default=0, help="0-based row of --table")
    what.add_argument("--dataset", default=None, help="dataset key of the --table row (default: its first)")
    what.add_argument("--scale", choices=["paper", "tiny"], default="paper", help="scale of the --table row")
    what.add_argument("--arch", default=None, metavar="JSON", help="ModelConfig fields to override, as JSON")
    what.add_argument("--frames", type=int, default=None, help="input frames (default: the config's)")
    what.add_argument("--size", type=int, default=None, help="input side (default: the ViT's img_size)")
    what.add_argument("--batch", type=int, default=4)
    how = parser.add_argument_group("how")
    how.add_argument("--impl", choices=["both", "uv2", "official", "compiled"], default="both",
                     help="both: uv2 and the official layout (and the official code with --official-code); "
                          "compiled: uv2 under torch.compile alone (implies --compile)")
    how.add_argument("--official-code", default=None, metavar="CHECKOUT",
                     help="also time the official repository's model from this local checkout of it")
    how.add_argument("--compile", action="store_true", help="also time uv2 under torch.compile (row uv2_compiled)")
    how.add_argument("--path", choices=["auto", "cpu", "cuda"], default="auto",
                     help="uv2's dispatched layers: by device (auto) or one formulation (uv2.models.dispatch)")
    how.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    how.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast")
    how.add_argument("--threads", type=int, default=torch.get_num_threads())
    how.add_argument("--warmup", type=int, default=2)
    how.add_argument("--iters", type=int, default=5)
    how.add_argument("--rounds", type=int, default=3, help="alternating rounds of every measurement (median)")
    how.add_argument("--peak-tflops", type=float, default=None,
                     help="peak TFLOP/s for MFU (default: the dense bf16 peak of a known GPU with --dtype bf16)")
    how.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    how.add_argument("--profile", type=int, default=0, metavar="N",
                     help="after timing, profile one uv2 training step: its N costliest kernels (CUDA) or "
                          "operations (CPU) by own device time")
    args = parser.parse_args(argv)
    args.compile = args.compile or args.impl == "compiled"
    if args.iters < 1:
        parser.error("--iters must be >= 1")
    if args.warmup < 1 and args.compile:
        parser.error("--compile needs --warmup >= 1 (the first step compiles)")
    return args


# ------------------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg, name = design(args)
    impls = {"both": ["official", "uv2"], "compiled": []}.get(args.impl, [args.impl])
    unsupported = official_layout_unsupported(cfg)
    if unsupported is not None and "official" in impls:
        print(f"the official layout cannot express this design ({unsupported}): timing uv2 alone")
        impls = ["uv2"]
    elif args.official_code:
        impls = ["official_code", *impls]
    if args.compile:
        impls.append("uv2_compiled")
    check = len(impls) > 1
    opts = dict(vars(args), config=None, check=check)

    from uv2.models.flops import model_flops

    macs = model_flops(cfg)["gflops"] * 1e9  # MACs of one clip at the timed input
    device_name = machine(args.device)
    peak = peak_tflops(args, device_name)
    frames, size = cfg.num_frames, cfg.vit_cfg.img_size
    print(f"machine: {device_name}, {args.threads} threads, {args.device}, {args.dtype}, dispatch {args.path}")
    local = f"{cfg.local_type} x{2 if cfg.local_double else 1} on {cfg.local_layers}" if cfg.local_layer_ids else "none"
    print(f"setting: {name}: width {cfg.vit_cfg.width}, depth {cfg.vit_cfg.depth}, local {local}, "
          f"T-Down {cfg.t_down}, global {cfg.global_layers}, "
          f"{frames}x{size}x{size}, batch {args.batch}, {macs / 1e9:.2f} GFLOPs (MACs) per clip")

    with Measurers() as measurers:
        rounds = [{(impl, mode): measurers.measure(impl, mode, cfg, opts) for mode in ("train", "eval")
                   for impl in (impls if r % 2 == 0 else impls[::-1])} for r in range(args.rounds)]
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for impl in impls:
        for mode in ("train", "eval"):
            runs = [r[(impl, mode)] for r in rounds]
            seconds = statistics.median(r["seconds"] for r in runs)
            flops = (6 if mode == "train" else 2) * macs * args.batch / seconds  # model FLOP/s
            results[(impl, mode)] = dict(runs[0], seconds=seconds, clips_per_s=args.batch / seconds,
                                         peak_mb=max(r["peak_mb"] for r in runs),
                                         mfu=flops / (peak * 1e12) if peak else None)

    diffs: dict[str, float] = {}
    if check:
        for impl in impls:
            if impl in ("uv2", "uv2_compiled"):
                continue
            a, b = (torch.tensor(results[(i, "eval")]["fp32_outputs"]) for i in (impl, "uv2"))
            diffs[impl] = (a - b).abs().max().item()
            print(f"outputs (fp32): max |uv2 - {impl}| = {diffs[impl]:.2e}, logits up to {b.abs().max().item():.2e} "
                  f"({'identical to 1e-4' if diffs[impl] < 1e-4 else 'DIFFER'})")
        if "uv2_compiled" in impls:
            a, b = (torch.tensor(results[(i, "eval")]["timed_outputs"]) for i in ("uv2_compiled", "uv2"))
            diffs["uv2_compiled"] = (a - b).abs().max().item()
            print(f"outputs ({args.dtype}, as timed): max |uv2 - uv2_compiled| = {diffs['uv2_compiled']:.2e}")

    print(f"{'impl':<15}{'mode':<7}{'s/step':>9}{'clips/s':>10}{'MFU':>8}{'peak MB':>10}")
    for (impl, mode), r in results.items():
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        print(f"{impl:<15}{mode:<7}{r['seconds']:>9.3f}{r['clips_per_s']:>10.2f}{mfu:>8}{r['peak_mb']:>10.0f}")
    speedups: dict[str, dict[str, float]] = {}
    pairs = [(impl, other) for other in impls if not other.startswith("uv2") for impl in impls if impl.startswith("uv2")]
    if {"uv2", "uv2_compiled"} <= set(impls):
        pairs.append(("uv2_compiled", "uv2"))
    for impl, other in pairs:
        for mode in ("train", "eval"):
            speedup = results[(other, mode)]["seconds"] / results[(impl, mode)]["seconds"]
            speedups.setdefault(f"{impl}_over_{other}", {})[mode] = round(speedup, 3)
            each = ", ".join(f"{r[(other, mode)]['seconds'] / r[(impl, mode)]['seconds']:.2f}x" for r in rounds)
            print(f"speed-up of {impl} over {other} {mode}: {speedup:.2f}x (rounds: {each})")
    if peak is None:
        print("MFU: no peak known for this device and dtype (give --peak-tflops)")
    profiled = next((r[("uv2", "train")].get("profile") for r in rounds if ("uv2", "train") in r), None)
    if profiled:
        print(f"uv2 training step, its {len(profiled)} costliest {'kernels' if args.device.startswith('cuda') else 'operations'} "
              f"(own time on the device, share of the step's):")
        for p in profiled:
            print(f"  {p['ms']:>9.3f} ms {100 * p['share']:>5.1f} % {p['calls']:>5}x  {p['name']}")

    if args.json:
        print(json.dumps({
            "machine": device_name, "device": args.device, "dtype": args.dtype, "threads": args.threads,
            "path": args.path, "setting": name, "arch": cfg.to_dict(), "frames": frames, "size": size,
            "batch": args.batch, "rounds": args.rounds, "gmacs_per_clip": float(f"{macs / 1e9:.6g}"),
            "peak_tflops": peak,
            # 6 significant digits: a tiny CPU step of 4.5 ms rounded to 5 decimals is off by 0.1 %
            "results": {impl: {mode: {"s_per_step": float(f"{results[(impl, mode)]['seconds']:.6g}"),
                                      "clips_per_s": round(results[(impl, mode)]["clips_per_s"], 3),
                                      "mfu": (round(results[(impl, mode)]["mfu"], 5)
                                              if results[(impl, mode)]["mfu"] is not None else None),
                                      "peak_mb": round(results[(impl, mode)]["peak_mb"], 1)}
                                for mode in ("train", "eval")} for impl in impls},
            "speedup": speedups, "max_abs_diff": {k: float(f"{v:.3g}") for k, v in diffs.items()},
            "profile": profiled or None,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
