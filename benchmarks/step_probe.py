"""Where a training step's host time goes, and what in it waits for the GPU: a callback for `python -m uv2 fit`.

    python -m uv2 fit --config ... --trainer.callbacks+=benchmarks.step_probe.StepProbe      # repository root on
    python benchmarks/feed_check.py --work /tmp/feed --repeats 1 --probe                  # PYTHONPATH

Over steps ``first`` to ``last`` (default 5-24) it stamps the host clock (and, on a GPU, records an event: the
moment the GPU gets there) at the loop's hooks, and splits a step into

    data        the end of the previous step -> this step's start: fetching the batch, the transfer and the
                DataModule's on_after_batch_transfer (``augment``, timed on its own: flip, RandAugment, normalisation)
    forward     the step's start -> the backward (training_step; ``guard wait``: the host waiting, inside it, for the
                device-side non-finite guard's flag of an earlier step)
    backward    the backward
    optimizer   after the backward -> the step's end (clipping, the optimiser step, zero_grad)

and prints one table: host milliseconds per step and phase (mean), and on a GPU the same intervals on the GPU's
timeline. A host period as long as the GPU's with little time waiting means the host, not the GPU, sets the pace. On
a GPU it also turns on torch's sync debug mode over those steps and lists every call that made the host wait for
the device (``torch.cuda.set_sync_debug_mode``: a blocking copy, ``.item()``, a data-dependent shape), with the
innermost frames of its stack, most frequent first.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections import Counter, defaultdict
from typing import Any

import pytorch_lightning as pl
import torch

PHASES = ("data", "augment", "forward", "guard wait", "backward", "optimizer", "step period")
# frames of a stack worth showing (not Python's warnings machinery, not this file)
SKIP_FRAMES = ("warnings.py", "step_probe.py")


class StepProbe(pl.Callback):
    """Host (and GPU) time per phase of steps ``first``..``last``, and the calls that waited for the device.

    Args:
        first: the first probed step (the steps before it warm up: worker start-up, allocator, cuDNN's choices).
        last: the last probed step.
        frames: innermost frames shown per waiting call.
    """

    def __init__(self, first: int = 5, last: int = 24, frames: int = 4) -> None:
        self.first, self.last, self.frames = first, last, frames
        self.host: dict[str, list[float]] = defaultdict(list)  # phase -> host seconds per probed step
        self.marks: list[dict[str, Any]] = []  # per probed step: mark name -> (host time, CUDA event or None)
        self.syncs: Counter[tuple[str, ...]] = Counter()  # innermost frames of a waiting call -> count
        self._current: dict[str, Any] | None = None
        self._previous_end: tuple[float, Any] | None = None
        self._cuda = False
        self._saved: tuple[Any, Any, Any] | None = None  # (showwarning, warning filters, the guard's arrived)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _mark(self) -> tuple[float, Any]:
        event = None
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
        return time.perf_counter(), event

    def _probing(self, trainer: pl.Trainer) -> bool:
        return self.first <= trainer.global_step <= self.last

    def _record_sync(self, message, category, filename, lineno, file=None, line=None) -> None:
        if "synchroniz" not in str(message):
            return self._saved[0](message, category, filename, lineno, file, line)
        stack = [f for f in traceback.extract_stack() if not f.filename.endswith(SKIP_FRAMES)]
        if stack and stack[-1].name == "set_sync_debug_mode":  # switching the mode on, not a wait
            return None
        self.syncs[tuple(f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}"
                         for f in stack[-self.frames:])] += 1

    def _start_probe(self, pl_module: pl.LightningModule) -> None:
        guard = getattr(pl_module, "guard", None)
        arrived = getattr(guard, "arrived", None)
        if arrived is not None:
            def timed_arrived():
                start = time.perf_counter()
                try:
                    return arrived()
                finally:
                    self.host["guard wait"].append(time.perf_counter() - start)
            guard.arrived = timed_arrived
        self._saved = (warnings.showwarning, list(warnings.filters), arrived)
        if self._cuda:
            warnings.showwarning = self._record_sync
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")

    def _stop_probe(self, pl_module: pl.LightningModule) -> None:
        if self._saved is None:
            return
        showwarning, filters, arrived = self._saved
        if self._cuda:
            torch.cuda.set_sync_debug_mode("default")
            warnings.showwarning = showwarning
            warnings.filters[:] = filters
        if arrived is not None:
            pl_module.guard.arrived = arrived
        self._saved = None

    # -- hooks -----------------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._cuda = pl_module.device.type == "cuda"
        datamodule = trainer.datamodule
        if datamodule is not None:  # time the DataModule's device-side work on its own
            after = datamodule.on_after_batch_transfer

            def timed_after(batch, dataloader_idx):
                start = time.perf_counter()
                try:
                    return after(batch, dataloader_idx)
                finally:
                    if self._probing(trainer) and trainer.training:
                        self.host["augment"].append(time.perf_counter() - start)
            datamodule.on_after_batch_transfer = timed_after

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.first and self._saved is None:
            self._start_probe(pl_module)
        self._current = {"end": self._previous_end, "start": self._mark()} if self._probing(trainer) else None

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self._current is not None:
            self._current["before_backward"] = self._mark()

    def on_after_backward(self, trainer, pl_module) -> None:
        if self._current is not None:
            self._current["after_backward"] = self._mark()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._previous_end = self._mark()
        if self._current is not None and self._current["end"] is not None:
            self._current["step_end"] = self._previous_end
            self.marks.append(self._current)
        self._current = None
        if trainer.global_step > self.last:
            self._stop_probe(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_probe(pl_module)
        if trainer.is_global_zero:
            print(self.report(), flush=True)

    # -- the report ------------------------------------------------------------------------------------------------
    def intervals(self, gpu: bool) -> dict[str, list[float]]:
        """Seconds per probed step and phase, on the host's clock or (``gpu``) the GPU's timeline."""
        def seconds(a, b):
            return a[1].elapsed_time(b[1]) * 1e-3 if gpu else b[0] - a[0]

        if gpu:
            torch.cuda.synchronize()
        out: dict[str, list[float]] = defaultdict(list)
        for m in self.marks:
            if "before_backward" not in m or "after_backward" not in m:  # a step skipped on the host
                continue
            out["data"].append(seconds(m["end"], m["start"]))
            out["forward"].append(seconds(m["start"], m["before_backward"]))
            out["backward"].append(seconds(m["before_backward"], m["after_backward"]))
            out["optimizer"].append(seconds(m["after_backward"], m["step_end"]))
            out["step period"].append(seconds(m["end"], m["step_end"]))
        return out

    def report(self) -> str:
        host = self.intervals(gpu=False)
        host.update(self.host)  # augment, guard wait
        gpu = self.intervals(gpu=True) if self._cuda else {}
        steps = len(host.get("step period", []))
        columns = [("host", host)] + ([("GPU timeline", gpu)] if gpu else [])
        lines = [f"step probe: steps {self.first}-{self.last} ({steps} probed), milliseconds per step (mean)",
                 "| phase | " + " | ".join(name for name, _ in columns) + " |", "|---" * (1 + len(columns)) + "|"]
        for phase in PHASES:
            cells = [f"{1e3 * sum(v[phase]) / len(v[phase]):.2f}" if v.get(phase) else "" for _, v in columns]
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
        if self._cuda:
            total = sum(self.syncs.values())
            lines.append(f"calls that waited for the GPU (sync debug mode, steps {self.first}-{self.last}): {total}")
            for stack, count in self.syncs.most_common(8):
                lines.append(f"  {count} x " + " <- ".join(reversed(stack)))
        return "\n".join(lines)
