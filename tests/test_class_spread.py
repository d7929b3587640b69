"""benchmarks/class_spread.py on a results folder as the grid runner writes it (tests/results_helpers.py)."""

from __future__ import annotations

import yaml

from benchmarks import class_spread
from tests.results_helpers import Outcome, micro_datasets, write_results
from uv2.data.synthetic import TEMPORAL_CLASSES, ensure_synthetic


def test_top1_by_seed_on_the_translations_and_the_other_classes_and_the_confusions(tmp_path, capsys):
    """Seed 1 gets 75 % right (2 videos per class; the second video of classes 5-9 wrong, each taken for the next
    class), seed 2 all: translations 10 of 12 and 12 of 12, the other classes 5 of 8 and 8 of 8, and five
    confusions of one video each, the first four shown (ties in the classes' names' order)."""
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [{"label": "r"}]}))
    folder = write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1, 2], {
        (0, "temporal", 1): Outcome("done", 75.0), (0, "temporal", 2): Outcome("done", 100.0)})
    assert class_spread.main([str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ["table (t) r, temporal, top-1 by seed (1, 2)",
                         "  all classes    75.0, 100.0 (sd 17.7)",
                         "  translations   83.3, 100.0 (sd 11.8)",
                         "  other classes  62.5, 100.0 (sd 26.5)"]
    pairs = sorted((TEMPORAL_CLASSES[i], TEMPORAL_CLASSES[(i + 1) % 10]) for i in range(5, 10))  # ties: by name
    shown = ", ".join(f"{true} -> {guess} 1" for true, guess in pairs[:4])  # the first four of five
    assert lines[4] == f"  confusions     {shown} (of 5 wrong videos)"


def test_a_folder_without_results_and_a_dataset_without_predictions_are_refused(tmp_path, capsys):
    assert class_spread.main([str(tmp_path / "none")]) == 2
    assert f"error: no results.csv under {tmp_path / 'none'}" in capsys.readouterr().err
    ensure_synthetic(tmp_path / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal"])
    table = tmp_path / "t.yaml"
    table.write_text(yaml.safe_dump({"title": "t", "datasets": ["temporal"], "rows": [{"label": "r"}]}))
    folder = write_results(tmp_path / "results", table, micro_datasets(tmp_path), [1],
                           {(0, "temporal", 1): Outcome("done", 75.0)})
    assert class_spread.main([str(folder), "--dataset", "scene"]) == 2
    assert "no finished cell with test predictions on 'scene'" in capsys.readouterr().err
