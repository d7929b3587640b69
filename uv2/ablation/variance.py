"""Where a cell's spread over seeds comes from: one cell of a table trained again and again, varying one source of
randomness at a time, and its test set resampled.

Groups of runs (seeds 1..n each):

- ``all``: every source varies with the seed (``seed_everything`` and the data module's ``seed``), as in the grid;
- ``data``: only the data module's seed varies: the training order and every training item's draws (temporal
  offsets, crops, flips, RandAugment); the initialisation and the dropout and drop-path masks stay seed 1's;
- ``init``: only ``seed_everything`` varies: the new modules' initialisation, the dropout and drop-path masks, and
  with them the data stream (the training order and draws derive from both seeds, uv2.data.datamodule.TrainSeed);
- ``weights``: only the initial weights vary (``model.init_seed``: the new blocks' and the head's random
  initialisation); the data stream and the masks are the same in every run (seed_everything 1, data seed 1).

And the test set: the standard deviation of each run's top-1 under bootstrap resampling of the test videos (what a
different draw of as many test videos would give), averaged over the runs of ``all``; with n videos at accuracy p
it is about sqrt(p (1 - p) / n).

``python ablations/variance.py --table c --row 1 --dataset temporal --seeds 5`` prints the standard deviation of
each group, the test-set part and the mean top-1 per group. A run is named by its seeds,
results/variance/<cell>/seed_everything<e>_data<d>[_weights<w>], so the groups share their common runs (seed 1's, in
all four) and a second command reuses every finished one. The runs train side by side as the grid's cells
do (``--jobs``, default one per core as memory allows), each on the grid's one thread per cell, so ``all`` repeats
the grid's top-1 seed for seed.
"""

from __future__ import annotations

import json
import statistics
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from uv2.ablation import GROUPS
from uv2.ablation.grid import Cell
from uv2.ablation.launch import fit_and_test
from uv2.ablation.parallel import cell_threads, interrupt_workers, worker_pool
from uv2.io import atomic_write_text

BOOTSTRAP_SAMPLES = 2000


def with_settings(config: dict[str, Any], settings: list[str]) -> dict[str, Any]:
    """`config` with each "dotted.key=YAML value" of `settings` set (a recipe variant to measure)."""
    config = json.loads(json.dumps(config))
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {setting!r}: expected KEY=VALUE, e.g. model.optim.lr=1e-3")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {setting!r}: {part!r} is not a section of the experiment")
        node[leaf] = _yaml_value(value)
    return config


def _yaml_value(text: str) -> Any:
    """A YAML scalar or collection; numbers like 1e-3, which YAML 1.1 reads as strings, as floats."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def group_config(cell: Cell, group: str, seed: int) -> dict[str, Any]:
    """The cell's experiment with the seeds of one group's run."""
    config = json.loads(json.dumps(cell.config))
    everything, data, weights = {"all": (seed, seed, None), "data": (1, seed, None), "init": (seed, 1, None),
                                 "weights": (1, 1, seed)}[group]
    config["seed_everything"] = everything
    config["data"]["init_args"]["seed"] = data
    # init_seed k draws the weights that seed_everything k draws: the group's run of seed 1 is the others' seed-1 run
    if weights is not None and weights != everything:
        config.setdefault("model", {})["init_seed"] = weights
    return config


def bootstrap_std(correct: torch.Tensor, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> float:
    """Standard deviation of the accuracy (percent) of per-video correctness `correct` (V,) over test sets drawn
    with replacement from it."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(correct), (samples, len(correct)), generator=generator)
    return float((100 * correct.float()[picks].mean(1)).std())


@dataclass
class GroupResult:
    group: str
    top1: list[float]  # one per seed

    @property
    def mean(self) -> float:
        return statistics.mean(self.top1)

    @property
    def std(self) -> float:
        return statistics.stdev(self.top1) if len(self.top1) > 1 else 0.0


RESULT = "variance_result.json"


def run_dir_of(out_dir: Path, config: dict[str, Any]) -> Path:
    """A run's folder, named by its seeds (runs with the same seeds are one run, whichever groups use it)."""
    name = f"seed_everything{config['seed_everything']}_data{config['data']['init_args']['seed']}"
    init_seed = config.get("model", {}).get("init_seed")
    return out_dir / (name if init_seed is None else f"{name}_weights{init_seed}")


def train_run(cell: Cell, config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train and test one run (resuming an unfinished one) on the threads the grid gives the cell (cell_threads, so
    the group ``all`` repeats the grid's numbers), unless it finished before; its top-1 and bootstrap test-set std,
    saved in run_dir/variance_result.json."""
    result_file = run_dir / RESULT
    if result_file.exists():
        return json.loads(result_file.read_text())
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "cell.yaml"
    atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
    with cell_threads(cell):
        result = fit_and_test(config_path, run_dir, resume=True)
    predictions = torch.load(run_dir / "test_predictions.pt", weights_only=True)
    correct = predictions["scores"].argmax(-1) == predictions["labels"]
    saved = {"top1": result["top1"], "test_std": bootstrap_std(correct), "videos": len(correct)}
    atomic_write_text(result_file, json.dumps(saved))
    return saved


def train_runs(cell: Cell, runs: dict[Path, dict[str, Any]], jobs: int = 1) -> None:
    """Train every run of `runs` ({folder: experiment}) that has not finished, `jobs` at a time in worker processes
    (uv2.ablation.parallel, as the grid runs cells side by side; 1: one after the other in this process)."""
    pending = [run_dir for run_dir in runs if not (run_dir / RESULT).exists()]
    if jobs > 1 and len(pending) > 1:
        running: dict[Future, Path] = {}
        with worker_pool(min(jobs, len(pending))) as pool:
            try:
                while pending or running:
                    # a run per free worker, as the grid's cells: the pool sends a submitted run on to a worker's
                    # queue ahead of time, where Ctrl-C could not cancel it and it would start once the others stop
                    while pending and len(running) < jobs:
                        run_dir = pending.pop(0)
                        running[pool.submit(train_run, cell, runs[run_dir], run_dir)] = run_dir
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        print(f"  {running.pop(future).name}: top-1 {future.result()['top1']:.1f}", flush=True)
            except KeyboardInterrupt:  # the running ones stop, resumable; the others never started
                interrupt_workers(running)
                raise
        return
    for run_dir in pending:
        print(f"  {run_dir.name}: top-1 {train_run(cell, runs[run_dir], run_dir)['top1']:.1f}", flush=True)


def decompose(cell: Cell, seeds: list[int], out_dir: Path, groups: tuple[str, ...] = GROUPS,
              jobs: int = 1) -> dict[str, Any]:
    """Every group's runs (each distinct run trained once: seed 1's is the first of every group), and the
    summary that ablations/variance.py prints (also saved as summary.json)."""
    folders: dict[str, list[Path]] = {group: [] for group in groups}
    runs: dict[Path, dict[str, Any]] = {}  # each distinct run once, whichever groups share it
    for group in groups:
        for seed in seeds:
            config = group_config(cell, group, seed)
            folders[group].append(run_dir_of(out_dir, config))
            runs.setdefault(folders[group][-1], config)
    train_runs(cell, runs, jobs)
    saved = {folder: json.loads((folder / RESULT).read_text()) for folder in runs}
    results = {}
    for group in groups:
        results[group] = GroupResult(group, [saved[folder]["top1"] for folder in folders[group]])
        for seed, top1 in zip(seeds, results[group].top1):
            print(f"  {group:<12} seed {seed}: top-1 {top1:.1f}", flush=True)
    test_std = [saved[folder]["test_std"] for folder in folders.get("all", [])]
    summary = {"cell": cell.slug, "seeds": seeds,
               "groups": {g: {"top1": r.top1, "mean": r.mean, "std": r.std} for g, r in results.items()},
               "test_set_std": statistics.mean(test_std) if test_std else None}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['cell']}: top-1 over seeds {', '.join(map(str, summary['seeds']))}", "",
             "| varied | mean | std over seeds | runs |", "|---|---|---|---|"]
    names = {"all": "everything (as the grid)", "data": "the data module's seed (order, augmentation)",
             "init": "seed_everything (initialisation, dropout; data stream)",
             "weights": "model.init_seed (the initial weights only)"}
    for group, r in summary["groups"].items():
        runs = ", ".join(f"{v:.1f}" for v in r["top1"])
        lines.append(f"| {names[group]} | {r['mean']:.1f} | {r['std']:.2f} | {runs} |")
    if summary["test_set_std"] is not None:
        lines.append(f"| test set (bootstrap of the videos) | | {summary['test_set_std']:.2f} | |")
    return "\n".join(lines)
