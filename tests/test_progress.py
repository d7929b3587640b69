"""The grid's progress output (uv2.ablation.progress) on a tiny Lightning run: a line per epoch where the output is
not a terminal, a line redrawn in place where it is; the grid's estimate from finished cells. Times come from a
clock the tests move, never from the wall."""

from __future__ import annotations

import io
import re

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from uv2.ablation.progress import GridProgress, format_duration

WHERE = "[1/2] table t | row | temporal | seed 1"


class _Tiny(pl.LightningModule):
    """A linear classifier of 4 features: 4 steps per epoch on 16 samples in batches of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        return F.cross_entropy(self.layer(x), y)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.log("val/top1", 100 * (self.layer(x).argmax(-1) == y).float().mean())

    def test_step(self, batch, batch_idx: int) -> None:
        x, y = batch
        self.log("test/top1", 100 * (self.layer(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _Clock(pl.Callback):
    """A clock at 10 s per optimizer step (it must come before the progress callback)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.now = 10.0 * trainer.global_step


class _Note(pl.Callback):
    """Prints a whole line through the grid while the cell's line is open."""

    def __init__(self, grid: GridProgress) -> None:
        self.grid = grid

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.grid.print("a note between epochs")


def _fit_and_test(grid: GridProgress, *callbacks: pl.Callback) -> None:
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    loader = DataLoader(data, batch_size=4)
    trainer = pl.Trainer(max_epochs=3, callbacks=[*callbacks, grid.callback()], logger=False, accelerator="cpu",
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module = _Tiny()
    trainer.fit(module, loader, loader)
    trainer.test(module, loader, verbose=False)


def test_not_a_terminal_one_line_per_epoch():
    stream, clock = io.StringIO(), _Clock()
    grid = GridProgress(2, stream, clock=clock)  # a StringIO is not a terminal
    assert not grid.interactive
    grid.start_cell(WHERE)
    _fit_and_test(grid, clock)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) == 3
    pattern = (rf"{re.escape(WHERE)}: epoch (\d)/3, val top-1 [\d.]+, step (\d+)/12, (\S+) elapsed(.*) \| "
               rf"grid 0/2 done, time left after the first cell")
    parsed = [re.fullmatch(pattern, line).groups() for line in lines]
    # 10 s per step: after epoch 1, 40 s for 4 steps and 8 to go
    assert parsed == [("1", "4", "40s", ", ~1m20s left in the cell"), ("2", "8", "1m20s", ", ~40s left in the cell"),
                      ("3", "12", "2m00s", "")]


def test_terminal_redraws_one_line():
    stream = io.StringIO()
    grid = GridProgress(2, stream, interactive=True)
    grid.start_cell(WHERE)
    _fit_and_test(grid, _Note(grid))
    out = stream.getvalue()
    assert "\r" in out  # the cell's line is redrawn in place
    assert f"{WHERE}:" in out and "steps [" in out and "epoch 1/3" in out and "test batches" in out
    assert out.count("a note between epochs\n") == 3  # whole lines, not torn by the progress line
    assert grid.bar is None  # closed when the test ended


def _train(grid: GridProgress, now: list[float], name: str, until: float) -> None:
    """A cell that trains to its end at clock time `until`."""
    grid.start_cell(name)
    now[0] = until
    grid.finish_cell(trained=True)


def test_grid_estimate_from_finished_cells():
    now = [0.0]
    grid = GridProgress(5, io.StringIO(), interactive=False, clock=lambda: now[0])
    assert grid.grid_status() == "grid 0/5 done, time left after the first cell"
    _train(grid, now, "a", 10.0)
    _train(grid, now, "b", 30.0)
    grid.start_cell("c")  # done before: counted, its time not
    grid.finish_cell(trained=False)
    grid.start_cell("d")
    now[0] = 35.0
    # mean 15 s per cell; d has run 5 s of it, e is still to come
    assert grid.grid_left() == 10.0 + 15.0
    assert grid.grid_status() == "grid 3/5 done, ~25s left"
    now[0] = 80.0  # d runs past the mean: it counts as nearly done, not negative
    assert grid.grid_left() == 15.0
    grid.finish_cell(trained=False)  # d failed: not a time to learn from
    grid.start_cell("e")
    now[0] = 95.0
    grid.finish_cell(trained=True)
    assert grid.grid_status() == "grid 5/5 done in 1m35s"  # the grid's wall time, from its start


def test_grid_estimate_side_by_side():
    """Cells in worker processes: the grid's process counts the cells that end; the time left divides the cells still
    to run among the jobs; a worker's lines carry no grid count (it sees only its own cells)."""
    grid = GridProgress(5, io.StringIO(), interactive=False, jobs=2)
    assert grid.grid_status() == "grid 0/5 done (2 cells at a time), time left after the first cell"
    grid.cell_ended(20.0)
    grid.cell_ended(None)  # done before, failed or interrupted: counted, its time not
    grid.cell_ended(40.0)
    assert grid.grid_left() == 30.0 * 1  # two cells left, two at a time: one more mean cell
    assert grid.grid_status() == "grid 3/5 done (2 cells at a time), ~30s left"
    assert grid.grid_suffix() == " | " + grid.grid_status()
    worker = GridProgress(1, io.StringIO(), interactive=False, show_grid=False)
    assert worker.grid_suffix() == ""


def test_grid_estimate_scales_by_cost():
    """Cells of another cost (the short scene cells a side-by-side grid runs last) are estimated from the finished
    cells' seconds per unit of cost until one of their own cost has ended, then from those."""
    now = [0.0]
    grid = GridProgress(4, io.StringIO(), interactive=False, clock=lambda: now[0], costs=[56.0, 56.0, 8.0, 8.0])
    _train(grid, now, "long", 112.0)
    assert grid.grid_left() == 112.0 + 16.0 + 16.0  # 2 s per unit of cost
    _train(grid, now, "long", 212.0)
    _train(grid, now, "short", 242.0)
    assert grid.grid_left() == 30.0  # the short cell that ended says what the last one takes
    # side by side, with a row that takes another's run (cost 0: it trains nothing)
    side = GridProgress(5, io.StringIO(), interactive=False, jobs=2, costs=[56.0, 56.0, 8.0, 8.0, 0.0])
    side.cell_ended(100.0, 56.0)
    assert side.grid_left() == 100.0  # the long cell still running outlasts the two short ones (30 s between them)
    side.cell_ended(100.0, 56.0)
    assert side.grid_left() == pytest.approx(2 * 100.0 / 56.0 * 8.0 / 2)
    side.cell_ended(10.0, 8.0)
    side.cell_ended(10.0, 8.0)
    assert side.grid_left() == 0.0 and side.grid_status() == "grid 4/5 done (2 cells at a time), ~0s left"


def test_format_duration():
    assert [format_duration(s) for s in (0, 45.4, 60, 750, 3600, 11100)] == ["0s", "45s", "1m00s", "12m30s", "1h00m",
                                                                            "3h05m"]
