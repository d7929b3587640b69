"""The notebooks execute (nbclient) and show their figures inline: the report on every kind of results folder the
grid runner writes (built by tests/results_helpers.py in seconds, not trained), the walkthrough as it is."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from tests.helpers import REPO
from tests.results_helpers import Outcome, micro_datasets, write_results
from uv2.data.synthetic import ensure_synthetic

TABLE_A = REPO / "ablations" / "tables" / "a.yaml"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Path]:
    """Three results folders:

    - "all": a root with two tables. Table (a)'s rows 0, 2, 3 (no global blocks in rows 0 and 2) on scene and
      temporal, two seeds: the best temporal cell ("local") has no global blocks; a scene cell failed, others are
      pending. Table (e)-like: individual and co-training rows on scene_a / scene_b, no temporal set.
    - "cotrain": that table (e) folder alone; its best cells are co-trained (checkpoint in the shared run).
    - "failed": a root whose one table has one cell, failed.
    """
    root = tmp_path_factory.mktemp("nb")
    ensure_synthetic(root / "synthetic" / "micro_seed0", "micro", 0, sets=["temporal", "scene", "scene_a", "scene_b"])
    datasets = micro_datasets(root)
    rows = yaml.safe_load(TABLE_A.read_text())["rows"]
    table_a = root / "a.yaml"
    table_a.write_text(yaml.safe_dump({"title": "(a) components, three rows", "datasets": ["scene", "temporal"],
                                       "rows": [rows[0], rows[2], rows[3]]}))
    write_results(root / "results", table_a, datasets, [1, 2], {
        (0, "temporal", 1): Outcome("done", 40.0), (0, "temporal", 2): Outcome("done", 44.0),
        (1, "temporal", 1): Outcome("done", 70.0), (1, "temporal", 2): Outcome("done", 75.0),
        (2, "temporal", 1): Outcome("done", 60.0),
        (0, "scene", 1): Outcome("done", 80.0),
        (1, "scene", 1): Outcome("failed", error="RuntimeError: CUDA out of memory (tried to allocate 2 GiB)")})
    table_e = root / "me.yaml"
    table_e.write_text(yaml.safe_dump({"title": "(e) micro scripts", "datasets": ["scene_a", "scene_b"], "rows": [
        {"label": "individual", "script": "individual", "paper": {"scene_a": 84.4, "scene_b": 85.0}},
        {"label": "co-training", "script": "cotrain", "paper": {"scene_a": 85.6, "scene_b": 86.0}}]}))
    cotrain = write_results(root / "results", table_e, datasets, [1], {
        (0, "scene_a", 1): Outcome("done", 50.0), (0, "scene_b", 1): Outcome("done", 55.0),
        (1, "scene_a", 1): Outcome("done", 65.0), (1, "scene_b", 1): Outcome("done", 70.0)})
    table_f = root / "f.yaml"
    table_f.write_text(yaml.safe_dump({"title": "(f) one cell", "datasets": ["temporal"],
                                       "rows": [{"label": "global", "paper": {"temporal": 63.3}}]}))
    write_results(root / "failed", table_f, datasets, [1], {
        (0, "temporal", 1): Outcome("failed", error="FileNotFoundError: missing.csv")})
    return {"all": root / "results", "cotrain": cotrain, "failed": root / "failed"}


def execute(name: str, results: Path, monkeypatch) -> nbformat.NotebookNode:
    """The notebook run top to bottom as Jupyter runs it; a cell that raises fails the test."""
    monkeypatch.setenv("UV2_RESULTS", str(results))
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "stored with outputs"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    assert not [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    return notebook


def text(cell: nbformat.NotebookNode) -> str:
    """A cell's printed and displayed text."""
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))


def plot_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """The figure cells, by the heading of their section."""
    cells, heading = {}, ""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            heading = cell.source.splitlines()[0].lstrip("# ")
        elif "plot" in cell.metadata.get("tags", []):
            cells[heading] = cell
    return cells


def images(cell: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def section_text(notebook: nbformat.NotebookNode, heading: str) -> str:
    """The output text of the code cell under a section heading (a section without figures)."""
    cells = notebook.cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith(f"## {heading}"))
    return text(next(c for c in cells[start:] if c.cell_type == "code"))


def test_report_on_two_tables(results, monkeypatch):
    notebook = execute("ablation_report.ipynb", results["all"], monkeypatch)
    plots = plot_cells(notebook)
    assert list(plots) == ["Every table beside the paper", "Accuracy against compute", "Training curves",
                           "Confusion matrix", "Top-1 per class", "What the global blocks look at"]
    for heading, cell in plots.items():
        assert images(cell) >= 1, heading
        assert "skipped" not in text(cell), heading
    assert images(plots["Every table beside the paper"]) == 2 and images(plots["Training curves"]) == 2
    # per class: one heatmap per table and dataset with predictions (a: scene, temporal; me: scene_a, scene_b). The
    # helper's predictions get the first top1 % of the 20 videos (classes 0-9, then 0-9 again) right; on temporal
    # disappear (class 9) is 0 % in row 0's seeds (40, 44 %: 8 and 9 right), 50 % in row 1's (70, 75 %) and row 2's
    # (60 %): 33.3 over the rows; appear (class 8) 0 and 50 in row 0, 50 in rows 1 and 2: 41.7
    assert images(plots["Top-1 per class"]) == 4
    assert ("table a | temporal: lowest classes over the rows: disappear 33.3 %, appear 41.7 %, "
            in text(plots["Top-1 per class"]))
    tables = text(plots["Every table beside the paper"])
    # row 0 on temporal over seeds 1 and 2 (40, 44): mean 42, 95 % interval 42 +- 12.706 * 2.83 / sqrt(2)
    assert "42.0 [16.6, 67.4]" in tables
    # row 1 against row 0 on the same seeds: differences 30, 31 (a = s^2 / 2 = 0.25 on 1 degree of freedom); the
    # test videos' part (see the differences section below): b = (2 x 37000 - 10000) / 19 / 40 = 84.21 on 13.96:
    # together (a + b)^2 / (a^2 / 1 + b^2 / 13.96) = 14.03 degrees of freedom, 30.5 +- t(14) x sqrt(84.46) = 19.7
    assert "+30.5 [+10.8, +50.2] / +22.6" in tables and "temporal: agrees with the paper (+22.6)" in tables
    # rows 0 and 1 on seeds 1 and 2 (row 2 has one seed: left out): residuals +-0.25, own^2 = 0.25; seed means 55,
    # 59.5: shared^2 = (2 * 10.125 - 0.25) / 2 = 10; the rows' variances 8 and 12.5: cell^2 = 10.25
    assert ("temporal: 3.2 points per cell over seeds (2 rows x 2 seeds): 3.2 shared by the rows of a seed, 0.5 each "
            "row's own (a paired difference spreads by about 0.7)") in tables
    assert "scene: seed 1 failed (RuntimeError: CUDA out of memory" in tables and "scene: seed 2 pending" in tables
    # where the spread comes from: the two temporal rows with two seeds get 8 and 9, 14 and 15 of 20 videos right
    # (top-1 from the predictions: 40 and 45, 70 and 75): one video differs (variance 1/2), per_video^2 = 1/2 * 5^2,
    # all of the sd; with 4x the videos half of it. Row 2 (one seed) and scene (one finished seed) have no row
    sources = section_text(notebook, "Where each cell's spread comes from")
    assert "Table a: top-1 (%) over seeds, its standard deviation split by test video" in sources
    assert "| temporal | no global, no local | 2 | 20 | 42.5 | 3.5 | 3.5 | 0.0 | 1.8 |" in sources
    assert "| temporal | local | 2 | 20 | 72.5 | 3.5 | 3.5 | 0.0 | 1.8 |" in sources
    assert "global + local" not in sources and "| scene |" not in sources and "Table me" not in sources
    # differences with the test videos drawn too: "local" against the first row gains videos 9-14 in seed 1 and
    # 10-15 in seed 2, +30 points in both (0 over the seeds); over the videos as well, MS_videos = 2 x 37000 / 19,
    # MS_residual = 10000 / 19: b = (MS_videos - MS_residual) / 40 on (MS_videos - MS_residual)^2 / (MS_videos^2 / 19
    # + MS_residual^2 / 19) = 13.96 degrees of freedom, the whole variance: t(13) x sqrt(84.21) = 19.8
    differences = section_text(notebook, "Differences with the test videos drawn too")
    assert "Table a: paired differences (top-1 points) with 95 % half-widths" in differences
    assert "| temporal | local | 2 | 20 | 30.0 | 0.0 | 19.8 | True | True |" in differences
    assert "failed: table a | local | scene | seed 1: RuntimeError" in text(notebook.cells[2])
    # the best temporal cell ("local", 70 %) has no global blocks: the section looks at the best one that has them
    attention = text(plots["What the global blocks look at"])
    assert "table a | global + local | temporal | seed 1 (top-1 60.0 %): 3 global blocks" in attention
    assert "balance w = sigmoid(b)" in attention
    assert images(plots["What the global blocks look at"]) == 3
    figures = {p.name for p in (results["all"] / "figures").glob("*.png")}
    assert figures == {"table_a_bars.png", "table_me_bars.png", "accuracy_vs_gflops.png", "table_a_curves.png",
                       "table_me_curves.png", "confusion_temporal.png", "attention_block1.png",
                       "attention_block2.png", "attention_block3.png", "per_class_a_scene.png",
                       "per_class_a_temporal.png", "per_class_me_scene_a.png", "per_class_me_scene_b.png"}


def test_report_on_a_cotraining_table(results, monkeypatch):
    """One table's folder, no temporal set, its best cells co-trained: the checkpoint and the validation video come
    from the shared co-training run."""
    notebook = execute("ablation_report.ipynb", results["cotrain"], monkeypatch)
    plots = plot_cells(notebook)
    assert all(images(cell) >= 1 for cell in plots.values())
    attention = text(plots["What the global blocks look at"])
    assert "table me | co-training | scene_b | seed 1 (top-1 70.0 %)" in attention
    figures = {p.name for p in (results["cotrain"] / "figures").glob("*.png")}
    assert figures == {"table_me_bars.png", "accuracy_vs_gflops.png", "table_me_curves.png", "confusion_scene_b.png",
                       "attention_block1.png", "attention_block2.png", "attention_block3.png",
                       "per_class_me_scene_a.png", "per_class_me_scene_b.png"}


def test_report_on_a_single_failed_cell(results, monkeypatch):
    notebook = execute("ablation_report.ipynb", results["failed"], monkeypatch)
    assert "failed: table f | global | temporal | seed 1: FileNotFoundError: missing.csv" in text(notebook.cells[2])
    plots = plot_cells(notebook)
    reasons = {heading: text(cell) for heading, cell in plots.items()}
    assert all(images(cell) == 0 for cell in plots.values())
    assert "skipped: table f has no finished cell to draw (1 failed)" in reasons["Every table beside the paper"]
    assert "temporal: seed 1 failed (FileNotFoundError: missing.csv" in reasons["Every table beside the paper"]
    assert "skipped: no finished cell (1 failed)" in reasons["Accuracy against compute"]
    assert "skipped: table f has no finished cell (1 failed)" in reasons["Training curves"]
    assert "skipped: no finished cell (1 failed)" in reasons["Confusion matrix"]
    assert "skipped: no finished cell (1 failed)" in reasons["Top-1 per class"]
    assert "skipped: no finished cell (1 failed)" in reasons["What the global blocks look at"]
    assert ("skipped: no cell has two finished seeds with test predictions (1 failed)"
            in section_text(notebook, "Where each cell's spread comes from"))
    assert ("skipped: no row has two finished seeds with test predictions in common with its table's first row "
            "(1 failed)") in section_text(notebook, "Differences with the test videos drawn too")


def test_model_walkthrough_notebook(results, monkeypatch):
    notebook = execute("model_walkthrough.ipynb", results["failed"], monkeypatch)
    printed = "".join(text(c) for c in notebook.cells)
    assert "(B*T', 1 + h*w, C)" in printed and "MFLOPs" in printed and "-> logits (1, 10)" in printed


def test_notebooks_match_their_builder(tmp_path):
    """The stored notebooks are what notebooks/build_notebooks.py writes (edit the builder, not the JSON)."""
    sys.path.insert(0, str(REPO / "notebooks"))
    import build_notebooks

    for name, cells in (("ablation_report.ipynb", build_notebooks.REPORT),
                        ("model_walkthrough.ipynb", build_notebooks.WALKTHROUGH)):
        stored = nbformat.read(REPO / "notebooks" / name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in cells], name
        assert [c.metadata.get("tags") for c in stored.cells] == [c.metadata.get("tags") for c in cells], name
