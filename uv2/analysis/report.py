"""The sections of the ablation report (notebooks/ablation_report.ipynb), for any results folder the grid runner
writes: one table or all, one cell, failed or pending cells, co-trained cells (their checkpoint is in the shared run
of table (e)), models without global blocks, tables without a temporal set.

Each section returns what to show (figures, tables, one-line texts) or a :class:`Skipped` that says in one line why
it has nothing to show for these results; :func:`show` displays either in a notebook (or prints it in a script).
Figures are saved under `figures` as they are made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure

from uv2.analysis import plots
from uv2.analysis.results import (
    checkpoint_path,
    differences_by_video,
    finished,
    load_predictions,
    per_class_top1,
    run_config,
    spread_by_video,
    table_definition,
)
from uv2.analysis.tables import markdown, seed_spread_text, summary, summary_table
from uv2.models import ModelConfig

TEMPORAL = "temporal"  # the dataset key whose classes need the order of frames (time-reversed pairs)


@dataclass(frozen=True, repr=False)
class Skipped:
    """A section with nothing to show for these results, and why (shown as one line)."""

    reason: str

    def __repr__(self) -> str:
        return f"skipped: {self.reason}"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class Markdown:
    """Text shown as Markdown in a notebook (a sub-heading, a table), as itself elsewhere."""

    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


Item = Figure | Skipped | Markdown | str


def show(*items: Item | Iterable[Item]) -> None:
    """Display section results in order (lists are flattened): figures inline, Markdown as Markdown, texts as
    lines."""
    for item in items:
        if isinstance(item, (list, tuple)):
            show(*item)
        elif isinstance(item, str):
            print(item)
        else:
            try:
                from IPython.display import display
            except ImportError:  # a plain script: its text
                print(item)
            else:
                display(item)


def _where(cell: Any) -> str:
    return f"table {cell.table} | {cell.label} | {cell.dataset} | seed {cell.seed}"


def _status_counts(cells: pd.DataFrame) -> str:
    return ", ".join(f"{n} {status}" for status, n in cells["status"].value_counts().items())


# ---------------------------------------------------------------------------------------------------- sections
def overview(results: pd.DataFrame) -> list[str]:
    """What the folder holds: the cells of each table by status, and the error line of each failed cell."""
    lines = [f"table {name} ({cells['table_dir'].iloc[0]}): {len(cells)} cells, {_status_counts(cells)}"
             for name, cells in results.groupby("table", sort=True)]
    lines += [f"failed: {_where(cell)}: {cell.error or '(no error recorded)'}"
              for cell in results[results["status"] == "failed"].itertuples()]
    return lines


def tables(results: pd.DataFrame, figures: Path) -> list[Item]:
    """Per table: the table beside the paper (summary_table), how its cells spread over seeds (seed_spread_text) and
    its bars (plots.table_bars)."""
    items: list[Item] = []
    for name, cells in results.groupby("table", sort=True):
        table = table_definition(cells["table_dir"].iloc[0])
        items += [Markdown(f"### Table {table.title}"), Markdown(markdown(summary_table(results, table)))]
        if spreads := seed_spread_text(results, table):
            items.append(Markdown(spreads))
        if finished(cells).empty:
            items.append(Skipped(f"table {name} has no finished cell to draw ({_status_counts(cells)})"))
        else:
            items.append(plots.table_bars(summary(results, table), table.datasets, table.title,
                                          figures / f"table_{name}_bars.png"))
    return items


def accuracy_vs_compute(results: pd.DataFrame, figures: Path) -> Item:
    """Top-1 against GFLOPs of every finished cell."""
    if finished(results).empty:
        return Skipped(f"no finished cell ({_status_counts(results)})")
    return plots.accuracy_vs_gflops(results, figures / "accuracy_vs_gflops.png")


# the training curves' panels: in each, the first tag a run logged
CURVES = (("train/loss_step", "train/loss_epoch"), ("val/top1", "test/top1"))


def training_curves(results: pd.DataFrame, figures: Path) -> list[Item]:
    """Per table: the training loss and validation top-1 of its finished cells' runs (a shared co-training run
    once, for all the cells it serves); a run that never validated (a tiny grid cell) shows its test top-1."""
    items: list[Item] = []
    for name, cells in results.groupby("table", sort=True):
        runs: dict[str, str] = {}
        for cell in finished(cells).itertuples():
            if cell.run_dir in runs.values():
                continue  # a shared run: drawn once
            shared = cell.run_dir != cell.cell_dir
            label = f"{cell.label} / {'shared run' if shared else cell.dataset} / seed {cell.seed}"
            if any(Path(cell.run_dir).glob("events.out.tfevents.*")):
                runs[label] = cell.run_dir
        items.append(Markdown(f"### Table {name}"))
        if runs:
            items.append(plots.training_curves(runs, panels=CURVES, path=figures / f"table_{name}_curves.png"))
        elif finished(cells).empty:
            items.append(Skipped(f"table {name} has no finished cell ({_status_counts(cells)})"))
        else:
            items.append(Skipped(f"the finished cells of table {name} have no TensorBoard event files in their runs"))
    return items


def _ranked(cells: pd.DataFrame, prefer: str) -> pd.DataFrame:
    """Finished cells, those on the `prefer` dataset first, then by top-1."""
    done = finished(cells).copy()
    done["_other"] = done["dataset"] != prefer
    return done.sort_values(["_other", "top1"], ascending=[True, False])


def confusion(results: pd.DataFrame, figures: Path, prefer: str = TEMPORAL) -> Item:
    """The confusion matrix of the best finished cell on the `prefer` set (else on any set)."""
    candidates = [c for c in _ranked(results, prefer).itertuples() if (Path(c.cell_dir) / "test_predictions.pt").is_file()]
    if not candidates:
        reason = "no finished cell" if finished(results).empty else "no finished cell has test_predictions.pt"
        return Skipped(f"{reason} ({_status_counts(results)})")
    cell = candidates[0]
    predictions = load_predictions(cell.cell_dir)
    return plots.confusion_matrix(predictions["scores"], predictions["labels"], predictions["class_names"],
                                  f"{_where(cell)}: top-1 {cell.top1:.1f} %", figures / f"confusion_{cell.dataset}.png")


def per_class(results: pd.DataFrame, figures: Path, lowest: int = 3) -> list[Item] | Skipped:
    """Top-1 per class of every table's finished cells that kept their predictions, per dataset: one heatmap of rows
    x classes (mean over the seeds; classes in the dataset's order, so time-reversed pairs sit side by side), and
    the `lowest` classes over all rows: what the table's models did not learn, whatever the design."""
    frame = per_class_top1(results)
    if frame.empty:
        reason = "no finished cell" if finished(results).empty else "no finished cell has test_predictions.pt"
        return Skipped(f"{reason} ({_status_counts(results)})")
    items: list[Item] = []
    for (table, dataset), group in frame.groupby(["table", "dataset"], sort=True):
        means = group.pivot_table(index=["row", "label"], columns="class", values="top1", aggfunc="mean")
        means = means.droplevel("row")[list(pd.unique(group["class"]))]  # table's row order, dataset's class order
        seeds = ", ".join(str(s) for s in sorted(group["seed"].unique()))
        items.append(plots.per_class_heatmap(means, f"table {table} | {dataset}: top-1 per class (%), mean over "
                                                    f"seeds {seeds}", figures / f"per_class_{table}_{dataset}.png"))
        worst = means.mean().nsmallest(lowest)
        items.append(f"table {table} | {dataset}: lowest classes over the rows: "
                     + ", ".join(f"{name} {value:.1f} %" for name, value in worst.items()))
    return items


def spread_sources(results: pd.DataFrame) -> list[Item] | Skipped:
    """Per table, where each cell's spread over seeds comes from (uv2.analysis.results.spread_by_video): the part a
    larger test set would shrink (which videos each run happens to get right) and the part it would not (a run that
    learnt more or less than another), with the spread expected from four times the test videos."""
    frame = spread_by_video(results)
    if frame.empty:
        return Skipped(f"no cell has two finished seeds with test predictions ({_status_counts(results)})")
    headings = {"dataset": "dataset", "label": "row", "seeds": "seeds", "videos": "test videos", "top1": "top-1",
                "sd": "sd", "per_video": "from the test videos", "run": "from the run",
                "sd_4x_videos": "sd with 4x the videos"}
    return _per_table(frame, headings, "top-1 (%) over seeds, its standard deviation split by test video")


def difference_sources(results: pd.DataFrame) -> list[Item] | Skipped:
    """Per table, each row's paired difference from its first row with two 95 % half-widths: over the seeds alone
    (the test videos held fixed) and over the seeds and the test videos (table.md's; uv2.analysis.results
    .differences_by_video), and whether each excludes zero."""
    frame = differences_by_video(results)
    if frame.empty:
        return Skipped(f"no row has two finished seeds with test predictions in common with its table's first row "
                       f"({_status_counts(results)})")
    headings = {"dataset": "dataset", "label": "row", "seeds": "seeds", "videos": "test videos",
                "difference": "Δ from the first row", "half_seeds": "± over the seeds",
                "half_crossed": "± over the seeds and the videos", "resolved_seeds": "resolved (seeds)",
                "resolved_crossed": "resolved (seeds and videos)"}
    return _per_table(frame, headings, "paired differences (top-1 points) with 95 % half-widths")


def _per_table(frame: pd.DataFrame, headings: dict[str, str], caption: str) -> list[Item]:
    """One markdown table per ablation table of `frame` (a row per dataset and row): its `headings` columns, renamed
    and rounded to 0.1, under "Table <name>: <caption>"."""
    items: list[Item] = []
    for name, group in frame.groupby("table", sort=True):
        shown = group.sort_values(["dataset", "row"])[list(headings)].rename(columns=headings).round(1)
        items += [Markdown(f"Table {name}: {caption}"), Markdown(markdown(shown.set_index("dataset")))]
    return items


def _global_layers(cell: Any) -> list[int] | None:
    """The 0-based layers that feed global blocks in the cell's model (None when its config is not there)."""
    config = run_config(cell)
    if config is None:
        return None
    return ModelConfig(**config["model"]["arch"]).global_layer_ids


def attention_cell(results: pd.DataFrame, prefer: str = TEMPORAL) -> Any:
    """The finished cell whose global blocks the report looks at: the best one with global blocks and a checkpoint,
    on the `prefer` set when one is; or a Skipped saying why there is none."""
    ranked = _ranked(results, prefer)
    if ranked.empty:
        return Skipped(f"no finished cell ({_status_counts(results)})")
    with_checkpoint = [c for c in ranked.itertuples() if checkpoint_path(c) is not None]
    if not with_checkpoint:
        return Skipped(f"none of the {len(ranked)} finished cells has its checkpoint (checkpoints/last.ckpt of its run)")
    with_global = [c for c in with_checkpoint if _global_layers(c)]
    if not with_global:
        return Skipped(f"no finished cell has global blocks (global_layers: none in all {len(with_checkpoint)} "
                       f"finished cells with a checkpoint)")
    return with_global[0]


def validation_clip(config: dict[str, Any], dataset: str, num_frames: int) -> tuple[torch.Tensor, str, Any]:
    """The first validation video of a run's data (one centre view, (3, T, H, W)), its class name and the
    transform settings; a co-training run's data is the set `dataset` of it."""
    from uv2.data.datamodule import VideoDataModule

    data = config["data"]
    args = dict(data.get("init_args") or {})
    if str(data.get("class_path", "")).endswith("MultiSetDataModule"):
        args = {**(args.get("common") or {}), **(args["sets"][dataset] or {})}
    datamodule = VideoDataModule(**{**args, "num_frames": num_frames})
    datamodule.prepare_data()  # a synthetic set is generated when missing (deterministic)
    datamodule.setup("validate")
    dataset_ = datamodule.val_dataset
    clip = dataset_.load_view(0)
    return clip, datamodule.class_names[dataset_.records[0].label], datamodule.dataset_cfg.transform


def attention(results: pd.DataFrame, figures: Path, prefer: str = TEMPORAL) -> list[Item] | Skipped:
    """What the global blocks of the chosen cell (attention_cell) look at in its first validation video: one figure
    per global block (uv2.analysis.attention.global_attention_maps), and the head's balance weight."""
    from uv2.analysis.attention import balance_weight, global_attention_maps
    from uv2.data.decode import VideoDecodeError
    from uv2.models.convert import load_model

    cell = attention_cell(results, prefer)
    if isinstance(cell, Skipped):
        return cell
    model = load_model(checkpoint_path(cell))
    try:
        clip, class_name, transform = validation_clip(run_config(cell), cell.dataset, model.cfg.num_frames)
    except (OSError, ValueError, VideoDecodeError) as err:  # lists or videos not on this machine, unreadable
        return Skipped(f"the validation videos of {_where(cell)} cannot be read here ({err})")
    maps = global_attention_maps(model, clip)
    layers = [i + 1 for i in model.global_layer_ids]
    items: list[Item] = [f"{_where(cell)} (top-1 {cell.top1:.1f} %): {len(maps)} global blocks fed by layers "
                         f"{', '.join(map(str, layers))}; maps of shape (T', h, w) = {tuple(maps[0].shape)}"]
    mean, std = torch.tensor(transform.mean).view(1, 3, 1, 1), torch.tensor(transform.std).view(1, 3, 1, 1)
    frames = clip.transpose(0, 1) * std + mean  # (T, 3, H, W) in [0, 1]
    step = frames.shape[0] // maps[-1].shape[0]  # T-Down: one token frame per two input frames
    for i, attention_map in enumerate(maps):
        items.append(plots.attention_over_frames(
            frames[::step], attention_map, f"global block {i + 1} (layer {layers[i]}), '{class_name}'",
            figures / f"attention_block{i + 1}.png"))
    weight = balance_weight(model)
    items.append(f"balance w = sigmoid(b): mean {weight.mean():.3f}, min {weight.min():.3f}, max {weight.max():.3f}"
                 if weight is not None else "this model's head takes one branch only (no balance weight w)")
    return items
