"""Ablation grids: a micro table end to end, resume after a kill, a failing cell, table (e)'s union, sbatch."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import REPO, hparams_records, hparams_session, micro_grid_spec, sigint_as_at_a_terminal
from uv2.ablation.grid import Cell, load_table, missing_inputs, scale_layers
from uv2.ablation.union import LabelSet, build_union, slice_head, union_classes
from uv2.ablation.union import main as union_main
from uv2.errors import EXIT_INTERRUPTED
from uv2.models import ModelConfig
from uv2.train.hardware import hardware


def test_scale_layers():
    assert scale_layers("9-12", 4) == "3-4"
    assert scale_layers("5-12", 4) == "2-4"
    assert scale_layers("1-12", 4) == "1-4"
    assert scale_layers("1-8", 4) == "1-3" and scale_layers("1-4", 4) == "1-2"
    assert scale_layers("9-12", 12) == "9-12" and scale_layers("none", 4) == "none"


@pytest.mark.parametrize("name", ["a", "b", "c", "d", "e"])
def test_paper_tables_load_and_expand(name):
    """Every shipped table parses and expands into valid cells at both scales."""
    from uv2.ablation.grid import expand_cells, load_datasets

    table = load_table(name, REPO / "ablations" / "tables")
    datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
    cells = expand_cells(table, datasets, "tiny", [1, 2], repo=REPO)
    assert len(cells) == len(table.rows) * len(table.datasets) * 2
    assert all(r.paper for r in table.rows)
    paper = expand_cells(table, datasets, "paper", [1], repo=REPO)
    assert len(paper) == len(table.rows) * len(table.datasets)
    assert ModelConfig(**paper[0].arch).vit == "clip_b16"


def test_table_e_at_paper_scale(tmp_path):
    """Table (e)'s K400 / K600 / K700 columns at paper scale: run.py expands every row (an sbatch array of 4 rows x 3
    sets), each set's cell trains its recipe on its lists under --data-root, the union scripts fine-tune with the
    K710 -> set recipe's epochs and optimiser, and the union is built from the real lists by YouTube id."""
    from uv2.ablation.grid import expand_cells, load_datasets
    from uv2.ablation.scripts import TrainingScripts, cell_label_set, union_identity
    from uv2.ablation.union import LabelSet

    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", "e", "--scale", "paper", "--devices", "8",
                             "--data-root", "/datasets", "--out", str(out), "--slurm"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --array=0-11" in (out / "table_e" / "slurm" / "cells.sbatch").read_text()
    cells = expand_cells(load_table("e", REPO / "ablations" / "tables"), load_datasets(REPO / "ablations" / "datasets.yaml"),
                         "paper", [1], {"devices": 8}, "/datasets", REPO)
    by = {(c.script, c.dataset): c for c in cells}
    for key, classes in (("scene_a", 400), ("scene_b", 600), ("scene_c", 700)):
        cell = by[("individual", key)]
        name = f"k{classes}"
        assert cell.arch["num_classes"] == classes and cell.finetune is None
        assert cell.config["data"]["init_args"]["train_list"] == f"/datasets/{name}/train.csv"
        assert cell_label_set(cell, REPO) == LabelSet(key, Path(f"/datasets/{name}/train.csv"),
                                                      Path(f"/datasets/{name}/val.csv"),
                                                      Path(f"/datasets/{name}/classes.txt"), Path(f"/datasets/{name}"))
        union = by[("union_individual", key)]
        assert union.finetune == {"trainer": {"max_epochs": 5}, "model": {"optim": {
            "lr": 2e-6, "weight_decay": 0.05, "warmup_epochs": 1, "warmup_start_lr": 1e-6, "min_lr": 1e-6}}}
        config = json.loads(json.dumps(union.config))
        TrainingScripts.short_fine_tuning(config, union.finetune)
        assert config["trainer"]["max_epochs"] == 5 and config["model"]["optim"]["lr"] == 2e-6
        assert union_identity(union) == "youtube_id" and union.config_hash != cell.config_hash
    tiny = expand_cells(load_table("e", REPO / "ablations" / "tables"), load_datasets(REPO / "ablations" / "datasets.yaml"),
                        "tiny", [1], repo=REPO)
    assert union_identity(tiny[0]) == "path" and all(c.finetune is None for c in tiny)
    broken = json.loads(json.dumps(by[("individual", "scene_b")].config))
    broken["data"]["init_args"]["classes_file"] = None
    with pytest.raises(ValueError, match=r"'scene_b'.*need csv lists with class names.*missing: classes_file"):
        cell_label_set(type(cells[0])("e", 0, "x", "scene_b", 1, broken), REPO)


def test_table_c_tiny_layers_are_mapped():
    from uv2.ablation.grid import expand_cells, load_datasets

    cells = expand_cells(load_table("c", REPO / "ablations" / "tables"),
                         load_datasets(REPO / "ablations" / "datasets.yaml"), "tiny", [1], repo=REPO)
    assert [c.arch["global_layers"] for c in cells if c.dataset == "scene"] == ["3-4", "3-4", "2-4", "1-4"]
    assert [c.arch["global_dpe"] for c in cells if c.dataset == "scene"] == [False, True, True, True]


# ------------------------------------------------------------------------------------------- micro grids (CLI)
@pytest.fixture(scope="module")
def micro(tmp_path_factory) -> Path:
    """A datasets file pointing at the micro synthetic benchmark, one quick epoch per cell."""
    root = tmp_path_factory.mktemp("micro")
    spec = micro_grid_spec(root)
    (root / "malformed.csv").write_text("a line without a label\n")  # read by the cell only: the grid starts
    broken = {**spec, "data": {**spec["data"], "synthetic_set": None, "train_list": str(root / "malformed.csv")}}
    unset = {**spec, "data": {**spec["data"], "batch_size": 0}}  # the data module refuses it in __init__
    typo = {**spec, "data": {**spec["data"], "batch_sise": 8}}  # the parser refuses it (argparse would exit)
    datasets = {"temporal": {"name": "SSv2", "tiny": spec, "paper": {"experiment": "experiments/ssv2/ssv2_b16_16x224.yaml"}},
                "broken": {"name": "SSv2", "tiny": broken, "paper": None},
                "unset": {"name": "SSv2", "tiny": unset, "paper": None},
                "typo": {"name": "SSv2", "tiny": typo, "paper": None}}
    (root / "datasets.yaml").write_text(yaml.safe_dump(datasets))
    return root


def write_table(folder: Path, name: str, datasets: list[str], rows: list[dict]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"title": f"micro {name}", "datasets": datasets, "rows": rows}))
    return path


MICRO_ROWS = [{"label": "no local", "arch": {"local_type": "none"}, "paper": {"temporal": 60.0, "broken": 1.0}},
              {"label": "local MHRA", "arch": {"local_type": "lmhra"}, "paper": {"temporal": 65.0, "broken": 2.0}}]


def grid(table: Path, micro: Path, out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "ablations/run.py", "--table", str(table), "--datasets",
                           str(micro / "datasets.yaml"), "--out", str(out), *extra], cwd=REPO, capture_output=True,
                          text=True, **kwargs)


def read_results(out: Path, table: str) -> list[dict]:
    with open(out / f"table_{table}" / "results.csv") as f:
        return list(csv.DictReader(f))


def test_missing_inputs_stop_the_grid_before_any_cell(tmp_path):
    """A model.init_from file that is missing and that the grid does not pretrain (here a small ViT's; at paper
    scale CLIP's), or a data list, stops the grid at once, naming it, instead of failing every cell in turn; so does
    a bad --seeds."""
    spec = micro_grid_spec(tmp_path)
    missing = tmp_path / "weights" / "vit_small.pth"
    spec["overrides"] = {"model": {"init_from": str(missing), "arch": {"vit": "small"}}}
    (tmp_path / "datasets.yaml").write_text(yaml.safe_dump({"temporal": {"name": "SSv2", "tiny": spec}}))
    table = write_table(tmp_path, "w", ["temporal"], MICRO_ROWS)
    result = grid(table, tmp_path, tmp_path / "results", timeout=120)
    assert result.returncode == 2 and f"\n  model.init_from: {missing}\n" in result.stderr, result.stderr[-3000:]
    assert "cells" not in result.stdout and not (tmp_path / "results").exists()  # no folder left behind
    result = grid(table, tmp_path, tmp_path / "results", "--seeds", "1,two", timeout=120)
    assert result.returncode == 2 and "--seeds '1,two': comma-separated integers, e.g. 1,2,3" in result.stderr
    data = {"train_list": "data/none/train.csv", "val_list": str(table), "classes_file": None}  # val_list exists
    cell = Cell("w", 0, "x", "temporal", 1, {"model": {"init_from": None}, "data": {"init_args": data}})
    assert missing_inputs([cell], REPO) == ["data.init_args.train_list: data/none/train.csv"]


def test_micro_table_end_to_end(micro, tmp_path):
    table = write_table(tmp_path, "m2", ["temporal"], MICRO_ROWS)
    result = grid(table, micro, tmp_path / "results", "--jobs", "1", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_results(tmp_path / "results", "m2")
    assert [(r["label"], r["dataset"], r["status"]) for r in rows] == [("no local", "temporal", "done"),
                                                                       ("local MHRA", "temporal", "done")]
    for r in rows:
        assert 0 <= float(r["top1"]) <= 100 and float(r["gflops"]) > 0 and float(r["params_m"]) > 0
        assert float(r["train_s"]) > 0 and float(r["clips_per_s"]) > 0 and float(r["peak_mem_mb"]) > 0
        assert len(r["config_hash"]) == 12 and r["git_commit"]
        assert r["hardware"] == hardware("cpu") and r["hardware"].startswith("CPU ")  # CPU and its instruction set
        assert r["checkpoint"].endswith("checkpoints/last.ckpt") and int(r["checkpoint_step"]) > 0  # tested weights
    assert float(rows[1]["params_m"]) > float(rows[0]["params_m"])  # the local blocks are there
    table_md = (tmp_path / "results" / "table_m2" / "table.md").read_text()
    assert "| no local |" in table_md and "| 60.0 |" in table_md and "2/2 cells done" in table_md
    assert f"Ran on: {hardware('cpu')}." in table_md
    cell = tmp_path / "results" / "table_m2" / "cells" / "r01-local-mhra__temporal__seed1"
    assert (cell / "cell.yaml").exists() and (cell / "checkpoints" / "last.ckpt").exists()
    assert list(cell.glob("events.out.tfevents.*"))

    # progress, as CI and SLURM logs get it (not a terminal): one line per epoch of each cell, never redrawn
    assert "\r" not in result.stdout
    for n, r in enumerate(rows, 1):
        where = f"[{n}/2] table m2 | {r['label']} | temporal | seed 1"
        # no "val top-1": a tiny cell does not validate (its test scores its validation videos)
        epochs = re.findall(rf"^{re.escape(where)}: epoch (\d+)/1, step (\d+)/(\d+), \S+ elapsed "
                            rf"\| grid {n - 1}/2 done, (.*)$", result.stdout, re.M)
        assert [(e, step == total) for e, step, total, _ in epochs] == [("1", True)], result.stdout
        estimate = epochs[0][3]
        assert estimate == "time left after the first cell" if n == 1 else re.fullmatch(r"~\S+ left", estimate)
        assert re.search(rf"^{re.escape(where)}: top1 [\d.]+ .*\| grid {n}/2 done", result.stdout, re.M)

    # TensorBoard's HPARAMS tab: each cell with its place in the grid, its switches, its test top-1 (a tiny cell does
    # not validate: no val top-1, not even as a column)
    for r in rows:
        folder = tmp_path / "results" / "table_m2" / "cells" / Cell("m2", int(r["row"]), r["label"], "temporal", 1, {}).slug
        session = hparams_session(folder)
        assert {k: session["hparams"][k] for k in ("grid/table", "grid/row", "grid/dataset", "grid/seed")} == \
            {"grid/table": "m2", "grid/row": r["label"], "grid/dataset": "temporal", "grid/seed": 1.0}
        assert session["hparams"]["arch/local_type"] == ("none" if r["label"] == "no local" else "lmhra")
        assert session["hparams"]["arch/t_down"] is False  # a switch stays a boolean
        assert session["metrics"] == ["hp/test_top1"] and session["status"] == "STATUS_SUCCESS"
        assert abs(session["values"]["hp/test_top1"] - float(r["top1"])) < 1e-3  # written in the test stage
        assert "hp/val_top1" not in session["values"]
        assert len(hparams_records(folder)["_hparams_/session_start_info"]) == 1

    again = grid(table, micro, tmp_path / "results", timeout=600)  # a rerun redoes nothing
    assert again.returncode == 0 and again.stdout.count("done before") == 2


def test_hardware_names_the_cpu_model_beside_its_instruction_set(tmp_path, monkeypatch):
    """results.csv's `hardware` on a CPU: its instruction set and model (two AVX-512 CPUs gave a cell other numbers),
    the model from /proc/cpuinfo's first `model name`, else the platform's word, else nothing."""
    from uv2.train import hardware as hw

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.80GHz\n"
                       "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.80GHz\n")
    assert hw.cpu_model(cpuinfo) == "Intel(R) Xeon(R) Processor @ 2.80GHz"
    monkeypatch.setattr(hw.platform, "processor", lambda: "x86_64")
    assert hw.cpu_model(tmp_path / "missing") == "x86_64"
    monkeypatch.setattr(hw, "cpu_model", lambda: "AMD EPYC 7B13")
    monkeypatch.setattr(hw, "cpu_capability", lambda: "AVX512")
    assert hw.hardware("cpu") == f"CPU AVX512 (AMD EPYC 7B13), torch {torch.__version__}"
    monkeypatch.setattr(hw, "cpu_model", lambda: "")
    assert hw.hardware("cpu") == f"CPU AVX512, torch {torch.__version__}"


def test_cells_side_by_side(micro, tmp_path):
    """--jobs 2: two worker processes run the cells as the grid's process would (same records on the same threads),
    each line whole, the grid's count from the grid's process."""
    table = write_table(tmp_path, "mj", ["temporal"], MICRO_ROWS)
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    alone = grid(table, micro, tmp_path / "alone", "--jobs", "1", timeout=600, env=one_thread)
    side = grid(table, micro, tmp_path / "side", "--jobs", "2", timeout=600, env={**one_thread, "OMP_NUM_THREADS": "2"})
    assert alone.returncode == 0 and side.returncode == 0, alone.stderr[-3000:] + side.stderr[-3000:]
    keys = ("row", "label", "status", "top1", "top5", "checkpoint_step", "config_hash")
    assert [{k: r[k] for k in keys} for r in read_results(tmp_path / "side", "mj")] == \
        [{k: r[k] for k in keys} for r in read_results(tmp_path / "alone", "mj")]
    assert [r["status"] for r in read_results(tmp_path / "side", "mj")] == ["done", "done"]
    assert "2 cells at a time, 1 thread each (--jobs)" in side.stdout  # OMP_NUM_THREADS=2 shared out
    for n, label in enumerate(("no local", "local MHRA"), 1):
        assert re.search(rf"^\[{n}/2\] table mj \| {label} \| temporal \| seed 1: top1 [\d.]+  top5 [\d.]+  \(\d+ s\)$",
                         side.stdout, re.M), side.stdout
    assert re.findall(r"^grid (\d)/2 done \(2 cells at a time\)", side.stdout, re.M) == ["1", "2"]
    assert "2/2 cells done" in (tmp_path / "side" / "table_mj" / "table.md").read_text()


def test_variance_runs_side_by_side_repeat_the_grids_cells(micro, tmp_path):
    """ablations/variance.py --jobs 2 trains its runs in two worker processes, each on the grid's one thread per
    cell: the group 'all' gives the grid's top-1 seed for seed (a run's numbers depend on its thread count)."""
    table = write_table(tmp_path, "mv", ["temporal"], MICRO_ROWS[1:])
    cells = grid(table, micro, tmp_path / "grid", "--seeds", "1,2", "--jobs", "1", timeout=600)
    assert cells.returncode == 0, cells.stderr[-3000:]
    result = subprocess.run([sys.executable, "ablations/variance.py", "--table", str(table), "--datasets",
                             str(micro / "datasets.yaml"), "--dataset", "temporal", "--seeds", "2", "--groups", "all",
                             "--jobs", "2", "--out", str(tmp_path / "variance")],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # a line per run from the parent, in the order the runs end; anywhere in stdout, which the workers write to as
    # well (a fresh-clone CI run once found only one of the two at a line's start; why is not known)
    assert re.findall(r"seed_everything(\d)_data\d: top-1", result.stdout) in (["1", "2"], ["2", "1"]), result.stdout
    (summary_file,) = (tmp_path / "variance").rglob("summary.json")
    by_seed = {int(r["seed"]): float(r["top1"]) for r in read_results(tmp_path / "grid", "mv")}
    assert json.loads(summary_file.read_text())["groups"]["all"]["top1"] == pytest.approx([by_seed[1], by_seed[2]],
                                                                                         abs=1e-3)


def test_repeated_rows_of_the_paper_tables():
    """Rows that list one model twice (spelled alike, or with the defaults written out) are one run per seed."""
    from uv2.ablation.grid import expand_cells, load_datasets, repeated_runs

    datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
    found = {}
    for name in "abcde":
        cells = expand_cells(load_table(name, REPO / "ablations" / "tables"), datasets, "tiny", [1, 2], repo=REPO)
        found[name] = {slug: (earlier.label, earlier.seed) for slug, earlier in repeated_runs(cells).items()}
    assert found["d"] == {f"r04-sequential-1-query__temporal__seed{s}": ("Sequential", s) for s in (1, 2)}
    assert found["b"] == {f"r08-1-12-r-1-5__temporal__seed{s}": ("Local MHRA x2", s) for s in (1, 2)}
    assert found["a"] == found["c"] == found["e"] == {}


def test_a_new_synthetic_generator_version_is_a_new_cell(monkeypatch):
    """A cell that reads the generated benchmark is identified by its generator version too (a new version may test
    on other videos: a resumed grid trains it again); a cell on lists of its own is not."""
    import uv2.ablation.grid as grid

    datasets = grid.load_datasets(REPO / "ablations" / "datasets.yaml")
    tables = {name: grid.load_table(name, REPO / "ablations" / "tables") for name in "ce"}
    cells = [c for name in "ce" for c in grid.expand_cells(tables[name], datasets, "tiny", [1], repo=REPO)]
    on_lists = Cell(table="x", row=0, label="lists", dataset="scene", seed=1,
                    config={"data": {"init_args": {"synthetic_set": None, "train_list": "train.csv"}}})
    before = {c.slug: c.config_hash for c in [*cells, on_lists]}
    monkeypatch.setattr(grid, "GENERATOR_VERSION", grid.GENERATOR_VERSION + 1)
    after = {c.slug: c.config_hash for c in [*cells, on_lists]}
    assert all(after[c.slug] != before[c.slug] for c in cells)  # table (e)'s co-training names its sets in `sets`
    assert after[on_lists.slug] == before[on_lists.slug]


def test_a_repeated_row_is_not_trained_again(micro, tmp_path):
    """Side by side, the row that repeats a run waits for it and takes its result and predictions."""
    rows = [*MICRO_ROWS, {"label": "local MHRA, all layers", "arch": {"local_type": "lmhra", "local_layers": "1-12"},
                          "paper": {"temporal": 65.0}}]
    table = write_table(tmp_path, "mr", ["temporal"], rows)
    result = grid(table, micro, tmp_path / "results", "--jobs", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_results(tmp_path / "results", "mr")
    assert [r["status"] for r in records] == ["done"] * 3
    assert records[2]["top1"] == records[1]["top1"] and records[2]["label"] == "local MHRA, all layers"
    assert [r["same_run_as"] for r in records] == ["", "", "local MHRA"]  # results.csv names the run it repeats
    assert result.stdout.count("(top1 ") == 1 and "the run of 'local MHRA' (top1" in result.stdout
    cells = tmp_path / "results" / "table_mr" / "cells"
    predictions = [torch.load(cells / f"{slug}__temporal__seed1" / "test_predictions.pt", weights_only=True)["scores"]
                   for slug in ("r01-local-mhra", "r02-local-mhra-all-layers")]
    assert torch.equal(*predictions)
    assert not (cells / "r02-local-mhra-all-layers__temporal__seed1" / "checkpoints").exists()  # nothing trained


def test_side_by_side_runs_the_longest_cells_first():
    """Table (c) at tiny scale: its 12 temporal cells (14 epochs) go to the workers before its 12 scene cells (4
    epochs), each group in table order; in table (d) the row that repeats "Sequential" still goes last."""
    from uv2.ablation.grid import expand_cells, load_datasets, repeated_runs
    from uv2.ablation.parallel import side_by_side_order

    datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
    cells = expand_cells(load_table("c", REPO / "ablations" / "tables"), datasets, "tiny", [1, 2, 3], repo=REPO)
    order = side_by_side_order(cells, repeated_runs(cells))
    assert sorted(n for n, _ in order) == list(range(1, 25))
    assert [c.dataset for _, c in order] == ["temporal"] * 12 + ["scene"] * 12
    assert [n for n, _ in order[:12]] == sorted(n for n, c in order[:12])  # table order within a cost
    assert order[0][1].cost == 14 * 4 and order[-1][1].cost == 4 * 4  # epochs x frames
    cells = expand_cells(load_table("d", REPO / "ablations" / "tables"), datasets, "tiny", [1], repo=REPO)
    assert [c.label for _, c in side_by_side_order(cells, repeated_runs(cells))][-1] == "Sequential, 1 query"


def test_side_by_side_refused_where_cells_share_a_device(tmp_path):
    """Cells on GPUs (paper scale) or sharing runs (table (e)) run one at a time: --jobs 2 says why and runs nothing."""
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", "c", "--scale", "paper", "--jobs", "2",
                             "--data-root", "/datasets", "--out", str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "--jobs 2: these cells run one at a time" in result.stderr
    assert "accelerator 'gpu'" in result.stderr and not (tmp_path / "table_c").exists()


@pytest.mark.parametrize("script", ["run.py", "variance.py"])
@pytest.mark.parametrize("argv", [["--help"], ["--tabel", "c"]], ids=["help", "mistyped-flag"])
def test_scripts_answer_help_and_a_mistyped_flag_before_importing_torch(script, argv):
    """ablations/run.py and variance.py: --help and an argument error come from argparse alone: the grid's modules
    (torch, timm, Lightning: about 5 s on 2 cores) are imported after the arguments are parsed."""
    probe = ("import runpy, sys\n"
             f"sys.argv = ['ablations/{script}', *{argv!r}]\n"
             f"try:\n    runpy.run_path('ablations/{script}', run_name='__main__')\n"
             "except SystemExit as stop:\n    print('exit', stop.code, 'torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    if argv == ["--help"]:
        choices = "--scale {tiny,paper}" if script == "run.py" else "of all, data, init, weights"
        assert f"usage: {script}" in result.stdout and choices in result.stdout, result.stdout
        assert result.stdout.rstrip().endswith("exit 0 False")
    else:
        assert "the following arguments are required: --table" in result.stderr
        assert result.stdout.strip() == "exit 2 False"


def test_an_out_folder_that_cannot_be_made_stops_the_grid_at_once(tmp_path, monkeypatch, capsys):
    """--out under a file: exit status 2 naming the flag and the folder, before any pretraining or cell."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablations_run", REPO / "ablations" / "run.py")
    run_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_py)
    monkeypatch.chdir(REPO)  # main moves to the repository; the test's own folder comes back after it
    (tmp_path / "a_file").write_text("")
    assert run_py.main(["--table", "c", "--out", str(tmp_path / "a_file" / "results"), "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert (f"--out {tmp_path / 'a_file' / 'results' / 'table_c'}: cannot create this folder ({tmp_path / 'a_file'} "
            f"is a file, not a folder)") in err


def test_default_jobs(monkeypatch):
    from uv2.ablation import parallel
    from uv2.ablation.parallel import default_jobs, usable_cores, why_one_at_a_time

    def cell(accelerator="cpu", devices=1, script=None):
        return Cell("t", 0, "row", "set", 1, {"trainer": {"accelerator": accelerator, "devices": devices}}, script)

    cpu = [cell(), cell()]
    monkeypatch.setattr(parallel, "available_memory_gb", lambda: 64.0)
    assert why_one_at_a_time(cpu) is None and default_jobs(cpu) == min(usable_cores(), 2)
    monkeypatch.setattr(parallel, "available_memory_gb", lambda: 1.5 * parallel.JOB_MEMORY_GB)
    assert default_jobs(cpu) == 1  # memory for one cell only
    assert default_jobs([cell()]) == 1  # never more jobs than cells
    for one_at_a_time in ([cell(), cell("gpu")], [cell(devices=2)], [cell(script="union_cotrain")]):
        assert why_one_at_a_time(one_at_a_time) and default_jobs(one_at_a_time) == 1


def test_a_cpu_cell_runs_on_cell_threads_alone_or_side_by_side():
    """A CPU cell trains on CELL_THREADS threads whatever the process had (its numbers depend on the thread count);
    the process's threads come back after it; a GPU cell keeps them."""
    import torch

    from uv2.ablation.parallel import CELL_THREADS, cell_threads

    def cell(accelerator):
        return Cell("t", 0, "row", "set", 1, {"trainer": {"accelerator": accelerator}}, None)

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(CELL_THREADS + 1)
        with cell_threads(cell("cpu")):
            assert torch.get_num_threads() == CELL_THREADS
        assert torch.get_num_threads() == CELL_THREADS + 1
        with cell_threads(cell("gpu")):
            assert torch.get_num_threads() == CELL_THREADS + 1
    finally:
        torch.set_num_threads(before)


def test_failing_cell_is_recorded_and_grid_continues(micro, tmp_path):
    """Cells that fail are recorded with the error in its own words (a setting the data module refused, which
    jsonargparse re-raises as a ValueError of its own: the SettingError's message; a field the parser refused,
    where argparse would end the grid's process), and the others run."""
    table = write_table(tmp_path, "mf", ["broken", "unset", "typo", "temporal"], MICRO_ROWS[:1])
    result = grid(table, micro, tmp_path / "results", timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]  # the grid finished, but cells failed
    assert "3 of 4 cells failed" in result.stderr
    broken, unset, typo, ok = read_results(tmp_path / "results", "mf")
    assert broken["status"] == "failed" and "malformed.csv" in broken["error"]
    assert unset["status"] == "failed" and unset["error"].startswith("SettingError: batch_size must be >= 1")
    assert typo["status"] == "failed" and typo["error"].startswith("SettingError: cell.yaml: Parser key \"data\"")
    assert "Option 'batch_sise' is not accepted" in typo["error"] and "NoneType" not in typo["error"]
    assert ok["status"] == "done"
    assert "broken: seed 1 failed" in (tmp_path / "results" / "table_mf" / "table.md").read_text()
    only_ok = grid(table, micro, tmp_path / "results", "--cell", "3", timeout=600)  # the good cell alone: success
    assert only_ok.returncode == 0, only_ok.stderr[-3000:]


def test_only_keeps_the_row_index_and_the_other_rows(micro, tmp_path):
    """--only runs one row as the row of the whole table (same cell folder, results.csv row and table.md line), and
    the table keeps what the other rows have: a row run alone later does not drop a finished one."""
    table = write_table(tmp_path, "mo", ["temporal"], MICRO_ROWS)
    first = grid(table, micro, tmp_path / "results", "--only", "1", timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / "results" / "table_mo" / "cells" / "r01-local-mhra__temporal__seed1" / "cell.json").exists()
    result = grid(table, micro, tmp_path / "results", "--only", "no local", "--merge", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_results(tmp_path / "results", "mo")
    assert [(r["row"], r["label"], r["status"]) for r in rows] == [("0", "no local", "pending"),
                                                                    ("1", "local MHRA", "done")]
    table_md = (tmp_path / "results" / "table_mo" / "table.md").read_text()
    assert "| no local | - | 60.0 |" in table_md
    assert f"| local MHRA | {float(rows[1]['top1']):.1f} (1 seed) | 65.0 |" in table_md
    # a later run of another seed adds to the table: seed 1 stays (and is not run again)
    later = grid(table, micro, tmp_path / "results", "--only", "1", "--seeds", "2", timeout=600)
    assert later.returncode == 0, later.stderr[-3000:]
    assert "1 rows x 1 datasets x 1 seeds = 1 cells" in later.stdout
    rows = read_results(tmp_path / "results", "mo")
    assert sorted((r["row"], r["seed"], r["status"]) for r in rows) == [
        ("0", "1", "pending"), ("0", "2", "pending"), ("1", "1", "done"), ("1", "2", "done")]
    assert "2/4 cells done, seeds 1, 2." in (tmp_path / "results" / "table_mo" / "table.md").read_text()


def test_image_pretraining_gets_the_grid_trainer_flags(monkeypatch, tmp_path):
    """The grid trains the tiny ViT the cells arm, where they expect it, on the devices it was given."""
    from uv2.ablation.pretrain import ensure_image_vit
    from uv2.train import cli

    calls = []
    monkeypatch.setattr(cli, "run", lambda subcommand, argv: calls.append((subcommand, argv)) or 0)
    vit_file = tmp_path / "pretrained" / "tiny_vit.pth"

    class NeedsViT:
        config = {"model": {"init_from": str(vit_file), "arch": {"vit": "tiny"}}}

    with pytest.raises(FileNotFoundError, match="did not write"):  # the stand-in `run` wrote nothing
        ensure_image_vit([NeedsViT()], {"accelerator": "gpu", "devices": 2, "num_nodes": 1}, REPO)
    (subcommand, argv), = calls
    flags = dict(zip(argv[::2], argv[1::2]))
    assert subcommand == "fit" and flags["--config"] == "experiments/image_tiny.yaml"
    assert flags["--run_dir"] == str(vit_file.parent)
    assert flags["--trainer.callbacks.init_args.filename"] == "tiny_vit.pth"
    assert flags["--trainer.accelerator"] == "gpu" and flags["--trainer.devices"] == "2"
    assert flags["--trainer.num_nodes"] == "1"


def test_grids_started_together_pretrain_the_image_vit_once(monkeypatch, tmp_path, capsys):
    """Two grids needing the same missing ViT at once (two tables, an sbatch array's tasks): one pretrains it, the
    other waits for it and arms the same file instead of training it again into the same run folder."""
    import threading

    from uv2.ablation.pretrain import ensure_image_vit
    from uv2.train import cli

    vit_file = tmp_path / "pretrained" / "tiny_vit.pth"
    started, calls = threading.Event(), []

    def pretrain(subcommand, argv):  # a stand-in for the fit: slow enough for the other grid to arrive meanwhile
        calls.append(argv)
        started.set()
        time.sleep(1.0)
        vit_file.write_bytes(b"weights")
        return 0

    monkeypatch.setattr(cli, "run", pretrain)

    class NeedsViT:
        config = {"model": {"init_from": str(vit_file), "arch": {"vit": "tiny"}}}

    first = threading.Thread(target=ensure_image_vit, args=([NeedsViT()], {}, REPO))
    first.start()
    assert started.wait(30)
    ensure_image_vit([NeedsViT()], {}, REPO)  # waits for the first grid's pretraining, then finds its file
    first.join()
    assert len(calls) == 1 and vit_file.read_bytes() == b"weights"
    assert "waiting for the image pretraining of" in capsys.readouterr().out


def test_image_pretraining_goes_on_where_the_file_system_has_no_locks(monkeypatch, tmp_path):
    """A shared file system without file locks (Lustre mounted with noflock: flock fails with ENOSYS) does not stop
    the grid: the ViT is pretrained unlocked, with a warning naming the lock file."""
    import errno

    from uv2 import io as uv2_io
    from uv2.ablation.pretrain import ensure_image_vit
    from uv2.train import cli

    vit_file = tmp_path / "pretrained" / "tiny_vit.pth"
    calls = []

    def pretrain(subcommand, argv):
        calls.append(argv)
        vit_file.write_bytes(b"w")
        return 0

    def no_locks(fd, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(cli, "run", pretrain)
    monkeypatch.setattr(uv2_io.fcntl, "flock", no_locks)

    class NeedsViT:
        config = {"model": {"init_from": str(vit_file), "arch": {"vit": "tiny"}}}

    with pytest.warns(UserWarning, match=r"\.tiny_vit\.pth\.lock: this file system has no file locks"):
        ensure_image_vit([NeedsViT()], {}, REPO)
    assert len(calls) == 1 and vit_file.read_bytes() == b"w"


def test_resume_after_kill_keeps_finished_cells(micro, tmp_path):
    table = write_table(tmp_path, "mk", ["temporal"], MICRO_ROWS)
    out = tmp_path / "results"
    cmd = [sys.executable, "ablations/run.py", "--table", str(table), "--datasets", str(micro / "datasets.yaml"),
           "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "table_mk" / "cells" / "r00-no-local__temporal__seed1" / "cell.json"
    results = out / "table_mk" / "results.csv"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (results.exists() and ",done," in results.read_text()):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads(first.read_text())["status"] == "done"
    finished_at = first.stat().st_mtime
    rows = read_results(out, "mk")  # written atomically: complete, with the second cell still pending
    assert [r["status"] for r in rows] == ["done", "pending"]

    result = grid(table, micro, out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no local | temporal | seed 1: done before" in result.stdout
    assert first.stat().st_mtime == finished_at
    assert [r["status"] for r in read_results(out, "mk")] == ["done", "done"]


def test_killed_side_by_side_grid_leaves_no_worker(micro, tmp_path):
    """SIGKILL of a --jobs 2 grid ends its worker processes too (nothing trains on unseen); a rerun finishes."""
    table = write_table(tmp_path, "mw", ["temporal"], MICRO_ROWS)
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "ablations/run.py", "--table", str(table), "--datasets",
                             str(micro / "datasets.yaml"), "--out", str(out), "--jobs", "2"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = [out / "table_mw" / "cells" / f"{slug}__temporal__seed1" / "started.json"
               for slug in ("r00-no-local", "r01-local-mhra")]
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not all(p.exists() for p in started):
        time.sleep(0.2)
    workers = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5  # SIGKILLed with the grid: gone at once (a worker that finished its cell takes longer)
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]  # gone (or a zombie of init's)
    result = grid(table, micro, out, "--jobs", "2", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["status"] for r in read_results(out, "mw")] == ["done", "done"]


def test_sbatch_script(tmp_path):
    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", "c", "--scale", "paper", "--devices", "8",
                             "--num-nodes", "2", "--data-root", "/datasets", "--out", str(out), "--slurm"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    slurm = out / "table_c" / "slurm"
    cells = (slurm / "cells.sbatch").read_text()
    assert "#SBATCH --array=0-7" in cells  # 4 rows x 2 datasets x 1 seed
    assert "#SBATCH --nodes=2" in cells and "#SBATCH --gpus-per-node=8" in cells
    assert "#SBATCH --ntasks-per-node=8" in cells
    assert "srun python ablations/run.py --table c --scale paper --devices 8 --num-nodes 2 --data-root /datasets" \
           in cells and cells.rstrip().endswith("--cell $SLURM_ARRAY_TASK_ID")
    assert "--merge" in (slurm / "merge.sbatch").read_text()
    assert "--dependency=afterany:$array_id" in (slurm / "submit.sh").read_text()
    assert not (out / "table_c" / "cells").exists()  # nothing ran


def test_sbatch_layout_is_the_cells_trainers(tmp_path):
    """Without --devices / --num-nodes the sbatch array asks for what the cells' trainers train on (table (c)'s
    recipes: 8 GPUs on one node), not 1 GPU under a trainer that asks for 8, and no GPU for cells on the CPU; cells
    that ask for other layouts, or a device count that is not a number, are refused with the flag to give."""
    from uv2.ablation.grid import Cell
    from uv2.ablation.slurm import cells_layout
    from uv2.errors import SettingError

    out = tmp_path / "results"
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", "c", "--scale", "paper", "--data-root",
                             "/datasets", "--out", str(out), "--slurm"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    cells = (out / "table_c" / "slurm" / "cells.sbatch").read_text()
    assert "#SBATCH --nodes=1" in cells and "#SBATCH --gpus-per-node=8" in cells  # experiments/_base/paper.yaml
    # at tiny scale the cells train on the CPU, one thread each: no GPU asked for
    result = subprocess.run([sys.executable, "ablations/run.py", "--table", "c", "--out", str(out), "--slurm"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    cells = (out / "table_c" / "slurm" / "cells.sbatch").read_text()
    assert "--gpus-per-node" not in cells and "#SBATCH --ntasks-per-node=1\n#SBATCH --cpus-per-task=1\n" in cells

    def cell(trainer):
        return Cell("t", 0, "r", "temporal", 1, {"trainer": trainer})

    assert cells_layout([cell({"devices": 4, "num_nodes": 2}), cell({"devices": 4, "num_nodes": 2})]) == (4, 2, False)
    assert cells_layout([cell({})]) == (1, 1, False)  # Lightning's defaults (accelerator auto: GPUs where there are)
    assert cells_layout([cell({"accelerator": "cpu", "devices": 2})]) == (2, 1, True)
    with pytest.raises(SettingError, match=r"different layouts .*\(4, 1, 'auto'\), \(8, 1, 'auto'\).*give "
                                           r"--devices, --num-nodes and --accelerator"):
        cells_layout([cell({"devices": 8}), cell({"devices": 4})])
    with pytest.raises(SettingError, match=r"trainer.devices is 'auto'.*give --devices N"):
        cells_layout([cell({"devices": "auto"})])
    with pytest.raises(SettingError, match=r"trainer.devices is \[0, 1\].*give --devices N"):  # device indices
        cells_layout([cell({"devices": [0, 1]})])


# ------------------------------------------------------------------------------------------------ table (e)
def _write_set(folder: Path, name: str, classes: list[str], train: list[tuple[str, str]], val: list[tuple[str, str]]):
    d = folder / name
    d.mkdir(parents=True)
    (d / "classes.txt").write_text("\n".join(classes) + "\n")
    (d / "train.csv").write_text("".join(f"{p},{c}\n" for p, c in train))
    (d / "val.csv").write_text("".join(f"{p},{c}\n" for p, c in val))
    return LabelSet(name, d / "train.csv", d / "val.csv", d / "classes.txt")


def test_union_by_class_name_keeps_validation_out(tmp_path):
    a = _write_set(tmp_path, "a", ["run", "jump", "swim"], [("/v/a1.mp4", "run"), ("/v/a2.mp4", "swim")],
                   [("/v/shared_val.mp4", "jump")])
    # b trains on a's validation video (removed from the union's training) and on a's a1 (kept once)
    b = _write_set(tmp_path, "b", ["jump", "ski"], [("/v/shared_val.mp4", "jump"), ("/v/b1.mp4", "ski"),
                                                  ("/v/a1.mp4", "jump")], [("/v/b_val.mp4", "ski")])
    counts = build_union([a, b], tmp_path / "union")
    classes = (tmp_path / "union" / "classes.txt").read_text().split()
    assert classes == union_classes([["run", "jump", "swim"], ["jump", "ski"]]) == ["jump", "run", "ski", "swim"]
    train = [line.split(",") for line in (tmp_path / "union" / "train.csv").read_text().split()]
    assert [(Path(p).name, classes[int(c)]) for p, c in train] == [("a1.mp4", "run"), ("a2.mp4", "swim"),
                                                                   ("b1.mp4", "ski")]
    assert counts == {"classes": 4, "train": 3, "val": 2, "removed_from_train": 1,  # b's copy of a val video
                      "repeated_in_train": 1}  # a1 in both training lists


def test_union_identity_by_name_across_roots(tmp_path):
    """Kinetics-style lists under different roots: the same file name is the same video."""
    a = _write_set(tmp_path, "a", ["run"], [("/k400/x1.mp4", "run")], [("/k400/abc.mp4", "run")])
    b = _write_set(tmp_path, "b", ["run"], [("/k600/abc.mp4", "run"), ("/k600/x2.mp4", "run")], [("/k600/v.mp4", "run")])
    assert build_union([a, b], tmp_path / "by_path")["removed_from_train"] == 0
    assert build_union([a, b], tmp_path / "by_name", identity="name")["removed_from_train"] == 1
    with pytest.raises(ValueError, match="valid choices: path, name, youtube_id"):
        build_union([a, b], tmp_path / "x", identity="hash")


def test_union_identity_by_youtube_id_cli(tmp_path, capsys):
    """The official K710 rule: one YouTube id is one video, whatever its segment times or root; `python -m uv2 union`
    writes the union and reports its counts."""
    a = _write_set(tmp_path, "k400", ["run", "swim"], [("/k400/train/aaaaaaaaaaa_000010_000020.mp4", "run")],
                   [("/k400/val/bbbbbbbbbbb_000000_000010.mp4", "swim")])
    b = _write_set(tmp_path, "k600", ["run", "ski"], [("/k600/train/bbbbbbbbbbb_000002_000012.mp4", "ski"),
                                                     ("/k600/train/aaaaaaaaaaa.mp4", "run"),
                                                     ("/k600/train/ccccccccccc_000001_000011.mp4", "ski")],
                   [("/k600/val/ddddddddddd.mp4", "run")])
    out = tmp_path / "k710"
    argv = [str(out), "--identity", "youtube_id"]
    for s in (a, b):
        argv += ["--set", s.name, str(s.train_list), str(s.val_list), str(s.classes_file)]
    assert union_main(argv) == 0
    assert "3 classes, 2 training videos (1 removed as another set's validation videos, 1 repeats dropped)" \
        in capsys.readouterr().out
    assert [Path(line.split(",")[0]).name for line in (out / "train.csv").read_text().split("\n") if line] == \
        ["aaaaaaaaaaa_000010_000020.mp4", "ccccccccccc_000001_000011.mp4"]
    short = _write_set(tmp_path, "short", ["run"], [("/x/abc.mp4", "run")], [("/x/vvvvvvvvvvv.mp4", "run")])
    with pytest.raises(ValueError, match=r"abc.mp4: the file name is shorter than a YouTube id"):
        build_union([short], tmp_path / "y", identity="youtube_id")
    assert union_main([str(out), "--set", "x", "nope.csv", "nope.csv", "nope.txt"]) == 2
    assert "uv2 union: error: video list not found: nope.csv" in capsys.readouterr().err


def test_slice_head_by_class_name():
    union = ["jump", "run", "ski", "swim"]
    state = {"head.fc.weight": torch.arange(8.0).view(4, 2), "head.fc.bias": torch.arange(4.0), "x": torch.ones(1)}
    sliced = slice_head(state, union, ["swim", "jump"])
    assert sliced["head.fc.weight"].tolist() == [[6.0, 7.0], [0.0, 1.0]]
    assert sliced["head.fc.bias"].tolist() == [3.0, 0.0] and sliced["x"] is state["x"]
    with pytest.raises(ValueError, match=r"1 of the 2 classes of the target set are not in .*'fly'"):
        slice_head(state, union, ["fly", "run"])


def test_table_e_training_scripts_micro(tmp_path):
    """Table (e)'s four scripts on the micro scene sets: every cell ends done; the union-label model is fitted once
    for both union scripts and each co-trained model once for its three cells; heads are sliced by class name."""
    root = tmp_path
    sets = ["scene_a", "scene_b", "scene_c"]
    spec = micro_grid_spec(root)
    datasets = {s: {"name": s, "paper": None, "tiny": {**spec, "experiment": "experiments/scene_tiny.yaml",
                                                        "num_classes": 8, "data": {**spec["data"], "synthetic_set": s}}}
                for s in sets}
    (root / "datasets.yaml").write_text(yaml.safe_dump(datasets))
    scripts = ["individual", "cotrain", "union_cotrain", "union_individual"]
    table = write_table(root, "me", sets, [{"label": s, "script": s, "paper": {"scene_a": 80.0}} for s in scripts])
    result = grid(table, root, root / "results", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [(r["label"], r["dataset"], r["status"]) for r in read_results(root / "results", "me")] == \
           [(s, d, "done") for s in scripts for d in sets]
    assert result.stdout.count("fitting the union-label model") == 1
    assert result.stdout.count("co-training one model on scene_a, scene_b, scene_c") == 2

    out = root / "results" / "table_me"

    def shared(run: str) -> Path:  # out/<run>/seed1-<hash of the configs it serves>, one per run
        (folder,) = (out / run).glob("seed1-*")
        return folder

    cotrained = torch.load(shared("cotrain") / "run/checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]
    assert cotrained["sets"] == {s: 8 for s in sets} and len(cotrained["class_names"]) == 24
    first_b = (root / "synthetic/micro_seed0/scene_b/classes.txt").read_text().split()[0]
    assert cotrained["class_names"][8] == f"scene_b/{first_b}"
    predictions = torch.load(out / "cells" / "r01-cotrain__scene_b__seed1" / "test_predictions.pt", weights_only=True)
    assert predictions["scores"].shape == (8, 8) and predictions["class_names"][0] == first_b  # its own head only
    assert torch.allclose(predictions["scores"].sum(1), torch.ones(8))

    # HPARAMS: the co-trained run opens a session per set (its sub-run), so every cell of the table is listed
    results = {(r["label"], r["dataset"]): float(r["top1"]) for r in read_results(root / "results", "me")}
    mean = hparams_session(shared("cotrain") / "run")
    assert mean["hparams"]["grid/dataset"] == "scene_a+scene_b+scene_c" and mean["status"] == "STATUS_SUCCESS"
    for s in sets:
        session = hparams_session(shared("cotrain") / "run" / s)
        assert session["hparams"]["grid/dataset"] == s and session["hparams"]["grid/row"] == "cotrain"
        assert abs(session["values"]["hp/test_top1"] - results[("cotrain", s)]) < 1e-3
        assert "hp/val_top1" not in session["values"] and session["status"] == "STATUS_SUCCESS"
    assert hparams_session(shared("union") / "run")["hparams"]["grid/row"] == "union-label pretraining (shared)"

    union = torch.load(shared("union") / "run/checkpoints/last.ckpt", weights_only=True)
    union_names = union["hyper_parameters"]["class_names"]
    heads = torch.load(shared("union_cotrain") / "init_from_union.ckpt", weights_only=True)["state_dict"]
    target = [n for s in sets for n in (root / f"synthetic/micro_seed0/{s}/classes.txt").read_text().split()]
    rows = [union_names.index(n) for n in target]
    assert torch.equal(heads["head.fc.weight"], union["state_dict"]["model.head.fc.weight"][rows])


def test_grid_order_benchmark_replays_the_cell_times(tmp_path):
    """benchmarks/grid_order.py on table (c) with one seed, temporal fits of 100 s and scene fits of 20 s: in table
    order (scene, temporal, scene, ...) two workers end at 260 s, longest first at 240 s, an even split."""
    folder = tmp_path / "table_c"
    folder.mkdir()
    with (folder / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "dataset", "seed", "status", "train_s"])
        for row in range(4):
            writer.writerows([[row, "scene", 1, "done", 20.0], [row, "temporal", 1, "done", 100.0]])
    out = subprocess.run([sys.executable, "benchmarks/grid_order.py", "--table", "c", "--results", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r"table order\s+260 s", out) and re.search(r"longest first\s+240 s", out), out
    assert re.search(r"even split\s+240 s", out) and "8 cells, 480 s of fits on 2 workers" in out, out


def sigint_when(proc: subprocess.Popen, ready, wait_s: float = 300) -> str:
    """SIGINT to `proc` once `ready()` holds (or after `wait_s`, or as soon as it has ended); its output."""
    try:
        deadline = time.time() + wait_s
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.2)
        if proc.poll() is None:  # an ended process's pid may be another's by now
            os.kill(proc.pid, signal.SIGINT)
        return proc.communicate(timeout=120)[0]
    finally:
        proc.kill()


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigint_stops_the_grid_and_its_cells(micro, tmp_path, jobs):
    """SIGINT to the grid's process (a Ctrl-C; with --jobs 2 sent to that process alone, `kill -INT`, where a Ctrl-C
    at a terminal reaches the workers too) stops the cells it runs rather than going on to the next or waiting for
    them to end: the grid exits with 130, each cell recorded as interrupted, with a checkpoint to resume from."""
    table = tmp_path / "mi.yaml"
    table.write_text(yaml.safe_dump({"title": "micro mi", "datasets": ["temporal"], "rows": MICRO_ROWS,
                                     "tiny_epochs": {"temporal": 1000}}))  # minutes per cell
    out = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "ablations/run.py", "--table", str(table), "--datasets",
                             str(micro / "datasets.yaml"), "--out", str(out), "--jobs", str(jobs)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    cells = [out / "table_mi" / "cells" / f"{slug}__temporal__seed1"
             for slug in ("r00-no-local", "r01-local-mhra")[:jobs]]  # those running when the signal comes
    output = sigint_when(proc, lambda: all((cell / "checkpoints" / "last.ckpt").exists() for cell in cells))
    assert proc.returncode == EXIT_INTERRUPTED, output[-3000:]
    for cell in cells:
        assert json.loads((cell / "cell.json").read_text())["status"] == "interrupted"
        assert hparams_session(cell)["status"] == "STATUS_UNKNOWN"  # TensorBoard has no "aborted"
    assert "interrupted; rerun the same command to resume" in output
    assert [r["status"] for r in read_results(out, "mi")][jobs:] == ["pending"] * (2 - jobs)  # none started after


def test_sigint_stops_variance_runs_and_cancels_the_queued_ones(micro, tmp_path):
    """SIGINT to ablations/variance.py --jobs 2 (its process alone, as `kill -INT`): the two running runs stop,
    resumable, the third does not start after them, and the script says how to resume, exit status 130."""
    table = tmp_path / "vi.yaml"
    table.write_text(yaml.safe_dump({"title": "micro vi", "datasets": ["temporal"], "rows": MICRO_ROWS[1:],
                                     "tiny_epochs": {"temporal": 1000}}))  # minutes per run
    out = tmp_path / "variance"
    proc = subprocess.Popen([sys.executable, "ablations/variance.py", "--table", str(table), "--datasets",
                             str(micro / "datasets.yaml"), "--dataset", "temporal", "--seeds", "3", "--groups", "all",
                             "--jobs", "2", "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=sigint_as_at_a_terminal)
    output = sigint_when(proc, lambda: len(list(out.rglob("last.ckpt"))) == 2)
    assert proc.returncode == EXIT_INTERRUPTED, output[-3000:]
    assert "interrupted: finished runs are kept in" in output and "Traceback" not in output, output[-3000:]
    runs = sorted(p.name for p in out.glob("table_vi/*/seed_everything*"))
    assert runs == ["seed_everything1_data1", "seed_everything2_data2"], runs  # the third never started


def test_tiny_probes_expand_to_the_cells_they_describe(tmp_path, monkeypatch):
    """benchmarks/tiny_probes.py: each probe's table file names rows of tables (a) and (c) that exist and expands,
    with its datasets file, to cells of its dataset with the probe's switches, frames, schedule and set."""
    from benchmarks import tiny_probes
    from uv2.ablation.grid import expand_cells, load_datasets

    made = []
    monkeypatch.setattr(tiny_probes, "generate", lambda root, **kw: made.append((root, kw)))
    presets = load_datasets(REPO / "ablations" / "datasets.yaml")
    for name, probe in tiny_probes.PROBES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_probes.table_file(name, probe)))
        datasets = tiny_probes.datasets_file(probe, tmp_path / name)
        cells = expand_cells(load_table(str(path), REPO / "ablations" / "tables"), datasets, "tiny", [1], repo=REPO)
        assert [c.label for c in cells] == [label for _, label in probe.rows]
        for cell in cells:
            arch, data, optim = (cell.config["model"]["arch"], cell.config["data"]["init_args"],
                                 cell.config["model"]["optim"])
            assert cell.dataset == ("scene" if name.startswith("scene") else "temporal")
            t_down = name.startswith("t-down") or cell.label.endswith("T-Down (2x frames)")
            assert arch.get("t_down", False) == t_down and arch["num_frames"] == (8 if t_down else 4)
            assert optim.get("min_lr_factor") == (0.3 if name.endswith("floor") else None)
            assert optim.get("beta2") == (0.95 if name == "beta2" else None)
            assert data.get("time_reversal") == (0.5 if name == "time-reversal" else None)
            probe_epochs = {"scene-2-epochs": 2, "large-objects-batch-4": 8, "large-objects-10-epochs": 10,
                            "large-objects-20-epochs": 20, "large-objects-30-epochs": 30}
            epochs = probe_epochs.get(name, presets[cell.dataset]["tiny"]["epochs"])
            assert cell.config["trainer"]["max_epochs"] == epochs
            batch = 4 if name == "large-objects-batch-4" else 16 if cell.dataset == "scene" else 8
            assert data["batch_size"] == batch
            assert optim["lr"] == (7.5e-5 if cell.dataset == "scene" and name != "scene-2-epochs" else 1.5e-4)
            synthetic = tmp_path / name / "synthetic"
            own_set = probe.motion_scale or probe.object_scale
            assert data.get("train_list") == (str(synthetic / "temporal" / "train.csv") if own_set else None)
    assert made == [(tmp_path / name / "synthetic",
                     {"size": "tiny", "seed": 0, "sets": ["temporal"], "motion_scale": motion, "object_scale": objects})
                    for name, motion, objects in (("half-motion", 0.5, None), ("long-motion", 1.5, None),
                                                  ("large-objects", None, 1.3), ("large-objects-one-kind", None, 1.3),
                                                  ("large-objects-batch-4", None, 1.3),
                                                  ("large-objects-10-epochs", None, 1.3),
                                                  ("large-objects-20-epochs", None, 1.3),
                                                  ("large-objects-30-epochs", None, 1.3))]
    with pytest.raises(ValueError, match="probe x: table \\(c\\) has no row 'none'"):
        tiny_probes.table_file("x", tiny_probes.Probe(rows=(("c", "none"),)))


def test_a_table_sets_its_own_tiny_epochs(tmp_path):
    """`tiny_epochs` gives a table's cells their own epochs per dataset at tiny scale (and no cell validates: its
    test scores the same videos); a bad entry is refused with the file, the field and what it accepts."""
    from uv2.ablation.grid import TableError, expand_cells, load_datasets

    datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
    spec = {"title": "t", "datasets": ["scene", "temporal"], "tiny_epochs": {"temporal": 30},
            "rows": [{"label": "r", "arch": {}, "paper": {}}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    cells = expand_cells(load_table(str(tmp_path / "t.yaml"), tmp_path), datasets, "tiny", [1], repo=REPO)
    epochs = {c.dataset: (c.config["trainer"]["max_epochs"], c.config["trainer"]["limit_val_batches"]) for c in cells}
    assert epochs == {"scene": (datasets["scene"]["tiny"]["epochs"], 0), "temporal": (30, 0)}
    for bad in ({"kinetics": 30}, {"temporal": 0}, {"temporal": "30"}):
        (tmp_path / "t.yaml").write_text(yaml.safe_dump({**spec, "tiny_epochs": bad}))
        with pytest.raises(TableError, match=r"t\.yaml: tiny_epochs: .*one of the table's datasets \(scene, temporal"):
            load_table(str(tmp_path / "t.yaml"), tmp_path)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({**spec, "tiny_epochs": [30]}))
    with pytest.raises(TableError, match=r"t\.yaml: tiny_epochs: \[30\]; expected epochs per dataset"):
        load_table(str(tmp_path / "t.yaml"), tmp_path)
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({**spec, "epochs": 3}))
    with pytest.raises(TableError, match=r"unknown fields \['epochs'\]; valid: title, datasets, rows, tiny_epochs, "
                                         r"tiny_overrides"):
        load_table(str(tmp_path / "t.yaml"), tmp_path)


def test_a_table_changes_its_datasets_tiny_experiment(tmp_path):
    """`tiny_overrides` changes a dataset's tiny experiment for one table before its rows' switches: a row's switch
    wins and its frames_factor multiplies the table's frames; the other datasets and the paper scale are untouched;
    a bad entry is refused with the file, the field and what it accepts."""
    from uv2.ablation.grid import TableError, expand_cells, load_datasets

    datasets = load_datasets(REPO / "ablations" / "datasets.yaml")
    change = {"model": {"arch": {"t_down": True, "num_frames": 8}, "optim": {"min_lr_factor": 0.3}}}
    spec = {"title": "t", "datasets": ["scene", "temporal"], "tiny_overrides": {"temporal": change},
            "rows": [{"label": "r", "arch": {}, "paper": {}},
                     {"label": "s", "arch": {"t_down": False}, "frames_factor": 2, "paper": {}}]}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    table = load_table(str(tmp_path / "t.yaml"), tmp_path)

    def designs(scale):
        cells = expand_cells(table, datasets, scale, [1], repo=REPO)
        archs = [ModelConfig(**c.config["model"]["arch"]) for c in cells]
        return {(c.label, c.dataset): (arch.t_down, arch.num_frames, c.config["model"]["optim"].get("min_lr_factor"))
                for c, arch in zip(cells, archs)}

    assert designs("tiny") == {("r", "scene"): (False, 4, None), ("r", "temporal"): (True, 8, 0.3),
                               ("s", "scene"): (False, 8, None), ("s", "temporal"): (False, 16, 0.3)}
    paper = designs("paper")
    assert paper[("r", "temporal")] == (True, 16, None) and paper[("s", "temporal")] == (False, 32, None)
    for bad in ({"kinetics": change}, {"temporal": 3}, [change]):
        (tmp_path / "t.yaml").write_text(yaml.safe_dump({**spec, "tiny_overrides": bad}))
        with pytest.raises(TableError, match=r"t\.yaml: tiny_overrides: .*config sections per dataset of the table "
                                             r"\(scene, temporal\)"):
            load_table(str(tmp_path / "t.yaml"), tmp_path)


def test_a_cells_test_is_of_the_averaged_weights_last_ckpt_holds(micro, tmp_path):
    """With Lightning's EMAWeightAveraging among a cell's callbacks, last.ckpt's weights are the average (the current
    ones beside them, for resuming). The cell's test is of the average, as `python -m uv2 test --ckpt_path
    last.ckpt` tests it, not of the current weights the callback would load back in the trainer that fitted."""
    import logging

    import pytorch_lightning as pl

    from uv2.ablation.grid import expand_cells, load_datasets
    from uv2.ablation.launch import fit_and_test
    from uv2.experiment import deep_merge

    if not hasattr(pl.callbacks, "EMAWeightAveraging"):
        pytest.skip("Lightning < 2.6 has no weight averaging")

    class TestedWeights(pl.Callback):
        def on_test_start(self, trainer, pl_module) -> None:
            self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}

    table = load_table(str(write_table(tmp_path, "ema", ["temporal"], MICRO_ROWS[1:])), REPO / "ablations" / "tables")
    cell = expand_cells(table, load_datasets(micro / "datasets.yaml"), "tiny", [1], repo=REPO)[0]
    ema = {"class_path": "pytorch_lightning.callbacks.EMAWeightAveraging", "init_args": {"decay": 0.5}}
    config = tmp_path / "cell.yaml"
    config.write_text(yaml.safe_dump(deep_merge(cell.config, {"trainer": {"callbacks": [ema]}})))
    tested = TestedWeights()
    levels = {name: logging.getLogger(name).level for name in ("pytorch_lightning", "lightning_fabric", "uv2")}
    try:
        fit_and_test(config, tmp_path / "run", resume=False, callbacks=[tested])
    finally:  # fit_and_test quiets Lightning's and uv2's loggers, as a grid's process does
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    averaged, current = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert any(not torch.equal(averaged[k], current[k]) for k in averaged)
    assert tested.weights.keys() == averaged.keys()
    assert all(torch.equal(tested.weights[k], averaged[k]) for k in averaged)
