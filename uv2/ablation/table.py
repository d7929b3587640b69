"""The grid's outputs: results.csv (one row per cell x dataset x seed) and table.md (the paper's layout, our
mean ± std over seeds beside the paper's numbers, rows whose direction disagrees with the paper flagged)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from uv2.ablation.grid import Table
from uv2.ablation.stats import seed_spread

CSV_FIELDS = ["table", "row", "label", "dataset", "seed", "top1", "top5", "mean_class", "gflops", "params_m",
              "train_s", "clips_per_s", "peak_mem_mb", "num_classes", "checkpoint", "checkpoint_step", "status",
              "error", "config_hash", "git_commit"]
DIRECTION_TOLERANCE = 0.3  # paper differences smaller than this (points) carry no direction


def results_csv(records: list[dict[str, Any]]) -> str:
    """results.csv's text: CSV_FIELDS of every record, floats rounded to 3 decimals."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    return buffer.getvalue()


def render_table(table: Table, records: list[dict[str, Any]]) -> str:
    """The paper's layout: one line per row, ours (mean ± std over seeds) beside the paper's number per dataset."""
    by_cell: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for r in records:
        by_cell.setdefault((r["row"], r["dataset"]), []).append(r)

    def ours(row: int, key: str):
        return seed_spread(r["top1"] for r in by_cell.get((row, key), []) if r.get("status") == "done")

    header = ["row"] + [f"{key} {who}" for key in table.datasets for who in ("(ours)", "(paper)")] + ["GFLOPs", "notes"]
    lines = [f"# Table {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = 0
    for i, row in enumerate(table.rows):
        notes, cols, problems = [], [], {}
        for key in table.datasets:
            paper = row.paper.get(key)
            values = ours(i, key)
            cols.append(f"{values.text()} | {paper if paper is not None else '-'}")
            for r in by_cell.get((i, key), []):
                if r.get("status") != "done":  # grouped below: one note per distinct problem
                    problem = r["status"] + (f" ({r['error'][:120]})" if r.get("error") else "")
                    problems.setdefault(problem, []).append(key)
            chance = [100.0 / r["num_classes"] for r in by_cell.get((i, key), []) if r.get("num_classes")]
            if values.n and chance and values.mean < 2 * chance[0]:
                notes.append(f"{key}: near chance ({chance[0]:.0f} %)")
            base_values, base_paper = ours(base, key), table.rows[base].paper.get(key)
            if i != base and values.n and base_values.n and paper is not None and base_paper is not None:
                paper_delta = paper - base_paper
                our_delta = values.mean - base_values.mean
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
