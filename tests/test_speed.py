"""benchmarks/speed.py runs for both released designs' shapes (shrunk to CPU size) and reports clips/s and MFU.

Nothing here is timed: the runs are 1 warm-up step, 1 timed step, 1 round, and only the report's content is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

# the released B/16 designs at CPU size: the experiments' switches, a 64-wide 12-layer ViT on 32px, 4 frames
TINY_VIT = {"vit_overrides": {"width": 64, "heads": 1, "img_size": 32, "patch_size": 8}, "num_frames": 4}


def speed(*args: str) -> dict:
    """Run benchmarks/speed.py with --json; its last stdout line, parsed."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "speed.py"), "--warmup", "1", "--iters", "1",
                           "--rounds", "1", "--threads", "1", "--batch", "2", "--json", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("config,path,local", [
    ("experiments/k400/k400_b16_8x224.yaml", "auto", "none"),  # K400 design: no local blocks at all
    ("experiments/ssv2/ssv2_b16_16x224.yaml", "cuda", "lmhra"),  # SSv2 design (local MHRA x2, T-Down), GPU formulation
], ids=["k400_local_none", "ssv2_lmhra_x2_tdown"])
def test_speed_json(config, path, local):
    report = speed("--config", config, "--arch", json.dumps(TINY_VIT), "--path", path, "--peak-tflops", "1")
    assert report["arch"]["local_type"] == local and report["path"] == path
    assert report["arch"]["t_down"] == (local == "lmhra") and report["frames"] == 4 and report["size"] == 32
    assert report["device"] == "cpu" and report["peak_tflops"] == 1.0
    assert set(report["results"]) == {"official", "uv2"}  # the official layout expresses both designs
    macs = report["gmacs_per_clip"] * 1e9
    assert macs > 0
    for impl, modes in report["results"].items():
        for mode, r in modes.items():
            assert r["clips_per_s"] > 0 and r["s_per_step"] > 0 and r["peak_mb"] >= 0, (impl, mode)
            assert r["clips_per_s"] == pytest.approx(2 / r["s_per_step"], rel=1e-3)
            flops = (6 if mode == "train" else 2) * macs  # model FLOPs per clip
            assert r["mfu"] == pytest.approx(flops * r["clips_per_s"] / 1e12, rel=1e-2, abs=1e-5), (impl, mode)
    assert report["max_abs_diff"]["official"] < 1e-4  # same weights, same outputs
    assert set(report["speedup"]["uv2_over_official"]) == {"train", "eval"}
    assert report["profile"] is None  # only with --profile


def test_speed_profiles_a_training_step():
    """--profile N: uv2's N costliest operations of a training step (CPU here), by own time, with their shares."""
    report = speed("--config", "experiments/ssv2/ssv2_b16_16x224.yaml", "--arch", json.dumps(TINY_VIT),
                   "--impl", "uv2", "--profile", "12")
    profile = report["profile"]
    assert len(profile) == 12 and all(p["name"] and p["calls"] >= 1 for p in profile)
    assert [p["ms"] for p in profile] == sorted((p["ms"] for p in profile), reverse=True)
    assert all(0 < p["share"] <= 1 for p in profile) and sum(p["share"] for p in profile) <= 1 + 1e-6
    # the matrix products: among the 12 costliest (one profiled step of this small model can put attention's
    # backward and AdamW ahead of them, so a top 5 held them only on most runs)
    assert any(p["name"] in ("aten::mm", "aten::addmm", "aten::bmm") for p in profile)


def test_a_measuring_process_keeps_its_model(monkeypatch):
    """A measuring process builds its model on its first round and keeps it: later rounds time the same model
    (nothing built again), without checking the outputs or profiling again."""
    from benchmarks import speed as speed_module
    from uv2.models import ModelConfig

    built = []
    build = speed_module.build
    monkeypatch.setattr(speed_module, "build", lambda *a: built.append(a[0]) or build(*a))
    monkeypatch.setattr(speed_module, "_MODELS", {})
    cfg = ModelConfig(**{**speed_module.DEFAULT_ARCH, **TINY_VIT, "vit": "vit_s16"}).to_dict()
    args = dict(threads=1, path="auto", device="cpu", official_code=None, batch=2, dtype="fp32", warmup=1, iters=1,
                profile=3, check=True)
    train = [speed_module.measure("uv2", "train", cfg, args) for _ in range(2)]
    assert built == ["uv2"] and len(train[0]["profile"]) == 3 and "profile" not in train[1]
    speed_module._MODELS.clear()  # the eval process: a model of its own
    evals = [speed_module.measure("uv2", "eval", cfg, args) for _ in range(2)]
    assert built == ["uv2", "uv2"] and "fp32_outputs" in evals[0] and "fp32_outputs" not in evals[1]
    assert all(r["seconds"] > 0 for r in train + evals)


def test_speed_ablation_row_without_official_layout():
    """A table row the official layout cannot express (table b: ST-Adapter) times uv2 alone, without MFU when no
    peak is known."""
    report = speed("--table", "b", "--row", "2", "--scale", "tiny", "--frames", "4")
    assert report["arch"]["local_type"] == "st_adapter" and report["setting"].startswith("table (b) row 2")
    assert set(report["results"]) == {"uv2"} and report["peak_tflops"] is None
    assert report["results"]["uv2"]["train"]["mfu"] is None and report["speedup"] == {}


def gpu_check(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu-smoke", "--out", str(tmp_path),
                           *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def test_gpu_check_reports_every_stage_within_its_budget(tmp_path):
    """With no time left every stage is skipped, not run, and the summary still lists each one."""
    proc = gpu_check(tmp_path, "--budget", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.txt").read_text()
    for stage in ("env", "k400", "ssv2", "feed", "control", "bench", "fit", "resume"):
        assert f"| {stage} | skipped: the 0s budget is spent |" in summary
    assert "| tiny |" not in summary  # opt-in: named in --stages


def test_gpu_check_runs_the_stages_asked_for(tmp_path):
    """--stages runs env and the stages named, no other; an unknown stage or a round count below 1 is an error that
    says what is valid, before anything runs."""
    proc = gpu_check(tmp_path, "--budget", "0", "--stages", "ssv2,fit_compiled,tiny")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.txt").read_text()
    for stage in ("env", "ssv2", "fit_compiled", "tiny"):  # fit_compiled asks for --compile
        assert f"| {stage} | skipped: the 0s budget is spent |" in summary
    assert "| k400 |" not in summary and "| compile |" not in summary and "== k400: not among --stages" in proc.stdout
    proc = gpu_check(tmp_path / "bad", "--stages", "ssv2,speed")
    assert proc.returncode == 2 and "--stages: no stage speed (stages: env augment feed k400" in proc.stderr
    proc = gpu_check(tmp_path / "bad", "--rounds", "0")
    assert proc.returncode == 2 and "--rounds: 0 is not a positive integer" in proc.stderr


@pytest.mark.slow
def test_gpu_check_cpu_smoke(tmp_path):
    """Every stage of benchmarks/gpu_check.sh at CPU size: both designs timed, the fit trained, one summary."""
    proc = gpu_check(tmp_path, "--budget", "1500")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.txt").read_text()
    for stage in ("env", "k400", "ssv2", "feed", "control", "bench", "fit", "resume"):
        assert f"| {stage} | ok |" in summary, summary
    assert "| deterministic_false | bit-identical | bit-identical |" in summary  # resume_check on the CPU
    # feed: one fit per num_repeats, and one without RandAugment
    assert "| 1 | yes | 4 x 1 |" in summary and "| 2 | yes | 2 x 2 |" in summary and "| 1 | no | 4 x 1 |" in summary
    assert "| k400 | uv2 | train | 2 |" in summary and "| ssv2 | official | eval | 2 |" in summary
    assert "max |logits uv2 - official|" in summary and "checkpoint written" in summary
    assert "ssv2: uv2 training step, costliest kernels by own device time" in summary
    assert json.loads((tmp_path / "k400.log").read_text().strip().splitlines()[-1])["arch"]["local_type"] == "none"


@pytest.mark.slow
def test_gpu_check_tiny_stage_cpu_smoke(tmp_path):
    """The tiny stage at CPU size: table (c)'s temporal column through ablations/run.py, one cell of one epoch, its
    table.md in OUT and in the summary."""
    proc = gpu_check(tmp_path, "--budget", "600", "--stages", "tiny")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (tmp_path / "summary.txt").read_text()
    assert "| tiny | ok |" in summary and "tiny (table (c), temporal set):" in summary, summary
    table = (tmp_path / "tiny_table.md").read_text()
    assert re.search(r"\| 9-12, no DPE \| \d+\.\d \(1 seed\) \|", table) and "seed 1 pending" in table, table
    assert "temporal" in (tmp_path / "tiny_results.csv").read_text()


def test_resume_check_compares_weights_and_optimizer_state():
    """benchmarks/resume_check.py's comparison of two final checkpoints: identical ones are bit-identical; a weight
    one bit apart and an AdamW moment 1e-3 apart are both found and counted, the larger difference measured;
    checkpoints of different steps are refused."""
    import torch

    from benchmarks.resume_check import compare

    def checkpoint(step: int = 30) -> dict:
        weights = {"w": torch.linspace(-1, 1, 6), "b": torch.zeros(2)}
        moments = {0: {"step": torch.tensor(30.0), "exp_avg": torch.full((6,), 0.5), "exp_avg_sq": torch.ones(6)}}
        return {"global_step": step, "state_dict": weights, "optimizer_states": [{"state": moments}]}

    assert compare(checkpoint(), checkpoint()) == dict(identical=True, tensors_differing=0, tensors=5,
                                                       max_abs_diff=0.0, first_differing=[])
    nudged = checkpoint()
    nudged["state_dict"]["w"][2] = torch.nextafter(nudged["state_dict"]["w"][2], torch.tensor(2.0))
    nudged["optimizer_states"][0]["state"][0]["exp_avg"][0] += 1e-3
    result = compare(nudged, checkpoint())
    assert not result["identical"] and result["tensors_differing"] == 2
    assert result["first_differing"] == ["weight w", "optimizer 0 param 0 exp_avg"]
    assert result["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(SystemExit, match="different steps"):
        compare(checkpoint(15), checkpoint())


def test_augment_cost_counts_the_batch_augmentation(capsys):
    """benchmarks/augment_cost.py: the operations of a RandAugment batch (views apart) and its CPU time, grouped in
    passes and clip by clip (the same values), per op too."""
    from benchmarks.augment_cost import main

    assert main(["--batch", "4", "--frames", "2", "--size", "32", "--repeats", "1", "--per-op"]) == 0
    out = capsys.readouterr().out
    planned, passes = (int(out.split(marker)[1].split()[0]) for marker in ("clips of 2x32x32 (cpu): ", "plans, "))
    ops = {name: int(out.split(f"{name} tensor operations per batch: ")[1].split()[0])
           for name in ("batched passes ", "clip by clip   ")}
    assert 0 < passes <= planned  # RandAugment ops in the 4 clips' plans, grouped
    assert all(n > planned for n in ops.values())  # every op of a plan is at least one tensor operation
    assert out.count("CPU time (1 thread(s)) ") == 2 and "outputs equal: True" in out
    per_op = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if line.endswith(" operations")}
    assert per_op and all(n >= 1 for n in per_op.values())  # each op of the plans, alone on one clip
    geometric = {per_op[name] for name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
                 if name in per_op}
    assert len(geometric) <= 1  # one affine sampler behind all of them
