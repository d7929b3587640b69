"""uv2.analysis.results on a results folder as the grid runner writes it (tests/results_helpers.py, not trained)."""

from __future__ import annotations

import yaml

from tests.results_helpers import Outcome, micro_datasets, write_results
from uv2.analysis.results import load_results, per_class_top1
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
