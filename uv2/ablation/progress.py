"""The grid's progress: one line per cell, with the cell's epoch, steps and time left, and the grid's count and time
left estimated from the cells this invocation finished.

- In a terminal, the running cell's line updates in place (tqdm): ``[3/8] table c | 9-12 | temporal | seed 1:
  42%|#####       | 101/240 steps [01:10<01:37, epoch 5/12, val top-1 31.2 | grid 2/8 done, ~14m left]`` (the
  last validation's top-1 where the run validates: not a tiny cell, whose test scores its validation videos); the
  test stage then counts its batches on the same line. When the cell ends, the runner's result line replaces it.
- Elsewhere (CI, SLURM logs, a pipe) nothing is redrawn: one plain line per training epoch, and nothing else.
- Cells run side by side (``--jobs N``, uv2.ablation.runner): each worker process writes its cells' plain lines
  without the grid's count (it sees only its own cells); the runner's process adds the count and time left as
  cells end.

Lightning's own progress bar is off in grid cells (uv2.ablation.launch), so the two never fight. Only the process
of global rank 0 reports (Lightning's rank, from the launcher's environment).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from tqdm import tqdm

FALLBACK_COLUMNS = 120
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar:12}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"


def _columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to (0 when it reports none)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def format_duration(seconds: float) -> str:
    """'45s', '12m30s', '3h05m': the precision a person reads a time left in."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class GridProgress:
    """Progress of a grid of `total` cells, written to `stream` (default stdout).

    Args:
        total: the cells this invocation runs or skips.
        stream: where lines go.
        interactive: redraw a line per cell (default: whether `stream` is a terminal).
        clock: seconds, monotonic (time.monotonic; tests give their own).
        jobs: cells that run at the same time (the time left divides by it).
        costs: the cells' relative training costs (uv2.ablation.grid.Cell.cost), in the order a sequential grid runs
            them; default: all alike.
        show_grid: end lines with the grid's count and time left (False in a worker process of a parallel grid).
    """

    def __init__(self, total: int, stream: TextIO | None = None, interactive: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, jobs: int = 1, show_grid: bool = True,
                 costs: Sequence[float] | None = None) -> None:
        self.total, self.stream, self.clock = total, stream or sys.stdout, clock
        self.jobs, self.show_grid = jobs, show_grid
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.finished = 0  # cells done, failed or skipped
        self.started = clock()  # the grid's own wall time, given with its last count
        self.durations: list[float] = []  # seconds of the cells that trained to the end in this invocation
        self.duration_costs: list[float] = []  # their costs
        self.left = list(costs) if costs is not None else [1.0] * total  # costs of the cells not ended yet
        self.cell = ""  # the running cell's line prefix
        self._cell_start: float | None = None
        self.bar: tqdm | None = None

    # ------------------------------------------------------------------------------------------------- cells
    def start_cell(self, where: str) -> None:
        """A cell starts: `where` ("[3/8] table c | row | dataset | seed 1") prefixes its progress lines."""
        self.cell, self._cell_start = where, self.clock()

    def finish_cell(self, trained: bool) -> None:
        """The running cell ended; its time counts towards the grid's estimate when it `trained` to the end (not a
        skipped, failed or interrupted cell)."""
        cost = self.left.pop(0) if self.left else 1.0  # a sequential grid runs its cells in order
        if trained and self._cell_start is not None:
            self.durations.append(self.clock() - self._cell_start)
            self.duration_costs.append(cost)
        self.finished += 1
        self._cell_start = None

    def cell_ended(self, seconds: float | None, cost: float = 1.0) -> None:
        """A cell run elsewhere (a worker of a parallel grid) ended, after `seconds` of training to its end (None:
        skipped, failed or interrupted); `cost` is the one it was given in `costs`."""
        if cost in self.left:
            self.left.remove(cost)
        if seconds is not None:
            self.durations.append(seconds)
            self.duration_costs.append(cost)
        self.finished += 1

    def cell_estimate(self, cost: float) -> float:
        """Seconds a cell of this cost takes: the mean of the finished cells of the same cost, else their seconds per
        unit of cost times this cost (a table's short scene cells, run last side by side, before any has ended)."""
        same = [s for s, c in zip(self.durations, self.duration_costs) if c == cost]
        if same:
            return sum(same) / len(same)
        return cost * sum(self.durations) / max(sum(self.duration_costs), 1e-9)

    def grid_left(self) -> float | None:
        """Seconds until the grid ends: every cell still to run at the time the finished cells give it
        (:meth:`cell_estimate`; the running one counted by what it has left of that; cells side by side: shared
        out among the `jobs`, and at least the longest of them); None before any cell finished."""
        if not self.durations:
            return None
        estimates = [self.cell_estimate(cost) for cost in self.left]
        if not estimates:
            return 0.0
        if self.jobs > 1:
            return max(sum(estimates) / self.jobs, max(estimates))
        if self._cell_start is not None:
            estimates[0] = max(estimates[0] - (self.clock() - self._cell_start), 0.0)
        return sum(estimates)

    def grid_status(self) -> str:
        """'grid 2/8 done, ~14m left', 'grid 0/8 done, time left after the first cell' or, at the end, 'grid 8/8
        done in 24m12s' (the wall time since the grid started, cells done before included)."""
        done = f"grid {self.finished}/{self.total} done" + (f" ({self.jobs} cells at a time)" if self.jobs > 1 else "")
        if self.finished == self.total:
            return f"{done} in {format_duration(self.clock() - self.started)}"
        left = self.grid_left()
        return f"{done}, ~{format_duration(left)} left" if left is not None else f"{done}, time left after the first cell"

    def grid_suffix(self) -> str:
        """' | ' and the grid's status, to end a line with; empty where the grid is not shown (a worker)."""
        return f" | {self.grid_status()}" if self.show_grid else ""

    # ------------------------------------------------------------------------------------------------ output
    def print(self, line: str) -> None:
        """A whole line (above the running cell's line in a terminal); nothing on ranks > 0 of a multi-process run
        (every rank runs the grid; srun's tasks share one log)."""
        if getattr(rank_zero_only, "rank", 0) != 0:
            return
        if self.bar is not None:
            self.bar.clear()
        print(line, file=self.stream, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def open_bar(self, desc: str, total: int, initial: int, unit: str, postfix: str) -> None:
        """The running cell's line (a terminal only)."""
        self.close_bar()
        # a terminal that reports no size (some pseudo-terminals) would get no line at all: a fixed size then
        width = {"dynamic_ncols": True} if _columns(self.stream) > 0 else {"ncols": FALLBACK_COLUMNS, "nrows": 24}
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, leave=False,
                        bar_format=BAR_FORMAT, postfix=postfix, mininterval=0.5, **width)

    def update_bar(self, n: int, postfix: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n - self.bar.n)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def callback(self, stage: str = "") -> CellProgress:
        """The Lightning callback that reports one fit (+ test) of the running cell; `stage` names a shared run the
        cell trains first (table (e): "union-label model", "co-training")."""
        return CellProgress(self, stage)


class CellProgress(pl.Callback):
    """Reports one run of the grid's running cell to its GridProgress: in a terminal, a line that updates with the
    optimizer steps (tqdm's elapsed and time left at the current rate), the epoch, the last validation top-1 and
    the grid's estimate, then the test's batches; elsewhere, one line per training epoch."""

    def __init__(self, grid: GridProgress, stage: str = "") -> None:
        self.grid, self.stage = grid, stage
        self._start_time, self._start_step, self._total = 0.0, 0, 0

    def _label(self) -> str:
        return f"{self.grid.cell} ({self.stage})" if self.stage else self.grid.cell

    def _epoch_text(self, trainer: pl.Trainer, epoch: int) -> str:
        text = f"epoch {epoch}/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 \
            else f"epoch {epoch}"
        top1 = trainer.callback_metrics.get("val/top1")
        return text + (f", val top-1 {float(top1):.1f}" if top1 is not None else "")

    # ----------------------------------------------------------------------------------------------- training
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        total = trainer.estimated_stepping_batches
        self._total = int(total) if math.isfinite(total) else 0
        self._start_time, self._start_step = self.grid.clock(), trainer.global_step
        if self.grid.interactive:
            self.grid.open_bar(self._label(), self._total, trainer.global_step, "steps",
                               f"{self._epoch_text(trainer, trainer.current_epoch + 1)}{self.grid.grid_suffix()}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.is_global_zero and self.grid.interactive:
            self.grid.update_bar(trainer.global_step, f"{self._epoch_text(trainer, trainer.current_epoch + 1)}"
                                                      f"{self.grid.grid_suffix()}")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or self.grid.interactive:
            return
        step, elapsed = trainer.global_step, self.grid.clock() - self._start_time
        done = step - self._start_step
        total = f"/{self._total}" if self._total else ""
        cell_left = ""
        if done > 0 and self._total > step:
            cell_left = f", ~{format_duration(elapsed / done * (self._total - step))} left in the cell"
        self.grid.print(f"{self._label()}: {self._epoch_text(trainer, trainer.current_epoch + 1)}, step "
                        f"{step}{total}, {format_duration(elapsed)} elapsed{cell_left}{self.grid.grid_suffix()}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.grid.close_bar()

    # ---------------------------------------------------------------------------------------------------- test
    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.grid.interactive:
            batches = sum(b for b in trainer.num_test_batches if math.isfinite(b))
            self.grid.open_bar(self._label(), int(batches), 0, "test batches",
                               f"multi-view test{self.grid.grid_suffix()}")

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.is_global_zero and self.grid.bar is not None:
            self.grid.update_bar(self.grid.bar.n + 1, f"multi-view test{self.grid.grid_suffix()}")

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.grid.close_bar()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.grid.close_bar()
