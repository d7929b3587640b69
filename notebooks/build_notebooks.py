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

REPORT = [
    new_markdown_cell("# Ablation report\n\nEvery table under `results/` (made by `python ablations/run.py --table X`) "
                      "beside the paper's numbers, accuracy against GFLOPs, per-table bars with seed error bars, "
                      "training curves from the TensorBoard logs, a confusion matrix on the temporal set, and what "
                      "the global blocks attend to in one video. Figures are saved under `results/figures/`."),
    new_code_cell(SETUP),
    new_code_cell('''from IPython.display import Markdown, display

from uv2.analysis import plots
from uv2.analysis.results import load_predictions, load_results, summary, table_definition

results = load_results(RESULTS)
tables = sorted(results["table"].unique())
print(f"{len(results)} cells in tables {', '.join(tables)}; status: {results['status'].value_counts().to_dict()}")'''),
    new_markdown_cell("## Every table beside the paper"),
    new_code_cell('''definitions = {}
for name in tables:
    table = table_definition(name, RESULTS / f"table_{name}")  # the runner keeps a copy of the table file there
    definitions[name] = table
    display(Markdown(f"### Table {table.title}"))
    frame = summary(results, table)
    display(frame.round(1))
    plots.table_bars(frame, table.datasets, table.title, FIGURES / f"table_{name}_bars.png")'''),
    new_markdown_cell("## Accuracy against compute"),
    new_code_cell('''plots.accuracy_vs_gflops(results, FIGURES / "accuracy_vs_gflops.png");'''),
    new_markdown_cell("## Training curves (TensorBoard event files of each cell)"),
    new_code_cell('''done = results[results["status"] == "done"]
name = tables[0]
runs = {f"{r.label} / {r.dataset}": r.cell_dir for r in done[done["table"] == name].itertuples()}
plots.training_curves(runs, ("train/loss_step", "perf/clips_per_s_step"), FIGURES / f"table_{name}_curves.png");'''),
    new_markdown_cell("## Confusion matrix on the temporal set\n\nThe best finished cell on the temporal set; "
                      "time-reversed classes sit next to each other, so an order-blind model shows 2x2 blocks."),
    new_code_cell('''temporal = done[done["dataset"] == "temporal"].sort_values("top1", ascending=False)
best = temporal.iloc[0]
predictions = load_predictions(best.cell_dir)
print(f"table {best.table}, row '{best.label}': top-1 {best.top1:.1f} %")
plots.confusion_matrix(predictions["scores"], predictions["labels"], predictions["class_names"],
                       FIGURES / "confusion_temporal.png");'''),
    new_markdown_cell("## What the global blocks look at\n\nThe cross-attention of each global block's query over "
                      "the patches of every frame of one validation video (heads and queries averaged), and the "
                      "head's balance w = sigmoid(b) that mixes the class token into the global feature."),
    new_code_cell('''import torch
import yaml

from uv2.analysis.attention import balance_weight, global_attention_maps
from uv2.data.datamodule import synthetic_set_dir
from uv2.data.dataset import VideoDataset, VideoDatasetConfig
from uv2.data.lists import read_csv_list
from uv2.data.transforms import CLIP_MEAN, CLIP_STD, TransformConfig
from uv2.models.convert import load_model

cell = Path(best.cell_dir)
model = load_model(cell / "checkpoints" / "last.ckpt")
data = yaml.safe_load((cell / "config.yaml").read_text())["data"]["init_args"]
lists = synthetic_set_dir(data)
records, class_names = read_csv_list(lists / "val.csv", lists / "classes.txt")
transform = TransformConfig(crop_size=data["crop_size"], short_side=data["short_side"])
dataset = VideoDataset(records, "val", VideoDatasetConfig(num_frames=model.cfg.num_frames, transform=transform))
clip = dataset.load_view(0)
maps = global_attention_maps(model, clip)
print(f"{len(maps)} global blocks; attention maps of shape {tuple(maps[0].shape)} = (T', h, w)")'''),
    new_code_cell('''mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
frames = clip.transpose(0, 1) * std + mean  # (T, 3, H, W) in [0, 1]
step = frames.shape[0] // maps[-1].shape[0]  # T-Down: one token frame per two input frames
for i, attention in enumerate(maps):
    plots.attention_over_frames(frames[::step], attention, f"global block {i + 1}: '{class_names[records[0].label]}'",
                                FIGURES / f"attention_block{i + 1}.png")
weight = balance_weight(model)
if weight is not None:
    print(f"balance w = sigmoid(b): mean {weight.mean():.3f}, min {weight.min():.3f}, max {weight.max():.3f}")'''),
    new_code_cell('''print("figures:", sorted(p.name for p in FIGURES.glob("*.png")))'''),
]

WALKTHROUGH = [
    new_markdown_cell("# A video through UniFormerV2, step by step\n\nThe tiny CPU preset (width 128, 4 layers, "
                      "patch 8, 32px, 8 frames) with T-Down, local MHRA x2 and three global blocks: the tokens, one "
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
