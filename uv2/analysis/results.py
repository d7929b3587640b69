"""Reading ablation results: every results/table_*/results.csv, the tables' paper numbers, per-cell artefacts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from uv2.ablation.grid import Table, load_table
from uv2.ablation.stats import seed_spread


def load_results(results_dir: str | Path = "results") -> pd.DataFrame:
    """All cells of all tables (one row per cell x dataset x seed), with the cell directory of each."""
    frames = []
    for path in sorted(Path(results_dir).glob("table_*/results.csv")):
        frame = pd.read_csv(path)
        frame["table"] = frame["table"].astype(str)
        frame["cell_dir"] = [str(path.parent / "cells" / _slug(r)) for r in frame.itertuples()]
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"no results/table_*/results.csv under {results_dir}: run ablations/run.py first")
    return pd.concat(frames, ignore_index=True)


def _slug(row) -> str:
    from uv2.ablation.grid import Cell

    return Cell(row.table, int(row.row), row.label, row.dataset, int(row.seed), {}).slug


def table_definition(name: str, tables_dir: str | Path = "ablations/tables") -> Table:
    return load_table(name, Path(tables_dir))


def summary(results: pd.DataFrame, table: Table) -> pd.DataFrame:
    """One line per row of `table`: ours (mean, std over seeds) and the paper's top-1 per dataset, and GFLOPs."""
    done = results[(results["table"] == table.name) & (results["status"] == "done")]
    lines = []
    for i, row in enumerate(table.rows):
        line = {"row": row.label}
        for key in table.datasets:
            spread = seed_spread(done[(done["row"] == i) & (done["dataset"] == key)]["top1"])
            line[f"{key} ours"], line[f"{key} std"] = spread.mean, spread.std
            line[f"{key} paper"] = row.paper.get(key, float("nan"))
        cells = done[done["row"] == i]
        line["GFLOPs"] = cells["gflops"].mean() if len(cells) else float("nan")
        lines.append(line)
    return pd.DataFrame(lines).set_index("row")


def load_predictions(cell_dir: str | Path) -> dict:
    """Per-video scores, labels and class names of a finished cell's multi-view test."""
    return torch.load(Path(cell_dir) / "test_predictions.pt", weights_only=True)
