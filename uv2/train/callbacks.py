"""Callbacks of ``python -m uv2 fit`` that are not about the model: the input pipeline's summary line.

:class:`ThroughputSummary` ends ``fit`` with one line, e.g.::

    fit throughput: 1280 clips in 61.2 s of training steps, 20.9 clips/s, data wait 63% of the step time, 0 decode
    failures; the GPU waited for data: raise data.num_workers (8 now, 16 CPUs), set data.num_repeats 2 (one decode,
    two augmented clips), or store the videos smaller (short side 320 px, e.g. ffmpeg -vf scale=-2:320)

Timing is PerfMonitor's (uv2/train/module.py): the wait of a step is the time from the end of the previous step to
the start of this one (fetching the batch, the transfer and the DataModule's ``on_after_batch_transfer``), the
step is forward, backward and the optimiser. Clips count every device (world size x local clips); the wait fraction
and the decode failures are summed over the devices.
"""

from __future__ import annotations

import logging
import os
import time

import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)

__all__ = ["ThroughputSummary"]


def _clips(batch) -> int:
    """Clips in a training batch (plain, or co-training {set: batch}); kept here, not imported from the
    LightningModule's file, so that the summary does not depend on how that file is organised."""
    batches = [batch] if "label" in batch else list(batch.values())
    return sum(len(b["label"]) for b in batches)


def _decode_failures(batch) -> int:
    """Failed decodes behind a training batch (plain, or co-training {set: batch})."""
    batches = [batch] if "label" in batch else list(batch.values())
    return int(sum(int(b["decode_failures"].sum()) for b in batches if "decode_failures" in b))


class ThroughputSummary(pl.Callback):
    """At the end of ``fit``: clips/s, the fraction of step time spent waiting for data, decode failures, and what
    to change when the wait is above ``hint_above`` (see the module docstring).

    Args:
        hint_above: the wait fraction above which the line suggests how to feed the GPU faster.
    """

    def __init__(self, hint_above: float = 0.2) -> None:
        self.hint_above = hint_above  # wait fraction above which a hint is printed
        self.clips = 0  # training clips on this device
        self.wait_s = 0.0  # seconds waited for batches on this device
        self.step_s = 0.0  # seconds inside training steps on this device
        self.failures = 0  # failed decodes behind this device's batches
        self._last_end: float | None = None
        self._start = 0.0
        self.line: str | None = None  # the summary, once fit ended (global rank 0)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()
        if self._last_end is not None:
            self.wait_s += self._start - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        end = time.perf_counter()
        self.step_s += end - self._start
        self.clips += _clips(batch)
        self.failures += _decode_failures(batch)
        self._last_end = end

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        totals = torch.tensor([self.clips, self.wait_s, self.step_s, self.failures], dtype=torch.float64,
                              device=pl_module.device)
        if trainer.world_size > 1:  # every rank reaches on_fit_end: one all-reduce
            totals = trainer.strategy.reduce(totals, reduce_op="sum")
        clips, wait_s, step_s, failures = totals.tolist()
        if trainer.is_global_zero:
            self.line = self.summary(int(clips), wait_s, step_s, int(failures), trainer)
            log.info(self.line)
            print(self.line, flush=True)

    def summary(self, clips: int, wait_s: float, step_s: float, failures: int, trainer: pl.Trainer) -> str:
        """The line (wait and step seconds summed over the devices; the wall time is their mean per device)."""
        devices = max(trainer.world_size, 1)
        seconds = (wait_s + step_s) / devices
        wait = wait_s / (wait_s + step_s) if wait_s + step_s > 0 else 0.0
        line = (f"fit throughput: {clips} clips in {seconds:.1f} s of training steps, "
                f"{clips / seconds if seconds > 0 else 0.0:.1f} clips/s, data wait {wait:.0%} of the step time, "
                f"{failures} decode failure{'s' if failures != 1 else ''}")
        if wait > self.hint_above:
            line += "; " + self.hint(trainer)
        return line

    def hint(self, trainer: pl.Trainer) -> str:
        datamodule = getattr(trainer, "datamodule", None)
        hparams = getattr(datamodule, "hparams", {}) or {}
        common = hparams.get("common") or {}  # MultiSetDataModule: the arguments every set shares
        workers = hparams.get("num_workers", common.get("num_workers"))
        repeats = hparams.get("num_repeats", common.get("num_repeats")) or 1
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        now = f" ({workers} now, {cpus} CPUs)" if workers is not None else f" ({cpus} CPUs)"
        return (f"the model waited for data: raise data.num_workers{now}, set data.num_repeats {repeats + 1} "
                f"(one decode, {repeats + 1} augmented clips), or store the videos smaller (short side 320 px, "
                f"e.g. ffmpeg -vf scale=-2:320)")
