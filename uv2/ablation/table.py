"""The grid's outputs: results.csv (one row per cell x dataset x seed) and table.md (the paper's layout: our mean
with its 95 % interval over seeds beside the paper's numbers, each row's paired difference from the first row with
its interval over the seeds and the test videos, and whether it agrees with the paper where the interval can tell:
uv2.ablation.stats)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from uv2.ablation.grid import Table
from uv2.ablation.stats import (
    TOP1_RANGE,
    PairedDifference,
    SeedSpread,
    SpreadDecomposition,
    paired_difference,
    seed_spread,
    spread_decomposition,
    verdict,
)

CSV_FIELDS = ["table", "row", "label", "dataset", "seed", "top1", "top5", "mean_class", "gflops", "params_m",
              "train_s", "clips_per_s", "peak_mem_mb", "num_classes", "checkpoint", "checkpoint_step", "status",
              "error", "config_hash", "git_commit", "same_run_as", "hardware"]


def results_csv(records: list[dict[str, Any]]) -> str:
    """results.csv's text: CSV_FIELDS of every record, floats rounded to 3 decimals."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    return buffer.getvalue()


@dataclass
class CellStatistics:
    """One row x dataset of a table: ours over seeds, the paper's, and the row's difference from the first row."""

    ours: SeedSpread  # top-1 of the finished seeds
    paper: float | None  # the paper's top-1
    difference: PairedDifference | None  # ours minus the first row's, paired by seed; None for the first row
    paper_delta: float | None  # the paper's difference from its first row
    verdict: str  # uv2.ablation.stats.verdict of the difference ("" for the first row)
    problems: list[str] = field(default_factory=list)  # one note per seed that did not finish
    chance: float | None = None  # 100 / classes, when known


#: {(row, dataset, seed): (its test video ids, sorted; 1.0 where its multi-view test got that video right, else 0.0)}
VideoResults = Mapping[tuple[int, str, int], tuple[Sequence[Any], Sequence[float]]]


def video_results(predictions_file: str | Path) -> tuple[list[Any], list[float]]:
    """A finished cell's multi-view test video by video, from its test_predictions.pt: the video ids in sorted order
    and 1.0 where the cell got that video right, 0.0 where not (so two cells on the same videos line up)."""
    predictions = torch.load(predictions_file, weights_only=True)
    ids = predictions["video_ids"]
    ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
    right = (predictions["scores"].argmax(-1) == predictions["labels"]).tolist()
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return [ids[i] for i in order], [float(right[i]) for i in order]


def video_differences(videos: VideoResults, row: int, base: int, key: str,
                      seeds: Sequence[int]) -> dict[int, list[float]]:
    """{seed: row's minus base's correct-or-not on each test video, in points} for the seeds where both cells kept
    their per-video results on the same videos."""
    out = {}
    for seed in seeds:
        ours, theirs = videos.get((row, key, seed)), videos.get((base, key, seed))
        if ours is not None and theirs is not None and list(ours[0]) == list(theirs[0]):
            out[seed] = [100.0 * (a - b) for a, b in zip(ours[1], theirs[1])]
    return out


def records_by_cell(records: list[dict[str, Any]]) -> dict[tuple[int, str], dict[int, dict[str, Any]]]:
    """{(row, dataset): {seed: record}}."""
    by_cell: dict[tuple[int, str], dict[int, dict[str, Any]]] = {}
    for r in records:
        by_cell.setdefault((int(r["row"]), r["dataset"]), {})[int(r["seed"])] = r
    return by_cell


def finished_top1(seeds: dict[int, dict[str, Any]]) -> dict[int, float]:
    """{seed: top-1} of a cell's finished seeds."""
    return {seed: float(r["top1"]) for seed, r in seeds.items() if r.get("status") == "done"}


def dataset_spreads(table: Table, records: list[dict[str, Any]]) -> dict[str, SpreadDecomposition | None]:
    """Per dataset key of `table`: how its cells spread over seeds, the part the rows of a seed share and each row's
    own (uv2.ablation.stats.spread_decomposition over the rows with two finished seeds or more, on the seeds they all
    finished); None where it cannot tell. A row that took an earlier row's run (`same_run_as`: table (d)'s
    "Sequential, 1 query") is left out: its copy would look like a second row that deviates in nothing."""
    by_cell = records_by_cell(records)
    out = {}
    for key in table.datasets:
        cells: list[dict[int, float]] = []
        for i in range(len(table.rows)):
            seeds = by_cell.get((i, key), {})
            top1 = finished_top1(seeds)
            if len(top1) > 1 and not any(r.get("same_run_as") for r in seeds.values()):
                cells.append(top1)
        out[key] = spread_decomposition(dict(enumerate(cells)))
    return out


def table_statistics(table: Table, records: list[dict[str, Any]], videos: VideoResults | None = None
                     ) -> list[dict[str, CellStatistics]]:
    """Per row of `table`, per dataset key: its CellStatistics from the cell records (results.csv rows) and, where the
    cells kept them, their per-video test results (`videos`), which take the test videos' part into each paired
    difference's interval. The one place that computes a table's statistics: table.md and the report notebook
    (uv2.analysis.tables) render it."""
    by_cell = records_by_cell(records)
    videos = videos or {}

    def done(row: int, key: str) -> dict[int, float]:
        return finished_top1(by_cell.get((row, key), {}))

    rows = []
    for i, row in enumerate(table.rows):
        cells = {}
        for key in table.datasets:
            paper, base_paper = row.paper.get(key), table.rows[0].paper.get(key)
            paper_delta = paper - base_paper if i and paper is not None and base_paper is not None else None
            ours = done(i, key)
            difference = None
            if i:
                base = done(0, key)
                by_video = video_differences(videos, i, 0, key, sorted(set(ours) & set(base)))
                difference = paired_difference(ours, base, by_video)
            cell_records = by_cell.get((i, key), {}).values()
            problems = [f"seed {r['seed']} {r['status']}" + (f" ({str(r['error'])[:120]})" if r.get("error") else "")
                        for r in cell_records if r.get("status") != "done"]
            classes = [int(r["num_classes"]) for r in cell_records if r.get("num_classes")]
            cells[key] = CellStatistics(
                ours=seed_spread(ours.values()), paper=paper, difference=difference, paper_delta=paper_delta,
                verdict=verdict(difference, paper_delta) if difference is not None and difference.n else "",
                problems=problems, chance=100.0 / classes[0] if classes else None)
        rows.append(cells)
    return rows


def difference_text(cell: CellStatistics) -> str:
    """'(reference)' for the first row, else ours paired '+3.2 [+0.5, +5.9]' / the paper's '+1.0'."""
    if cell.difference is None:
        return "(reference)"
    d = cell.difference
    if not d.n:
        ours = "-"
    elif d.n == 1:
        ours = f"{d.mean:+.1f} (1 seed)"
    else:  # shown within what a difference of accuracies can be
        low, high = max(d.interval[0], -TOP1_RANGE[1]), min(d.interval[1], TOP1_RANGE[1])
        ours = f"{d.mean:+.1f} [{low:+.1f}, {high:+.1f}]"
    return f"{ours} / {'-' if cell.paper_delta is None else f'{cell.paper_delta:+.1f}'}"


def cell_notes(key: str, cell: CellStatistics) -> list[str]:
    """The notes of one row x dataset: unfinished seeds, near chance, the verdict against the paper."""
    notes = [f"{key}: {problem}" for problem in cell.problems]
    if cell.ours.n and cell.chance and cell.ours.mean < 2 * cell.chance:
        notes.append(f"{key}: near chance ({cell.chance:.0f} %)")
    if cell.difference is not None and cell.difference.n > 1 and not cell.difference.videos:
        notes.append(f"{key}: Δ interval over the seeds alone (no per-video test results of both rows)")
    if cell.verdict:
        notes.append(f"{key}: {cell.verdict}")
    return notes


def render_table(table: Table, records: list[dict[str, Any]], videos: VideoResults | None = None) -> str:
    """The paper's layout: one line per row; per dataset, ours (mean [95 % CI] over seeds) beside the paper's top-1,
    and for every row after the first its difference from the first row, ours paired by seed [95 % CI over the seeds
    and, where `videos` has them, the test videos] beside the paper's; notes say whether each difference agrees with
    the paper, differs, or is not resolved at this scale."""
    header = ["row"]
    for key in table.datasets:
        header += [f"{key} (ours)", f"{key} (paper)", f"{key} Δ (ours / paper)"]
    header += ["GFLOPs", "notes"]
    lines = [f"# Table {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, (row, cells) in enumerate(zip(table.rows, table_statistics(table, records, videos))):
        cols, notes = [], []
        for key, cell in cells.items():
            cols += [cell.ours.interval_text(TOP1_RANGE), "-" if cell.paper is None else f"{cell.paper}", difference_text(cell)]
            notes += cell_notes(key, cell)
        gflops = sorted({round(r["gflops"], 2) for r in records if int(r["row"]) == i and r.get("gflops")})
        lines.append(f"| {row.label} | " + " | ".join(cols) + f" | {', '.join(str(g) for g in gflops)} | "
                     + "; ".join(notes) + " |")
    done_count = sum(r.get("status") == "done" for r in records)
    seeds = sorted({int(r["seed"]) for r in records})
    lines += ["", f"{done_count}/{len(records)} cells done, seeds {', '.join(map(str, seeds))}. {LEGEND.format(base=table.rows[0].label)}"]
    if spreads := spread_text(table, records):
        lines += ["", spreads]
    if ran_on := hardware_text(records):
        lines += ["", ran_on]
    return "\n".join(lines) + "\n"


def hardware_text(records: list[dict[str, Any]]) -> str:
    """'Ran on: CPU AVX2, torch 2.14.1.' (results.csv's `hardware` of the finished cells; with the count of cells
    per entry where they differ); '' where no cell says (results of older versions)."""
    counts = Counter(r["hardware"] for r in records if r.get("status") == "done" and r.get("hardware"))
    if not counts:
        return ""
    if len(counts) == 1:
        return f"Ran on: {next(iter(counts))}."
    return ("Ran on: " + "; ".join(f"{name} ({n} cell{'s' * (n > 1)})" for name, n in counts.most_common())
            + f". {MIXED_HARDWARE}")


MIXED_HARDWARE = ("Another CPU (even of the same instruction set), GPU or torch version rounds differently, and a run "
                  "still learning can end many points elsewhere: compare cells run on the same hardware.")


def spread_text(table: Table, records: list[dict[str, Any]]) -> str:
    """'Spread over seeds (top-1), scene: ...; temporal: .... <SPREAD_LEGEND>', or '' where no dataset can tell."""
    spreads = [f"{key}: {spread.text()}" for key, spread in dataset_spreads(table, records).items() if spread]
    return f"Spread over seeds (top-1), {'; '.join(spreads)}. {SPREAD_LEGEND}" if spreads else ""


LEGEND = ("Top-1 (%) of the multi-view test, ours as mean [95 % confidence interval over seeds, Student's t, within "
          "0-100]; Δ: difference from '{base}', ours paired by seed [95 % CI over the seeds and the test videos, both "
          "random draws, within +-100: every seed tests on the same videos, and more seeds do not shrink their part]. "
          "A difference agrees with or differs from the paper only when its interval excludes zero. The paper's "
          "numbers are CLIP ViT-B/16 on Kinetics / Something-Something, ours at the scale the grid ran.")
SPREAD_LEGEND = ("The rows of a seed share its data order and augmentation draws; what they share cancels in the "
                 "paired differences (uv2.ablation.stats.spread_decomposition).")
