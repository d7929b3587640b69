"""Statistics over seeds (uv2.ablation.stats) and table.md's intervals and verdicts (uv2.ablation.table), against
values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from uv2.ablation.grid import Row, Table
from uv2.ablation.stats import (
    TOP1_RANGE,
    crossed_half_width,
    paired_difference,
    seed_spread,
    seeds_cannot_resolve,
    seeds_needed,
    spread_decomposition,
    t_quantile_975,
    verdict,
    video_split,
)
from uv2.ablation.table import CellStatistics, dataset_spreads, difference_text, render_table


def test_t_quantiles():
    # printed tables: t(0.975; 1) = 12.706, t(0.975; 4) = 2.776, t(0.975; 30) = 2.042; t(0.975; 60) = 2.000
    assert t_quantile_975(1) == 12.706 and t_quantile_975(4) == 2.776 and t_quantile_975(30) == 2.042
    assert t_quantile_975(60) == pytest.approx(2.000, abs=1e-3)
    assert t_quantile_975(31) < t_quantile_975(30) and t_quantile_975(10_000) == pytest.approx(1.960, abs=1e-3)


def test_chi_square_tail_of_the_test_set_check():
    """benchmarks/test_set_size.py's block check: chi-square tail probabilities against tabled values (the 95 %
    quantiles for 1-5 degrees of freedom, and two points away from them)."""
    from benchmarks.test_set_size import chi2_sf

    for df, quantile in enumerate((3.841, 5.991, 7.815, 9.488, 11.070), start=1):
        assert chi2_sf(quantile, df) == pytest.approx(0.05, abs=2e-4)
    assert chi2_sf(1.0, 3) == pytest.approx(0.8013, abs=1e-4) and chi2_sf(2.0, 7) == pytest.approx(0.9598, abs=1e-4)
    assert chi2_sf(0.0, 3) == 1.0


def test_interval_of_the_mean():
    # 60, 62, 64: mean 62, s = 2, half-width 4.303 * 2 / sqrt(3) = 4.9687
    spread = seed_spread([60, 62, 64])
    assert spread.mean == 62 and spread.std == 2
    low, high = spread.interval
    assert low == pytest.approx(57.0313, abs=1e-4) and high == pytest.approx(66.9687, abs=1e-4)
    assert spread.interval_text() == "62.0 [57.0, 67.0]"
    one = seed_spread([70])
    assert one.interval_text() == "70.0 (1 seed)" and math.isnan(one.half_width)
    # 99, 100, 95: mean 98, s = sqrt(7) = 2.6458, half-width 4.303 * 2.6458 / sqrt(3) = 6.5729: [91.43, 104.57],
    # shown within an accuracy's range
    near_top = seed_spread([99, 100, 95])
    assert near_top.interval[1] == pytest.approx(104.5729, abs=1e-4)
    assert near_top.interval_text() == "98.0 [91.4, 104.6]"
    assert near_top.interval_text(TOP1_RANGE) == "98.0 [91.4, 100.0]"
    assert seed_spread([1, 0, 5]).interval_text(TOP1_RANGE) == "2.0 [0.0, 8.6]"


def test_paired_difference_uses_common_seeds():
    # seeds 1-3 in both: differences 5, 4, 6: mean 5, s = 1, half-width 4.303 / sqrt(3) = 2.4843
    difference = paired_difference({1: 65, 2: 66, 3: 70, 4: 99}, {1: 60, 2: 62, 3: 64})
    assert difference.values == (5.0, 4.0, 6.0)
    low, high = difference.interval
    assert low == pytest.approx(2.5157, abs=1e-4) and high == pytest.approx(7.4843, abs=1e-4)


def test_difference_intervals_are_shown_within_what_a_difference_can_be():
    # differences 60, 10, 80: mean 50, s = 36.0555, half-width 4.303 * 36.0555 / sqrt(3) = 89.5741: [-39.57, +139.57]
    difference = paired_difference({1: 90, 2: 40, 3: 95}, {1: 30, 2: 30, 3: 15})
    assert difference.interval[1] == pytest.approx(139.5741, abs=1e-4)
    cell = CellStatistics(ours=seed_spread([90, 40, 95]), paper=None, difference=difference, paper_delta=None,
                          verdict="", problems=[], chance=None)
    assert difference_text(cell) == "+50.0 [-39.6, +100.0] / -"


def test_verdicts():
    resolved = paired_difference({1: 65, 2: 66, 3: 70}, {1: 60, 2: 62, 3: 64})  # [+2.5, +7.5]
    assert verdict(resolved, +1.0) == "agrees with the paper (+1.0)"
    assert verdict(resolved, -1.0) == "differs from the paper (-1.0)"
    # differences 1, 3, -0.5: mean 1.167, s = 1.756; the interval [-3.2, +5.5] holds zero; at that spread the
    # half-width t(n-1) * 1.756 / sqrt(n) first drops below 1.167 at n = 12 (2.201 * 1.756 / 3.464 = 1.116)
    unresolved = paired_difference({1: 61, 2: 65, 3: 63.5}, {1: 60, 2: 62, 3: 64})
    assert seeds_needed(unresolved) == 12
    assert verdict(unresolved, +1.0) == "not resolved at this scale (needs about 12 seeds)"
    assert verdict(unresolved, +0.2) == "the paper shows no direction (+0.2)"
    assert verdict(seed_spread([3.0]), +1.0).startswith("one seed")
    tiny_effect = paired_difference({1: 60.1, 2: 63.9, 3: 62.0}, {1: 60, 2: 62, 3: 64})  # mean 0, never resolved
    assert seeds_needed(tiny_effect) is None and "more than 100 seeds" in verdict(tiny_effect, 1.0)


def _records(row: int, values: dict[int, float], dataset: str = "temporal") -> list[dict]:
    return [{"row": row, "dataset": dataset, "seed": s, "top1": v, "status": "done", "num_classes": 10, "gflops": 0.1}
            for s, v in values.items()]


def test_table_flags_resolved_unresolved_and_opposite():
    rows = [Row("base", paper={"temporal": 60.0}), Row("agrees", paper={"temporal": 61.0}),
            Row("unresolved", paper={"temporal": 61.0}), Row("opposite", paper={"temporal": 59.0})]
    table = Table("t", "synthetic", ["temporal"], rows, Path("t.yaml"))
    base = {1: 60, 2: 62, 3: 64}
    records = (_records(0, base) + _records(1, {1: 65, 2: 66, 3: 70}) + _records(2, {1: 61, 2: 65, 3: 63.5})
               + _records(3, {1: 65, 2: 66, 3: 70}))
    text = render_table(table, records)
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "62.0 [57.0, 67.0] | 60.0 | (reference)" in lines["base"]
    assert "+5.0 [+2.5, +7.5] / +1.0" in lines["agrees"] and "temporal: agrees with the paper (+1.0)" in lines["agrees"]
    assert "temporal: not resolved at this scale (needs about 12 seeds)" in lines["unresolved"]
    assert "temporal: differs from the paper (-1.0)" in lines["opposite"]
    assert "seeds 1, 2, 3" in text


# three rows x three seeds, worked by hand: row means 62, 72, 53; seed means 60, 62.333, 64.667; grand mean 62.333
SPREAD_CELLS = {"a": {1: 60, 2: 62, 3: 64}, "b": {1: 70, 2: 71, 3: 75}, "c": {1: 50, 2: 54, 3: 55}}


def test_spread_decomposition_against_hand_computed_values():
    # residuals y - row mean - seed mean + grand: a 1/3, 0, -1/3; b 1/3, -1, 2/3; c -2/3, 1, -1/3: sum of squares 10/3
    # over (3-1)(3-1) = 4 degrees of freedom: own^2 = 5/6. Seed means' variance 49/9, times 3 rows 49/3:
    # shared^2 = (49/3 - 5/6) / 3 = 31/6. The rows' variances over seeds 4, 7, 7: cell^2 = 6 = 31/6 + 5/6
    # with a row "d" that has seed 1 only, the four rows have one seed in common: nothing to tell
    assert spread_decomposition({**SPREAD_CELLS, "d": {1: 99}}) is None
    spread = spread_decomposition(SPREAD_CELLS)
    assert (spread.rows, spread.seeds) == (3, 3)
    assert spread.own == pytest.approx(math.sqrt(5 / 6)) and spread.shared == pytest.approx(math.sqrt(31 / 6))
    assert spread.cell == pytest.approx(math.sqrt(6))
    # a paired difference's variance is 2 own^2: the three pairs' variances over seeds 1, 1, 3 average 5/3
    pairs = [paired_difference(SPREAD_CELLS[x], SPREAD_CELLS[y]).std ** 2 for x, y in ("ba", "ca", "cb")]
    assert sum(pairs) / 3 == pytest.approx(2 * spread.own ** 2)
    assert spread.text().startswith("2.4 points per cell over seeds (3 rows x 3 seeds): 2.3 shared by the rows of a "
                                    "seed, 0.9 each row's own (a paired difference spreads by about 1.3)")
    # seeds that share nothing: the seed means do not move (the estimate (0 - own^2) / 2 is floored at zero); the
    # residuals are -2, 2, 2, -2 on one degree of freedom: own^2 = 16
    opposite = spread_decomposition({"a": {1: 60, 2: 64}, "b": {1: 64, 2: 60}})
    assert opposite.shared == 0 and opposite.own == pytest.approx(4.0)
    assert spread_decomposition({"a": {1: 60, 2: 64}}) is None


def test_crossed_half_width_against_hand_computed_values():
    """diff = [[3, 1, 2], [1, 0, 2]]: seed means 2, 1 (MS_seeds = 3 x 0.5 = 1.5), video means 2, 0.5, 2 (MS_videos =
    2 x 0.75 = 1.5), residuals +-0.5, 0, -+0.5 (MS_residual = 1 / 2 = 0.5): variance (1.5 + 1.5 - 0.5) / 6, t on 1
    degree of freedom; the seeds' part alone, 1.5 / 6, is the paired difference's own. Where the videos add nothing
    (every seed's difference the same on each video) the half-width is the paired difference's."""
    assert crossed_half_width([[3, 1, 2], [1, 0, 2]]) == pytest.approx(12.706 * math.sqrt(2.5 / 6))
    assert seed_spread([2, 1]).half_width == pytest.approx(12.706 * math.sqrt(1.5 / 6))
    flat = [[1, 1, 1], [3, 3, 3], [2, 2, 2]]  # MS_videos = MS_residual = 0
    assert crossed_half_width(flat) == pytest.approx(seed_spread([1, 3, 2]).half_width)
    with pytest.raises(ValueError, match="needs >= 2 seeds on the same >= 2 videos"):
        crossed_half_width([[1, 2], [1]])


def test_paired_difference_takes_in_the_test_videos():
    """The same diff as above, seeds 1 and 2: values 2, 1 (the per-seed means, s^2 = 0.5), video_variance (MS_videos -
    MS_residual) / (seeds x videos) = (1.5 - 0.5) / 6 on Satterthwaite's (1.5 - 0.5)^2 / (1.5^2 / 2 + 0.5^2 / 2) =
    0.8 degrees of freedom. Two seeds: a = 0.25, b = 1/6, df = (5/12)^2 / (0.25^2 / 1 + (1/6)^2 / 0.8) = 1.79, so t(1)
    x sqrt(5/12), the crossed half-width. Four seeds at these spreads: a = 0.125, df = (7/24)^2 / (0.125^2 / 3 +
    (1/6)^2 / 0.8) = 2.13, so t(2) x sqrt(7/24). Without a seed's per-video differences: over the seeds alone."""
    by_video = {1: [3, 1, 2], 2: [1, 0, 2]}
    d = paired_difference({1: 62, 2: 61, 3: 70}, {1: 60, 2: 60}, by_video)
    assert d.values == (2.0, 1.0) and d.videos == 3 and d.video_variance == pytest.approx(1 / 6)
    assert d.video_df == pytest.approx(0.8)
    assert d.half_width == pytest.approx(12.706 * math.sqrt(5 / 12)) == pytest.approx(crossed_half_width(
        list(by_video.values())))
    assert d.seeds_half_width == pytest.approx(seed_spread([2, 1]).half_width)
    assert d.half_width_at(4) == pytest.approx(4.303 * math.sqrt(7 / 24))
    seeds_only = paired_difference({1: 62, 2: 61}, {1: 60, 2: 60}, {1: [3, 1, 2]})
    assert seeds_only.videos == 0 and seeds_only.half_width == pytest.approx(seed_spread([2, 1]).half_width)


def test_a_difference_made_by_one_test_video_is_not_resolved_by_seeds():
    """Every seed gains the same single video of 4 (+25 points each, no spread over seeds): over the seeds alone
    that is resolved, but it is one video. By video: means 100, 0, 0, 0 (MS_videos = 3 x 2500), no residual:
    video_variance 7500 / 12 = 625 on 7500^2 / (7500^2 / 3) = 3 degrees of freedom, all of the variance: half-width
    t(3) x 25, and as many seeds as one likes leave t(3) x 25 >= 25."""
    one_video = {s: [100.0, 0.0, 0.0, 0.0] for s in (1, 2, 3)}
    d = paired_difference({1: 75, 2: 75, 3: 75}, {1: 50, 2: 50, 3: 50}, one_video)
    assert d.std == 0 and d.seeds_half_width == 0 and d.video_variance == pytest.approx(625)
    assert d.video_df == pytest.approx(3) and d.half_width == pytest.approx(3.182 * 25)
    assert seeds_needed(d) is None and seeds_cannot_resolve(d)
    assert verdict(d, +1.0) == "not resolved at this scale (no number of seeds resolves it on 4 test videos)"


def test_the_test_videos_ask_for_more_seeds():
    """Half the 8 videos +10 in every seed and one more +-16 in two seeds: differences 5, 7, 3, 5. Over the seeds
    alone 3 seeds would resolve that spread; with the test videos' part, at the measured spreads, 4. Their interval is
    never narrower than the one over the seeds alone."""
    spread = {1: [10, 0] * 4, 2: [10, 16] + [10, 0] * 3, 3: [10, 0, 10, -16] + [10, 0] * 2, 4: [10, 0] * 4}
    d = paired_difference({s: sum(v) / 8 for s, v in spread.items()}, dict.fromkeys(spread, 0.0), spread)
    seeds_alone = paired_difference(dict(zip(spread, d.values)), dict.fromkeys(spread, 0.0))
    assert d.values == (5, 7, 3, 5) and d.video_variance > 0 and not seeds_cannot_resolve(d)
    assert seeds_needed(d) == 4 and seeds_needed(seeds_alone) == 3
    assert all(d.half_width_at(n) >= seeds_alone.half_width_at(n) for n in range(2, 30))


def _videos(row: int, seeds: dict[int, list[float]], dataset: str = "temporal") -> dict:
    return {(row, dataset, s): ([f"v{i}" for i in range(len(c))], c) for s, c in seeds.items()}


def test_table_takes_the_test_videos_into_its_flags():
    """A row whose gain over the first row is one test video in every seed: resolved over the seeds alone, not
    once the test videos are a draw too; without per-video results table.md says its interval is over the seeds."""
    rows = [Row("base", paper={"temporal": 60.0}), Row("one video", paper={"temporal": 61.0})]
    table = Table("t", "synthetic", ["temporal"], rows, Path("t.yaml"))
    records = _records(0, {1: 50, 2: 50, 3: 50}) + _records(1, {1: 75, 2: 75, 3: 75})
    videos = {**_videos(0, dict.fromkeys((1, 2, 3), [0.0, 1.0, 1.0, 0.0])),
              **_videos(1, dict.fromkeys((1, 2, 3), [1.0, 1.0, 1.0, 0.0]))}
    line = [x for x in render_table(table, records, videos).splitlines() if x.startswith("| one video")][0]
    assert "+25.0 [-54.5, +100.0] / +1.0" in line  # t(3) x 25 = 79.55
    assert "temporal: not resolved at this scale (no number of seeds resolves it on 4 test videos)" in line
    assert "over the seeds alone" not in line
    seeds_only = [x for x in render_table(table, records).splitlines() if x.startswith("| one video")][0]
    assert "+25.0 [+25.0, +25.0] / +1.0" in seeds_only and "temporal: agrees with the paper (+1.0)" in seeds_only
    assert "temporal: Δ interval over the seeds alone (no per-video test results of both rows)" in seeds_only
    other_videos = {**videos, (1, "temporal", 2): (["w0", "w1", "w2", "w3"], [1.0, 1.0, 1.0, 0.0])}
    assert "over the seeds alone" in render_table(table, records, other_videos)


def test_video_split_against_hand_computed_values():
    # three seeds on four videos: top-1 50, 100, 0 (variance 2500). Each video's variance over the seeds: videos 1-2
    # (1, 1, 0) and 3-4 (0, 1, 0) 1/3 each, so per_video^2 = 4/3 * (100/4)^2 = 2500/3 and run^2 = 5000/3
    split = video_split([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert (split.seeds, split.videos, split.mean, split.total) == (3, 4, 50.0, 50.0)
    assert split.per_video == pytest.approx(math.sqrt(2500 / 3)) and split.run == pytest.approx(math.sqrt(5000 / 3))
    # 16 videos of the same kind: per_video^2 / 4
    assert split.with_videos(16) == pytest.approx(math.sqrt(5000 / 3 + 2500 / 12))
    # runs that disagree on single videos only: top-1 25, 25 (no spread), each of two videos 1/2; the floor at 0
    anti = video_split([[1, 0, 0, 0], [0, 1, 0, 0]])
    assert anti.total == 0 and anti.per_video == pytest.approx(math.sqrt(2 * 0.5 * 25 ** 2)) and anti.run == 0
    assert video_split([[1, 0]]) is None
    with pytest.raises(ValueError, match="the same test videos"):
        video_split([[1, 0], [1, 0, 1]])


def test_table_reports_the_spread_decomposition_once_per_run():
    rows = [Row("a"), Row("b"), Row("c"), Row("b again")]
    table = Table("t", "synthetic", ["temporal"], rows, Path("t.yaml"))
    records = [r for i, key in enumerate("abcb") for r in _records(i, SPREAD_CELLS[key])]
    for r in records:
        if r["row"] == 3:
            r["same_run_as"] = "b"  # as the runner records the row that took b's run
    spreads = dataset_spreads(table, records)
    assert spreads["temporal"] == spread_decomposition(SPREAD_CELLS)  # "b again" repeats b's run: counted once
    assert "Spread over seeds (top-1), temporal: 2.4 points per cell over seeds (3 rows x 3 seeds)" in render_table(
        table, records)
    # a row with one finished seed says nothing of the spread over seeds: left out, not a reason to report nothing
    with_one_seed_row = records + _records(4, {1: 10.0})
    assert dataset_spreads(Table("t", "synthetic", ["temporal"], [*rows, Row("one seed")], Path("t.yaml")),
                           with_one_seed_row)["temporal"] == spread_decomposition(SPREAD_CELLS)
    one_seed = [r for r in records if r["seed"] == 1]
    assert dataset_spreads(table, one_seed)["temporal"] is None and "Spread over seeds" not in render_table(
        table, one_seed)


def test_table_says_what_hardware_its_cells_ran_on():
    table = Table("t", "synthetic", ["temporal"], [Row("base"), Row("other")], Path("t.yaml"))
    records = _records(0, {1: 60, 2: 62}) + _records(1, {1: 65, 2: 66})
    assert "Ran on" not in render_table(table, records)  # results of versions that did not record it
    for r in records:
        r["hardware"] = "CPU AVX512, torch 2.14.1"
    assert "Ran on: CPU AVX512, torch 2.14.1.\n" in render_table(table, records)
    records[3]["hardware"] = records[2]["hardware"] = "CPU AVX2, torch 2.14.1"
    records[1]["status"] = "failed"  # a cell that did not finish is not counted
    text = render_table(table, records)
    assert "Ran on: CPU AVX2, torch 2.14.1 (2 cells); CPU AVX512, torch 2.14.1 (1 cell). Another CPU" in text
