"""The notebooks execute (nbclient) on results of a micro ablation run and write their figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from tests.helpers import REPO, micro_grid_spec


@pytest.fixture(scope="module")
def micro_results(tmp_path_factory) -> Path:
    """results/ of a micro grid: two fusion strategies on the micro temporal set, one epoch each."""
    root = tmp_path_factory.mktemp("nb")
    datasets = {"temporal": {"name": "SSv2", "tiny": micro_grid_spec(root), "paper": None}}
    (root / "datasets.yaml").write_text(yaml.safe_dump(datasets))
    rows = [{"label": "Sequential", "arch": {"fusion": "sequential", "t_down": True}, "paper": {"temporal": 69.5}},
            {"label": "Parallel", "arch": {"fusion": "parallel"}, "paper": {"temporal": 69.1}}]
    (root / "nbt.yaml").write_text(yaml.safe_dump({"title": "micro fusion", "datasets": ["temporal"], "rows": rows}))
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", str(root / "nbt.yaml"), "--datasets",
                             str(root / "datasets.yaml"), "--out", str(root / "results")], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "results"


def execute(name: str, results: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("UV2_RESULTS", str(results))
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "stored with outputs"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    return notebook


def test_ablation_report_notebook(micro_results, monkeypatch):
    notebook = execute("ablation_report.ipynb", micro_results, monkeypatch)
    figures = {p.name for p in (micro_results / "figures").glob("*.png")}
    assert {"table_nbt_bars.png", "accuracy_vs_gflops.png", "table_nbt_curves.png", "confusion_temporal.png",
            "attention_block1.png"} <= figures
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "balance w = sigmoid(b)" in text


def test_model_walkthrough_notebook(micro_results, monkeypatch):
    notebook = execute("model_walkthrough.ipynb", micro_results, monkeypatch)
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "(B*T', 1 + h*w, C)" in text and "MFLOPs" in text and "-> logits (1, 10)" in text


def test_notebooks_match_their_builder(tmp_path):
    """The stored notebooks are what notebooks/build_notebooks.py writes (edit the builder, not the JSON)."""
    sys.path.insert(0, str(REPO / "notebooks"))
    import build_notebooks

    for name, cells in (("ablation_report.ipynb", build_notebooks.REPORT),
                        ("model_walkthrough.ipynb", build_notebooks.WALKTHROUGH)):
        stored = nbformat.read(REPO / "notebooks" / name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in cells], name
