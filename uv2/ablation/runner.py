"""Running an ablation grid: cells in order, each fit then multi-view test, with results that survive anything.

- Every cell has its own directory (config, TensorBoard logs, checkpoints) and a status file cell.json written
  atomically when the cell ends: done (with metrics), failed (with the error) or interrupted.
- A rerun skips done cells whose config is unchanged and resumes an unfinished cell from its last checkpoint
  (checkpoints are also written every few optimizer steps); --fresh starts over.
- A failing cell is recorded and the grid goes on; Ctrl-C stops after recording the cell as interrupted.
- results.csv (one row per cell) and table.md (the paper's layout, our mean +- std beside the paper's numbers,
  rows whose direction disagrees with the paper flagged) are rewritten atomically after every cell.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import yaml

from uv2.ablation.grid import Cell, Table
from uv2.ablation.union import LabelSet, build_union, slice_head
from uv2.io import atomic_torch_save, atomic_write_text, safe_load
from uv2.models import ModelConfig
from uv2.models.flops import model_flops

log = logging.getLogger(__name__)

CSV_FIELDS = ["table", "row", "label", "dataset", "seed", "top1", "top5", "mean_class", "gflops", "params_m",
              "train_s", "clips_per_s", "peak_mem_mb", "num_classes", "status", "error", "config_hash", "git_commit"]
DIRECTION_TOLERANCE = 0.3  # paper differences smaller than this (points) carry no direction
# table (e): runs shared between cells (out/<run>/seed<s>-<hash>/) and the training scripts each one serves
SHARED_RUNS = {"union": ("union_individual", "union_cotrain"), "cotrain": ("cotrain",),
               "union_cotrain": ("union_cotrain",)}


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class PeakMemory:
    """Peak resident memory of this process while the block runs (GPU: peak allocated), in MB."""

    def __enter__(self) -> PeakMemory:
        self.peak, self._stop = 0.0, threading.Event()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            try:
                rss = int(Path("/proc/self/statm").read_text().split()[1]) * page / 2**20
            except (OSError, ValueError, IndexError):
                return
            self.peak = max(self.peak, rss)
            self._stop.wait(0.25)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() / 2**20


def quiet_lightning() -> None:
    """One progress line per cell: Lightning's own INFO lines (devices, seeds, summaries) are hidden."""
    for name in ("pytorch_lightning", "lightning_fabric", "pytorch_lightning.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning_fabric.utilities.seed", "uv2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def fit_and_test(config_path: Path, run_dir: Path, resume: bool) -> dict[str, Any]:
    """Fit an experiment in run_dir (resuming from its last checkpoint when asked), then test it; in-process.

    Returns the test metrics, timings and class count; a co-training run (several sets) returns the mean metrics
    and, under "per_set", each set's. Video-level predictions go to run_dir/test_predictions[_<set>].pt.
    """
    import pytorch_lightning as pl

    from uv2.train.cli import UV2CLI
    from uv2.train.module import VideoClassifier, train_batch_size

    quiet_lightning()
    every = 50  # optimizer steps between mid-epoch checkpoints (resume after a kill loses at most this many)
    cli = UV2CLI(VideoClassifier, pl.LightningDataModule, subclass_mode_data=True, run=False,
                 args=["--config", str(config_path), "--run_dir", str(run_dir), "--checkpoint_every_n_steps",
                       str(every)],
                 save_config_kwargs={"overwrite": True})
    last = run_dir / "checkpoints" / "last.ckpt"
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=str(last) if resume and last.exists() else None)
    train_s = time.perf_counter() - start
    if cli.trainer.interrupted:
        raise KeyboardInterrupt
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    result, names = cli.model.test_results, cli.model.class_names
    per_set = result.get("per_set", {"": result})
    summary: dict[str, Any] = {}
    for name, rows in cli.model.head_slices().items():
        r, set_names = per_set[name], names[rows]
        if name:  # co-training: the set's own class names, without the "set/" prefix
            set_names = [n.split("/", 1)[1] for n in set_names]
        atomic_torch_save({"video_ids": r["video_ids"], "scores": r["scores"], "labels": r["labels"],
                           "class_names": set_names}, run_dir / f"test_predictions{'_' + name if name else ''}.pt")
        summary[name] = {**r["metrics"], "num_classes": len(set_names)}
    steps = cli.trainer.global_step
    batch = train_batch_size(cli.datamodule) * cli.trainer.world_size
    out = {**result["metrics"], "train_s": train_s, "clips_per_s": steps * batch / max(train_s, 1e-9),
           "num_classes": cli.model.arch.num_classes}
    if "per_set" in result:
        out["per_set"] = summary
    return out


class GridRunner:
    def __init__(self, table: Table, cells: list[Cell], out_dir: Path, repo: Path, fresh: bool = False) -> None:
        self.table, self.cells, self.out_dir, self.repo, self.fresh = table, cells, out_dir, repo, fresh  # noqa
        self.commit = git_commit(repo)
        self._flops: dict[str, dict[str, Any]] = {}  # arch (JSON) -> model_flops: results are rewritten often

    # ------------------------------------------------------------------------------------------------- running
    def cell_dir(self, cell: Cell) -> Path:
        return self.out_dir / "cells" / cell.slug

    def run(self, only_index: int | None = None) -> list[dict[str, Any]]:
        """Run every cell (or cell `only_index`); return the records of the cells this call ran or skipped."""
        todo = self.cells if only_index is None else [self.cells[only_index]]
        if self.fresh:  # start the cells that run from scratch (the others keep their results)
            for cell in todo:
                shutil.rmtree(self.cell_dir(cell), ignore_errors=True)
                for run, scripts in SHARED_RUNS.items():
                    if cell.script in scripts:
                        shutil.rmtree(self.shared_dir(run, cell.seed), ignore_errors=True)
        self.write_outputs()  # results.csv and table.md exist (all pending) from the start
        records = []
        try:
            for n, cell in enumerate(todo, 1):
                records.append(self.run_cell(cell, f"[{n}/{len(todo)}]"))
        finally:
            self.write_outputs()
        return records

    def run_cell(self, cell: Cell, progress: str) -> dict[str, Any]:
        folder = self.cell_dir(cell)
        status_file = folder / "cell.json"
        previous = json.loads(status_file.read_text()) if status_file.exists() else None
        where = f"{progress} table {cell.table} | {cell.label} | {cell.dataset} | seed {cell.seed}"
        if previous and previous.get("status") == "done" and previous.get("config_hash") == cell.config_hash:
            print(f"{where}: done before (top1 {previous['top1']:.1f}), skipped", flush=True)
            return previous
        resume = bool(previous) and previous.get("config_hash") == cell.config_hash
        print(f"{where}: {'resuming' if resume and (folder / 'checkpoints/last.ckpt').exists() else 'running'}",
              flush=True)
        record = self.base_record(cell)
        try:
            with PeakMemory() as memory:
                record.update(self.execute(cell, folder, resume))
            record.update(status="done", peak_mem_mb=round(memory.peak, 1))
            print(f"{where}: top1 {record['top1']:.1f}  top5 {record['top5']:.1f}  ({record['train_s']:.0f} s)",
                  flush=True)
        except KeyboardInterrupt:
            record.update(status="interrupted", error="interrupted (Ctrl-C); rerun to resume")
            atomic_write_text(status_file, json.dumps(record, indent=2))
            print(f"{where}: interrupted; rerun the same command to resume", flush=True)
            raise
        except Exception as err:  # noqa: BLE001 - a failing cell is recorded and the grid goes on
            record.update(status="failed", error=f"{type(err).__name__}: {err}".splitlines()[0][:500])
            (folder / "error.log").parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(folder / "error.log", traceback.format_exc())
            print(f"{where}: FAILED: {record['error']} (traceback in {folder / 'error.log'})", flush=True)
        atomic_write_text(status_file, json.dumps(record, indent=2))
        self.write_outputs()
        return record

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
        if cell.script in ("cotrain", "union_cotrain"):
            return self.cotrained(cell, folder)
        config = self.union_finetune_config(cell) if cell.script == "union_individual" else cell.config
        config_path = folder / "cell.yaml"
        atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
        return fit_and_test(config_path, folder, resume)

    # ---------------------------------------------------------------------------- table (e): training scripts
    # Runs shared by several cells (the union-label model, a co-trained model) are made by the first cell that
    # needs them (resumed if interrupted) and marked done by a results file.
    def shared_dir(self, run: str, seed: int) -> Path:
        """out/<run>/seed<s>-<hash>: the hash covers the configs of the cells the run serves, so a changed table or
        dataset definition trains a new shared run instead of reusing a stale one."""
        hashes = sorted(c.config_hash for c in self.script_sets(SHARED_RUNS[run], seed))
        return self.out_dir / run / f"seed{seed}-{hashlib.sha1(''.join(hashes).encode()).hexdigest()[:8]}"

    def script_sets(self, scripts: tuple[str, ...], seed: int) -> list[Cell]:
        """The cells of one seed that a shared run serves (one per dataset, in table order)."""
        cells: dict[str, Cell] = {}
        for c in self.cells:
            if c.script in scripts and c.seed == seed:
                cells.setdefault(c.dataset, c)
        return list(cells.values())

    def union_model(self, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[str]]:
        """The union-label model of a seed (state dict, arch, class names), fitted once for both union scripts."""
        union_dir = self.shared_dir("union", seed)
        if not (union_dir / "done").exists():
            label_sets = []
            for c in self.script_sets(("union_individual", "union_cotrain"), seed):
                lists = self.synthetic_lists(c)
                label_sets.append(LabelSet(c.dataset, lists / "train.csv", lists / "val.csv", lists / "classes.txt"))
            counts = build_union(label_sets, union_dir / "lists")
            print(f"  union of {', '.join(s.name for s in label_sets)}: {counts}", flush=True)
            first = self.script_sets(("union_individual", "union_cotrain"), seed)[0]
            config = json.loads(json.dumps(first.config))
            init_args = config["data"]["init_args"]
            init_args.update(synthetic_set=None, list_format="csv", train_list=str(union_dir / "lists/train.csv"),
                             val_list=str(union_dir / "lists/val.csv"), test_list=str(union_dir / "lists/val.csv"),
                             classes_file=str(union_dir / "lists/classes.txt"), data_root=None)
            config["model"]["arch"]["num_classes"] = counts["classes"]
            atomic_write_text(union_dir / "union.yaml", yaml.safe_dump(config, sort_keys=False))
            print(f"  fitting the union-label model ({counts['classes']} classes)", flush=True)
            fit_and_test(union_dir / "union.yaml", union_dir / "run", resume=True)
            atomic_write_text(union_dir / "done", "")
        union = safe_load(union_dir / "run" / "checkpoints" / "last.ckpt")
        state = {k[len("model."):]: v for k, v in union["state_dict"].items() if k.startswith("model.")}
        return state, union["hyper_parameters"]["arch"], union["hyper_parameters"]["class_names"]

    def init_from_union(self, seed: int, target_classes: list[str], path: Path) -> str:
        """Write the union-label model with its head sliced to target_classes (by name) to path; return path."""
        state, arch, union_classes = self.union_model(seed)
        atomic_torch_save({"format": "uv2", "model_config": dict(arch, num_classes=len(target_classes)),
                           "state_dict": slice_head(state, union_classes, target_classes)}, path)
        return str(path)

    @staticmethod
    def short_fine_tuning(config: dict[str, Any]) -> None:
        """After union pretraining: a third of the epochs (the paper fine-tunes 5 epochs after 55)."""
        epochs = max(2, config["trainer"]["max_epochs"] // 3)
        config["trainer"].update(max_epochs=epochs, check_val_every_n_epoch=epochs)

    def union_finetune_config(self, cell: Cell) -> dict[str, Any]:
        """The short fine-tuning of one set from the union-label model, its head sliced by class name."""
        target_classes = (self.synthetic_lists(cell) / "classes.txt").read_text().split()
        config = json.loads(json.dumps(cell.config))
        config["model"]["init_from"] = self.init_from_union(cell.seed, target_classes,
                                                            self.cell_dir(cell) / "init_from_union.ckpt")
        self.short_fine_tuning(config)
        return config

    def cotrain_config(self, cell: Cell, shared: Path) -> dict[str, Any]:
        """One model, a head per set, trained on every set of the script at once (uv2.data.MultiSetDataModule):
        the data arguments all sets share, and each set's own."""
        sets = self.script_sets((cell.script,), cell.seed)
        per_set = {c.dataset: c.config["data"]["init_args"] for c in sets}
        keys = set.intersection(*(set(args) for args in per_set.values()))
        common = {k: v for k, v in per_set[sets[0].dataset].items()
                  if k in keys and all(args[k] == v for args in per_set.values())}
        config = json.loads(json.dumps(cell.config))
        config["data"] = {"class_path": "uv2.data.MultiSetDataModule", "init_args": {
            "common": common, "sets": {name: {k: v for k, v in args.items() if k not in common}
                                       for name, args in per_set.items()}}}
        config["model"]["arch"]["num_classes"] = sum(c.arch["num_classes"] for c in sets)
        if cell.script == "union_cotrain":  # the heads start as the union head's rows of each set's classes
            target = [n for c in sets for n in (self.synthetic_lists(c) / "classes.txt").read_text().split()]
            config["model"]["init_from"] = self.init_from_union(cell.seed, target, shared / "init_from_union.ckpt")
            self.short_fine_tuning(config)
        return config

    def cotrained(self, cell: Cell, folder: Path) -> dict[str, Any]:
        """This cell's set from the co-trained model of its script and seed (trained by the first cell of it)."""
        shared = self.shared_dir(cell.script, cell.seed)
        results_file = shared / "results.json"
        if not results_file.exists():
            shared.mkdir(parents=True, exist_ok=True)
            config = self.cotrain_config(cell, shared)
            atomic_write_text(shared / "cotrain.yaml", yaml.safe_dump(config, sort_keys=False))
            print(f"  co-training one model on {', '.join(config['data']['init_args']['sets'])}", flush=True)
            atomic_write_text(results_file, json.dumps(fit_and_test(shared / "cotrain.yaml", shared / "run",
                                                                    resume=True), indent=2))
        result = json.loads(results_file.read_text())
        shutil.copyfile(shared / "run" / f"test_predictions_{cell.dataset}.pt", folder / "test_predictions.pt")
        return {**result["per_set"][cell.dataset], "train_s": result["train_s"], "clips_per_s": result["clips_per_s"]}

    def synthetic_lists(self, cell: Cell) -> Path:
        from uv2.data.datamodule import synthetic_root_for

        args = cell.config["data"]["init_args"]
        root = synthetic_root_for(args.get("synthetic_root", "data/synthetic"), args.get("synthetic_size", "tiny"),
                                  args.get("synthetic_seed", 0))
        return self.repo / root / args["synthetic_set"]

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

    def write_outputs(self) -> None:
        records = self.collect()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
        atomic_write_text(self.out_dir / "results.csv", buffer.getvalue())
        atomic_write_text(self.out_dir / f"{self.table.name}.yaml", self.table.path.read_text())  # for the notebooks
        atomic_write_text(self.out_dir / "table.md", render_table(self.table, records))


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def render_table(table: Table, records: list[dict[str, Any]]) -> str:
    """The paper's layout: one line per row, ours (mean ± std over seeds) beside the paper's number per dataset."""
    by_cell: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in records:
        by_cell.setdefault((r["row"], r["dataset"]), []).append(r)

    def ours(row: int, key: str) -> list[float]:
        return [r["top1"] for r in by_cell.get((row, key), []) if r.get("status") == "done"]

    header = ["row"] + [f"{key} {who}" for key in table.datasets for who in ("(ours)", "(paper)")] + ["GFLOPs", "notes"]
    lines = [f"# Table {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = 0
    for i, row in enumerate(table.rows):
        notes, cols, problems = [], [], {}
        for key in table.datasets:
            paper = row.paper.get(key)
            values = ours(i, key)
            cols.append(f"{_mean_std(values)} | {paper if paper is not None else '-'}")
            for r in by_cell.get((i, key), []):
                if r.get("status") != "done":  # grouped below: one note per distinct problem
                    problem = r["status"] + (f" ({r['error'][:120]})" if r.get("error") else "")
                    problems.setdefault(problem, []).append(key)
            chance = [100.0 / r["num_classes"] for r in by_cell.get((i, key), []) if r.get("num_classes")]
            if values and chance and statistics.mean(values) < 2 * chance[0]:
                notes.append(f"{key}: near chance ({chance[0]:.0f} %)")
            base_values, base_paper = ours(base, key), table.rows[base].paper.get(key)
            if i != base and values and base_values and paper is not None and base_paper is not None:
                paper_delta = paper - base_paper
                our_delta = statistics.mean(values) - statistics.mean(base_values)
                if abs(paper_delta) >= DIRECTION_TOLERANCE and math.copysign(1, paper_delta) != math.copysign(1, our_delta):
                    notes.append(f"{key}: direction differs from the paper vs '{table.rows[base].label}' "
                                 f"(paper {paper_delta:+.1f}, ours {our_delta:+.1f})")
        notes = [f"{', '.join(sorted(set(keys)))}: {problem}" for problem, keys in problems.items()] + notes
        gflops = sorted({round(r["gflops"], 2) for r in records if r["row"] == i and "gflops" in r})
        lines.append(f"| {row.label} | " + " | ".join(cols) + f" | {', '.join(str(g) for g in gflops)} | "
                     + "; ".join(notes) + " |")
    done = sum(r.get("status") == "done" for r in records)
    lines += ["", f"{done}/{len(records)} cells done. Top-1 (%) of the multi-view test; the paper's numbers are "
                  f"CLIP ViT-B/16 on Kinetics / Something-Something, ours at the scale the grid ran. Directions are "
                  f"compared with the first row."]
    return "\n".join(lines) + "\n"


def write_sbatch(table: Table, cells: list[Cell], out_dir: Path, argv: list[str], devices: int, num_nodes: int,
                 time_limit: str = "48:00:00") -> Path:
    """An sbatch array (one cell per task, `--cell $SLURM_ARRAY_TASK_ID`) and a merge job after it."""
    slurm = out_dir / "slurm"
    passthrough = " ".join(a for a in argv if a != "--slurm")
    gpus = max(1, devices)
    array = f"""#!/bin/bash
# uv2 ablation table {table.name}: {len(cells)} cells, one per array task (written by ablations/run.py --slurm)
#SBATCH --job-name=uv2-table-{table.name}
#SBATCH --array=0-{len(cells) - 1}
#SBATCH --nodes={num_nodes}
#SBATCH --ntasks-per-node={gpus}
#SBATCH --gpus-per-node={gpus}
#SBATCH --cpus-per-task=10
#SBATCH --time={time_limit}
#SBATCH --output={slurm}/cell-%a.out
# Lightning reads SLURM's environment: srun starts one process per GPU on every node
srun python ablations/run.py {passthrough} --cell $SLURM_ARRAY_TASK_ID
"""
    merge = f"""#!/bin/bash
#SBATCH --job-name=uv2-table-{table.name}-merge
#SBATCH --ntasks=1
#SBATCH --time=00:10:00
#SBATCH --output={slurm}/merge.out
python ablations/run.py {passthrough} --merge
"""
    submit = f"""#!/bin/bash
# submit the array, then the merge step once every cell has ended (whatever its outcome)
set -euo pipefail
array_id=$(sbatch --parsable {slurm}/cells.sbatch)
sbatch --dependency=afterany:$array_id {slurm}/merge.sbatch
"""
    atomic_write_text(slurm / "cells.sbatch", array)
    atomic_write_text(slurm / "merge.sbatch", merge)
    atomic_write_text(slurm / "submit.sh", submit)
    os.chmod(slurm / "submit.sh", 0o755)
    return slurm / "submit.sh"
