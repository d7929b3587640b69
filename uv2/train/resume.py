"""What a checkpoint holds beyond Lightning's own state, so that a resumed run is the run it resumes.

A run killed at any step and resumed from last.ckpt continues bit-identically to the uninterrupted run (same batches,
augmentations, dropout / drop-path masks and mixup draws, same weights, same logged metrics from the resume point on).
Where each part of the state comes from:

- Weights, optimizer, LR schedule, step and epoch counters, the best-checkpoint callback: Lightning.
- The position in the training data: the training loader's state (uv2.data.sampler.ResumableDataLoader), which
  Lightning keeps in the fit loop's ``combined_loader`` (restored by :class:`TrainLoaderPosition`); the order and
  every item's augmentation draws are pure functions of (seed, epoch, pass, position), so nothing of the DataLoader
  workers or of the dataset's generators needs carrying. The seed itself travels in the DataModule's
  ``state_dict``.
- The global random generators of every rank (torch CPU / CUDA / MPS, numpy's legacy generator, Python's
  ``random``): :class:`RandomStates`. They drive dropout, drop-path and timm's mixup / cutmix; the data pipeline
  draws nothing from them (its loaders have their own generators), so their state at a checkpoint is the state the
  next training step starts from.
- The running sums behind the training metrics logged with ``on_epoch=True`` (train/loss_epoch, train/top1, ...):
  :class:`EpochMetricSums`; without them a run resumed mid-epoch would log the mean of the batches after the resume
  as the epoch's.
- The LightningModule's non-finite-loss counters: VideoClassifier.on_save_checkpoint.

Where a state is captured matters as much as what: uv2.train.checkpointing.LastCheckpoint writes last.ckpt at the end
of a training batch mid-epoch, and after validation at the end of an epoch (never at a batch that validation follows:
Lightning would skip that validation on resume).
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

log = logging.getLogger(__name__)

__all__ = ["RandomStates", "EpochMetricSums", "TrainLoaderPosition", "collect_random_states", "restore_random_states"]


def collect_random_states() -> dict[str, Any]:
    """This process's global random generators, as tensors and plain containers (loadable with weights_only)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(mt), "gauss": gauss},
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if torch.backends.mps.is_available():
        states["mps"] = torch.mps.get_rng_state()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    """Set this process's global random generators to what :func:`collect_random_states` returned."""
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            log.warning(f"the checkpoint holds the CUDA generators of {len(cuda)} devices, this process sees "
                        f"{torch.cuda.device_count()}: restoring the first {min(len(cuda), torch.cuda.device_count())}")
        for device, state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, device)
    if "mps" in states and torch.backends.mps.is_available():
        torch.mps.set_rng_state(states["mps"])


class RandomStates(pl.Callback):
    """Every rank's global random generators in checkpoints (``checkpoint["uv2_random_states"]``: one entry per rank),
    restored when a resumed fit starts training.

    Captured in ``on_save_checkpoint``, which Lightning calls on every rank for every checkpoint (rank 0 writes the
    file): under DDP the ranks' states are gathered there, one collective per checkpoint and none per step. Restored in
    ``on_train_start``: after everything a resumed run does before training (building the model draws initial weights,
    the sanity check), before the first batch. Between a checkpoint and the next training step the uninterrupted run
    draws nothing from these generators (the data pipeline has its own), so the restored state is exactly the one its
    next step used.
    """

    KEY = "uv2_random_states"

    def __init__(self) -> None:
        self._loaded: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        states = collect_random_states()
        ranks = [states]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks = [None] * trainer.world_size
            torch.distributed.all_gather_object(ranks, states)
        checkpoint[self.KEY] = {"world_size": len(ranks), "ranks": ranks}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is None:
            return
        if loaded["world_size"] != trainer.world_size:
            log.warning(f"the checkpoint was written by {loaded['world_size']} processes, this run has "
                        f"{trainer.world_size}: the random generators are not restored (dropout masks and mixup draws "
                        f"differ from the uninterrupted run's)")
            return
        restore_random_states(loaded["ranks"][trainer.global_rank])


class TrainLoaderPosition(pl.Callback):
    """Hands the training loaders the position a checkpoint holds, where Lightning built them too early to do so.

    Lightning loads the saved loader states in ``FitLoop.setup_data``, which builds the training loaders once; but
    VideoClassifier.configure_optimizers asks for ``trainer.estimated_stepping_batches`` (the schedule's length),
    which builds them before the checkpoint's loop state is restored, so Lightning's load finds nothing to load then
    and never runs again (Lightning 2.6): the resumed epoch would start its pass over. Loading here, at
    ``on_train_start``, is still in time: uv2.data.sampler.ResumableDataLoader creates its iterator at the first batch.
    A no-op where Lightning did load them (its list of states to load is empty then).
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.fit_loop._load_combined_loader_states()


class EpochMetricSums(pl.Callback):
    """The running sums of the training metrics logged with ``on_epoch=True``, carried over a mid-epoch resume.

    Lightning accumulates them in the training loop's result collection (the mean's weighted sum and count, a sum, a
    max or a min per metric) and does not checkpoint it. Saved here with a checkpoint written mid-epoch (at an epoch
    end the epoch's metrics are complete); after a resume, at the end of the first batch (when the training step has
    logged each metric again, the collection holding that batch's value alone), the saved sum is added to it. Float
    addition is commutative, so ``saved + this batch`` is bit for bit the uninterrupted run's ``sum + this batch``,
    and every later batch adds to the same value. A metric first logged after the first batch's end (logged only on
    some steps) is merged when it appears, which may differ from the uninterrupted run in the last bit.

    Under DDP each rank accumulates its own batches (the metrics are synced, ``sync_dist``, when the epoch ends), so
    every rank's sums are saved (``checkpoint[KEY]``: ``world_size`` and one entry per rank, gathered in
    ``on_save_checkpoint`` as :class:`RandomStates` gathers) and each rank takes its own back. Resumed on another
    number of processes, rank 0 takes them all (the same epoch value up to rounding). A checkpoint of one process's
    sums (written before the ranks' were gathered) goes to rank 0 alone.

    It reads Lightning's private result collection (``fit_loop.epoch_loop._results``, ``_ResultMetric.value`` /
    ``cumulated_batch_size``): tested with Lightning 2.6.
    """

    KEY = "uv2_epoch_metric_sums"

    def __init__(self) -> None:
        self._pending: dict[str, list[dict[str, torch.Tensor]]] = {}  # per metric: saved sums not merged yet

    @staticmethod
    def _results(trainer: pl.Trainer):
        return trainer.fit_loop.epoch_loop._results

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        progress = trainer.fit_loop.epoch_progress.current
        if progress.processed >= progress.started:  # at an epoch end (or before any): nothing half-accumulated
            return
        sums = {key: list(entries) for key, entries in self._pending.items()}  # not merged yet: kept for the next one
        for key, metric in self._results(trainer).items():
            if metric.is_tensor and metric.meta.on_epoch and key not in sums:
                entry = {"value": metric.value.detach().cpu().clone()}
                if metric.meta.is_mean_reduction:
                    entry["count"] = metric.cumulated_batch_size.detach().cpu().clone()
                sums[key] = [entry]
        ranks = [sums]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks = [None] * trainer.world_size
            torch.distributed.all_gather_object(ranks, sums)
        checkpoint[self.KEY] = {"world_size": len(ranks), "ranks": ranks}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        saved = checkpoint.get(self.KEY) or {}
        if "ranks" not in saved:  # one process's sums: {metric: entry}
            saved = {"world_size": 1, "ranks": [{key: [entry] for key, entry in saved.items()}]}
        if saved["world_size"] == trainer.world_size:
            self._pending = {key: list(entries) for key, entries in saved["ranks"][trainer.global_rank].items()}
        else:
            self._pending = {}
            for sums in saved["ranks"] if trainer.global_rank == 0 else []:
                for key, entries in sums.items():
                    self._pending.setdefault(key, []).extend(entries)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._pending:
            self._merge(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending:
            self._merge(trainer)
            if self._pending:
                log.warning(f"epoch metrics {sorted(self._pending)} of the interrupted run were not logged again after "
                            f"the resume: their epoch values cover the batches after it only")
                self._pending = {}

    def _merge(self, trainer: pl.Trainer) -> None:
        results = self._results(trainer)
        for key in [k for k in self._pending if k in results]:
            metric = results[key]
            for saved in self._pending.pop(key):
                value = saved["value"].to(metric.value.device, metric.value.dtype)
                if metric.meta.is_mean_reduction or metric.meta.is_sum_reduction:
                    metric.value = value + metric.value
                    if metric.meta.is_mean_reduction:
                        metric.cumulated_batch_size = saved["count"].to(metric.cumulated_batch_size.device) \
                            + metric.cumulated_batch_size
                elif metric.meta.is_max_reduction:
                    metric.value = torch.maximum(value, metric.value)
                elif metric.meta.is_min_reduction:
                    metric.value = torch.minimum(value, metric.value)
