"""Several labelled video sets at once, for co-training one model with a head per set (the paper's table (e):
K400 + K600 + K700 with three heads).

:class:`MultiSetDataModule` holds one :class:`~uv2.data.datamodule.VideoDataModule` per set, built from the
arguments every set shares (``common``) updated by its own (``sets[name]``). Its class names are the sets' names
prefixed by the set ("scene_a/juggling"), in set order, so the classifier of a co-trained model is the sets' heads
stacked: set k owns the rows ``slices[k]``. Loaders:

- train: a dict {set: loader}; Lightning combines them ("max_size_cycle": each step has one batch of every set,
  shorter sets start over, each start a new pass with its own order: uv2.data.sampler), and saves every loader's
  position in checkpoints, so resume stays exact; each set has its own seed (its position in ``sets``), kept in
  checkpoints;
- val / test: a list of loaders in set order (Lightning runs them one after the other, ``dataloader_idx`` = set).

Each set's batches reach the device as uint8 and become the model's input there by that set's own
:class:`~uv2.data.augment.BatchAugment` (its mean / std / RandAugment), in ``on_after_batch_transfer``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from uv2.data.datamodule import VideoDataModule

__all__ = ["MultiSetDataModule"]


class MultiSetDataModule(pl.LightningDataModule):
    """Video sets trained together.

    Args:
        sets: {set name: VideoDataModule arguments of that set} (e.g. {"k400": {"train_list": ...}, ...} or
            {"scene_a": {"synthetic_set": "scene_a"}, ...}); the set order is the order of the heads.
        common: VideoDataModule arguments shared by every set (sizes, sampling, batch size, workers, ...).
    """

    def __init__(self, sets: dict[str, dict[str, Any]], common: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not sets:
            raise ValueError("MultiSetDataModule: `sets` is empty; give at least one {name: arguments} entry")
        bad = [name for name in sets if not name or "/" in name]
        if bad:
            raise ValueError(f"MultiSetDataModule: invalid set names {bad} (non-empty, no '/')")
        # each set's module is built in an empty context: under LightningCLI a context variable carries the
        # hyperparameters of the module being instantiated (this one), which the sets' modules must not inherit
        self.datamodules = {name: contextvars.Context().run(VideoDataModule, **{**(common or {}), **(args or {})})
                            for name, args in sets.items()}
        for k, datamodule in enumerate(self.datamodules.values()):
            datamodule.train_seed.stream = k  # each set its own training order and draws, not the same permutation
        self.class_names: list[str] | None = None
        self.set_sizes: dict[str, int] | None = None

    @property
    def batch_size(self) -> int:
        """Training clips per step: one batch of every set."""
        return sum(datamodule.hparams.batch_size for datamodule in self.datamodules.values())

    def prepare_data(self) -> None:
        for datamodule in self.datamodules.values():
            datamodule.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        for datamodule in self.datamodules.values():
            datamodule.trainer = self.trainer  # each set takes the model's frame count through it
            datamodule.setup(stage)
        self.set_sizes = {name: dm.num_classes for name, dm in self.datamodules.items()}
        self.class_names = [f"{name}/{c}" for name, dm in self.datamodules.items() for c in dm.class_names]

    @property
    def num_classes(self) -> int:
        """Classes of all sets together (the stacked heads), after setup."""
        if self.class_names is None:
            raise RuntimeError("num_classes is known after setup()")
        return len(self.class_names)

    def train_dataloader(self) -> dict[str, DataLoader]:
        return {name: dm.train_dataloader() for name, dm in self.datamodules.items()}

    def state_dict(self) -> dict[str, Any]:
        """Kept in checkpoints: each set's seed of its training order and draws."""
        return {name: dm.state_dict() for name, dm in self.datamodules.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, dm in self.datamodules.items():
            dm.load_state_dict(state_dict.get(name, {}))

    def val_dataloader(self) -> list[DataLoader]:
        return [dm.val_dataloader() for dm in self.datamodules.values()]

    def test_dataloader(self) -> list[DataLoader]:
        return [dm.test_dataloader() for dm in self.datamodules.values()]

    def _per_set(self, batch: Any, dataloader_idx: int, hook: Callable[[VideoDataModule, Any], Any]) -> Any:
        """Apply ``hook(set's datamodule, batch)``: a training batch is {set: batch}; val / test batches come from
        the loader of set ``dataloader_idx``."""
        if isinstance(batch, dict) and batch and set(batch) <= set(self.datamodules) \
                and all(isinstance(b, dict) for b in batch.values()):
            return {name: hook(self.datamodules[name], b) for name, b in batch.items()}
        return hook(list(self.datamodules.values())[dataloader_idx], batch)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self._per_set(batch, dataloader_idx, lambda dm, b: dm.augment.before_transfer(b))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self._per_set(batch, dataloader_idx, lambda dm, b: dm.augment(b))
