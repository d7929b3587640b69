"""Ablation tables as data: a table file lists rows (the paper's labels, switches, numbers); the grid expands
them into cells (row x dataset x seed), each a complete experiment config.

Switches are written at the paper's scale (CLIP ViT-B/16, 12 layers). Layer ranges are mapped onto the depth of
the ViT a scale uses ("9-12" of 12 layers is "3-4" of the tiny ViT's 4), so one table file serves every scale.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from uv2.ablation import SCALES
from uv2.data.synthetic import GENERATOR_VERSION
from uv2.errors import InputError
from uv2.experiment import ExperimentError, deep_merge, load_experiment
from uv2.models import ModelConfig

REFERENCE_DEPTH = 12  # the paper's ablations use ViT-B/16
SCRIPTS = ("individual", "cotrain", "union_cotrain", "union_individual")
UNION_SCRIPTS = ("union_cotrain", "union_individual")  # fine-tuned after union-label pretraining


class TableError(InputError, ValueError):
    """A table or datasets file is malformed; the message names the file and the field."""


@dataclass
class Row:
    label: str
    arch: dict[str, Any] = field(default_factory=dict)  # ModelConfig switches at the reference depth
    paper: dict[str, float] = field(default_factory=dict)  # the paper's top-1 per dataset key
    frames_factor: int = 1  # T-Down rows use twice the frames
    script: str | None = None  # table (e): a training script instead of switches


@dataclass
class Table:
    name: str  # "c"
    title: str
    datasets: list[str]
    rows: list[Row]
    path: Path
    # tiny scale: epochs per dataset key for this table's cells, in place of ablations/datasets.yaml's (tables whose
    # designs learn slower than the epochs that table (c) can afford)
    tiny_epochs: dict[str, int] = field(default_factory=dict)
    # tiny scale: what the table changes in a dataset's experiment before its rows' switches, per dataset key (a
    # table whose paper setting differs from the dataset's preset, e.g. {temporal: {model: {arch: {t_down: true}}}})
    tiny_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def changes(self, key: str, scale: str) -> dict[str, Any]:
        """What this table changes in dataset `key`'s cells at `scale`, as cell_config's keyword arguments: its
        tiny_epochs and tiny_overrides at tiny scale, nothing at paper scale."""
        if scale != "tiny":
            return {}
        return {"epochs": self.tiny_epochs.get(key), "base": self.tiny_overrides.get(key)}


@dataclass
class Cell:
    """One run of the grid: fit, then multi-view test, of one row on one dataset with one seed."""

    table: str
    row: int
    label: str
    dataset: str
    seed: int
    config: dict[str, Any]  # the complete experiment (model / data / trainer sections)
    script: str | None = None
    # table (e)'s union scripts: the fine-tuning after union-label pretraining ({"trainer": {"max_epochs": ...},
    # "model": {"optim": {...}}} from the dataset's `finetune` experiment); None: a third of the epochs
    finetune: dict[str, Any] | None = None

    @property
    def slug(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")[:40]
        return f"r{self.row:02d}-{words}__{self.dataset}__seed{self.seed}"

    @property
    def config_hash(self) -> str:
        """What identifies the cell's finished results: its config, table (e)'s fine-tuning, and where it reads
        the generated synthetic benchmark, that benchmark's generator version (a new version may hold other test
        videos, so a grid resumed across one trains such cells again rather than mix two test sets in a table)."""
        hashed = self.config if self.finetune is None else {**self.config, "__finetune__": self.finetune}
        if _reads_synthetic(self.config):
            hashed = {**hashed, "__synthetic_generator__": GENERATOR_VERSION}
        return hashlib.sha1(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @property
    def arch(self) -> dict[str, Any]:
        return self.config["model"]["arch"]

    @property
    def cost(self) -> float:
        """The cell's training work relative to the grid's other cells: epochs x frames per clip (a table's tiny sets
        have the same number of videos, and its rows about the same FLOPs per frame). Side by side, the longest cells
        start first; the grid's time left scales the finished cells' times by it (uv2.ablation.progress)."""
        epochs = self.config.get("trainer", {}).get("max_epochs") or 1
        return float(epochs * ModelConfig(**self.arch).num_frames)

    @property
    def run_key(self) -> str:
        """What the cell's training depends on: its config with the model resolved (defaults filled in, layer specs
        as the layers they arm), so two rows that spell one model differently have the same key."""
        model = ModelConfig(**self.arch)
        resolved = {**model.to_dict(), "local_layers": model.local_layer_ids, "global_layers": model.global_layer_ids}
        config = {**self.config, "model": {**self.config["model"], "arch": resolved}}
        return json.dumps([config, self.script, self.finetune], sort_keys=True, default=str)


def _reads_synthetic(config: Any) -> bool:
    """Whether any data section of a config names a generated synthetic set (`synthetic_set`, set and not null)."""
    if isinstance(config, dict):
        return config.get("synthetic_set") is not None or any(_reads_synthetic(v) for v in config.values())
    if isinstance(config, list):
        return any(_reads_synthetic(v) for v in config)
    return False


def repeated_runs(cells: list[Cell]) -> dict[str, Cell]:
    """slug -> the cell of an earlier row whose run this cell repeats (the same run_key: the same model, data,
    recipe and seed), where a table lists one model twice, as table (d)'s "Sequential" and "Sequential, 1 query"
    or table (b)'s "Local MHRA x2" and "1-12, r=1.5". The grid trains such a run once. Training scripts (table (e))
    share runs their own way and are left out."""
    first: dict[str, Cell] = {}
    repeats = {}
    for cell in cells:
        if cell.script is None and (earlier := first.setdefault(cell.run_key, cell)) is not cell:
            repeats[cell.slug] = earlier
    return repeats


def grid_hparams(cell: Cell, **changes: Any) -> dict[str, Any]:
    """The cell's place in the grid, as TensorBoard's HPARAMS tab shows it beside the model's switches (`changes`
    for a shared run that serves several cells, e.g. its datasets)."""
    return {"grid/table": cell.table, "grid/row": cell.label, "grid/dataset": cell.dataset, "grid/seed": cell.seed,
            **{f"grid/{k}": v for k, v in changes.items()}}


TABLE_FIELDS = ("title", "datasets", "rows", "tiny_epochs", "tiny_overrides")  # the required ones first


def load_table(name_or_path: str, tables_dir: Path) -> Table:
    """Table `c` (tables_dir/c.yaml) or a table file path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = tables_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in tables_dir.glob("*.yaml"))
        raise TableError(f"no table {name_or_path!r} ({path}); valid tables: {', '.join(valid)}")
    data = yaml.safe_load(path.read_text()) or {}
    for key in TABLE_FIELDS[:3]:
        if key not in data:
            raise TableError(f"{path}: missing field {key!r}")
    if unknown := set(data) - set(TABLE_FIELDS):
        raise TableError(f"{path}: unknown fields {sorted(unknown)}; valid: {', '.join(TABLE_FIELDS)}")
    tiny_epochs = data.get("tiny_epochs") or {}
    if not isinstance(tiny_epochs, dict):
        raise TableError(f"{path}: tiny_epochs: {tiny_epochs!r}; expected epochs per dataset, e.g. {{temporal: 30}}")
    for key, epochs in tiny_epochs.items():
        if key not in data["datasets"] or not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise TableError(f"{path}: tiny_epochs: {key}: {epochs!r}; expected a positive whole number of epochs for "
                             f"one of the table's datasets ({', '.join(map(str, data['datasets']))})")
    tiny_overrides = data.get("tiny_overrides") or {}
    if not isinstance(tiny_overrides, dict) or not all(
            key in data["datasets"] and isinstance(value, dict) for key, value in tiny_overrides.items()):
        raise TableError(f"{path}: tiny_overrides: {tiny_overrides!r}; expected config sections per dataset of the "
                         f"table ({', '.join(map(str, data['datasets']))}), e.g. {{temporal: {{model: {{arch: "
                         f"{{t_down: true}}}}}}}}")
    rows = []
    for i, raw in enumerate(data["rows"]):
        unknown = set(raw) - {"label", "arch", "paper", "frames_factor", "script"}
        if unknown or "label" not in raw:
            raise TableError(f"{path}: row {i}: needs 'label'; unknown fields {sorted(unknown)}; valid: label, arch, "
                             f"paper, frames_factor, script")
        if raw.get("script") is not None and raw["script"] not in SCRIPTS:
            raise TableError(f"{path}: row {i}: script {raw['script']!r}; valid choices: {', '.join(SCRIPTS)}")
        rows.append(Row(label=str(raw["label"]), arch=dict(raw.get("arch") or {}), paper=dict(raw.get("paper") or {}),
                        frames_factor=int(raw.get("frames_factor", 1)), script=raw.get("script")))
    return Table(path.stem, str(data["title"]), list(data["datasets"]), rows, path, dict(tiny_epochs),
                 dict(tiny_overrides))


def scale_layers(spec: str, depth: int, reference_depth: int = REFERENCE_DEPTH) -> str:
    """Map a 1-based layer spec of a reference_depth ViT onto one of `depth` layers ("9-12" of 12 -> "3-4" of 4)."""
    text = str(spec).strip().lower()
    if depth == reference_depth or text in ("", "none", "all"):
        return text
    parts = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        lo_i, hi_i = int(lo), int(hi or lo)
        parts.append(f"{math.ceil(lo_i * depth / reference_depth)}-{math.ceil(hi_i * depth / reference_depth)}")
    return ",".join(parts)


def expand_cells(table: Table, datasets: dict[str, Any], scale: str, seeds: list[int],
                 trainer: dict[str, Any] | None = None, data_root: str | None = None,
                 repo: Path = Path(".")) -> list[Cell]:
    """Every cell of the table, in order (row-major, then dataset, then seed)."""
    if scale not in SCALES:
        raise TableError(f"scale {scale!r}; valid choices: {', '.join(SCALES)}")
    cells = []
    for i, row in enumerate(table.rows):
        for key in table.datasets:
            if key not in datasets:
                raise TableError(f"{table.path}: dataset {key!r} is not in ablations/datasets.yaml "
                                 f"(valid: {', '.join(datasets)})")
            for seed in seeds:
                config = cell_config(row, key, datasets[key], scale, seed, trainer or {}, data_root, repo,
                                     **table.changes(key, scale))
                finetune = finetune_settings(datasets[key].get(scale), repo) if row.script in UNION_SCRIPTS else None
                cells.append(Cell(table.name, i, row.label, key, seed, config, row.script, finetune))
    return cells


def cell_config(row: Row, key: str, dataset: dict[str, Any], scale: str, seed: int, trainer: dict[str, Any],
                data_root: str | None, repo: Path, epochs: int | None = None,
                base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The experiment of one cell: the dataset's experiment at this scale with the table's changes to it (`base`,
    the table's tiny_overrides for this dataset), the row's switches, the grid settings (`epochs`: the table's own
    for this dataset at tiny scale, else the dataset's)."""
    spec = dataset.get(scale)
    if not spec:
        raise TableError(f"dataset {key!r} ({dataset.get('name')}) has no {scale}-scale experiment in "
                         f"ablations/datasets.yaml")
    try:
        config = load_experiment(repo / spec["experiment"])
    except ExperimentError as err:
        raise TableError(str(err)) from err
    config.pop("base", None)
    config = deep_merge(config, base or {})  # the table's design before the rows vary it
    arch = config["model"]["arch"]
    depth = ModelConfig(**arch).vit_cfg.depth
    switches = {k: (scale_layers(v, depth) if k.endswith("_layers") else v) for k, v in row.arch.items()}
    arch.update(switches)
    init_args = config["data"].setdefault("init_args", {})
    if row.frames_factor != 1:  # the data module samples the model's frame count
        arch["num_frames"] = ModelConfig(**arch).num_frames * row.frames_factor
    if "num_classes" in spec:
        arch["num_classes"] = spec["num_classes"]
    init_args.update(spec.get("data", {}))
    config = deep_merge(config, spec.get("overrides", {}))  # any other section, e.g. {model: {init_from: null}}
    arch, init_args = config["model"]["arch"], config["data"]["init_args"]
    init_args["seed"] = seed
    config["seed_everything"] = seed
    trainer_cfg = config.setdefault("trainer", {})
    if scale == "tiny":
        epochs = epochs or int(spec.get("epochs", trainer_cfg.get("max_epochs", 10)))
        # no validation: a tiny cell's validation videos are its test videos, which the multi-view test scores
        # right after the fit (a validation at the end scored them again: a tenth to a fifth of a scene cell's time)
        trainer_cfg.update(max_epochs=epochs, limit_val_batches=0)
        # one crop: the synthetic frames are square, so after the short-side resize three crops along the long
        # side would be one crop three times
        init_args.update(num_test_clips=2, num_test_crops=1)
    if data_root:
        for name, value in list(init_args.items()):
            if isinstance(value, str) and value.startswith("data/"):
                init_args[name] = str(Path(data_root) / value[len("data/"):])
    trainer_cfg.update(trainer)
    ModelConfig(**arch)  # fail at expansion, not mid-grid, on an invalid combination
    return copy.deepcopy(config)


# the files and folders a cell reads, by config field
CELL_INPUTS = ("model.init_from", "data.init_args.train_list", "data.init_args.val_list", "data.init_args.test_list",
               "data.init_args.classes_file", "data.init_args.data_root")


def missing_inputs(cells: list[Cell], repo: Path) -> list[str]:
    """'field: path' for each file or folder of CELL_INPUTS that the cells name and that does not exist (paths
    relative to repo): checked before a grid runs, since every cell reading one would fail on it in turn."""
    missing = set()
    for cell in cells:
        for name in CELL_INPUTS:
            value: Any = cell.config
            for key in name.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str) and value and not (repo / value).exists():
                missing.add(f"{name}: {value}")
    return sorted(missing)


def finetune_settings(spec: dict[str, Any] | None, repo: Path) -> dict[str, Any] | None:
    """The epochs and optimiser of the dataset's `finetune` experiment (table (e)'s fine-tuning after union-label
    pretraining at paper scale: the official 5 epochs at a lower lr), or None when the dataset names none."""
    if not spec or not spec.get("finetune"):
        return None
    try:
        experiment = load_experiment(repo / spec["finetune"])
    except ExperimentError as err:
        raise TableError(str(err)) from err
    try:
        return {"trainer": {"max_epochs": int(experiment["trainer"]["max_epochs"])},
                "model": {"optim": dict(experiment["model"]["optim"])}}
    except (KeyError, TypeError) as err:
        raise TableError(f"{spec['finetune']}: a finetune experiment needs trainer.max_epochs and model.optim") from err


def load_datasets(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a mapping of dataset keys")
    return data


