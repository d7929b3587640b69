"""The training order and every training item's random draws, as pure functions of (seed, epoch, pass, position),
and the loader that resumes them exactly.

Why pure functions. A run killed at any step and resumed must see the same batches with the same augmentations.
Carrying random-generator states across a kill is fragile: a dataset's generator lives in each DataLoader worker (or
in the main process without workers), is advanced by batches the workers prefetched but the loop never trained on,
and continues across epochs. Here nothing needs carrying: the order of pass ``p`` of epoch ``e`` is a permutation
drawn from ``(seed, epoch, pass)``, and the item at ``position`` of that pass draws its temporal offsets, crop box,
flip and RandAugment seed from its own generator, ``numpy.random.default_rng((seed, DRAW, epoch, pass,
position))``. The sampler hands the dataset an :class:`ItemKey` (the list index and that entropy) instead of a bare
index, so which worker decodes an item, how far the workers prefetched and whether the frames came from the decode
cache change nothing: a run with ``num_workers`` 0 and one with 2 train on the same clips. To resume, only the
position in the current pass is needed (``epoch, pass, yielded``: :meth:`ShuffleSampler.state_dict`), which
torchdata's StatefulDataLoader saves with the batches the loop consumed and Lightning keeps in every checkpoint.

A *pass* is one iteration over the sampler. An epoch is one pass, except in co-training, where Lightning restarts the
loader of a smaller set within an epoch ("max_size_cycle"): each restart is the next pass of the epoch, with its own
order. Lightning calls :meth:`ShuffleSampler.set_epoch` at every epoch start, resumed ones included.

Several things here exist for the resume:

- :class:`ResumableDataLoader` creates its iterator at the first batch, not at ``iter()``. Lightning calls ``iter()``
  on the training loader before it calls ``set_epoch`` (in ``FitLoop.setup_data``, and a run resumed from an
  epoch-end checkpoint keeps that iterator for its next epoch); with worker processes the iterator fetches indices at
  creation, so they would come from the previous epoch's order.
- The sampler assigns a pass its number when its first index is drawn, not when ``iter()`` is called: torch's
  DataLoader iterators call ``iter()`` on the sampler more than once while they start (and a different number of
  times with and without workers); only the iterator that yields is a pass.
- The loader's own ``generator`` draws the DataLoader's base seeds, so that building and iterating loaders never
  draws from torch's global generator, whose state (dropout, drop-path masks) is saved in checkpoints apart
  (uv2.train.resume.RandomStates) and must advance only with the training steps.
- Lightning does not prefetch from a loader whose length it knows (ours: ``_PrefetchDataFetcher`` ignores
  ``prefetch_batches`` then), so the loader's state when a checkpoint is written is that of the batches trained on,
  as torchdata reports it; asked between ``iter()`` and the first batch, :meth:`ResumableDataLoader.state_dict`
  answers without starting the iteration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader

__all__ = ["ItemKey", "ShuffleSampler", "ResumableDataLoader", "derive_seed"]

ORDER, DRAW = 0, 1  # the two streams of a seed: the order of a pass, the draws of one item


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixing non-negative integers (numpy's SeedSequence: nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


class ItemKey(NamedTuple):
    """What the training sampler hands the dataset: the item to load and the entropy of its random draws."""

    index: int
    draw: tuple[int, ...]  # (seed, DRAW, epoch, pass, position)

    def rng(self) -> np.random.Generator:
        """The item's own generator: every random choice of the item comes from it, in a fixed order."""
        return np.random.default_rng(self.draw)


class ShuffleSampler(DistributedSampler):
    """Training order: a new permutation per pass, padded and split across ranks as DistributedSampler does, yielding
    :class:`ItemKey` s (see the module docstring).

    A DistributedSampler subclass so that Lightning does not replace it under DDP (it would with any other sampler);
    ``num_replicas`` / ``rank`` come from the Trainer (1 / 0 without one).

    Args:
        dataset: the training dataset (only its length is used).
        seed: the run's data seed; the same on every rank.
        num_replicas: ranks the data is split across.
        rank: this rank.
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        self._next_pass = 0  # the number the next pass of this epoch gets
        self._current: list[int] | None = None  # [epoch, pass, yielded] of the pass being drawn from
        self._resume: tuple[int, int, int] | None = None  # loaded state: the next iterator continues that pass

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self._next_pass = epoch, 0

    def order(self, epoch: int, pass_: int) -> np.ndarray:
        """The list indices of pass ``pass_`` of ``epoch``, padded to a multiple of the ranks (all ranks)."""
        n = len(self.dataset)  # type: ignore[arg-type]
        order = np.random.default_rng((self.seed, ORDER, epoch, pass_)).permutation(n)
        if self.total_size > n:  # as DistributedSampler: repeat the start to give every rank the same count
            order = np.concatenate([order] * math.ceil(self.total_size / n))[: self.total_size]
        return order

    def __iter__(self) -> Iterator[ItemKey]:
        resume, self._resume = self._resume, None
        return self._keys(resume)

    def _keys(self, resume: tuple[int, int, int] | None) -> Iterator[ItemKey]:
        # a generator: nothing below runs (no pass number is taken) until the first key is asked for
        epoch, pass_, start = resume if resume is not None else (self.epoch, self._next_pass, 0)
        self.epoch, self._next_pass = epoch, pass_ + 1
        current = self._current = [epoch, pass_, start]
        order = self.order(epoch, pass_)
        for k in range(start, self.num_samples):
            position = self.rank + k * self.num_replicas
            current[2] = k + 1  # before the yield: a state read after this key counts it as drawn
            yield ItemKey(int(order[position]), (self.seed, DRAW, epoch, pass_, position))

    def state_dict(self) -> dict[str, int]:
        """Where the pass being drawn from stands ({} before the first key of the run)."""
        if self._current is None:
            return {}
        epoch, pass_, yielded = self._current
        return {"epoch": epoch, "pass": pass_, "yielded": yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state:
            self._resume = (state["epoch"], state["pass"], state["yielded"])
            self.epoch = state["epoch"]


class ResumableDataLoader(StatefulDataLoader):
    """torchdata's StatefulDataLoader over a :class:`ShuffleSampler`, whose iterator starts at the first batch (see
    the module docstring), with its own generator for the DataLoader's base seeds.

    Its state (Lightning saves it in every checkpoint as the fit loop's ``combined_loader``) is the sampler's position
    after the batches handed out: Lightning does not prefetch from loaders with a length, so that is after the
    batches the loop trained on.
    """

    def __init__(self, dataset: Dataset, *, sampler: ShuffleSampler, **kwargs: Any) -> None:
        generator = torch.Generator().manual_seed(derive_seed(sampler.seed, 2))  # base seeds, not the global RNG
        super().__init__(dataset, sampler=sampler, generator=generator, **kwargs)
        self._started = False  # whether the current iteration has drawn its first batch

    def __iter__(self):
        self._started = False
        return _StartAtFirstBatch(self)

    def _start(self):
        self._started = True
        return StatefulDataLoader.__iter__(self)

    def state_dict(self) -> dict[str, Any]:
        if not self._started:
            # asked between iter() and the first batch: the loaded state still waiting to be used, or nothing
            # consumed yet in this iteration ({}: a resumed run starts the iteration afresh)
            return self.next_iter_state or {}
        return super().state_dict()


class _StartAtFirstBatch:
    """The iterator ResumableDataLoader.__iter__ returns: it creates the real one at the first next()."""

    def __init__(self, loader: ResumableDataLoader) -> None:
        self.loader, self.iterator = loader, None

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __next__(self):
        if self.iterator is None:
            self.iterator = self.loader._start()
        return next(self.iterator)
