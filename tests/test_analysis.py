"""uv2.analysis.results on a results folder as the grid runner writes it (tests/results_helpers.py, not trained)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import REPO
from tests.results_helpers import Outcome, micro_datasets, write_results
from uv2.ablation.grid import expand_cells, load_table
from uv2.ablation.runner import GridRunner
from uv2.analysis.results import (
    cell_scalars,
    confusions,
    differences_by_video,
    load_results,
    per_class_top1,
    spread_by_video,
)
from uv2.data.synthetic import ensure_synthetic


def test_per_class_top1(tmp_path):
    """Per class of each finished cell: 2 test videos per class, the first 75 % of the 20 right (tests/results_helpers
    .predictions), so the first five classes have both videos right and the last five one of two; a failed cell has no
    row."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"],
                                     "rows": [{"label": "done"}, {"label": "failed"}]}))
    write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1], {
        (0, "temporal", 1): Outcome("done", 75.0), (1, "temporal", 1): Outcome("failed", error="RuntimeError: x")})
    frame = per_class_top1(load_results(tmp_path / "results"))
    assert set(frame["label"]) == {"done"} and set(frame["videos"]) == {2} and len(frame) == 10
    assert frame["top1"].tolist() == [100.0] * 5 + [50.0] * 5
    classes = (tmp_path / "synthetic" / "micro_seed0" / "temporal" / "classes.txt").read_text().split()
    assert frame["class"].tolist() == classes


def test_confusions_count_each_wrong_prediction_by_true_and_predicted_class(tmp_path):
    """The cell of test_per_class_top1 (20 videos, the last five wrong, each taken for the next class): five pairs of
    one video each; a cell with every video right has no row, nor has a failed one."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"],
                                     "rows": [{"label": "some wrong"}, {"label": "all right"}, {"label": "failed"}]}))
    write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1], {
        (0, "temporal", 1): Outcome("done", 75.0), (1, "temporal", 1): Outcome("done", 100.0),
        (2, "temporal", 1): Outcome("failed", error="RuntimeError: x")})
    frame = confusions(load_results(tmp_path / "results"))
    classes = (tmp_path / "synthetic" / "micro_seed0" / "temporal" / "classes.txt").read_text().split()
    assert set(frame["label"]) == {"some wrong"} and frame["videos"].tolist() == [1] * 5
    assert list(zip(frame["class"], frame["predicted"])) == [(classes[i], classes[(i + 1) % 10]) for i in range(5, 10)]


def test_table_bars_keep_the_interval_within_0_to_100():
    """The bars' error bars are table.md's intervals: within 0-100 where the t interval of a few seeds reaches past
    it (95.0 +- 10 ends at 100, 3.0 +- 5 at 0); NaN intervals (one seed) draw none."""
    import pandas as pd

    from uv2.analysis.plots import table_bars

    summary = pd.DataFrame({"temporal ours": [95.0, 3.0, 50.0, 60.0], "temporal ci": [10.0, 5.0, 2.0, math.nan],
                            "temporal paper": [69.5, 45.1, 68.7, 60.0]}, index=["a", "b", "c", "d"])
    fig = table_bars(summary, ["temporal"], "t")
    [bars] = [c for c in fig.axes[0].containers if hasattr(c, "errorbar")]
    segments = bars.errorbar.lines[2][0].get_segments()
    assert [(round(s[0][0], 6), round(s[1][0], 6)) for s in segments] == [(85.0, 100.0), (0.0, 8.0), (48.0, 52.0),
                                                                          (60.0, 60.0)]
    # one legend, for the figure, clear of the panels (inside one it covered the last row's error bar)
    assert [ax.get_legend() for ax in fig.axes] == [None] and len(fig.legends) == 1
    fig.canvas.draw()
    legend, panel = fig.legends[0].get_window_extent(), fig.axes[0].get_window_extent()
    assert not legend.overlaps(panel), (legend, panel)


def test_load_results_reads_text_as_text(tmp_path):
    """A commit, a config hash or a row label that looks like a number stays the text results.csv holds (pandas
    would read the commit 57e9584 as the float 5.7e9585, and "0012" as 12), and the run folders are found."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [{"label": "0012"}]}))
    folder = write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1],
                           {(0, "temporal", 1): Outcome("done", 50.0)}, git_commit="57e9584")
    frame = load_results(tmp_path / "results")
    assert frame["git_commit"].tolist() == ["57e9584"] and frame["label"].tolist() == ["0012"]
    with open(folder / "results.csv") as f:
        assert frame["config_hash"].tolist() == [next(csv.DictReader(f))["config_hash"]]
    assert (Path(frame["run_dir"].item()) / "checkpoints" / "last.ckpt").is_file()


def test_cell_scalars(tmp_path):
    """A TensorBoard scalar of every finished cell's run, one row per logged value (the runs of
    tests/results_helpers.write_run log val/top1 at steps 5 and 10: half the cell's top-1, then its top-1); a failed
    cell has none, and a tag no run logged gives an empty frame with the same columns."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"],
                                     "rows": [{"label": "done"}, {"label": "failed"}]}))
    write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1, 2], {
        (0, "temporal", 1): Outcome("done", 60.0), (0, "temporal", 2): Outcome("done", 80.0),
        (1, "temporal", 1): Outcome("failed", error="RuntimeError: x")})
    results = load_results(tmp_path / "results")
    frame = cell_scalars(results, "val/top1")
    assert list(frame.columns) == ["table", "row", "label", "dataset", "seed", "step", "value"]
    assert set(frame["label"]) == {"done"}
    assert [(r.seed, r.step, round(r.value, 3)) for r in frame.itertuples()] == [(1, 5, 30.0), (1, 10, 60.0),
                                                                               (2, 5, 40.0), (2, 10, 80.0)]
    assert cell_scalars(results, "train/grad_norm").empty


def test_differences_by_video(tmp_path):
    """Row 0 gets the first 8 of 20 test videos right in seeds 1-3 (tests/results_helpers.predictions), row 1 the
    first 10, 12 and 10: per seed +10, +20, +10 points (paired: 13.33, half-width 4.303 x 5.774 / sqrt(3)), all of it
    on videos 9-12, the same in every seed. Crossed: MS_seeds = 20 x 33.3, MS_videos = 3 x 18666.7 / 19 (videos 9-10
    gain 100 in every seed, 11-12 in one), MS_residual = 12000 / 38: the seeds' part a = MS_seeds / 60 on 2 degrees
    of freedom, the videos' b = (MS_videos - MS_residual) / 60 on (MS_videos - MS_residual)^2 / (MS_videos^2 / 19 +
    MS_residual^2 / 38) = 15.06, together (a + b)^2 / (a^2 / 2 + b^2 / 15.06) = 15.95: t(15) = 2.131. Row 2 has one
    seed in common with row 0: no row."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"],
                                     "rows": [{"label": "base"}, {"label": "armed"}, {"label": "one seed"}]}))
    outcomes = {(0, "temporal", s): Outcome("done", 40.0) for s in (1, 2, 3)}
    outcomes |= {(1, "temporal", 1): Outcome("done", 50.0), (1, "temporal", 2): Outcome("done", 60.0),
                 (1, "temporal", 3): Outcome("done", 50.0), (2, "temporal", 1): Outcome("done", 90.0)}
    write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1, 2, 3], outcomes)
    frame = differences_by_video(load_results(tmp_path / "results"))
    assert frame["label"].tolist() == ["armed"]
    row = frame.iloc[0]
    assert (row["seeds"], row["videos"]) == (3, 20) and row["difference"] == pytest.approx(40 / 3)
    assert row["half_seeds"] == pytest.approx(4.303 * math.sqrt(100 / 3) / math.sqrt(3))
    ms_seeds, ms_videos, ms_residual = 20 * 100 / 3, 56000 / 19, 12000 / 38
    a, b = ms_seeds / 60, (ms_videos - ms_residual) / 60
    videos_df = (ms_videos - ms_residual) ** 2 / (ms_videos ** 2 / 19 + ms_residual ** 2 / 38)
    assert 15 < (a + b) ** 2 / (a ** 2 / 2 + b ** 2 / videos_df) < 16
    assert row["half_crossed"] == pytest.approx(2.131 * math.sqrt(a + b))
    assert not row["resolved_seeds"] and not row["resolved_crossed"]


def test_the_runner_s_table_takes_the_test_videos_in(tmp_path):
    """table.md as the grid runner writes it: each difference's interval over the seeds and the cells' test videos
    (their test_predictions.pt). Row 1 gets the first 10 of 20 videos right where row 0 gets the first 8, in seeds 1
    and 2: +10 points in both (no spread over the seeds), all of it on videos 9-10. The video means are 100 (two) and
    0 (eighteen), variance (2 x 90^2 + 18 x 10^2) / 19; MS_videos = 2 x that, no residual: video_variance =
    MS_videos / (2 seeds x 20 videos) on MS_videos^2 / (MS_videos^2 / 19) = 19 degrees of freedom, the whole
    variance: half-width t(19) x sqrt(video_variance) = 14.4 > 10, with any number of seeds. Without the predictions,
    the interval is over the seeds alone."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table_file = tmp_path / "t.yaml"
    table_file.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [
        {"label": "base", "paper": {"temporal": 60.0}}, {"label": "armed", "paper": {"temporal": 61.0}}]}))
    outcomes = {(row, "temporal", s): Outcome("done", 40.0 + 10 * row) for row in (0, 1) for s in (1, 2)}
    folder = write_results(tmp_path / "results", table_file, micro_datasets(tmp_path), [1, 2], outcomes)
    table = load_table(str(table_file), table_file.parent)
    runner = GridRunner(table, expand_cells(table, micro_datasets(tmp_path), "tiny", [1, 2], repo=REPO), folder, REPO)
    runner.write_outputs()
    video_variance = 2 * (2 * 90 ** 2 + 18 * 10 ** 2) / 19 / 40
    half = 2.093 * math.sqrt(video_variance)
    line = next(x for x in (folder / "table.md").read_text().splitlines() if x.startswith("| armed"))
    assert f"+10.0 [{10 - half:+.1f}, {10 + half:+.1f}] / +1.0" in line and "no number of seeds" in line
    for path in folder.glob("cells/*/test_predictions.pt"):
        path.unlink()
    runner.write_outputs()
    line = next(x for x in (folder / "table.md").read_text().splitlines() if x.startswith("| armed"))
    assert "+10.0 [+10.0, +10.0] / +1.0" in line and "temporal: Δ interval over the seeds alone" in line


def test_spread_by_video(tmp_path):
    """Three seeds get the first 8, 10 and 12 of 20 test videos right (tests/results_helpers.predictions): top-1 40,
    50, 60 (sd 10). Videos 9-12 are right in one or two seeds of three (variance 1/3 each): per_video^2 = 4/3 * 5^2,
    the rest is the runs': run^2 = 100 - 100/3. A cell with one finished seed has no row."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [{"label": "a"}, {"label": "b"}]}))
    write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1, 2, 3], {
        (0, "temporal", 1): Outcome("done", 40.0), (0, "temporal", 2): Outcome("done", 50.0),
        (0, "temporal", 3): Outcome("done", 60.0), (1, "temporal", 1): Outcome("done", 70.0),
        (1, "temporal", 2): Outcome("failed", error="RuntimeError: x")})
    frame = spread_by_video(load_results(tmp_path / "results"))
    assert frame["label"].tolist() == ["a"]
    row = frame.iloc[0]
    assert (row["seeds"], row["videos"], row["top1"], row["sd"]) == (3, 20, 50.0, pytest.approx(10.0))
    assert row["per_video"] == pytest.approx(math.sqrt(100 / 3)) and row["run"] == pytest.approx(math.sqrt(200 / 3))
    assert row["sd_4x_videos"] == pytest.approx(math.sqrt(200 / 3 + 100 / 12))

    # a seed tested on other videos than the cell's first seed: the error names its predictions file
    cell_dir = load_results(tmp_path / "results").query("row == 0 and seed == 3")["cell_dir"].item()
    predictions = torch.load(f"{cell_dir}/test_predictions.pt", weights_only=True)
    predictions["video_ids"] = [f"w{i}" for i in range(len(predictions["video_ids"]))]
    torch.save(predictions, f"{cell_dir}/test_predictions.pt")
    with pytest.raises(ValueError, match=re.escape(f"{cell_dir}/test_predictions.pt: its test videos differ")):
        spread_by_video(load_results(tmp_path / "results"))
