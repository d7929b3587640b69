"""The ablation tables as the report shows them: the one place that computes a table's numbers per row (for the
plots) and renders them as text (for the notebook), from the per-seed statistics table.md uses
(uv2.ablation.stats), so a new statistic is added here once and both the table and its figure show it."""

from __future__ import annotations

import math

import pandas as pd

from uv2.ablation.grid import Table
from uv2.ablation.stats import SeedSpread, seed_spread

NOTE_CHARS = 100  # a not-finished cell's note shows this much of its error


def _row_cells(results: pd.DataFrame, table: Table, row: int, key: str | None = None) -> pd.DataFrame:
    cells = results[(results["table"] == table.name) & (results["row"] == row)]
    return cells if key is None else cells[cells["dataset"] == key]


def _spread(cells: pd.DataFrame) -> SeedSpread:
    return seed_spread(cells[cells["status"] == "done"]["top1"])


def summary(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Numbers, one line per row of `table` (index: the row's label): per dataset key, ours (mean over the finished
    seeds), std, n (finished seeds) and the paper's top-1; GFLOPs of the row's model. NaN where there is none."""
    lines = []
    for i, row in enumerate(table.rows):
        line: dict[str, float | str] = {"row": row.label}
        for key in table.datasets:
            spread = _spread(_row_cells(results, table, i, key))
            line[f"{key} ours"], line[f"{key} std"] = spread.mean, spread.std if spread.n else math.nan
            line[f"{key} n"] = spread.n
            line[f"{key} paper"] = row.paper.get(key, math.nan)
        gflops = _row_cells(results, table, i)["gflops"].dropna()
        line["GFLOPs"] = float(gflops.mean()) if len(gflops) else math.nan
        lines.append(line)
    return pd.DataFrame(lines).set_index("row")


def summary_table(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The table as text, in table.md's layout: per dataset ours ('64.4', '64.4 ± 3.1' over seeds, '-' when no seed
    finished) beside the paper's number, the GFLOPs, and a note per cell that did not finish (failed with its error,
    interrupted, pending)."""
    lines = []
    for i, row in enumerate(table.rows):
        line = {"row": row.label}
        notes = []
        for key in table.datasets:
            cells = _row_cells(results, table, i, key)
            line[f"{key} (ours)"] = _spread(cells).text()
            paper = row.paper.get(key)
            line[f"{key} (paper)"] = f"{paper:.1f}" if paper is not None else "-"
            for cell in cells[cells["status"] != "done"].itertuples():
                error = f": {cell.error[:NOTE_CHARS]}" if cell.error else ""
                notes.append(f"{key} seed {cell.seed} {cell.status}{error}")
        gflops = _row_cells(results, table, i)["gflops"].dropna()
        line["GFLOPs"] = f"{gflops.mean():.2f}" if len(gflops) else "-"
        line["notes"] = "; ".join(notes)
        lines.append(line)
    return pd.DataFrame(lines).set_index("row")


def markdown(frame: pd.DataFrame) -> str:
    """A text table as Markdown (its index as the first column), every cell in full."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in (index, *values)) + " |"
              for index, values in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join(lines)
