"""The ablation tables as the report shows them: per row, the numbers (for the plots) and the text (for the
notebook), both from uv2.ablation.table.table_statistics, the statistics table.md renders: a statistic is computed
in one place and the table, the notebook and its figures show the same."""

from __future__ import annotations

import math

import pandas as pd

from uv2.ablation.grid import Table
from uv2.ablation.stats import TOP1_RANGE
from uv2.ablation.table import cell_notes, difference_text, spread_text, table_statistics
from uv2.analysis.results import video_results_of


def _records(results: pd.DataFrame, table: Table) -> list[dict]:
    """The table's rows of results.csv as records (what uv2.ablation.table.table_statistics reads)."""
    frame = results[results["table"] == table.name]
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]


def _statistics(results: pd.DataFrame, table: Table) -> list:
    """table_statistics of the table's rows of `results`, with their cells' per-video test results."""
    return table_statistics(table, _records(results, table), video_results_of(results[results["table"] == table.name]))


def summary(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Numbers, one line per row of `table` (index: the row's label): per dataset key, ours (mean over the finished
    seeds), std, the half-width of its 95 % interval (ci), n (finished seeds), the paper's top-1, and the paired
    difference from the first row with its interval over the seeds and the test videos (delta, delta ci); GFLOPs of
    the row's model. NaN where there is none."""
    statistics = _statistics(results, table)
    lines = []
    for i, (row, cells) in enumerate(zip(table.rows, statistics)):
        line: dict[str, float | str] = {"row": row.label}
        for key, cell in cells.items():
            ours = cell.ours
            line[f"{key} ours"], line[f"{key} std"] = ours.mean, ours.std if ours.n else math.nan
            line[f"{key} ci"], line[f"{key} n"] = ours.half_width, ours.n
            line[f"{key} paper"] = math.nan if cell.paper is None else cell.paper
            d = cell.difference
            line[f"{key} delta"] = d.mean if d is not None and d.n else math.nan
            line[f"{key} delta ci"] = d.half_width if d is not None else math.nan
        gflops = results[(results["table"] == table.name) & (results["row"] == i)]["gflops"].dropna()
        line["GFLOPs"] = float(gflops.mean()) if len(gflops) else math.nan
        lines.append(line)
    return pd.DataFrame(lines).set_index("row")


def summary_table(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The table as text, in table.md's layout (uv2.ablation.table): per dataset ours as mean [95 % CI over seeds]
    beside the paper's number and the row's paired difference from the first row beside the paper's, the GFLOPs,
    and notes (unfinished seeds with their error, near chance, agrees / differs / not resolved)."""
    statistics = _statistics(results, table)
    lines = []
    for i, (row, cells) in enumerate(zip(table.rows, statistics)):
        line = {"row": row.label}
        notes = []
        for key, cell in cells.items():
            line[f"{key} (ours)"] = cell.ours.interval_text(TOP1_RANGE)
            line[f"{key} (paper)"] = f"{cell.paper:.1f}" if cell.paper is not None else "-"
            line[f"{key} Δ (ours / paper)"] = difference_text(cell)
            notes += cell_notes(key, cell)
        gflops = results[(results["table"] == table.name) & (results["row"] == i)]["gflops"].dropna()
        line["GFLOPs"] = f"{gflops.mean():.2f}" if len(gflops) else "-"
        line["notes"] = "; ".join(notes)
        lines.append(line)
    return pd.DataFrame(lines).set_index("row")


def seed_spread_text(results: pd.DataFrame, table: Table) -> str:
    """table.md's line on how the table's cells spread over seeds, the part the rows of a seed share and each row's
    own ('' where no dataset has two rows with two finished seeds)."""
    return spread_text(table, _records(results, table))


def markdown(frame: pd.DataFrame) -> str:
    """A text table as Markdown (its index as the first column), every cell in full."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in (index, *values)) + " |"
              for index, values in zip(frame.index, frame.itertuples(index=False))]
    return "\n".join(lines)
