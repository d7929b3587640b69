"""The non-finite-loss guard: a step whose loss is NaN / Inf on any rank is skipped on every rank, and too many in a
row stop the run (:class:`~uv2.train.module.VideoClassifier`'s ``nonfinite_guard`` and ``max_nonfinite_steps``).

Two ways to skip a step:

- on the device (``"auto"``, where the optimiser can: fused AdamW and no gradient scaler). The loss's finiteness
  stays a device tensor (all-reduced over the ranks, min), the backward runs, and fused AdamW leaves weights and
  moments alone where its ``found_inf`` is 1, the mechanism torch's GradScaler uses. Nothing waits for the GPU, so
  the host prepares the next batch (its transfer and augmentation) while the GPU still runs this step's backward.
  The host learns of a skipped step one step later, from a pinned copy made right after that step's forward: the
  count, the warning and the stop come a step late.
- on the host (``"host"``, and wherever the device cannot skip: another optimiser, or fp16's GradScaler, which sets
  ``found_inf`` itself). The loss is read back after every forward and the step returns None (Lightning then skips
  the backward and the update). The read-back drains the GPU's queue every step, so the GPU idles while the host
  prepares the next batch.

Either way a skipped step leaves the weights and the optimiser's moments as they were, and the epoch means of the
training metrics are those of the steps taken (on the device a skipped step enters them with weight 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

GUARDS = ("auto", "host")


class NonFiniteLossError(RuntimeError):
    """Too many consecutive training steps produced a NaN / Inf loss."""


def skips_on_device(optimizers: list[torch.optim.Optimizer], scaler: object | None) -> bool:
    """Whether a step can be skipped on the device: one fused AdamW / Adam (its kernel honours ``found_inf``) and no
    gradient scaler (which would set ``found_inf`` itself)."""
    return (scaler is None and len(optimizers) == 1 and isinstance(optimizers[0], torch.optim.Adam | torch.optim.AdamW)
            and bool(optimizers[0].defaults.get("fused")))


@dataclass
class NonFiniteGuard:
    """Counts non-finite steps and decides when to stop; on the device, also keeps the flags in flight."""

    max_in_a_row: int  # consecutive non-finite losses tolerated (each skips its step) before stopping
    in_a_row: int = 0  # non-finite steps since the last finite one
    total: int = 0  # non-finite steps in the run (resumed runs count on from the checkpoint)
    # (step, its flag's host copy, the event after that copy) of the steps observed on the device, not yet counted
    pending: list[tuple[int, torch.Tensor, torch.cuda.Event | None]] = field(default_factory=list)
    window: torch.Tensor | None = None  # device bool: every loss of this accumulation window was finite

    def count(self, finite: bool, step: int) -> None:
        """Count step ``step``'s outcome."""
        if finite:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        self.total += 1
        log.warning(f"non-finite loss at step {step}: step skipped ({self.in_a_row} in a row, {self.total} in total)")

    @property
    def exhausted(self) -> bool:
        """Too many non-finite steps in a row: the run must stop."""
        return self.in_a_row > self.max_in_a_row

    def error(self, step: int) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"{self.in_a_row} consecutive training steps had a non-finite loss (last at global step {step}); lower "
            f"optim.lr, enable gradient clipping (trainer.gradient_clip_val) or use fp32 / bf16-mixed precision")

    # -- on the device ------------------------------------------------------------------------------------------
    def observe(self, loss: torch.Tensor, step: int) -> torch.Tensor:
        """The device bool "this step's loss is finite on every rank", without waiting for it; its pinned host copy
        is queued for :meth:`arrived`."""
        finite = torch.isfinite(loss.detach())
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            flag = finite.float()
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)  # on NCCL the stream waits, not the host
            finite = flag > 0
        self.window = finite if self.window is None else self.window & finite
        host = torch.empty((), dtype=torch.bool, pin_memory=finite.is_cuda)
        host.copy_(finite, non_blocking=True)
        event = None
        if finite.is_cuda:
            event = torch.cuda.Event()
            event.record()
        self.pending.append((step, host, event))
        return finite

    def arm(self, optimizer: torch.optim.Optimizer) -> None:
        """Before the optimiser step: skip it on the device unless every loss of its window was finite."""
        if self.window is not None:
            optimizer.found_inf = (~self.window).float()
            self.window = None

    def arrived(self) -> list[tuple[int, bool]]:
        """(step, finite) of every observed step so far, in order (waits only for the copies, made right after each
        step's forward)."""
        out = []
        for step, host, event in self.pending:
            if event is not None:
                event.synchronize()
            out.append((step, bool(host)))
        self.pending.clear()
        return out
