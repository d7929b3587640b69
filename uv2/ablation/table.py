"""The grid's outputs: results.csv (one row per cell x dataset x seed) and table.md (the paper's layout: our mean
with its 95 % interval over seeds beside the paper's numbers, each row's paired difference from the first row, and
whether it agrees with the paper where the interval can tell: uv2.ablation.stats)."""

from __future__ import annotations

import csv
import io
from typing import Any

from uv2.ablation.grid import Table
from uv2.ablation.stats import SeedSpread, paired_difference, seed_spread, verdict

CSV_FIELDS = ["table", "row", "label", "dataset", "seed", "top1", "top5", "mean_class", "gflops", "params_m",
              "train_s", "clips_per_s", "peak_mem_mb", "num_classes", "checkpoint", "checkpoint_step", "status",
              "error", "config_hash", "git_commit"]


def results_csv(records: list[dict[str, Any]]) -> str:
    """results.csv's text: CSV_FIELDS of every record, floats rounded to 3 decimals."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for r in records:
        writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    return buffer.getvalue()


def render_table(table: Table, records: list[dict[str, Any]]) -> str:
    """The paper's layout: one line per row; per dataset, ours (mean [95 % CI] over seeds) beside the paper's top-1,
    and for every row after the first its difference from the first row, ours paired by seed [95 % CI] beside the
    paper's; notes say whether each difference agrees with the paper, differs, or is not resolved at this scale."""
    by_cell: dict[tuple[int, str], dict[int, dict[str, Any]]] = {}
    for r in records:
        by_cell.setdefault((r["row"], r["dataset"]), {})[int(r["seed"])] = r

    def done(row: int, key: str) -> dict[int, float]:
        return {seed: float(r["top1"]) for seed, r in by_cell.get((row, key), {}).items() if r.get("status") == "done"}

    base, base_label = 0, table.rows[0].label
    header = ["row"]
    for key in table.datasets:
        header += [f"{key} (ours)", f"{key} (paper)", f"{key} Δ (ours / paper)"]
    header += ["GFLOPs", "notes"]
    lines = [f"# Table {table.title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(table.rows):
        notes, cols, problems = [], [], {}
        for key in table.datasets:
            paper, base_paper = row.paper.get(key), table.rows[base].paper.get(key)
            ours = done(i, key)
            spread = seed_spread(ours.values())
            cols += [spread.interval_text(), "-" if paper is None else f"{paper}"]
            paper_delta = paper - base_paper if paper is not None and base_paper is not None else None
            if i == base:
                cols.append("(reference)")
            else:
                difference = paired_difference(ours, done(base, key))
                cols.append(f"{_signed_interval(difference)} / {'-' if paper_delta is None else f'{paper_delta:+.1f}'}")
                said = verdict(difference, paper_delta) if difference.n else ""
                if said:
                    notes.append(f"{key}: {said}")
            for r in by_cell.get((i, key), {}).values():
                if r.get("status") != "done":  # grouped below: one note per distinct problem
                    problem = r["status"] + (f" ({r['error'][:120]})" if r.get("error") else "")
                    problems.setdefault(problem, []).append(key)
            chance = [100.0 / r["num_classes"] for r in by_cell.get((i, key), {}).values() if r.get("num_classes")]
            if spread.n and chance and spread.mean < 2 * chance[0]:
                notes.insert(0, f"{key}: near chance ({chance[0]:.0f} %)")
        notes = [f"{', '.join(sorted(set(keys)))}: {problem}" for problem, keys in problems.items()] + notes
        gflops = sorted({round(r["gflops"], 2) for r in records if r["row"] == i and "gflops" in r})
        lines.append(f"| {row.label} | " + " | ".join(cols) + f" | {', '.join(str(g) for g in gflops)} | "
                     + "; ".join(notes) + " |")
    done_count = sum(r.get("status") == "done" for r in records)
    seeds = sorted({int(r["seed"]) for r in records})
    lines += ["", f"{done_count}/{len(records)} cells done, seeds {', '.join(map(str, seeds))}. Top-1 (%) of the "
                  f"multi-view test, ours as mean [95 % confidence interval over seeds, Student's t]; Δ: difference "
                  f"from '{base_label}', ours paired by seed [95 % CI]. A difference agrees with or differs from the "
                  f"paper only when its interval excludes zero. The paper's numbers are CLIP ViT-B/16 on Kinetics / "
                  f"Something-Something, ours at the scale the grid ran."]
    return "\n".join(lines) + "\n"


def _signed_interval(difference: SeedSpread) -> str:
    if not difference.n:
        return "-"
    if difference.n == 1:
        return f"{difference.mean:+.1f} (1 seed)"
    low, high = difference.interval
    return f"{difference.mean:+.1f} [{low:+.1f}, {high:+.1f}]"
