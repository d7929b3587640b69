"""benchmarks/layer_probe.py: the linear read-out and the script on the micro set."""

from __future__ import annotations

import json

import torch

from benchmarks import layer_probe
from tests.helpers import REPO
from uv2.data.synthetic import ensure_synthetic
from uv2.experiment import load_experiment
from uv2.models.config import ModelConfig
from uv2.models.convert import export_image_vit
from uv2.models.uniformerv2 import UniFormerV2


def test_the_read_out_learns_a_linear_rule():
    """Labels that a linear map of the features decides (the largest of their first four of 16) are learnt from
    400 videos' features and predicted on 400 others (97 % here); labels that the features do not carry, not."""
    generator = torch.Generator().manual_seed(0)
    train, test = (torch.randn(400, 16, generator=generator) for _ in range(2))
    predicted = layer_probe.probe(train, train[:, :4].argmax(1), test, 4, weight_decay=1e-4, steps=100)
    assert (predicted == test[:, :4].argmax(1)).float().mean() > 0.9
    noise = layer_probe.probe(train, torch.randint(0, 4, (400,), generator=generator), test, 4, 1e-4, 100)
    assert (noise == test[:, :4].argmax(1)).float().mean() < 0.5


def test_the_script_reads_out_every_layer_of_the_vit(tmp_path, capsys):
    """On the micro set with an untrained tiny ViT: a row per layer, frames in order and averaged, beside the
    pixels, each with the read-out's dimensions and top-1."""
    arch = load_experiment(REPO / "experiments" / "temporal_tiny.yaml")["model"]["arch"]
    vit = UniFormerV2(ModelConfig(**{**arch, "num_frames": 1, "local_type": "none", "global_layers": "none"}))
    torch.save(export_image_vit(vit), tmp_path / "vit.pth")
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    assert layer_probe.main(["--vit", str(tmp_path / "vit.pth"), "--size", "micro", "--synthetic-root",
                             str(tmp_path / "synthetic"), "--steps", "20", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    layers = [f"layer {i}" for i in range(1, 5)]
    names = [n for layer in layers for n in (layer, f"{layer}, frames averaged")]
    assert [r["features"] for r in rows] == ["pixels", *names]
    assert [r["dims"] for r in rows] == [3 * 4 * 32 * 32] + [4 * 16 * 128, 16 * 128] * 4
    assert all(0 <= r["top1"] <= 100 and 0 <= r["translations_top1"] <= 100 for r in rows)
