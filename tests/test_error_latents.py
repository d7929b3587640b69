"""benchmarks/error_latents.py on a results folder as the grid runner writes it (tests/results_helpers.py), its test
predictions replaced by ones over the micro set's real test list."""

from __future__ import annotations

import csv
import shutil

import torch
import yaml

from benchmarks import error_latents
from tests.results_helpers import Outcome, micro_datasets, write_results
from uv2.data.synthetic import ensure_synthetic, temporal_video_params


def test_the_rate_of_a_confusion_by_the_videos_latent_draws(tmp_path, capsys):
    """Two cells test on the micro set's 10 videos, one per class; seed 1 takes the grow video for appear, seed 2
    gets it right: 1 of 2 (videos x cells), every group that one video (its radius drawn again from the manifest)."""
    root = tmp_path / "synthetic" / "micro_seed0"
    ensure_synthetic(root, "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [{"label": "r"}]}))
    folder = write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1, 2],
                           {(0, "temporal", s): Outcome("done", 50.0) for s in (1, 2)})
    names = (root / "temporal" / "classes.txt").read_text().split()
    with (root / "temporal" / "val.csv").open(newline="") as f:
        paths, labels = zip(*((path, int(label)) for path, label in csv.reader(f)))
    grow = labels.index(names.index("grow"))
    for seed in (1, 2):
        predicted = torch.tensor(labels)
        if seed == 1:
            predicted[grow] = names.index("appear")
        torch.save({"video_ids": torch.arange(len(labels)), "labels": torch.tensor(labels), "class_names": names,
                    "scores": torch.nn.functional.one_hot(predicted, len(names)).float()},
                   folder / "cells" / f"r00-r__temporal__seed{seed}" / "test_predictions.pt")
    assert error_latents.main([str(folder), "--class", "grow", "--as", "appear"]) == 0
    lines = capsys.readouterr().out.splitlines()
    radius = temporal_video_params(root, "val", int(paths[grow].rsplit("/", 1)[1].split(".")[0])).radius
    assert lines[0] == "grow: 2 test videos x cells, 1 taken for appear (50.0 %)"
    assert lines[1] == f"  radius       {radius:.2f}-{radius:.2f} 50.0 % of 2 (1)"
    assert [line.split()[0] for line in lines[1:]] == list(error_latents.LATENTS)
    assert error_latents.main([str(folder), "--class", "jump"]) == 2
    assert "--class 'jump': not a class of" in capsys.readouterr().err
    shutil.rmtree(root / "temporal")
    assert error_latents.main([str(folder), "--class", "grow"]) == 2
    assert "val.csv: the list" in capsys.readouterr().err
