#!/usr/bin/env python
"""The DPE's weight gradient on the CPU: torch's depth-wise Conv3d weight backward against uv2's formulation as
forward convolutions (``uv2.models.blocks.depthwise_weight_grad``, which the CPU path of the DPE runs).

    python benchmarks/dpe_grad.py                 # one thread: the tiny grid's DPE, ViT-S's and ViT-B's
    python benchmarks/dpe_grad.py --threads 2 --iters 50
    python benchmarks/dpe_grad.py --batch-factor 8   # each shape with 8x the clips (uv2 loops over the clips)

Each shape is (B, T, h, w, C), the DPE's channels-last input: the tiny temporal preset's (batch 8, 4 frames of 4x4
patches, width 128), ViT-S's in `benchmarks/speed.py`'s CPU reference setting (batch 4, 16x112x112 frames, which
T-Down halves: 8x7x7x384) and the SSv2 B/16 design's at batch 2 (16x14x14x768). Both take the same channels-last
views the model's backward gets and are called in turn; each's median of --iters calls after --warmup is printed
with the largest difference between the two results.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

SHAPES = {"tiny grid": (8, 4, 4, 4, 128), "ViT-S": (4, 8, 7, 7, 384), "SSv2 B/16": (2, 16, 14, 14, 768)}


def median_ms(fns: list[Callable[[], object]], warmup: int, iters: int) -> list[float]:
    """Each function's median milliseconds per call, the functions called in turn (a shared machine's speed drifts
    by tens of percent within a minute: alternating gives each the same drift)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, own in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            own.append(time.perf_counter() - start)
    return [1e3 * statistics.median(own) for own in times]


def torch_weight_grad(x, grad_out, kernel: int):
    """torch's own weight gradient of a depth-wise k x k x k Conv3d ('same' padding) with input x."""
    import torch

    channels = x.shape[1]
    weight = x.new_empty(channels, 1, kernel, kernel, kernel)  # only its shape is read
    return torch.ops.aten.convolution_backward(grad_out, x, weight, [channels], [1] * 3, [kernel // 2] * 3, [1] * 3,
                                               False, [0] * 3, channels, [False, True, False])[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a grid cell trains on one)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--batch-factor", type=int, default=1,
                        help="each shape's clips times this (uv2's formulation is one convolution per clip)")
    args = parser.parse_args(argv)
    import torch

    from uv2.models.blocks import depthwise_weight_grad
    from uv2.train.hardware import hardware

    torch.set_num_threads(args.threads)
    k = args.kernel
    print(f"{hardware('cpu')}, {args.threads} thread(s), kernel {k}, median of {args.iters} calls")
    print(f"{'DPE input':<29} {'torch (ms)':>10} {'uv2 (ms)':>10} {'speed-up':>9} {'max |diff|':>11}")
    for name, (b, t, h, w, c) in SHAPES.items():
        b *= args.batch_factor
        name = f"{name} ({b}x{t}x{h}x{w}x{c})"
        gen = torch.Generator().manual_seed(0)
        # the (B, C, T, h, w) views of channels-last tensors, as the DPE's backward receives them
        x = torch.randn(b, t, h, w, c, generator=gen).permute(0, 4, 1, 2, 3)
        grad_out = torch.randn(b, t, h, w, c, generator=gen).permute(0, 4, 1, 2, 3)

        by_torch = partial(torch_weight_grad, x, grad_out, k)
        by_uv2 = partial(depthwise_weight_grad, x, grad_out, k)
        diff = (by_torch() - by_uv2()).abs().max().item()
        ms_torch, ms_uv2 = median_ms([by_torch, by_uv2], args.warmup, args.iters)
        print(f"{name:<29} {ms_torch:>10.2f} {ms_uv2:>10.2f} {ms_torch / ms_uv2:>8.2f}x {diff:>11.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
