"""Packaging: the wheel that `pip install .` builds holds every module of uv2, `python -m uv2 env` reports, and
`python -m uv2` tells bad input from bugs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_wheel_holds_every_module(tmp_path):
    # build from a copy, so the checkout gets no build/ or egg-info folders
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "uv2", src / "uv2", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = out.glob("uv2-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "uv2").rglob("*.py") if "__pycache__" not in p.parts}
    assert {"uv2/train/cli.py", "uv2/ablation/runner.py", "uv2/data/decode.py"} <= modules
    missing = sorted(modules - inside)
    assert not missing, f"not in the wheel: {missing} (a package folder without __init__.py?)"
    metadata = next(n for n in inside if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any(r.startswith("Requires-Dist: av<20,>=12") or r.startswith("Requires-Dist: av>=12,<20")
               for r in requires), requires


@pytest.mark.parametrize("as_json", [True, False])
def test_env_report(as_json):
    cmd = [sys.executable, "-m", "uv2", "env"] + (["--json"] if as_json else [])
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    if not as_json:
        for label in ("Python", "CPU", "torch", "GPUs", "PyAV", "video decoders", "pytorch-lightning", "timm",
                      "torchmetrics", "decode self-test"):
            assert any(line.startswith(label + " ") for line in result.stdout.splitlines()), label
        return
    info = json.loads(result.stdout)
    assert {"python", "platform", "processor", "cpu_count", "torch", "pyav", "libraries", "decode_self_test"} <= set(info)
    from uv2.train.hardware import cpu_model

    assert info["processor"] == (cpu_model() or None)  # the model results.csv's hardware names
    assert {"version", "cuda_build", "cuda_available", "cudnn", "gpus"} <= set(info["torch"])
    assert {"version", "ffmpeg", "libraries", "video_decoders", "open_keywords"} <= set(info["pyav"])
    assert "h264" in info["pyav"]["video_decoders"]
    assert {"pytorch-lightning", "timm", "torchmetrics", "torchdata", "jsonargparse"} <= set(info["libraries"])
    assert info["decode_self_test"]["ok"] is True


def test_bad_input_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch):
    """An InputError (here a missing experiment file) ends `python -m uv2` with one line naming the file and exit
    status 2; any other exception is a bug and propagates with its traceback."""
    result = subprocess.run([sys.executable, "-m", "uv2", "fit", "--config", "experiments/nope.yaml"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    missing = REPO / "experiments" / "nope.yaml"
    assert result.stderr.splitlines()[-1] == f"uv2 fit: error: {missing}: no such experiment file"

    from uv2 import __main__ as entry

    monkeypatch.setitem(entry.COMMANDS, "fit", ("json:loads", "a command whose code fails"))
    with pytest.raises(TypeError):  # json.loads(["x"]): not bad input
        entry.main(["fit", "x"])
