"""The paper's recipes (experiments/<dataset>/): one per official config, each starting with what it reproduces, the
official config it follows and the paper's top-1, and its comment true to its settings; the README's table lists
every recipe with what uv2 counts for it; the designs' GFLOPs and parameters at full size match the paper's where the
paper gives them. (That each recipe trains: tests/test_train.py::test_every_experiment_fast_dev_run.)"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO
from uv2.experiment import load_experiment
from uv2.models import ModelConfig
from uv2.models.flops import model_flops

EXPERIMENTS = REPO / "experiments"
# the official repository's configs (OpenGVLab/UniFormerV2 exp/<folder>/<name>/{config.yaml,run.sh}): names only
OFFICIAL = [f"exp/{s}/{n}" for s in ("k400", "k600", "k700") for n in (
    f"{s}_b16_f8x224", f"{s}+k710_b16_f8x224", f"{s}+k710_l14_f8x224", f"{s}+k710_l14_f16x224",
    f"{s}+k710_l14_f32x224", f"{s}+k710_l14_f32x336", f"{s}+k710_l14_f64x336", f"frozen_{s}_l14_f8x336",
    f"frozen_{s}+k710_l14_f8x336", f"frozen_{s}+k710_l14_f32x336")] + [
    "exp/k710/k710_b16_f8x224", "exp/k710/k710_l14_f8x224", "exp/k710/k710_l14_f8x336",
    "exp/k710/frozen_k710_l14_f8x336", "exp/mit/mit_b16_f8x224", "exp/mit/mit_l14_f8x224", "exp/mit/mit_l14_f8x336",
    *[f"exp/sth{v}/ss{v}_{b}_f{t}x224" for v in ("v1", "v2") for b in ("b16", "l14") for t in (16, 32)],
    "exp/anet/anet_l14_16x224", "exp/anet/anet_l14_32x224", "exp/hacs/hacs_l14_16x224", "exp/hacs/hacs_l14_32x224"]
DATASETS = {"k400": ("K400", 400), "k600": ("K600", 600), "k700": ("K700", 700), "k710": ("K710", 710),
            "mit": ("MiT V1", 339), "ssv1": ("SSv1", 174), "ssv2": ("SSv2", 174), "anet": ("ActivityNet", 200),
            "hacs": ("HACS", 200)}
CLIP_FILES = {"clip_b16": "weights/ViT-B-16.pt", "clip_l14": "weights/ViT-L-14.pt",
              "clip_l14_336": "weights/ViT-L-14-336px.pt"}
BACKBONES = {"clip_b16": "B/16", "clip_l14": "L/14", "clip_l14_336": "L/14@336"}
RECIPES = sorted(p for d in DATASETS for p in (EXPERIMENTS / d).glob("[!_]*.yaml"))
TABLE_START, TABLE_END = "<!-- recipes table", "<!-- end of recipes table -->"


def header(path: Path) -> str:
    """The recipe's leading comment as one line of text."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return " ".join(lines)


def test_every_folder_is_a_dataset_and_every_official_config_has_one_recipe():
    folders = {p.name for p in EXPERIMENTS.iterdir() if p.is_dir()}
    assert folders == {"_base", *DATASETS}
    assert len(OFFICIAL) == len(set(OFFICIAL)) == 49
    followed = Counter(m.group(1) for p in RECIPES
                       for m in [re.search(r"Follows OpenGVLab/UniFormerV2 (exp/\S+) ", header(p))] if m)
    assert sorted(followed) == sorted(OFFICIAL) and set(followed.values()) == {1}
    unofficial = [p.stem for p in RECIPES if "Not an official config" in header(p)]
    assert unofficial == ["k400_l14_8x224"] and len(RECIPES) == 50


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_file_says_what_it_is_and_is_true_to_it(path):
    """The first comment: what it reproduces, the official config, the paper's number; and its lr, global batch,
    epochs, warm-up, activation checkpointing and test views are the settings the file resolves to."""
    text, head = path.read_text(), header(path)
    assert text.startswith("# ") and head.split(",")[0].startswith(("UniFormerV2-", "Frozen UniFormerV2-"))
    assert "Follows OpenGVLab/UniFormerV2 exp/" in head or "Not an official config" in head
    assert re.search(r"Paper: \d+\.\d top-1 \(OpenGVLab/UniFormerV2 (MODEL_ZOO|DATASET)\.md", head) or \
        (path.parent.name == "k710" and "Paper: no K710 accuracy" in head)
    raw = yaml.safe_load(text)
    assert raw["base"] == "_base.yaml"  # only its differences from the dataset's base
    assert "num_frames" not in (raw.get("data") or {}).get("init_args", {})  # the model's, read by the data module
    experiment = load_experiment(path)
    arch, optim = ModelConfig(**experiment["model"]["arch"]), experiment["model"]["optim"]
    data, trainer = experiment["data"]["init_args"], experiment["trainer"]
    frames, size = map(int, re.search(r"_(\d+)x(\d+)", path.stem).groups())
    assert (arch.num_frames, arch.vit_cfg.img_size, data["crop_size"], data["short_side"]) == (frames, size, size, size)
    assert arch.num_classes == DATASETS[path.parent.name][1] and "num_frames" not in data
    assert arch.frozen_backbone == ("frozen" in path.stem)
    lr = float(re.search(r" lr (\S+) ", head).group(1))
    assert optim["lr"] == lr and optim["warmup_start_lr"] == optim["min_lr"] == 1e-6
    per_gpu, nodes = data["batch_size"], trainer["num_nodes"]
    assert trainer["devices"] == 8 and f"global batch {per_gpu * 8 * nodes} " in head
    assert f"({per_gpu} x 8 GPUs" + (f" x {nodes} nodes" if nodes > 1 else "") in head
    epochs, warmup = map(int, re.search(r"(\d+) epochs[ ,(]+(\d+) warm-up", head).groups())
    assert (trainer["max_epochs"], optim["warmup_epochs"]) == (epochs, warmup)
    clips, crops = data["num_test_clips"], data["num_test_crops"]
    assert re.search(rf"test {frames} frames x {clips} clips? x {crops} crops?\b", head)
    blocks = {0: None, 1: "the first block", arch.vit_cfg.depth: f"all {arch.vit_cfg.depth} blocks"}
    assert arch.checkpoint_blocks == 0 or f"activation checkpointing of {blocks.get(arch.checkpoint_blocks) or f'the first {arch.checkpoint_blocks} blocks'}" in head
    assert "activation checkpointing" in head or arch.checkpoint_blocks == 0


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_starts_from_weights_that_fit(path):
    """From CLIP: OpenAI's file of the recipe's ViT. From a run: an existing recipe of the same ViT whose run writes
    it (fine-tuning from K710: that run's head sliced to this dataset, <dataset>_head.ckpt)."""
    experiment = load_experiment(path)
    arch, init = ModelConfig(**experiment["model"]["arch"]), experiment["model"]["init_from"]
    if init.startswith("weights/"):
        assert init == CLIP_FILES[arch.vit] and "from_k710" not in path.stem
        return
    run, rest = re.fullmatch(r"runs/([^/]+)/(.+)", init).groups()
    source = [p for p in RECIPES if p.stem == run]
    assert len(source) == 1, f"{init}: no recipe {run}"
    assert ModelConfig(**load_experiment(source[0])["model"]["arch"]).vit == arch.vit
    if "from_k710" in path.stem:
        assert source[0].parent.name == "k710" and rest == f"{path.parent.name}_head.ckpt"
        assert ("frozen" in run) == arch.frozen_backbone
    else:  # MiT, ActivityNet, HACS: a K400 run fine-tuned from K710, a new head
        assert run.startswith("k400_") and run.endswith("_from_k710") and rest == "checkpoints/last.ckpt"


# ---------------------------------------------------------------------------------------- GFLOPs and parameters
TRAINING_ONLY = ("drop_path", "global_drop_path", "checkpoint_blocks", "head_dropout", "global_mlp_dropout")


@functools.cache
def _design_flops(design: str) -> tuple[float, float]:
    result = model_flops(ModelConfig(**json.loads(design)))
    return result["gflops"], result["params_m"]


def flops(arch: dict) -> tuple[float, float]:
    """(GFLOPs of one view, parameters in millions) of a full-size arch: counted once per design with a 400-class
    head, the classifier's difference (width x classes MACs, (width + 1) x classes parameters) added."""
    design = {k: v for k, v in ModelConfig(**arch).to_dict().items() if k not in TRAINING_ONLY}
    classes, design["num_classes"] = design["num_classes"], 400
    gflops, params = _design_flops(json.dumps(design, sort_keys=True))
    width = ModelConfig(**arch).vit_cfg.width
    return gflops + width * (classes - 400) / 1e9, params + (width + 1) * (classes - 400) / 1e6


def test_flops_shortcut_is_exact():
    for arch in (load_experiment(EXPERIMENTS / "k700/k700_b16_8x224.yaml")["model"]["arch"],
                 load_experiment(EXPERIMENTS / "ssv2/ssv2_b16_16x224.yaml")["model"]["arch"]):
        direct = model_flops(ModelConfig(**arch))
        assert flops(arch) == pytest.approx((direct["gflops"], direct["params_m"]), rel=1e-12)


def recipe_row(path: Path) -> str:
    """The README table's row of a recipe, from what the recipe resolves to."""
    experiment = load_experiment(path)
    arch, data = ModelConfig(**experiment["model"]["arch"]), experiment["data"]["init_args"]
    gflops, params = flops(experiment["model"]["arch"])
    init = experiment["model"]["init_from"]
    start = "CLIP" if init.startswith("weights/") else ("K710" if init.startswith("runs/k710_") else "K400 from K710")
    paper = re.search(r"Paper: (\d+\.\d) top-1 \(OpenGVLab/UniFormerV2 (\w+\.md)", header(path))
    backbone = BACKBONES[arch.vit] + (" frozen" if arch.frozen_backbone else "")
    return (f"| [{path.stem}](experiments/{path.parent.name}/{path.name}) | {DATASETS[path.parent.name][0]} | "
            f"{backbone} | {start} | {arch.num_frames} x {arch.vit_cfg.img_size} | {gflops:.0f} x "
            f"{data['num_test_clips']} x {data['num_test_crops']} | {params:.1f}M | "
            f"{f'{paper.group(1)} ({paper.group(2)})' if paper else '-'} |")


def test_readme_table_lists_every_recipe_as_counted():
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index(TABLE_START):readme.index(TABLE_END)]
    rows = [line for line in block.splitlines() if line.startswith("| [")]
    expected = [recipe_row(p) for p in sorted(RECIPES, key=lambda p: (list(DATASETS).index(p.parent.name), p.stem))]
    assert rows == expected, "\n".join(["README rows that differ (expected):"]
                                       + [e for e, r in zip(expected, rows) if e != r] + [f"{len(rows)} rows"])


# the paper's figures: (recipe, num_classes override, GFLOPs of one view or None, params in millions or None, source)
REFERENCE = "the reference's digest of the paper (/work/shared/reference/uniformerv2.md)"
PAPER = [
    ("k400/k400_b16_8x224", None, 148, 114.6, REFERENCE),
    ("ssv2/ssv2_b16_16x224", 400, 187, 163.2, REFERENCE + ", SSv2 B/16 counted with a 400-class head"),
    ("k400/k400_l14_8x224", None, 2000 / 3, 354, REFERENCE + ": 2.0T for 3 views"),
    ("k400/k400_l14_32x336_from_k710", None, None, 354, REFERENCE),
    ("ssv2/ssv2_l14_16x224", None, 2600 / 3, 574, REFERENCE + ": 2.6T for 3 views"),
]
# TFLOPs of one view as open-mmlab/mmaction2's configs/recognition/uniformerv2/README.md lists them (one decimal)
MMACTION2_TFLOPS = [("k400/k400_l14_8x224_from_k710", 0.7), ("k400/k400_l14_16x224_from_k710", 1.3),
                    ("k400/k400_l14_32x224_from_k710", 2.7), ("k400/k400_l14_32x336_from_k710", 6.3),
                    ("mit/mit_l14_8x336", 1.6), ("k700/k700_b16_8x224", 0.1)]


@pytest.mark.parametrize("recipe,classes,gflops,params,source", PAPER, ids=[p[0] for p in PAPER])
def test_flops_and_params_match_the_paper(recipe, classes, gflops, params, source):
    arch = load_experiment(EXPERIMENTS / f"{recipe}.yaml")["model"]["arch"]
    ours = flops({**arch, **({"num_classes": classes} if classes else {})})
    if gflops is not None:
        assert ours[0] == pytest.approx(gflops, rel=0.02), source
    if params is not None:
        assert ours[1] == pytest.approx(params, rel=0.02), source


@pytest.mark.parametrize("recipe,tflops", MMACTION2_TFLOPS, ids=[m[0] for m in MMACTION2_TFLOPS])
def test_flops_round_to_mmaction2s_figures(recipe, tflops):
    assert round(flops(load_experiment(EXPERIMENTS / f"{recipe}.yaml")["model"]["arch"])[0] / 1000, 1) == tflops
