"""Writes the notebooks of this folder from the cell sources below (stored without outputs; the tests execute them).

    python notebooks/build_notebooks.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''import os
from pathlib import Path

REPO = Path.cwd() if (Path.cwd() / "uv2").is_dir() else Path.cwd().parent
os.chdir(REPO)  # experiment files, data/ and runs/ are relative to the repository
RESULTS = Path(os.environ.get("UV2_RESULTS", REPO / "results"))
FIGURES = RESULTS / "figures"
print("results:", RESULTS)'''


def plot_cell(source: str) -> nbformat.NotebookNode:
    """A code cell that shows figures (tagged "plot": the tests check each shows an image or says why it skipped)."""
    return new_code_cell(source, metadata={"tags": ["plot"]})


REPORT = [
    new_markdown_cell("# Ablation report\n\nThe results of `python ablations/run.py` (one table or all, any number of "
                      "cells, finished or not): every table beside the paper's numbers, accuracy against compute, "
                      "training curves, a confusion matrix, top-1 per class and what the global blocks attend to. Each "
                      "section says why it is skipped when these results have nothing for it. Figures are also saved under "
                      "`<results>/figures/`; `UV2_RESULTS=path` points the report at another results folder (a "
                      "results root or one table's folder)."),
    new_code_cell(SETUP),
    new_code_cell('''from uv2.analysis import report
from uv2.analysis.report import show
from uv2.analysis.results import load_results

results = load_results(RESULTS)
show(report.overview(results))'''),
    new_markdown_cell("## Every table beside the paper\n\nOurs (mean [95 % interval] over the finished seeds) "
                      "beside the paper's top-1 per row, each row's difference from the first row paired by seed "
                      "(its 95 % interval over the seeds and the test videos, as table.md's), a "
                      "note for every cell that did not finish; how the cells spread over seeds (the part the rows "
                      "of a seed share, which the paired differences cancel, and each row's own); and as bars (the "
                      "paper's numbers as red marks)."),
    plot_cell('''show(report.tables(results, FIGURES))'''),
    new_markdown_cell("## Accuracy against compute\n\nTop-1 of every finished cell against its GFLOPs per view, "
                      "one marker per dataset."),
    plot_cell('''show(report.accuracy_vs_compute(results, FIGURES))'''),
    new_markdown_cell("## Training curves\n\nTraining loss and validation top-1 of each table's finished cells, read "
                      "from the TensorBoard event files of their runs (a shared co-training run once)."),
    plot_cell('''show(report.training_curves(results, FIGURES))'''),
    new_markdown_cell("## Confusion matrix\n\nThe video-level predictions of the best finished cell on the temporal "
                      "set (else on any set); time-reversed classes sit next to each other, so an order-blind model "
                      "shows 2x2 blocks."),
    plot_cell('''show(report.confusion(results, FIGURES))'''),
    new_markdown_cell("## Top-1 per class\n\nEach table's rows against the classes of each dataset (mean over the "
                      "finished seeds), and the classes lowest over all rows: what none of the designs learnt (on "
                      "the temporal set, a time-reversed pair near 50 % is a coin flip between its two classes)."),
    plot_cell('''show(report.per_class(results, FIGURES))'''),
    new_markdown_cell("## Where each cell's spread comes from\n\nEvery cell with two finished seeds or more: its "
                      "standard deviation over seeds split by test video into the part from which videos each run "
                      "happens to get right, which a test set k times as large divides by sqrt(k), and the part a "
                      "whole run shares (it learnt more or less than another), which no test set shrinks; and the "
                      "spread to expect from four times the test videos."),
    new_code_cell('''show(report.spread_sources(results))'''),
    new_markdown_cell("## Differences with the test videos drawn too\n\nEach row's difference from its table's first "
                      "row, paired by seed as in table.md, with two 95 % intervals: one over the seeds alone, which "
                      "all test on the same videos and so leave out which videos those are, and table.md's, over the "
                      "seeds and the test videos both (a crossed two-way design; docs/tiny_scale.md, \"Five "
                      "seeds\"): what counting the test videos changes."),
    new_code_cell('''show(report.difference_sources(results))'''),
    new_markdown_cell("## What the global blocks look at\n\nThe cross-attention of each global block's query over "
                      "the patches of every frame of one validation video (heads and queries averaged), in the best "
                      "finished cell that has global blocks (on the temporal set when one does), and the head's "
                      "balance w = sigmoid(b) that mixes the class token into the global feature."),
    plot_cell('''show(report.attention(results, FIGURES))'''),
    new_code_cell('''print("figures:", sorted(p.name for p in FIGURES.glob("*.png")))'''),
]

WALKTHROUGH = [
    new_markdown_cell("# A video through UniFormerV2, step by step\n\nThe tiny CPU preset (width 128, 4 layers, "
                      "patch 8, 32px) on 8 frames with T-Down (the T-Down rows' clips), local MHRA x2 and three "
                      "global blocks: the tokens, one "
                      "local UniBlock, the global blocks and their fusion, the head; shapes at every step and the "
                      "FLOPs of every part."),
    new_code_cell(SETUP),
    new_code_cell('''import torch
from einops import rearrange

from uv2.models import ModelConfig, build_model

torch.manual_seed(0)
cfg = ModelConfig(vit="tiny", num_frames=8, num_classes=10, t_down=True, local_type="lmhra", local_double=True,
                  global_layers="2-4", fusion="sequential")
model = build_model(cfg).eval()
video = torch.randn(1, 3, cfg.num_frames, 32, 32)  # (B, 3, T, H, W)
print(cfg)'''),
    new_markdown_cell("## 1. Tokens\n\nThe 3D patch embedding (kernel 3x8x8, temporal stride 2 with T-Down), a class "
                      "token per frame, the 2D position embedding per frame, the pre-norm."),
    new_code_cell('''tokens, grid = model.embed(video)
B, T, h, w = grid
print(f"video {tuple(video.shape)} -> tokens {tuple(tokens.shape)} = (B*T', 1 + h*w, C); grid (B, T', h, w) = {grid}")'''),
    new_markdown_cell("## 2. One local UniBlock\n\nLocal MHRA on the patch tokens (a (B, T, S, C) view), the "
                      "pretrained spatial attention within each frame, the second local MHRA, the FFN."),
    new_code_cell('''block = model.blocks[0]
patches = tokens[:, 1:].unflatten(0, (B, T))
print("patch tokens as (B, T, S, C):", tuple(patches.shape))
update = block.local1(patches)
print("local MHRA update:", tuple(update.shape), "| zero at initialisation:", bool(update.abs().max() == 0))
x = block(tokens, grid)
print("after the block:", tuple(x.shape))'''),
    new_markdown_cell("## 3. Global blocks and their fusion\n\nEach feeding layer's tokens, with the DPE added, "
                      "become the keys and values of one cross-attention block; the query is refined stage by stage."),
    new_code_cell('''x = tokens
state = model.fusion.start(B)
stage = {layer: j for j, layer in enumerate(model.global_layer_ids)}
for i, block in enumerate(model.blocks):
    x = block(x, grid)
    if i in stage:
        kv = model.fusion.stage_tokens(stage[i], x, grid)
        state = model.fusion.step(stage[i], state, x, grid)
        print(f"layer {i + 1}: keys/values {tuple(kv.shape)} = (B, T'*(1+S), C) -> query {tuple(state.shape)}")
F = model.fusion.finish(state)
cls = rearrange(x[:, 0], "(b t) c -> b t c", b=B).mean(1)
print("global feature F", tuple(F.shape), "| time-averaged class token", tuple(cls.shape))'''),
    new_markdown_cell("## 4. Head\n\nZ = (1 - w) F + w mean_t(cls), w = sigmoid(b); logits = Linear(Dropout(LN(Z)))."),
    new_code_cell('''z = model.head.combine(F, cls)
logits = model.head(z)
print("Z", tuple(z.shape), "-> logits", tuple(logits.shape))
assert torch.allclose(logits, model(video), atol=1e-5)'''),
    new_markdown_cell("## 5. FLOPs of every part (multiply-accumulates of one view)"),
    new_code_cell('''from uv2.models.flops import count_flops

flops = count_flops(model, tuple(video.shape))
for name, gflops in flops["parts"].items():
    print(f"{name:<12} {gflops * 1e3:8.2f} MFLOPs")
print(f"total        {flops['gflops'] * 1e3:8.2f} MFLOPs, {flops['params_m']:.2f}M parameters")'''),
]


def write(cells, name):
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids, so a rebuild without source changes leaves the files unchanged
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    nbformat.write(notebook, HERE / name)


if __name__ == "__main__":
    write(REPORT, "ablation_report.ipynb")
    write(WALKTHROUGH, "model_walkthrough.ipynb")
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.ipynb"))))
