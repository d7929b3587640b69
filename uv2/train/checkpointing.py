"""Checkpoints whose names mean what they say, written atomically.

- ``checkpoints/last.ckpt`` is the newest state, always: written at the end of every training epoch, every
  ``every_n_steps`` optimizer steps when asked, at the end of training, and when the run is stopped by Ctrl-C or
  SIGTERM (at the next batch boundary, so the state is consistent and a resume continues exactly; a second Ctrl-C
  stops at once without saving). One file, replaced in place: no ``last-v1.ckpt``. What it holds beyond Lightning's
  state, so that a resumed run is the uninterrupted one bit for bit: uv2.train.resume.
- ``checkpoints/best-epoch{E}-step{S}.ckpt`` is the best state by the monitored metric (val/top1), the only other
  file.

Every write goes through :class:`AtomicCheckpointIO` (temporary file + rename): a kill mid-save leaves the previous
checkpoint intact.

Where a step's state is written. A step checkpoint (every N steps, Ctrl-C) is written at the end of a training batch,
except at a batch that validation or the end of the epoch follows: Lightning resumes a checkpoint written there by
skipping that validation and the epoch's end (its epoch metrics, its last.ckpt), which the uninterrupted run did
not skip. There the write moves to the end of the epoch (after validation; same step) or, mid-epoch, to the end of
the next batch. SIGTERM mid-epoch before a validation is the exception: Lightning ends the run right after that
validation, so the state is written before it, and the resumed run does not repeat that one validation.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint, ModelCheckpoint

from uv2.io import atomic_torch_save

log = logging.getLogger(__name__)

LAST = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: a SIGKILL mid-save leaves the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)


def best_checkpoint(ckpt_dir: Path, monitor: str = "val/top1") -> ModelCheckpoint:
    """best-epoch{E}-step{S}.ckpt: the single best state by `monitor` (higher is better), weighed as each validation
    ends. (Lightning's default weighs it as the training epoch ends, after the epoch's validation; a run stopped by
    max_steps within an epoch skips that validation and warned that `monitor` was missing.)"""
    return ModelCheckpoint(dirpath=ckpt_dir, filename="best-epoch{epoch}-step{step}", auto_insert_metric_name=False,
                           monitor=monitor, mode="max", save_top_k=1, save_last=False, save_on_train_epoch_end=False)


class LastCheckpoint(Checkpoint):
    """Keeps ckpt_dir/last.ckpt the newest state of the run (see the module docstring).

    A Lightning ``Checkpoint``: Lightning runs checkpoint callbacks after every other callback at each hook, so a write
    at a batch's end holds what the others did at that batch. Weight averaging needs it: EMAWeightAveraging updates
    its average at the batch's end, and a checkpoint written before that update resumed one update short.
    """

    def __init__(self, ckpt_dir: Path, every_n_steps: int = 0) -> None:
        self.path = Path(ckpt_dir) / LAST
        self.every_n_steps = every_n_steps
        self._saved_step: int | None = None  # global step of the last write (no double write at one step)
        self._due = False  # a step checkpoint waits for a batch that validation does not follow
        self._stop_requested = False
        self._stop_after_epoch = False  # Ctrl-C at an epoch's last batch: stop once the epoch has ended
        self._previous_sigint: Any = None

    # ------------------------------------------------------------------------------------------------- writing
    def save(self, trainer: pl.Trainer) -> None:
        """Write last.ckpt now (every rank calls it; rank 0 writes)."""
        trainer.save_checkpoint(self.path, weights_only=False)  # said: Lightning logs the default at each save
        self._saved_step = trainer.global_step

    @staticmethod
    def _epoch_end_follows(trainer: pl.Trainer) -> bool:
        return bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)

    @staticmethod
    def _validation_follows(trainer: pl.Trainer) -> bool:
        """Whether Lightning validates after this batch (its own test, run at on_train_batch_end instead of after)."""
        loop = trainer.fit_loop.epoch_loop
        should_check = getattr(loop, "_should_check_val_fx", None)
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        return bool(should_check(fetcher)) if callable(should_check) and fetcher is not None else False

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        epoch_end, validation = self._epoch_end_follows(trainer), self._validation_follows(trainer)
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0:
            self._due = True
        if trainer.received_sigterm and not epoch_end:
            # SIGTERM: Lightning ends the run after this batch (after its validation, if one follows): write now
            self._stop_here(trainer, step)
            return
        if self._stop_wanted(trainer) and not trainer.received_sigterm:  # Ctrl-C
            if epoch_end:  # written at the epoch's end, after its validation; stop at the next epoch's start
                self._stop_after_epoch = True
            elif not validation:
                self._stop_here(trainer, step)
                raise KeyboardInterrupt
            return
        if self._due and not (epoch_end or validation):
            if self._saved_step != step:
                self.save(trainer)
            self._due = False

    def _stop_here(self, trainer: pl.Trainer, step: int) -> None:
        # a batch boundary: the state is consistent, so the run resumes exactly from here
        if self._saved_step != step:
            self.save(trainer)
        log.warning(f"stopped at step {step}; {self.path} holds this state: rerun with --resume to continue")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self._saved_step != trainer.global_step or not self.path.exists():
            self.save(trainer)
        self._due = False
        if self._stop_after_epoch:
            log.warning(f"stopped at the end of epoch {trainer.current_epoch} (step {trainer.global_step}); "
                        f"{self.path} holds this state: rerun with --resume to continue")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module) -> None:
        if self._stop_after_epoch:  # the previous epoch ended and logged its metrics; last.ckpt holds its end
            raise KeyboardInterrupt

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self._saved_step != trainer.global_step or not self.path.exists():
            self.save(trainer)
        if self._stop_after_epoch:  # Ctrl-C during the last epoch's last batch: the fit is complete, stop here
            raise KeyboardInterrupt

    # --------------------------------------------------------------------------------------- graceful Ctrl-C
    def on_fit_start(self, trainer: pl.Trainer, pl_module) -> None:
        self._stop_requested = self._stop_after_epoch = False
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def on_fit_end(self, trainer: pl.Trainer, pl_module) -> None:
        self._restore_sigint()

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        self._restore_sigint()

    def _on_sigint(self, signum, frame) -> None:
        if self._stop_requested:  # the second Ctrl-C: stop at once (last.ckpt keeps the previous state)
            self._restore_sigint()
            raise KeyboardInterrupt
        self._stop_requested = True
        log.warning("Ctrl-C: stopping after this batch and saving last.ckpt (press Ctrl-C again to stop at once)")

    def _restore_sigint(self) -> None:
        if self._previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None

    def _stop_wanted(self, trainer: pl.Trainer) -> bool:
        """Whether any rank asked to stop (all ranks must save and stop at the same step)."""
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(self._stop_requested, all=False))
        return self._stop_requested
