"""Results folders as the grid runner writes them, made in seconds instead of by training: the cells of a real table
file expanded by the grid (their real configs), the runner's own writers for results.csv, table.md and the table's
copy, and per finished cell what its run leaves: a Lightning checkpoint of a tiny model, config.yaml, TensorBoard
event files (scalars and the HPARAMS session) and test_predictions.pt. Co-trained cells of table (e) get their
shared run where the runner puts it (uv2.ablation.scripts.TrainingScripts), with its co-training config.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml

from tests.helpers import REPO, micro_grid_spec
from uv2.ablation.grid import Cell, expand_cells, grid_hparams, load_table
from uv2.ablation.scripts import COTRAINED, TrainingScripts
from uv2.ablation.table import render_table, results_csv
from uv2.data.datamodule import synthetic_set_dir
from uv2.io import atomic_torch_save, atomic_write_text
from uv2.models import ModelConfig
from uv2.train.callbacks import hparams_summaries, session_end_summary
from uv2.train.module import VideoClassifier


@dataclass
class Outcome:
    """How one cell ended: "done" with its top-1, or "failed" with an error (cells not listed stay pending)."""

    status: str
    top1: float = 0.0
    error: str = ""


def micro_datasets(root: Path) -> dict[str, Any]:
    """Dataset definitions on the micro synthetic sets under root: temporal, scene and the scene_a / scene_b label
    sets of table (e)."""
    spec = micro_grid_spec(root)
    scene = {**spec, "experiment": "experiments/scene_tiny.yaml"}
    datasets = {"temporal": {"name": "SSv2", "tiny": spec}, "scene": {"name": "K400", "tiny": scene}}
    for name in ("scene_a", "scene_b"):
        datasets[name] = {"name": name, "tiny": {**scene, "num_classes": 8,
                                                  "data": {**spec["data"], "synthetic_set": name}}}
    return datasets


def class_names(cell_config: dict[str, Any]) -> list[str]:
    """The classes of a cell's synthetic set (classes.txt of the generated micro set)."""
    return (REPO / synthetic_set_dir(cell_config["data"]["init_args"]) / "classes.txt").read_text().split()


def write_run(run_dir: Path, config: dict[str, Any], hparams: dict[str, Any], top1: float,
              class_names: list[str], sets: dict[str, int] | None = None) -> None:
    """What a finished training run leaves: config.yaml, checkpoints/last.ckpt (a tiny model's weights in
    Lightning's checkpoint layout), TensorBoard scalars over 2 epochs and its HPARAMS session."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    arch = ModelConfig(**config["model"]["arch"])
    module = VideoClassifier(arch=arch, class_names=class_names, sets=sets)
    atomic_torch_save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "epoch": 1,
                       "global_step": 10, "pytorch-lightning_version": pl.__version__},
                      run_dir / "checkpoints" / "last.ckpt")
    writer = SummaryWriter(str(run_dir))
    for summary in hparams_summaries({**{f"arch/{k}": v for k, v in dataclasses.asdict(arch).items()}, **hparams}):
        writer._get_file_writer().add_summary(summary)
    for step, (loss, val) in enumerate([(2.3, top1 / 2), (1.9, top1)], 1):
        writer.add_scalar("train/loss_epoch", loss, step * 5)
        writer.add_scalar("val/top1", val, step * 5)
    writer.add_scalar("hp/val_top1", top1, 10)
    writer.add_scalar("hp/test_top1", top1, 10)
    writer._get_file_writer().add_summary(session_end_summary("success"))
    writer.close()


def predictions(names: list[str], top1: float) -> dict[str, Any]:
    """Video-level test predictions of 2 videos per class, the first `top1` % of them right."""
    labels = torch.arange(len(names)).repeat(2)
    right = torch.arange(len(labels)) < round(len(labels) * top1 / 100)
    predicted = torch.where(right, labels, (labels + 1) % len(names))
    return {"video_ids": [f"v{i}" for i in range(len(labels))], "labels": labels, "class_names": names,
            "scores": torch.nn.functional.one_hot(predicted, len(names)).float() * 0.9 + 0.1 / len(names)}


def write_results(out: Path, table_file: Path, datasets: dict[str, Any], seeds: list[int],
                  outcomes: dict[tuple[int, str, int], Outcome], git_commit: str = "test") -> Path:
    """out/table_<name>/ for a table file, every (row, dataset, seed) in `outcomes` ended so, the others pending;
    returns the table's folder."""
    table = load_table(str(table_file), table_file.parent)
    cells = expand_cells(table, datasets, "tiny", seeds, repo=REPO)
    folder = out / f"table_{table.name}"
    scripts = TrainingScripts(cells, folder, REPO, lambda c: folder / "cells" / c.slug, launch=_no_training)
    records = []
    for cell in cells:
        record = {"table": cell.table, "row": cell.row, "label": cell.label, "dataset": cell.dataset,
                  "seed": cell.seed, "gflops": 0.1 + 0.05 * cell.row, "params_m": 1.0, "status": "pending",
                  "config_hash": cell.config_hash, "git_commit": git_commit, "error": ""}
        outcome = outcomes.get((cell.row, cell.dataset, cell.seed))
        if outcome is not None:
            record.update(_write_cell(folder / "cells" / cell.slug, cell, outcome, scripts))
            atomic_write_text(folder / "cells" / cell.slug / "cell.json", json.dumps(record))
        records.append(record)
    atomic_write_text(folder / "results.csv", results_csv(records))
    atomic_write_text(folder / f"{table.name}.yaml", table_file.read_text())
    atomic_write_text(folder / "table.md", render_table(table, records))
    return folder


def _no_training(*args: Any, **kwargs: Any) -> dict[str, Any]:
    raise AssertionError("results folders for tests are written, not trained")


def _write_cell(cell_dir: Path, cell: Cell, outcome: Outcome, scripts: TrainingScripts) -> dict[str, Any]:
    cell_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"status": outcome.status}
    if outcome.status == "failed":
        record["error"] = outcome.error
        atomic_write_text(cell_dir / "error.log", f"Traceback (most recent call last):\n{outcome.error}\n")
    else:
        names = class_names(cell.config)
        record.update(top1=outcome.top1, top5=100.0, mean_class=outcome.top1, train_s=12.0, clips_per_s=40.0,
                      peak_mem_mb=900.0, num_classes=len(names))
        atomic_torch_save(predictions(names, outcome.top1), cell_dir / "test_predictions.pt")
        if cell.script in COTRAINED:
            _write_shared_run(cell, outcome, scripts)
        else:
            atomic_write_text(cell_dir / "cell.yaml", yaml.safe_dump(cell.config, sort_keys=False))
            write_run(cell_dir, cell.config, grid_hparams(cell), outcome.top1, names)
    return record


def _write_shared_run(cell: Cell, outcome: Outcome, scripts: TrainingScripts) -> None:
    """The co-training run of the cell's script and seed, once for all its cells, where the runner keeps it."""
    shared = scripts.shared_dir(cell.script, cell.seed)
    if (shared / "run" / "checkpoints" / "last.ckpt").exists():
        return
    config = scripts.cotrain_config(cell, shared)
    atomic_write_text(shared / "cotrain.yaml", yaml.safe_dump(config, sort_keys=False))
    sets = {c.dataset: c.config for c in scripts.script_sets((cell.script,), cell.seed)}
    names = [f"{name}/{c}" for name, set_config in sets.items() for c in class_names(set_config)]
    write_run(shared / "run", config, grid_hparams(cell, dataset="+".join(sets)), outcome.top1, names,
              sets={name: len(class_names(set_config)) for name, set_config in sets.items()})
