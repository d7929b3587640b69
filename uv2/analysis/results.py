"""Reading ablation results: the results.csv of one table or of every table, the tables' definitions (the copies the
runner keeps beside them), and where each cell's artefacts are: its own folder (cell.json, test_predictions.pt) and
the training run that holds its checkpoint, config and TensorBoard logs (its own folder, or for a co-trained cell of
table (e) the shared run of its script and seed).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from uv2.ablation.grid import Cell, Table, load_table
from uv2.ablation.scripts import COTRAINED, SHARED_RUNS, shared_run_dir
from uv2.ablation.stats import paired_difference, video_split
from uv2.ablation.table import video_differences, video_results
from uv2.errors import MissingFileError
from uv2.experiment import RUN_CONFIG


def table_folders(results_dir: str | Path) -> list[Path]:
    """The table folders under `results_dir`: a results root (results/table_*/) or one table's folder."""
    root = Path(results_dir)
    if (root / "results.csv").is_file():
        return [root]
    return sorted(p.parent for p in root.glob("table_*/results.csv"))


def table_definition(folder: str | Path) -> Table:
    """The table a folder's results belong to, from the copy the runner writes there (<name>.yaml)."""
    folder = Path(folder)
    name = folder.name.removeprefix("table_")
    return load_table(str(folder / f"{name}.yaml"), folder)


#: results.csv's columns of text, read as text where their values look like numbers (a commit "57e9584" is not 5.7e9585)
TEXT_FIELDS = ("table", "label", "dataset", "checkpoint", "status", "error", "config_hash", "git_commit", "same_run_as",
               "hardware")


def load_results(results_dir: str | Path = "results") -> pd.DataFrame:
    """Every cell of every table under `results_dir` (see table_folders): one row per cell x dataset x seed with
    results.csv's columns, plus `table_dir`, `cell_dir`, `script` (table (e)'s training script, "" elsewhere) and
    `run_dir` (the training run of the cell's checkpoint, config and TensorBoard logs)."""
    frames = []
    for folder in table_folders(results_dir):
        frame = pd.read_csv(folder / "results.csv", dtype=dict.fromkeys(TEXT_FIELDS, str))
        table = table_definition(folder)
        frame["error"] = frame["error"].fillna("")
        frame["table_dir"] = str(folder)
        frame["cell_dir"] = [str(folder / "cells" / _slug(r)) for r in frame.itertuples()]
        frame["script"] = [table.rows[int(r)].script or "" if int(r) < len(table.rows) else "" for r in frame["row"]]
        frame["run_dir"] = [str(_run_dir(frame, r)) for r in frame.itertuples()]
        frames.append(frame)
    if not frames:
        raise MissingFileError(f"no results.csv under {results_dir} (neither {results_dir}/results.csv nor "
                                f"{results_dir}/table_*/results.csv): run ablations/run.py first")
    return pd.concat(frames, ignore_index=True)


def _slug(row: Any) -> str:
    return Cell(row.table, int(row.row), row.label, row.dataset, int(row.seed), {}).slug


def _run_dir(frame: pd.DataFrame, row: Any) -> Path:
    """The cell's own folder, or the shared run that trained a co-trained cell: found as the runner places it, from
    the config hashes of the cells it serves (uv2.ablation.scripts.shared_run_dir)."""
    if row.script not in COTRAINED:
        return Path(row.cell_dir)
    served = frame[frame["script"].isin(SHARED_RUNS[row.script]) & (frame["seed"] == row.seed)]
    hashes = list(served.drop_duplicates("dataset")["config_hash"])  # the first cell of each set, in table order
    return shared_run_dir(Path(row.table_dir), row.script, int(row.seed), hashes) / "run"


def finished(results: pd.DataFrame) -> pd.DataFrame:
    """The cells that ended with a test result."""
    return results[results["status"] == "done"]


def checkpoint_path(cell: Any) -> Path | None:
    """The last checkpoint of a cell's training run (None when it is not there: a cell still pending, or results
    copied without their checkpoints)."""
    path = Path(cell.run_dir) / "checkpoints" / "last.ckpt"
    return path if path.is_file() else None


def run_config(cell: Any) -> dict[str, Any] | None:
    """The resolved experiment of a cell's training run (RUN_CONFIG, written by LightningCLI), or None."""
    path = Path(cell.run_dir) / RUN_CONFIG
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def run_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every TensorBoard scalar a training run logged: {tag: [(step, value), ...]} from its event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: every point, not a sample of them
    events.Reload()
    return {tag: [(p.step, p.value) for p in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def cell_scalars(results: pd.DataFrame, tag: str) -> pd.DataFrame:
    """One row per value of the TensorBoard scalar `tag` that a finished cell's training run logged (table, row,
    label, dataset, seed, step, value): e.g. the gradients' norm before clipping, train/grad_norm, over a table's
    temporal cells."""
    rows = [{"table": cell.table, "row": cell.row, "label": cell.label, "dataset": cell.dataset, "seed": cell.seed,
             "step": step, "value": value}
            for cell in finished(results).itertuples() for step, value in run_scalars(cell.run_dir).get(tag, [])]
    return pd.DataFrame(rows, columns=["table", "row", "label", "dataset", "seed", "step", "value"])


def load_predictions(cell_dir: str | Path) -> dict:
    """Per-video scores, labels and class names of a finished cell's multi-view test."""
    return torch.load(Path(cell_dir) / "test_predictions.pt", weights_only=True)


def _predicted(results: pd.DataFrame):
    """(cell, predicted class index per video, label per video, class names) of every finished cell that kept its
    test predictions."""
    for cell in finished(results).itertuples():
        if (Path(cell.cell_dir) / "test_predictions.pt").is_file():
            predictions = load_predictions(cell.cell_dir)
            yield cell, predictions["scores"].argmax(-1), predictions["labels"], predictions["class_names"]


def per_class_top1(results: pd.DataFrame) -> pd.DataFrame:
    """Top-1 (%) per class of every finished cell that kept its test predictions: one row per cell and class
    (table, row, label, dataset, seed, class, videos, top1). It shows what a run has not learnt, e.g. a pair of the
    temporal set's time-reversed classes at 50 % or less (chance within the pair) while the rest are near 100 %."""
    rows = []
    for cell, predicted, labels, names in _predicted(results):
        for index, name in enumerate(names):
            of_class = labels == index
            if of_class.any():
                top1 = 100 * (predicted[of_class] == index).float().mean().item()
                rows.append([cell.table, cell.row, cell.label, cell.dataset, cell.seed, name, int(of_class.sum()),
                             top1])
    return pd.DataFrame(rows, columns=["table", "row", "label", "dataset", "seed", "class", "videos", "top1"])


def confusions(results: pd.DataFrame) -> pd.DataFrame:
    """The wrong predictions of every finished cell that kept its test predictions, counted by true and predicted
    class: one row per cell and (class, predicted) pair that occurs (table, row, label, dataset, seed, class,
    predicted, videos), most frequent first within a cell. It tells a direction not learnt (a class taken for its
    time-reversed partner) from a kind of change not learnt (grow taken for appear: the same direction)."""
    rows = []
    for cell, predicted, labels, names in _predicted(results):
        wrong = predicted != labels
        pairs, counts = torch.stack([labels[wrong], predicted[wrong]], 1).unique(dim=0, return_counts=True)
        for (true, guess), count in sorted(zip(pairs.tolist(), counts.tolist()), key=lambda pc: -pc[1]):
            rows.append([cell.table, cell.row, cell.label, cell.dataset, cell.seed, names[true], names[guess], count])
    return pd.DataFrame(rows, columns=["table", "row", "label", "dataset", "seed", "class", "predicted", "videos"])


def correct_by_cell(results: pd.DataFrame) -> dict[tuple[str, int, str], tuple[str, list[int], list[list[float]]]]:
    """Per finished cell (table, row, dataset) whose seeds kept their test predictions: its label, those seeds and
    correct[s][i] (1.0 where seed s's run gets test video i right; every seed's videos in one order)."""
    cells_of = {}
    for table, frame in finished(results).groupby("table", sort=True):
        videos = video_results_of(frame)
        for (row, dataset), cells in frame.groupby(["row", "dataset"], sort=True):
            kept = [c for c in cells.sort_values("seed").itertuples() if (int(row), dataset, int(c.seed)) in videos]
            if not kept:
                continue
            ids, correct = zip(*(videos[(int(row), dataset, int(c.seed))] for c in kept))
            if other := next((c for c, i in zip(kept, ids) if i != ids[0]), None):
                raise ValueError(f"{other.cell_dir}/test_predictions.pt: its test videos differ from those of "
                                 f"{kept[0].cell_dir}: the seeds of one cell must be tested on the same videos")
            cells_of[(table, int(row), dataset)] = (kept[0].label, [int(c.seed) for c in kept], list(correct))
    return cells_of


def video_results_of(results: pd.DataFrame) -> dict[tuple[int, str, int], tuple[list, list[float]]]:
    """{(row, dataset, seed): its test video by video} (uv2.ablation.table.VideoResults) of the finished cells of
    `results` that kept their test predictions: what table.md's intervals take the test videos' part from. One
    table's results."""
    return {(int(c.row), c.dataset, int(c.seed)): video_results(path) for c in finished(results).itertuples()
            if (path := Path(c.cell_dir) / "test_predictions.pt").is_file()}


def spread_by_video(results: pd.DataFrame) -> pd.DataFrame:
    """Where each cell's spread over seeds comes from, by test video (uv2.ablation.stats.video_split), for every cell
    (table, row, dataset) with two finished seeds or more that kept their test predictions: one row each with seeds,
    videos, top1 (mean over the seeds, from the predictions), sd (over the seeds), per_video (which videos each run
    happens to get right: a test set k times as large divides it by sqrt(k)), run (what a whole run shares, which no
    test set shrinks) and sd_4x_videos (the sd expected with four times the test videos)."""
    columns = ["table", "row", "label", "dataset", "seeds", "videos", "top1", "sd", "per_video", "run", "sd_4x_videos"]
    rows = []
    for (table, row, dataset), (label, _, correct) in correct_by_cell(results).items():
        split = video_split(correct)
        if split is not None:
            rows.append([table, row, label, dataset, split.seeds, split.videos, split.mean, split.total,
                         split.per_video, split.run, split.with_videos(4 * split.videos)])
    return pd.DataFrame(rows, columns=columns)


def differences_by_video(results: pd.DataFrame) -> pd.DataFrame:
    """Each row's difference from its table's first row (top-1 points, paired by seed as in table.md) with two 95 %
    half-widths: over the seeds alone (the test videos held fixed) and over the seeds and the test videos (table.md's:
    every seed tests on the same videos, so an interval over the seeds leaves out which videos those are;
    docs/tiny_scale.md, "Five seeds"). One row per (table, row, dataset) with two seeds or more in common with the first
    row, both with test predictions on the same videos: seeds, videos, difference, half_seeds, half_crossed, and whether
    each interval excludes zero (resolved_seeds, resolved_crossed)."""
    columns = ["table", "row", "label", "dataset", "seeds", "videos", "difference", "half_seeds", "half_crossed",
               "resolved_seeds", "resolved_crossed"]
    rows = []
    for table, frame in finished(results).groupby("table", sort=True):
        videos = video_results_of(frame)
        for (row, dataset), cells in frame.groupby(["row", "dataset"], sort=True):
            if int(row) == 0:
                continue
            seeds = sorted(int(s) for s in cells["seed"] if (int(row), dataset, int(s)) in videos)
            by_video = video_differences(videos, int(row), 0, dataset, seeds)
            if len(by_video) < 2:
                continue
            top1 = {s: 100.0 * statistics.mean(videos[(int(row), dataset, s)][1]) for s in by_video}
            base = {s: 100.0 * statistics.mean(videos[(0, dataset, s)][1]) for s in by_video}
            d = paired_difference(top1, base, by_video)
            rows.append([table, int(row), cells["label"].iloc[0], dataset, d.n, d.videos, d.mean, d.seeds_half_width,
                         d.half_width, abs(d.mean) > d.seeds_half_width, abs(d.mean) > d.half_width])
    return pd.DataFrame(rows, columns=columns)
