"""Figures for the ablation report (matplotlib). Every function returns its Figure, saved to `path` when given.

The backend is never chosen here: Jupyter shows the returned figures inline, and a headless script gets Agg by its
own choice or from MPLBACKEND (matplotlib also falls back to Agg where no display is available). Each figure is
closed in pyplot once made, so a notebook cell that ends with one shows it once (as the cell's result, not a second
time when pyplot flushes its open figures) and long scripts do not accumulate open figures.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from uv2.analysis.results import run_scalars


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return fig


def accuracy_vs_gflops(results: pd.DataFrame, path: str | Path | None = None) -> Figure:
    """Top-1 against GFLOPs of every finished cell, one marker per dataset, coloured by table."""
    done = results[results["status"] == "done"]
    fig, ax = plt.subplots(figsize=(6, 4))
    markers = dict(zip(sorted(done["dataset"].unique()), itertools.cycle("osD^v<>")))
    for (table, dataset), group in done.groupby(["table", "dataset"]):
        ax.scatter(group["gflops"], group["top1"], marker=markers[dataset], label=f"table {table} / {dataset}")
    ax.set_xlabel("GFLOPs per view")
    ax.set_ylabel("top-1 (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def table_bars(summary: pd.DataFrame, datasets: list[str], title: str, path: str | Path | None = None) -> Figure:
    """Per-row bars of our top-1 (error bars: the 95 % interval over seeds, within 0-100 as table.md shows it) with
    the paper's numbers as markers."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    y = np.arange(len(summary))
    for ax, key in zip(axes[0], datasets):
        mean, half = summary[f"{key} ours"].to_numpy(float), summary[f"{key} ci"].fillna(0).to_numpy(float)
        # the t interval of a few seeds near 100 % reaches past it: (2, rows) lower and upper lengths, cut at 0 and 100
        xerr = np.stack([np.minimum(half, mean), np.minimum(half, 100 - mean)])
        ax.barh(y, mean, xerr=xerr, color="tab:blue", alpha=0.8, label="ours")
        ax.scatter(summary[f"{key} paper"], y, color="tab:red", marker="|", s=200, label="paper")
        ax.set_yticks(y, summary.index, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)  # every panel on the metric's whole range: the datasets' bars compare by eye
        ax.set_xlabel(f"{key} top-1 (%)")
    # one legend for the figure, above the panels: inside one it covered the last row's error bar and marker
    fig.legend(*axes[0][0].get_legend_handles_labels(), fontsize=7, loc="upper right", ncol=2, frameon=False)
    fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)


def training_curves(run_dirs: dict[str, str | Path],
                    panels: tuple[tuple[str, ...], ...] = (("train/loss_step", "train/loss_epoch"), ("val/top1",)),
                    path: str | Path | None = None) -> Figure:
    """Scalars read from each run's TensorBoard event files, one panel per entry of `panels`: a tuple of tags, the
    first one a run has is drawn (step-level logs exist only after `log_every_n_steps` steps; short runs have the
    epoch-level ones)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.2), squeeze=False)
    shown: list[set[str]] = [set() for _ in panels]
    for label, run_dir in run_dirs.items():
        scalars = run_scalars(run_dir)
        for ax, tags, used in zip(axes[0], panels, shown):
            tag = next((t for t in tags if t in scalars), None)
            if tag is not None:
                points = scalars[tag]
                ax.plot([step for step, _ in points], [value for _, value in points], label=label,
                        marker="." if len(points) < 20 else None)
                used.add(tag)
    for ax, tags, used in zip(axes[0], panels, shown):
        ax.set_title(" / ".join(sorted(used)) if used else f"{tags[0]} (not logged)", fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if any(shown):
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(scores: torch.Tensor, labels: torch.Tensor, class_names: list[str], title: str = "",
                     path: str | Path | None = None) -> Figure:
    """Row-normalised confusion matrix of video-level predictions."""
    n = len(class_names)
    matrix = torch.zeros(n, n)
    matrix.index_put_((labels.long(), scores.argmax(-1).long()), torch.ones(len(labels)), accumulate=True)
    matrix = matrix / matrix.sum(1, keepdim=True).clamp(min=1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    image = ax.imshow(matrix.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def per_class_heatmap(top1: pd.DataFrame, title: str = "", path: str | Path | None = None) -> Figure:
    """Top-1 (%) per class (columns) of each row (index), written in the cells: what no row learns shows as a dark
    column (e.g. both classes of a time-reversed pair near 50 %)."""
    rows, cols = top1.shape
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * cols + 2.5), max(2.0, 0.35 * rows + 1.5)))
    image = ax.imshow(top1.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (i, j), value in np.ndenumerate(top1.to_numpy(dtype=float)):
        if not np.isnan(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6,
                    color="black" if value > 60 else "white")
    ax.set_xticks(range(cols), list(top1.columns), rotation=90, fontsize=7)
    ax.set_yticks(range(rows), list(top1.index), fontsize=7)
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def attention_over_frames(frames: torch.Tensor, attention: torch.Tensor, title: str = "",
                          path: str | Path | None = None) -> Figure:
    """Frames (T, 3, H, W) in [0, 1] with a global block's attention over their patches (T, h, w) on top."""
    T = frames.shape[0]
    fig, axes = plt.subplots(2, T, figsize=(1.3 * T, 2.8), squeeze=False)
    vmax = float(attention.max())
    for t in range(T):
        axes[0][t].imshow(frames[t].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[1][t].imshow(attention[t].numpy(), cmap="magma", vmin=0, vmax=vmax)
        for row in (0, 1):
            axes[row][t].axis("off")
        axes[0][t].set_title(f"t={t}", fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
