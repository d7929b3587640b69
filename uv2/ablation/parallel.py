"""Cells side by side: a grid of small CPU cells runs several at a time, one worker process per job.

A tiny cell is too small to keep several cores busy: on 2 cores one tiny temporal run trained 117 clips/s on both
threads, two side by side 85.5 clips/s each on one thread (1.46x the throughput; python benchmarks/grid_jobs.py).
So at tiny scale on CPU the grid runs as many cells at a time as it has cores (and memory for), each on one thread
(CELL_THREADS), as a CPU cell that runs alone is too (cell_threads): a cell's numbers depend on its thread count.

Each worker process runs whole cells through the same GridRunner.run_cell as a sequential grid (its own status file,
checkpoints, resume); the grid's process (GridRunner.run_side_by_side) hands out one cell per free worker, the
longest first (side_by_side_order), counts the cells that end and rewrites results.csv and table.md. Cells that
share a run (table (e)'s co-training and union-label scripts), and cells on GPUs or several devices, run one at a
time.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager

from uv2.ablation.grid import Cell

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends
JOB_MEMORY_GB = 3.0  # memory set aside per worker: a tiny cell's process peaked at 1.1-2.2 GB (results.csv)
CELL_THREADS = 1  # threads of a cell on the CPU, alone or side by side (cell_threads)
INTERRUPT_GRACE_S = 3.0  # Ctrl-C: how long the workers' cells get to stop on their own (interrupt_workers)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) / 2**20
    except (OSError, KeyError, ValueError):
        return None


def accelerator(cell: Cell) -> str:
    """The accelerator a cell's trainer runs on (Lightning's default: auto)."""
    return cell.config.get("trainer", {}).get("accelerator", "auto")


def why_one_at_a_time(cells: list[Cell]) -> str | None:
    """Why these cells cannot run side by side, or None when they can."""
    for cell in cells:
        trainer = cell.config.get("trainer", {})
        if accelerator(cell) != "cpu":
            return f"{cell.slug} runs on accelerator {accelerator(cell)!r} (side by side: CPU only)"
        if int(trainer.get("devices", 1)) != 1 or int(trainer.get("num_nodes", 1)) != 1:
            return f"{cell.slug} runs on several devices"
        if cell.script not in (None, "individual"):
            return f"{cell.slug} shares a run with other cells (table (e)'s script {cell.script!r})"
    return None


def default_jobs(cells: list[Cell]) -> int:
    """Cells at a time when the user names none: one per core, as memory allows, at tiny scale on CPU; else 1."""
    if why_one_at_a_time(cells) is not None:
        return 1
    memory = available_memory_gb()
    by_memory = int(memory // JOB_MEMORY_GB) if memory is not None else len(cells)
    return max(1, min(usable_cores(), len(cells), by_memory))


def side_by_side_order(todo: list[Cell], repeats: dict[str, Cell]) -> list[tuple[int, Cell]]:
    """The order in which a side-by-side grid hands out its cells, each with its number in `todo` (1-based): the
    longest first (Cell.cost; ties in table order), so the short ones fill the workers at the end instead of one
    long cell running alone while the other workers idle (table (c) at tiny scale: 12 temporal cells of 14 epochs,
    12 scene cells of 4). A cell that repeats another's run goes last (it waits for that run, then takes its
    result)."""
    return sorted(enumerate(todo, 1), key=lambda item: (item[1].slug in repeats, -item[1].cost))


def _die_with(parent: int) -> None:
    """End this worker when the grid's process ends, however it ends (Linux; elsewhere the worker finishes its cell
    first): a killed grid leaves no cell training on; a rerun resumes the cell from its last checkpoint."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl
        return
    if os.getppid() != parent:  # the grid ended before the line above
        os._exit(1)


def _init_worker(parent: int) -> None:
    from uv2.ablation.launch import quiet_warnings

    _die_with(parent)
    quiet_warnings()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """`jobs` worker processes, ended with the grid's process (each cell sets its threads: cell_threads). Spawned: a
    fresh interpreter per worker (forking a process that holds torch's thread pools is unsafe)."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(),))


def interrupt_workers(running: Iterable[Future], grace_s: float = INTERRUPT_GRACE_S) -> None:
    """Ctrl-C of a side-by-side grid: stop the cells its workers still run. A Ctrl-C at a terminal reaches the
    workers too (one process group), and each cell stops and records itself as interrupted, resumable; a SIGINT to
    the grid's process alone (`kill -INT PID`) does not reach them, and the pool would wait for their cells to end,
    minutes. So the workers whose cells still run after `grace_s` get the SIGINT themselves."""
    _, still_running = wait(list(running), timeout=grace_s)
    if still_running:
        for worker in multiprocessing.active_children():  # the pool's workers: the grid starts no other process
            os.kill(worker.pid, signal.SIGINT)


@contextmanager
def cell_threads(cell: Cell) -> Iterator[None]:
    """A cell on the CPU trains on CELL_THREADS threads, whether it runs alone or beside others, so that a cell run
    again alone (--only, --cell, --jobs 1) gives the grid's number: the thread count changes the order of float sums,
    and at tiny scale that is enough to end training elsewhere (table (a)'s "global" seed 1 at 40 temporal epochs:
    96.4 % on two threads, 93.1 % on one). Cells on other accelerators keep the process's threads."""
    import torch

    if accelerator(cell) != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(CELL_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)
