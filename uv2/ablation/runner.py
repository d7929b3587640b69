"""Running an ablation grid: cells in order, each fit then multi-view test, with results that survive anything.

- Every cell has its own directory (config, TensorBoard logs, checkpoints) and a status file cell.json written
  atomically when the cell ends: done (with metrics), failed (with the error) or interrupted.
- A rerun skips done cells whose config is unchanged and resumes an unfinished cell (interrupted, failed, or killed
  mid-run: started.json holds the config it started with) from its last checkpoint, continuing exactly as the
  uninterrupted run would (uv2.train.resume; checkpoints are also written every few optimizer steps); --fresh
  starts over.
- A failing cell is recorded and the grid goes on; Ctrl-C stops after recording the cell as interrupted.
- A row that lists a model another row already has (the same run: uv2.ablation.grid.repeated_runs) is not trained
  again: its cells take the earlier row's results.
- Small CPU cells run several at a time in worker processes (uv2.ablation.parallel; --jobs).
- results.csv and table.md (uv2.ablation.table) are rewritten atomically after every cell.
- Progress (uv2.ablation.progress): one line per cell, updating in a terminal, one line per epoch elsewhere; every
  run's TensorBoard HPARAMS entry holds the cell's table, row, dataset and seed beside the model's switches.

The cell's training run is uv2.ablation.launch; table (e)'s shared runs are uv2.ablation.scripts.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import yaml

from uv2.ablation.grid import Cell, Table, grid_hparams, repeated_runs
from uv2.ablation.launch import PeakMemory, fit_and_test
from uv2.ablation.parallel import (
    CELL_THREADS,
    cell_threads,
    interrupt_workers,
    side_by_side_order,
    why_one_at_a_time,
    worker_pool,
)
from uv2.ablation.progress import GridProgress
from uv2.ablation.scripts import COTRAINED, TrainingScripts
from uv2.ablation.table import render_table, results_csv, video_results
from uv2.errors import error_message
from uv2.io import atomic_write_text
from uv2.models import ModelConfig
from uv2.models.flops import model_flops

LOST_WORKER = ("a worker process of the grid died (killed, or out of memory?); rerun to resume, --jobs 1 for one "
               "cell at a time")
STARTED = "started.json"  # a cell's config hash, written when it starts: a cell killed mid-run resumes from last.ckpt

log = logging.getLogger(__name__)


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class GridRunner:
    def __init__(self, table: Table, cells: list[Cell], out_dir: Path, repo: Path, fresh: bool = False,
                 progress: GridProgress | None = None) -> None:
        self.table, self.cells, self.out_dir, self.repo, self.fresh = table, cells, out_dir, repo, fresh  # noqa
        self.commit = git_commit(repo)
        self.progress = progress or GridProgress(len(cells))
        self.scripts = TrainingScripts(cells, out_dir, repo, self.cell_dir, self.launch, self.say)
        self._flops: dict[str, dict[str, Any]] = {}  # arch (JSON) -> model_flops: results are rewritten often
        self.repeats = repeated_runs(cells)  # slug -> the earlier cell whose run a cell repeats (trained once)

    def time_cost(self, cell: Cell) -> float:
        """What the cell costs the grid's time (its Cell.cost; none for a row that takes another's run)."""
        return 0.0 if cell.slug in self.repeats else cell.cost

    def cell_dir(self, cell: Cell) -> Path:
        return self.out_dir / "cells" / cell.slug

    def run(self, todo: list[Cell] | None = None, jobs: int = 1) -> list[dict[str, Any]]:
        """Run the cells `todo` (default: every cell), `jobs` at a time; return the records of the cells this call
        ran or skipped, in grid order. results.csv and table.md hold every cell of the grid, finished or not."""
        todo = self.cells if todo is None else todo
        if self.fresh:  # start the cells that run from scratch (the others keep their results)
            for cell in todo:
                shutil.rmtree(self.cell_dir(cell), ignore_errors=True)
                self.scripts.forget(cell)
        self.write_outputs()  # results.csv and table.md exist (all pending) from the start
        jobs = min(jobs, len(todo))
        self.progress = GridProgress(len(todo), jobs=jobs, costs=[self.time_cost(cell) for cell in todo])
        if jobs > 1:
            if reason := why_one_at_a_time(todo):
                raise ValueError(f"--jobs {jobs}: these cells run one at a time: {reason}")
            try:
                return self.run_side_by_side(todo, jobs)
            finally:
                self.write_outputs()
        records = []
        try:
            for n, cell in enumerate(todo, 1):
                records.append(self.run_cell(cell, f"[{n}/{len(todo)}]"))
        finally:
            self.write_outputs()
        return records

    def run_side_by_side(self, todo: list[Cell], jobs: int) -> list[dict[str, Any]]:
        """Run `todo`, `jobs` cells at a time in worker processes (uv2.ablation.parallel); their records, in order."""
        pool = worker_pool(jobs)
        self.say(f"{jobs} cells at a time, {CELL_THREADS} thread{'s' if CELL_THREADS > 1 else ''} each (--jobs)")
        index = {cell.slug: i for i, cell in enumerate(self.cells)}
        queue = side_by_side_order(todo, self.repeats)
        records: dict[int, dict[str, Any]] = {}
        running: dict[Future, tuple[int, Cell]] = {}
        with pool:
            try:
                while queue or running:
                    while len(running) < jobs:  # a cell per free worker: nothing queued that Ctrl-C must cancel
                        busy = {c.slug for _, c in running.values()}
                        ready = [(n, c) for n, c in queue
                                 if getattr(self.repeats.get(c.slug), "slug", None) not in busy]
                        if not ready:
                            break
                        queue.remove(ready[0])
                        n, cell = ready[0]
                        running[pool.submit(_run_cell_in_worker, self.table, self.cells, index[cell.slug],
                                            self.out_dir, self.repo, f"[{n}/{len(todo)}]")] = (n, cell)
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        n, cell = running.pop(future)
                        try:
                            records[n], seconds = future.result()
                        except BrokenProcessPool:  # a worker was killed (out of memory?): the pool ends every worker
                            records[n] = self.record_lost_cell(cell, LOST_WORKER)
                            queue.clear()
                            continue
                        self.progress.cell_ended(seconds, self.time_cost(cell))
                        self.say(self.progress.grid_status())
                        self.write_outputs()
            except KeyboardInterrupt:
                interrupt_workers(running)  # then the pool waits for the cells to record themselves interrupted
                raise
        return [records[n] for n in sorted(records)]

    def run_cell(self, cell: Cell, position: str) -> dict[str, Any]:
        folder = self.cell_dir(cell)
        status_file = folder / "cell.json"
        previous = json.loads(status_file.read_text()) if status_file.exists() else None
        where = f"{position} table {cell.table} | {cell.label} | {cell.dataset} | seed {cell.seed}"
        self.progress.start_cell(where)
        if previous and previous.get("status") == "done" and previous.get("config_hash") == cell.config_hash:
            self.progress.finish_cell(trained=False)
            self.say(f"{where}: done before (top1 {previous['top1']:.1f}), skipped")
            return previous
        if (record := self.result_of_repeated_run(cell)) is not None:
            self.progress.finish_cell(trained=False)
            self.say(f"{where}: the run of '{record['same_run_as']}' (top1 {record['top1']:.1f}), not trained again")
            atomic_write_text(status_file, json.dumps(record, indent=2))
            self.write_outputs()
            return record
        started = folder / STARTED
        known = previous or (json.loads(started.read_text()) if started.exists() else None)  # None: never run
        resume = bool(known) and known.get("config_hash") == cell.config_hash
        self.say(f"{where}: {'resuming' if resume and (folder / 'checkpoints/last.ckpt').exists() else 'running'}")
        folder.mkdir(parents=True, exist_ok=True)  # a cell killed before it ends resumes when its config is unchanged
        atomic_write_text(started, json.dumps({"config_hash": cell.config_hash}))
        record = self.base_record(cell)
        try:
            with PeakMemory() as memory, cell_threads(cell):
                record.update(self.execute(cell, folder, resume))
            record.update(status="done", peak_mem_mb=round(memory.peak, 1))
            self.progress.finish_cell(trained=True)
            self.say(f"{where}: top1 {record['top1']:.1f}  top5 {record['top5']:.1f}  ({record['train_s']:.0f} s)"
                     f"{self.progress.grid_suffix()}")
        except KeyboardInterrupt:
            self.progress.finish_cell(trained=False)
            record.update(status="interrupted", error="interrupted (Ctrl-C); rerun to resume")
            atomic_write_text(status_file, json.dumps(record, indent=2))
            self.say(f"{where}: interrupted; rerun the same command to resume")
            raise
        except Exception as err:  # noqa: BLE001 - a failing cell is recorded and the grid goes on
            self.progress.finish_cell(trained=False)
            record.update(status="failed", error=f"{type(err).__name__}: {error_message(err)}".splitlines()[0][:500])
            (folder / "error.log").parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / "error.log", traceback.format_exc())
            self.say(f"{where}: FAILED: {record['error']} (traceback in {folder / 'error.log'})")
        atomic_write_text(status_file, json.dumps(record, indent=2))
        self.write_outputs()
        return record

    def result_of_repeated_run(self, cell: Cell) -> dict[str, Any] | None:
        """`cell`'s record taken from the finished cell whose run it repeats (uv2.ablation.grid.repeated_runs), its
        test predictions copied beside it (when they are there); None when it repeats none, or that cell has not
        finished."""
        earlier = self.repeats.get(cell.slug)
        status_file = self.cell_dir(earlier) / "cell.json" if earlier else None
        if status_file is None or not status_file.exists():
            return None
        record = json.loads(status_file.read_text())
        if record.get("status") != "done" or record.get("config_hash") != earlier.config_hash:
            return None
        folder = self.cell_dir(cell)
        folder.mkdir(parents=True, exist_ok=True)
        if (predictions := self.cell_dir(earlier) / "test_predictions.pt").exists():
            shutil.copyfile(predictions, folder / "test_predictions.pt")
        return {**record, "row": cell.row, "label": cell.label, "config_hash": cell.config_hash,
                "same_run_as": earlier.label}

    def record_lost_cell(self, cell: Cell, error: str) -> dict[str, Any]:
        """Record `cell` as failed when the process running it died before it could say so itself."""
        record = {**self.base_record(cell), "status": "failed", "error": error}
        atomic_write_text(self.cell_dir(cell) / "cell.json", json.dumps(record, indent=2))
        self.say(f"{cell.label} | {cell.dataset} | seed {cell.seed}: FAILED: {error}")
        return record

    def say(self, line: str) -> None:
        """A line of the grid's output (kept clear of the running cell's progress line)."""
        self.progress.print(line)

    def launch(self, config_path: Path, run_dir: Path, resume: bool, hparams: dict[str, Any],
               set_hparams: dict[str, dict[str, Any]] | None = None, stage: str = "") -> dict[str, Any]:
        """One training run of the running cell (its own, or a shared run it trains first): fit_and_test with the
        grid's progress line and a TensorBoard HPARAMS entry of `hparams` (and `set_hparams` per co-trained set)."""
        from uv2.train.callbacks import HParamsSummary

        return fit_and_test(config_path, run_dir, resume, callbacks=[self.progress.callback(stage)],
                            hparams_summary=HParamsSummary(hparams, set_hparams))

    def base_record(self, cell: Cell) -> dict[str, Any]:
        key = json.dumps(cell.arch, sort_keys=True)
        if key not in self._flops:
            self._flops[key] = model_flops(ModelConfig(**cell.arch))
        flops = self._flops[key]
        return {"table": cell.table, "row": cell.row, "label": cell.label, "dataset": cell.dataset, "seed": cell.seed,
                "gflops": round(flops["gflops"], 3), "params_m": round(flops["params_m"], 3),
                "config_hash": cell.config_hash, "git_commit": self.commit, "error": ""}

    def execute(self, cell: Cell, folder: Path, resume: bool) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        if cell.script in COTRAINED:
            return self.scripts.cotrained(cell, folder)
        config = self.scripts.union_finetune_config(cell) if cell.script == "union_individual" else cell.config
        config_path = folder / "cell.yaml"
        atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
        return self.launch(config_path, folder, resume, grid_hparams(cell))

    # ------------------------------------------------------------------------------------------------- outputs
    def collect(self) -> list[dict[str, Any]]:
        records = []
        for cell in self.cells:
            status_file = self.cell_dir(cell) / "cell.json"
            if status_file.exists():
                records.append(json.loads(status_file.read_text()))
            else:
                records.append({**self.base_record(cell), "status": "pending"})
        return records

    def video_results(self, records: list[dict[str, Any]]) -> dict[tuple[int, str, int], tuple[list, list[float]]]:
        """Per finished cell that kept its test predictions, its test video by video (table.md's intervals take the
        test videos' part from them)."""
        done = {(r["row"], r["dataset"], r["seed"]) for r in records if r.get("status") == "done"}
        return {(c.row, c.dataset, c.seed): video_results(path) for c in self.cells
                if (c.row, c.dataset, c.seed) in done and (path := self.cell_dir(c) / "test_predictions.pt").is_file()}

    def write_outputs(self) -> None:
        records = self.collect()
        atomic_write_text(self.out_dir / "results.csv", results_csv(records))
        atomic_write_text(self.out_dir / f"{self.table.name}.yaml", self.table.path.read_text())  # for the notebooks
        atomic_write_text(self.out_dir / "table.md", render_table(self.table, records, self.video_results(records)))


def _run_cell_in_worker(table: Table, cells: list[Cell], index: int, out_dir: Path, repo: Path,
                        position: str) -> tuple[dict[str, Any], float | None]:
    """In a worker process: run cells[index] as a sequential grid would (its lines without the grid's count); its
    record, and its duration when it trained to the end."""
    runner = GridRunner(table, cells, out_dir, repo, progress=GridProgress(1, interactive=False, show_grid=False))
    record = runner.run_cell(cells[index], position)
    return record, (runner.progress.durations[-1] if runner.progress.durations else None)
