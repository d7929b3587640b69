"""Where a cell's spread over seeds comes from: one cell of a table trained again and again, varying one source of
randomness at a time, and its test set resampled.

Groups of runs (seeds 1..n each):

- ``all``: every source varies with the seed (``seed_everything`` and the data module's ``seed``), as in the grid;
- ``data``: only the data module's seed varies: the training order and every training item's draws (temporal
  offsets, crops, flips, RandAugment); the initialisation and the dropout and drop-path masks stay seed 1's;
- ``init``: only ``seed_everything`` varies: the new modules' initialisation, the dropout and drop-path masks, and
  with them the data stream (the training order and draws derive from both seeds, uv2.data.datamodule.TrainSeed).

And the test set: the standard deviation of each run's top-1 under bootstrap resampling of the test videos (what a
different draw of as many test videos would give), averaged over the runs of ``all``; with n videos at accuracy p
it is about sqrt(p (1 - p) / n).

``python ablations/variance.py --table c --row 1 --dataset temporal --seeds 5`` prints the standard deviation of
each group, the test-set part and the mean top-1 per group. A run is named by its two seeds,
results/variance/<cell>/seed_everything<e>_data<d>, so the groups share their common runs (seed 1's, in all three)
and a second command reuses every finished one.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from uv2.ablation.grid import Cell
from uv2.ablation.launch import fit_and_test
from uv2.io import atomic_write_text

GROUPS = ("all", "data", "init")
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
    everything, data = {"all": (seed, seed), "data": (1, seed), "init": (seed, 1)}[group]
    config["seed_everything"] = everything
    config["data"]["init_args"]["seed"] = data
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


def run_group(cell: Cell, group: str, seeds: list[int], out_dir: Path) -> tuple[GroupResult, list[float]]:
    """Train and test the cell once per seed (reusing finished runs, also those of other groups with the same
    seeds); (the group's top-1s, each run's bootstrap test-set std)."""
    top1, test_std = [], []
    for seed in seeds:
        config = group_config(cell, group, seed)
        run_dir = out_dir / f"seed_everything{config['seed_everything']}_data{config['data']['init_args']['seed']}"
        result_file = run_dir / "variance_result.json"
        if not result_file.exists():
            run_dir.mkdir(parents=True, exist_ok=True)
            config_path = run_dir / "cell.yaml"
            atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
            result = fit_and_test(config_path, run_dir, resume=True)
            predictions = torch.load(run_dir / "test_predictions.pt", weights_only=True)
            correct = predictions["scores"].argmax(-1) == predictions["labels"]
            atomic_write_text(result_file, json.dumps({"top1": result["top1"], "test_std": bootstrap_std(correct),
                                                       "videos": len(correct)}))
        saved = json.loads(result_file.read_text())
        top1.append(saved["top1"])
        test_std.append(saved["test_std"])
        print(f"  {group:<12} seed {seed}: top-1 {saved['top1']:.1f}", flush=True)
    return GroupResult(group, top1), test_std


def decompose(cell: Cell, seeds: list[int], out_dir: Path, groups: tuple[str, ...] = GROUPS) -> dict[str, Any]:
    """Every group's runs, and the summary that ablations/variance.py prints (also saved as summary.json)."""
    results, test_std = {}, []
    for group in groups:
        results[group], stds = run_group(cell, group, seeds, out_dir)
        if group == "all":
            test_std = stds
    summary = {"cell": cell.slug, "seeds": seeds,
               "groups": {g: {"top1": r.top1, "mean": r.mean, "std": r.std} for g, r in results.items()},
               "test_set_std": statistics.mean(test_std) if test_std else None}
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [f"{summary['cell']}: top-1 over seeds {', '.join(map(str, summary['seeds']))}", "",
             "| varied | mean | std over seeds | runs |", "|---|---|---|---|"]
    names = {"all": "everything (as the grid)", "data": "the data module's seed (order, augmentation)",
             "init": "seed_everything (initialisation, dropout; data stream)"}
    for group, r in summary["groups"].items():
        runs = ", ".join(f"{v:.1f}" for v in r["top1"])
        lines.append(f"| {names[group]} | {r['mean']:.1f} | {r['std']:.2f} | {runs} |")
    if summary["test_set_std"] is not None:
        lines.append(f"| test set (bootstrap of the videos) | | {summary['test_set_std']:.2f} | |")
    return "\n".join(lines)
