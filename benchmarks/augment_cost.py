"""What the batch augmentation costs: tensor operations per batch (each a kernel launch on a GPU) and CPU time.

    python benchmarks/augment_cost.py                                   # rand-m7-n4-mstd0.5-inc1, 32 clips of 8x224
    python benchmarks/augment_cost.py --rand-augment rand-m9-n2-mstd0.5 --batch 16 --per-op

``uv2.data.augment.BatchAugment`` on a random uint8 batch with per-clip flips and RandAugment seeds, as
``on_after_batch_transfer`` runs it. Operations are counted with a torch dispatch mode (views, which launch nothing,
apart); on a GPU every other one is a kernel launch, whose host-side cost adds up when the GPU has nothing else
queued. CPU time is the process's (``time.process_time``), which other jobs on a shared machine disturb less than
wall time; the minimum and median over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rand-augment", default="rand-m7-n4-mstd0.5-inc1", help="timm RandAugment config")
    parser.add_argument("--batch", type=int, default=32, help="clips per batch (default 32)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=224, help="frame side (default 224)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the batch and its augmentation draws")
    parser.add_argument("--per-op", action="store_true", help="also the operations of each RandAugment op alone")
    args = parser.parse_args(argv)
    from uv2.data.augment import RAND_AUGMENT_OPS, BatchAugment
    from uv2.data.transforms import TransformConfig

    torch.set_num_threads(args.threads)
    augment = BatchAugment(TransformConfig(crop_size=args.size, rand_augment=args.rand_augment))
    g = torch.Generator().manual_seed(args.seed)
    video = torch.randint(0, 256, (args.batch, 3, args.frames, args.size, args.size), dtype=torch.uint8, generator=g)
    flip = torch.rand(args.batch, generator=g) < 0.5
    plans = augment.plans(torch.randint(0, 2**31, (args.batch,), generator=g))
    with CountOps() as count:
        out = augment.clips(video, flip, plans=plans)
    seconds = []
    for _ in range(args.repeats):
        start = time.process_time()
        augment.clips(video, flip, plans=plans)
        seconds.append(time.process_time() - start)
    print(f"BatchAugment({args.rand_augment}) on {args.batch} clips of {args.frames}x{args.size}x{args.size}: "
          f"{sum(len(p) for p in plans)} RandAugment ops in the batch's plans")
    print(f"tensor operations per batch: {sum(count.ops.values())} (views apart: {count.views}); most frequent: "
          + ", ".join(f"{name} {n}" for name, n in count.ops.most_common(5)))
    print(f"CPU time per batch ({args.threads} thread(s), {args.repeats} runs): min {min(seconds):.3f} s, median "
          f"{statistics.median(seconds):.3f} s; output checksum {float(out.double().sum()):.6e}")
    if args.per_op:
        frames = video[0].transpose(0, 1)  # one clip as (T, 3, H, W) frames
        for name in sorted({op.name for op in augment.rand_augment.planner.ops}):
            op, takes_fill = RAND_AUGMENT_OPS[name]
            level_args = next((a for p in plans for n, a in p if n == name), None)
            if level_args is None:
                continue
            with CountOps() as one:
                op(frames, *level_args, fill=augment.rand_augment.fill) if takes_fill else op(frames, *level_args)
            print(f"  {name:<22} {sum(one.ops.values()):>4} operations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
