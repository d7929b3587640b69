"""What the batch augmentation costs: tensor operations per batch (each a kernel launch on a GPU) and time.

    python benchmarks/augment_cost.py                                   # rand-m7-n4-mstd0.5-inc1, 32 clips of 8x224
    python benchmarks/augment_cost.py --device cuda --repeats 20        # host and GPU time per batch
    python benchmarks/augment_cost.py --rand-augment rand-m9-n2-mstd0.5 --batch 16 --per-op

``uv2.data.augment.BatchAugment`` on a random uint8 batch with per-clip flips and RandAugment seeds, as
``on_after_batch_transfer`` runs it (the program planned on the host beforehand, as ``on_before_batch_transfer``
does), and, for comparison, the same plans applied clip by clip (``apply_plan`` per clip: what uv2 did before the
passes grouped clips). Operations are counted with a torch dispatch mode (views, which launch nothing, apart); on a
GPU every other one is a kernel launch, whose host-side cost adds up when the GPU has nothing else queued. On the
CPU the time is the process's CPU time (``time.process_time``, which other jobs on a shared machine disturb less
than wall time); on a GPU the host's time to queue a batch's work and the GPU's time from the first kernel to the
last (CUDA events, the device idle before). Minimum and median over ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

VIEWS = ("view", "select", "slice", "expand", "unsqueeze", "squeeze", "permute", "alias", "unbind", "as_strided",
         "detach", "t.default", "transpose")


class CountOps(TorchDispatchMode):
    """Counts the aten operations run inside it: launching ones by name, views apart."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.views = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if any(v in name for v in VIEWS):
            self.views += 1
        else:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def timed(fn: Callable[[], torch.Tensor], device: torch.device, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per call: (host, device); on the CPU both are the process's CPU time."""
    fn()  # warm-up (allocator, kernels' first launch)
    host, gpu = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0 = time.perf_counter()
            start.record()
            fn()
            end.record()
            host.append(time.perf_counter() - t0)
            end.synchronize()
            gpu.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.process_time()
            fn()
            host.append(time.process_time() - t0)
            gpu.append(host[-1])
    return host, gpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rand-augment", default="rand-m7-n4-mstd0.5-inc1", help="timm RandAugment config")
    parser.add_argument("--batch", type=int, default=32, help="clips per batch (default 32)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=224, help="frame side (default 224)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="where the batch lives (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the batch and its augmentation draws")
    parser.add_argument("--per-op", action="store_true", help="also the operations of each RandAugment op alone")
    args = parser.parse_args(argv)
    from einops import rearrange

    from uv2.data.augment import BatchAugment, apply_plan
    from uv2.data.transforms import TransformConfig

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    augment = BatchAugment(TransformConfig(crop_size=args.size, rand_augment=args.rand_augment))
    rand_augment = augment.rand_augment
    g = torch.Generator().manual_seed(args.seed)
    video = torch.randint(0, 256, (args.batch, 3, args.frames, args.size, args.size), dtype=torch.uint8, generator=g)
    video = video.to(device)
    flip = (torch.rand(args.batch, generator=g) < 0.5).to(device)
    seeds = torch.randint(0, 2**31, (args.batch,), generator=g)
    plans = [rand_augment.plan(int(s)) for s in seeds.tolist()]
    program = augment.program(seeds, args.size, args.size)
    if device.type == "cuda":
        program = program.pin_memory()

    def batched() -> torch.Tensor:
        return augment.clips(video, flip, program=program)

    def clip_by_clip() -> torch.Tensor:  # the same plans, one clip at a time
        flipped = torch.where(flip.view(-1, 1, 1, 1, 1), video.flip(-1), video)
        clips = [rearrange(apply_plan(rearrange(clip, "c t h w -> t c h w"), plan, rand_augment.fill),
                           "t c h w -> c t h w") for clip, plan in zip(flipped, plans)]
        return augment.clips(torch.stack(clips))

    print(f"BatchAugment({args.rand_augment}) on {args.batch} clips of {args.frames}x{args.size}x{args.size} "
          f"({device}): {len(program)} RandAugment ops in the batch's plans, {len(program.passes)} passes")
    outputs = {}
    for name, fn in (("batched passes", batched), ("clip by clip", clip_by_clip)):
        with CountOps() as count:
            outputs[name] = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        host, gpu = timed(fn, device, args.repeats)
        where = (f"host {1000 * min(host):.1f} / {1000 * statistics.median(host):.1f} ms, GPU "
                 f"{1000 * min(gpu):.1f} / {1000 * statistics.median(gpu):.1f} ms, peak memory above the batch "
                 f"{(torch.cuda.max_memory_allocated() - base) / 2**20:.0f} MiB" if device.type == "cuda" else
                 f"CPU time ({args.threads} thread(s)) {1000 * min(host):.0f} / "
                 f"{1000 * statistics.median(host):.0f} ms")
        print(f"{name:<15} tensor operations per batch: {sum(count.ops.values())} (views apart: {count.views}); "
              f"per batch, min / median of {args.repeats}: {where}; most frequent: "
              + ", ".join(f"{op} {n}" for op, n in count.ops.most_common(4)))
    same = torch.equal(outputs["batched passes"], outputs["clip by clip"])
    print(f"outputs equal: {same}; checksum {float(outputs['batched passes'].double().sum()):.6e}")
    if args.per_op:
        frames = video[0].transpose(0, 1)  # one clip as (T, 3, H, W) frames
        for name in sorted({op.name for op in rand_augment.planner.ops}):
            level_args = next((a for p in plans for n, a in p if n == name), None)
            if level_args is None:
                continue
            with CountOps() as one:
                apply_plan(frames, [(name, level_args)], rand_augment.fill)
            print(f"  {name:<22} {sum(one.ops.values()):>4} operations")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
