"""Table (e)'s training scripts: the runs several cells share.

- *individual*: one model per set (an ordinary cell);
- *cotrain*: one model trained on every set of the script at once, a head per set (uv2.data.MultiSetDataModule);
- *union_individual* / *union_cotrain*: first one model on the union label set (classes merged by name, every set's
  validation videos kept out of its training; fitted once per seed for both scripts), then either a short
  fine-tuning per set with the head sliced from the union head by class name, or co-training from it.

Shared runs live in out/<run>/seed<s>-<hash>/ (the hash covers the configs of the cells they serve, so a changed
table or dataset definition trains a new shared run instead of reusing a stale one). The first cell that needs one
makes it (resumed if interrupted); a results file or a `done` marker says it is finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from uv2.ablation.grid import Cell, grid_hparams
from uv2.ablation.union import LabelSet, build_union, slice_head
from uv2.io import atomic_torch_save, atomic_write_text, safe_load
from uv2.labels import read_classes_file

# shared run -> the training scripts it serves
SHARED_RUNS = {"union": ("union_individual", "union_cotrain"), "cotrain": ("cotrain",),
               "union_cotrain": ("union_cotrain",)}
COTRAINED = ("cotrain", "union_cotrain")  # scripts whose cells read their set from one co-trained model

# launch(config_path, run_dir, resume, hparams, set_hparams=None, stage="") -> test results: one training run with
# the grid's progress line and HPARAMS entry (uv2.ablation.runner.GridRunner.launch)
Launch = Callable[..., dict[str, Any]]


def shared_run_dir(out_dir: Path, run: str, seed: int, config_hashes: list[str]) -> Path:
    """Where a shared run of one seed lives: out/<run>/seed<s>-<hash of the config hashes of the cells it serves>
    (the grid keeps it here; the analysis finds co-trained cells' checkpoints here from results.csv)."""
    digest = hashlib.sha1("".join(sorted(config_hashes)).encode()).hexdigest()[:8]
    return out_dir / run / f"seed{seed}-{digest}"


def cell_label_set(cell: Cell, repo: Path) -> LabelSet:
    """A cell's lists and classes file: the synthetic set's files, or (paper scale) the Kinetics-style CSV lists its
    experiment names, relative paths under repo."""
    args = cell.config["data"]["init_args"]
    if args.get("synthetic_set"):
        from uv2.data.datamodule import synthetic_set_dir

        lists = repo / synthetic_set_dir(args)
        return LabelSet(cell.dataset, lists / "train.csv", lists / "val.csv", lists / "classes.txt")
    missing = [k for k in ("train_list", "val_list", "classes_file") if not args.get(k)]
    if missing or args.get("list_format", "csv") != "csv":
        raise ValueError(f"dataset {cell.dataset!r}: table (e)'s union and co-training scripts need csv lists with "
                         f"class names (data.init_args list_format csv, train_list, val_list, classes_file); "
                         f"missing: {', '.join(missing) or 'none'}, list_format {args.get('list_format')!r}")
    train, val, classes = (repo / args[key] for key in ("train_list", "val_list", "classes_file"))
    return LabelSet(cell.dataset, train, val, classes, repo / args["data_root"] if args.get("data_root") else None)


def union_identity(cell: Cell) -> str:
    """Synthetic sets live apart (their file names repeat across sets): videos by path. Real Kinetics lists: by
    YouTube id, the official K710 rule (a set's copy of another set's validation video has its own root and times)."""
    return "path" if cell.config["data"]["init_args"].get("synthetic_set") else "youtube_id"


class TrainingScripts:
    def __init__(self, cells: list[Cell], out_dir: Path, repo: Path, cell_dir: Callable[[Cell], Path],
                 launch: Launch, say: Callable[[str], None] = print) -> None:
        self.cells, self.out_dir, self.repo, self.cell_dir = cells, out_dir, repo, cell_dir
        self.launch, self.say = launch, say

    def shared_dir(self, run: str, seed: int) -> Path:
        return shared_run_dir(self.out_dir, run, seed, [c.config_hash for c in self.script_sets(SHARED_RUNS[run], seed)])

    def forget(self, cell: Cell) -> None:
        """--fresh: delete the shared runs this cell's script uses, so they are trained again."""
        for run, scripts in SHARED_RUNS.items():
            if cell.script in scripts:
                shutil.rmtree(self.shared_dir(run, cell.seed), ignore_errors=True)

    def script_sets(self, scripts: tuple[str, ...], seed: int) -> list[Cell]:
        """The cells of one seed that a shared run serves (one per dataset, in table order)."""
        cells: dict[str, Cell] = {}
        for c in self.cells:
            if c.script in scripts and c.seed == seed:
                cells.setdefault(c.dataset, c)
        return list(cells.values())

    def label_set(self, cell: Cell) -> LabelSet:
        return cell_label_set(cell, self.repo)

    # ----------------------------------------------------------------------------------------- union labels
    def union_model(self, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[str]]:
        """The union-label model of a seed (state dict, arch, class names), fitted once for both union scripts."""
        union_dir = self.shared_dir("union", seed)
        if not (union_dir / "done").exists():
            sets = self.script_sets(SHARED_RUNS["union"], seed)
            label_sets = [self.label_set(c) for c in sets]
            counts = build_union(label_sets, union_dir / "lists", union_identity(sets[0]))
            self.say(f"  union of {', '.join(s.name for s in label_sets)}: {counts}")
            config = json.loads(json.dumps(sets[0].config))
            init_args = config["data"]["init_args"]
            init_args.update(synthetic_set=None, list_format="csv", train_list=str(union_dir / "lists/train.csv"),
                             val_list=str(union_dir / "lists/val.csv"), test_list=str(union_dir / "lists/val.csv"),
                             classes_file=str(union_dir / "lists/classes.txt"), data_root=None)
            config["model"]["arch"]["num_classes"] = counts["classes"]
            atomic_write_text(union_dir / "union.yaml", yaml.safe_dump(config, sort_keys=False))
            self.say(f"  fitting the union-label model ({counts['classes']} classes)")
            hparams = grid_hparams(sets[0], row="union-label pretraining (shared)",
                                   dataset="+".join(c.dataset for c in sets))
            self.launch(union_dir / "union.yaml", union_dir / "run", True, hparams, stage="union-label model")
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
    def short_fine_tuning(config: dict[str, Any], finetune: dict[str, Any] | None = None) -> None:
        """After union pretraining: the dataset's fine-tuning settings (paper scale: its *_from_k710 recipe, 5 epochs
        at a lower lr), else a third of the epochs (the paper fine-tunes 5 epochs after 55)."""
        if finetune is not None:
            config["trainer"]["max_epochs"] = finetune["trainer"]["max_epochs"]
            config["model"]["optim"] = dict(finetune["model"]["optim"])
            return
        epochs = max(2, config["trainer"]["max_epochs"] // 3)
        config["trainer"]["max_epochs"] = epochs

    def union_finetune_config(self, cell: Cell) -> dict[str, Any]:
        """The short fine-tuning of one set from the union-label model, its head sliced by class name."""
        target_classes = read_classes_file(self.label_set(cell).classes_file)
        config = json.loads(json.dumps(cell.config))
        config["model"]["init_from"] = self.init_from_union(cell.seed, target_classes,
                                                            self.cell_dir(cell) / "init_from_union.ckpt")
        self.short_fine_tuning(config, cell.finetune)
        return config

    # ------------------------------------------------------------------------------------------- co-training
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
            target = [n for c in sets for n in read_classes_file(self.label_set(c).classes_file)]
            config["model"]["init_from"] = self.init_from_union(cell.seed, target, shared / "init_from_union.ckpt")
            self.short_fine_tuning(config, cell.finetune)
        return config

    def cotrained(self, cell: Cell, folder: Path) -> dict[str, Any]:
        """This cell's set from the co-trained model of its script and seed (trained by the first cell of it)."""
        shared = self.shared_dir(cell.script, cell.seed)
        results_file = shared / "results.json"
        if not results_file.exists():
            shared.mkdir(parents=True, exist_ok=True)
            config = self.cotrain_config(cell, shared)
            atomic_write_text(shared / "cotrain.yaml", yaml.safe_dump(config, sort_keys=False))
            sets = list(config["data"]["init_args"]["sets"])
            self.say(f"  co-training one model on {', '.join(sets)}")
            hparams = grid_hparams(cell, dataset="+".join(sets))
            result = self.launch(shared / "cotrain.yaml", shared / "run", True, hparams,
                                 {name: {"grid/dataset": name} for name in sets}, stage="co-training")
            atomic_write_text(results_file, json.dumps(result, indent=2))
        result = json.loads(results_file.read_text())
        shutil.copyfile(shared / "run" / f"test_predictions_{cell.dataset}.pt", folder / "test_predictions.pt")
        return {**result["per_set"][cell.dataset], "train_s": result["train_s"], "clips_per_s": result["clips_per_s"],
                "hardware": result.get("hardware", "")}
