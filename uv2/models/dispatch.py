"""Device dispatch: one module, two formulations of the same layer, chosen by the device of its input.

A few layers are fastest in a different form on each device, with the same numbers up to rounding:

- blocks.DepthwiseConv3d (the DPE). cpu: Conv3d on a channels-last view (no copy), the input gradient computed
  as a forward convolution with the flipped kernel. cuda: Conv3d on a contiguous (B, C, T, h, w) copy with
  autograd's own backward.
- blocks.DepthwiseTemporalConv (local MHRA, ST-Adapter). cpu: a weighted sum of k frame-shifted copies. cuda: a
  depth-wise (k, 1) Conv2d on a contiguous (B, C, T, S) copy.
- blocks.CrossAttention (global blocks, raw tokens). cpu: fused scaled_dot_product_attention. cuda: two batched
  matmuls and an explicit softmax.

Why they differ: CPU kernels favour few copies and multiply-adds they vectorise along the contiguous channels,
while cuDNN runs a depth-wise convolution as one grouped kernel only on the contiguous (N, C, ...) layout (on a
channels-last 3-D view its weight gradient is one kernel launch per channel: 768 launches per DPE per step at
ViT-B width), and a chain of element-wise passes costs a GPU one memory round trip each. The global blocks'
attention has h*Q query rows (12 at ViT-B) and a head width of C (768): beyond the flash kernel's 256, so on CUDA
the fused call falls back to a memory-efficient kernel that parallelises over query blocks (one per clip here);
two batched GEMMs use the whole GPU and the (B, h*Q, M) probabilities are small.

The "cpu" formulation runs on CPU tensors, the "cuda" one on every other device (CUDA, and plain PyTorch ops
elsewhere). `force_path` runs one formulation wherever the tensors are: tests compare the two on CPU, and
`benchmarks/speed.py --path` times either on a GPU. With activation checkpointing, keep the same path for the
backward pass (the recomputed forward must save the same tensors).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

Path = Literal["cpu", "cuda"]
PATHS: tuple[str, ...] = ("cpu", "cuda")

_forced: Path | None = None  # set by force_path / set_path; None = by device


def path_for(x: torch.Tensor) -> Path:
    """The formulation a dispatched layer runs for input `x`: the forced one, else "cpu" for CPU tensors and
    "cuda" for any other device."""
    if _forced is not None:
        return _forced
    return "cpu" if x.device.type == "cpu" else "cuda"


def set_path(path: Path | None) -> None:
    """Force one formulation for every dispatched layer of this process ("cpu" or "cuda"); None restores dispatch
    by device."""
    global _forced
    if path is not None and path not in PATHS:
        raise ValueError(f"path: invalid value {path!r}; valid choices: {', '.join(PATHS)} or None")
    _forced = path


def forced_path() -> Path | None:
    """The forced formulation, or None when layers dispatch by device."""
    return _forced


@contextmanager
def force_path(path: Path | None) -> Iterator[None]:
    """Run the dispatched layers with one formulation inside the block (None: by device), then restore."""
    previous = _forced
    set_path(path)
    try:
        yield
    finally:
        set_path(previous)
