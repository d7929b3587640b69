"""The variance decomposition tool (uv2/ablation/variance.py): which seeds each group varies, the bootstrap test-set
spread, reuse of finished runs and the printed table."""

from __future__ import annotations

import math

import pytest
import torch

from uv2.ablation import variance
from uv2.ablation.grid import Cell


def cell() -> Cell:
    config = {"seed_everything": 7, "model": {"arch": {}}, "data": {"init_args": {"seed": 7}}}
    return Cell(table="c", row=1, label="1-12, DPE", dataset="temporal", seed=1, config=config)


@pytest.mark.parametrize("group, seeds", [("all", (3, 3, None)), ("data", (1, 3, None)), ("init", (3, 1, None)),
                                         ("weights", (1, 1, 3))])
def test_each_group_varies_its_own_seeds(group, seeds, tmp_path):
    config = variance.group_config(cell(), group, 3)
    assert (config["seed_everything"], config["data"]["init_args"]["seed"], config["model"].get("init_seed")) == seeds
    assert cell().config["seed_everything"] == 7 and "init_seed" not in cell().config["model"]  # the cell's own
    name = variance.run_dir_of(tmp_path, config).name
    assert name == f"seed_everything{seeds[0]}_data{seeds[1]}" + ("_weights3" if group == "weights" else "")
    # init_seed 1 would draw what seed_everything 1 draws: the weights group's seed 1 is the other groups' seed-1 run
    assert variance.run_dir_of(tmp_path, variance.group_config(cell(), group, 1)).name == "seed_everything1_data1"


def test_bootstrap_std_is_the_binomial_spread():
    correct = torch.zeros(400, dtype=torch.bool)
    correct[:240] = True  # 60 % of 400 videos: sqrt(.6 * .4 / 400) = 2.45 points
    assert variance.bootstrap_std(correct) == pytest.approx(100 * math.sqrt(0.6 * 0.4 / 400), rel=0.08)
    assert variance.bootstrap_std(torch.ones(50, dtype=torch.bool)) == 0.0


def test_decompose_trains_each_run_once_and_reports_every_group(monkeypatch, tmp_path):
    calls = []

    def fake_fit_and_test(config_path, run_dir, resume):
        import yaml

        config = yaml.safe_load(config_path.read_text())
        init_seed = config["model"].get("init_seed") or 0
        calls.append((config["seed_everything"], config["data"]["init_args"]["seed"], init_seed))
        labels = torch.arange(20) % 4
        scores = torch.nn.functional.one_hot(labels, 4).float()
        scores[: 2 * config["seed_everything"] + config["data"]["init_args"]["seed"] + init_seed] *= -1  # a few wrong
        torch.save({"scores": scores, "labels": labels}, run_dir / "test_predictions.pt")
        return {"top1": 100 * float((scores.argmax(-1) == labels).float().mean())}

    monkeypatch.setattr(variance, "fit_and_test", fake_fit_and_test)
    summary = variance.decompose(cell(), [1, 2, 3], tmp_path)
    assert len(calls) == 9  # seed 1's run (1, 1) is the first of every group, trained once; weights' 2 own
    assert summary["groups"]["data"]["top1"] == pytest.approx([85.0, 80.0, 75.0])  # 3, 4, 5 wrong of 20
    assert summary["groups"]["init"]["std"] == pytest.approx(10.0)  # 3, 5, 7 wrong: 85, 75, 65
    assert summary["groups"]["weights"]["top1"] == pytest.approx([85.0, 75.0, 70.0])  # 3 (seed 1's run), 5, 6 wrong
    assert summary["test_set_std"] > 0
    table = variance.render(summary)
    assert "| the data module's seed (order, augmentation) | 80.0 | 5.00 | 85.0, 80.0, 75.0 |" in table
    assert "test set (bootstrap" in table
    again = variance.decompose(cell(), [1, 2, 3], tmp_path)  # finished runs are read back, not trained again
    assert len(calls) == 9 and again == summary


def test_settings_change_a_copy_of_the_experiment():
    config = variance.with_settings(cell().config, ["model.optim.lr=1e-3", "data.init_args.batch_size=8"])
    assert config["model"]["optim"] == {"lr": 1e-3} and config["data"]["init_args"] == {"seed": 7, "batch_size": 8}
    assert "optim" not in cell().config["model"]
    with pytest.raises(ValueError, match="KEY=VALUE"):
        variance.with_settings(cell().config, ["model.optim.lr"])
    with pytest.raises(ValueError, match="'seed_everything' is not a section"):
        variance.with_settings(cell().config, ["seed_everything.x=1"])
