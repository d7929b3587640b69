"""Callbacks of a uv2 run: throughput and data-wait monitoring, the head's balance, exporting the image ViT."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from uv2.io import atomic_torch_save
from uv2.models.convert import export_image_vit

log = logging.getLogger(__name__)


def batch_clips(batch: dict) -> int:
    """Clips in a training batch (a plain batch, or a co-training batch {set: batch})."""
    return len(batch["label"]) if "label" in batch else sum(len(b["label"]) for b in batch.values())


class PerfMonitor(pl.Callback):
    """Logs data/wait_s (time the training loop waited for the batch), data/wait_fraction and perf/clips_per_s."""

    def __init__(self) -> None:
        self._last_end: float | None = None
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()
        self._wait = self._start - self._last_end if self._last_end is not None else 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        end = time.perf_counter()
        total = end - self._start + self._wait
        clips = batch_clips(batch)
        pl_module.log_dict({"data/wait_s": self._wait, "data/wait_fraction": self._wait / max(total, 1e-9),
                            "perf/clips_per_s": clips * trainer.world_size / max(total, 1e-9)},
                           on_step=True, on_epoch=True, batch_size=clips)
        self._last_end = end


class BalanceMonitor(pl.Callback):
    """Every `every` steps, logs the head's balance w = sigmoid(b) between the global branch and the class token
    (model/balance_weight_{mean,min,max}); nothing for models without it."""

    def __init__(self, every: int = 50) -> None:
        self.every = every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        balance = pl_module.model.head.balance
        if balance is not None and trainer.global_step % self.every == 0:
            weight = torch.sigmoid(balance.detach())
            pl_module.log_dict({"model/balance_weight_mean": weight.mean(), "model/balance_weight_min": weight.min(),
                                "model/balance_weight_max": weight.max()}, on_step=True, on_epoch=False)


class ExportImageViT(pl.Callback):
    """At the end of fit, write the ViT part of the model (timm names, 2D stem) to RUN_DIR/`filename`, so an
    image-pretrained preset initialises the video presets (model.init_from)."""

    def __init__(self, filename: str = "vit.pth") -> None:
        self.filename = filename

    def on_fit_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / self.filename
            atomic_torch_save(export_image_vit(pl_module.model), path)
            log.info(f"exported the image ViT to {path}")
