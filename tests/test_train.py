"""Training: every experiment config runs, 2-process CPU DDP, predict, the non-finite guard (resume: test_resume.py)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from unittest.mock import patch

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from tests.data_helpers import write_mit_layout, write_ssv1_layout
from tests.helpers import REPO
from uv2.data.synthetic import ensure_synthetic
from uv2.errors import InputError
from uv2.experiment import load_experiment
from uv2.io import CheckpointError, safe_load
from uv2.models import ModelConfig
from uv2.train.cli import expand_argv, quiet_library_notices, remove_stale_config_dirs, run
from uv2.train.guard import NonFiniteLossError
from uv2.train.module import VideoClassifier
from uv2.train.predict import main as predict_main

# every runnable experiment: the CPU presets and the paper's recipes (experiments/<dataset>/), not the bases
EXPERIMENTS = sorted(p for p in (REPO / "experiments").rglob("*.yaml")
                     if not p.name.startswith("_") and "_base" not in p.relative_to(REPO / "experiments").parts)
SYNTH_SEED = 0


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """The micro synthetic benchmark, generated once per test session (its parent is the synthetic_root)."""
    parent = tmp_path_factory.mktemp("synthetic")
    ensure_synthetic(parent / f"micro_seed{SYNTH_SEED}", "micro", SYNTH_SEED)
    return parent


def micro_data_args(root: Path, image: bool = False, crop: int = 32, layout: dict[str, str] | None = None) -> list[str]:
    """Overrides that point any experiment at the micro synthetic benchmark, small and single-process; ``layout``:
    the benchmark's temporal set written in a dataset's release layout (list_format and lists, from
    tests/data_helpers.py) instead of its own lists."""
    args = ["--data.init_args.synthetic_size", "micro", "--data.init_args.synthetic_root", str(root),
            "--data.init_args.num_workers", "0", "--data.init_args.crop_size", str(crop), "--model.init_from", "null"]
    if not image:
        args += ["--data.init_args.short_side", str(crop),
                 "--data.init_args.batch_size", "4", "--data.init_args.num_test_clips", "2",
                 "--data.init_args.num_test_crops", "1", "--data.init_args.rand_augment", "null"]
        sources = layout or {"synthetic_set": "temporal"}
        for key in ("synthetic_set", "list_format", "train_list", "val_list", "test_list", "classes_file", "data_root"):
            args += [f"--data.init_args.{key}", sources.get(key, "csv" if key == "list_format" else "null")]
    return args


# list formats whose recipes run on the micro temporal set written in their dataset's release layout
LAYOUTS = {"ssv1": write_ssv1_layout, "mit": write_mit_layout}


@pytest.fixture(scope="session")
def release_layouts(synth_root, tmp_path_factory) -> dict[str, dict[str, str]]:
    """{list format: data module arguments}: the micro temporal set as Something-Something V1 (frame folders of
    JPEGs, `id;label` lists) and as Moments in Time (4-field rows, videos under training/ and validation/)."""
    set_dir = synth_root / f"micro_seed{SYNTH_SEED}" / "temporal"
    return {name: write(set_dir, tmp_path_factory.mktemp(name)) for name, write in LAYOUTS.items()}


def micro_multiset_args(root: Path) -> list[str]:
    """Overrides that point a co-training experiment (uv2.data.MultiSetDataModule) at the micro benchmark."""
    common = {"synthetic_size": "micro", "synthetic_root": str(root), "num_workers": 0, "crop_size": 32,
              "short_side": 32, "batch_size": 4, "num_test_clips": 2, "num_test_crops": 1}
    return ["--data.init_args.common", json.dumps(common), "--model.init_from", "null"]


TINY_CROP = 16  # what tiny_size_args's ViT takes: 16 px in 8 px patches


def tiny_size_args(config: Path) -> list[str]:
    """Shrink a paper-scale model to CPU size while keeping its depth, so every layer spec stays valid: a 32-wide,
    one-head CLIP-style ViT on 16 px frames (2 x 2 patches), 4 frames (T-Down keeps an even count), 10 classes."""
    arch = ModelConfig(**load_experiment(config)["model"]["arch"])
    if arch.vit.startswith("clip_"):  # the data module takes the model's frame count
        overrides = {"width": 32, "heads": 1, "img_size": TINY_CROP, "patch_size": 8}
        return ["--model.arch.vit_overrides", json.dumps(overrides), "--model.arch.num_classes", "10",
                "--model.arch.num_frames", "4"]
    return []


@pytest.fixture
def one_thread():
    """One intra-op thread: the CPU-size models' ops are too small to split, and on a shared 2-core machine a second
    thread spin-waiting for a busy core made a fast_dev_run about 4x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_experiment_fast_dev_run(config, synth_root, tmp_path, one_thread, request):
    """Every experiment builds and trains one step and validates one batch on the micro synthetic set, in its
    dataset's release layout where it names one (SSv1: frame folders; MiT: its lists); the paper's recipes with their
    design at CPU size (tiny_size_args), in fp32 (fast_dev_run logs and saves nothing)."""
    data = load_experiment(config)["data"]
    shrink = tiny_size_args(config)
    if "MultiSetDataModule" in json.dumps(data):
        data_args = micro_multiset_args(synth_root)
    else:
        list_format = data.get("init_args", {}).get("list_format")
        layout = request.getfixturevalue("release_layouts")[list_format] if list_format in LAYOUTS else None
        data_args = micro_data_args(synth_root, "ImageDataModule" in json.dumps(data),
                                    crop=TINY_CROP if shrink else 32, layout=layout)
    argv = ["--config", str(config), *data_args, *shrink,
            "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "1",
            "--trainer.num_nodes", "1", "--trainer.strategy", "auto", "--trainer.precision", "32-true",
            "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false",
            "--run_dir", str(tmp_path / "run")]
    assert run("fit", argv) == 0


@pytest.mark.slow  # `make test-slow`; alone on 2 cores about 2 minutes with AVX-512, 4 with AVX2 (2026-11-29)
@pytest.mark.timeout(1500)  # beside another test worker on the AVX2 machine it passed 600 s
def test_tiny_temporal_preset_learns(tmp_path):
    """Image pretraining, then the tiny temporal preset: validation top-1 well above chance (10 %), and the run's
    TensorBoard logs hold the scalar groups and the HPARAMS entry."""
    image_run, video_run = tmp_path / "image_tiny", tmp_path / "temporal_tiny"
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert run("fit", ["--config", str(REPO / "experiments/image_tiny.yaml"), "--run_dir", str(image_run),
                       "--trainer.max_epochs", "8", *quiet]) == 0
    assert run("fit", ["--config", str(REPO / "experiments/temporal_tiny.yaml"), "--run_dir", str(video_run),
                       "--model.init_from", str(image_run / "vit.pth"), *quiet]) == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(video_run))
    events.Reload()
    scalars = events.Tags()["scalars"]
    best = max(e.value for e in events.Scalars("val/top1"))
    assert best >= 30.0, f"val top-1 {best:.1f} % after the preset's epochs (chance is 10 %)"
    for tag in ("train/loss_step", "val/top1", "val/top5", "val/mean_class", "data/wait_s_step", "data/wait_fraction_step",
                "perf/clips_per_s_step", "model/balance_weight_mean", "hp/val_top1"):
        assert tag in scalars, tag
    assert any(t.startswith("lr-AdamW") for t in scalars)
    assert (video_run / "config.yaml").exists() and (video_run / "checkpoints" / "last.ckpt").exists()
    assert (image_run / "vit.pth").exists()


def _fit_argv(synth_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--config", str(REPO / "experiments/temporal_tiny.yaml"), *micro_data_args(synth_root),
            "--trainer.enable_progress_bar", "false", "--run_dir", str(run_dir), *extra]


def _uv2(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uv2", *args], cwd=REPO, capture_output=True, text=True, **kwargs)


def test_checkpoints_record_the_normalisation_they_were_trained_on(synth_root, tmp_path, caplog):
    """Weights that record the frames' normalisation they trained on (an official .pyth: PySlowFast's 0.45 / 0.225;
    a uv2 run: its data's, in the checkpoint) meet data normalised otherwise: a warning names the file and both."""
    from benchmarks.official_layout import OfficialLayoutUniFormerV2, randomize_
    from uv2.data.transforms import CLIP_MEAN

    arch = ModelConfig(**load_experiment(REPO / "experiments/temporal_tiny.yaml")["model"]["arch"])
    official = tmp_path / "official_tiny.pyth"
    torch.save(randomize_(OfficialLayoutUniFormerV2.from_config(arch)).official_state_dict(), official)
    run_dir = tmp_path / "from_official"
    short = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    with caplog.at_level("WARNING", logger="uv2.train.module"):
        assert run("fit", [*_fit_argv(synth_root, run_dir, *short), "--model.init_from", str(official)]) == 0
    warned = [r.getMessage() for r in caplog.records if "trained on frames normalised" in r.getMessage()]
    assert len(warned) == 1 and str(official) in warned[0] and "mean [0.45, 0.45, 0.45]" in warned[0]
    recorded = safe_load(run_dir / "checkpoints" / "last.ckpt")["input_normalisation"]
    assert recorded["mean"] == pytest.approx(list(CLIP_MEAN))  # the data module's default, which the run used
    assert VideoClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt").arch == arch  # no trainer

    official_stats = ["--data.init_args.mean", "[0.45, 0.45, 0.45]", "--data.init_args.std", "[0.225, 0.225, 0.225]"]
    last = str(run_dir / "checkpoints" / "last.ckpt")
    for extra, expected in (([], 0), (official_stats, 1)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="uv2.train.module"):
            assert run("test", [*_fit_argv(synth_root, run_dir), "--ckpt_path", last, *extra]) == 0
        warned = [r.getMessage() for r in caplog.records if "trained on frames normalised" in r.getMessage()]
        assert len(warned) == expected and all(last in w for w in warned)


def test_ddp_two_cpu_processes_fit_and_test(synth_root, tmp_path):
    """strategy ddp on CPU (gloo): fit, then a multi-view test whose video-level counts are exact."""
    run_dir = tmp_path / "ddp"
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    fit = _uv2("fit", *_fit_argv(synth_root, run_dir, *ddp, "--trainer.max_epochs", "1"), timeout=300)
    assert fit.returncode == 0, fit.stderr[-3000:]
    test = _uv2("test", *_fit_argv(synth_root, run_dir, *ddp, "--ckpt_path", str(run_dir / "checkpoints/last.ckpt")),
                timeout=300)
    assert test.returncode == 0, test.stderr[-3000:]
    results = json.loads((run_dir / "test_results.json").read_text())
    val_videos = len((synth_root / f"micro_seed{SYNTH_SEED}" / "temporal" / "val.csv").read_text().splitlines())
    assert results["world_size"] == 2
    assert results["num_videos"] == val_videos  # no video dropped, none counted twice
    assert results["num_views"] == 2 * val_videos  # 2 clips x 1 crop each, padding duplicates removed
    last = run_dir / "checkpoints" / "last.ckpt"
    assert results["checkpoint"] == str(last)  # the test names the weights it ran on
    assert results["checkpoint_step"] == safe_load(last)["global_step"] > 0


def test_last_checkpoint_is_the_final_state(synth_root, tmp_path):
    """last.ckpt holds the final step even when neither validation nor the step interval ends on it; best-*.ckpt is
    the only other file (no last-v1 duplicates)."""
    run_dir = tmp_path / "last"
    argv = _fit_argv(synth_root, run_dir, "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "2",
                     "--trainer.limit_val_batches", "1", "--checkpoint_every_n_steps", "7",
                     "--trainer.enable_model_summary", "false")
    assert run("fit", argv) == 0
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[1] == "last.ckpt" and checkpoints[0].startswith("best-"), checkpoints
    last = safe_load(run_dir / "checkpoints" / "last.ckpt")
    steps_per_epoch = len((synth_root / f"micro_seed{SYNTH_SEED}" / "temporal" / "train.csv").read_text().splitlines()) // 4
    assert last["global_step"] == 3 * steps_per_epoch and last["epoch"] == 2


def test_testing_with_a_runs_own_config_writes_beside_the_run(synth_root, tmp_path, monkeypatch):
    """`test --config RUN/config.yaml` (the run's resolved config, which holds its run_dir) writes test_results.json
    in RUN, not in runs/config, and its own test_config.yaml: config.yaml stays the fit's. An experiment file still
    defaults to runs/<its name>, and --run_dir wins over both."""
    run_dir = tmp_path / "run"
    assert run("fit", _fit_argv(synth_root, run_dir, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                                "--trainer.enable_model_summary", "false")) == 0
    fitted = (run_dir / "config.yaml").read_text()
    monkeypatch.chdir(tmp_path)  # where a default runs/<config name> would land
    assert run("test", ["--config", str(run_dir / "config.yaml"), "--trainer.limit_test_batches", "1",
                        "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt")]) == 0
    assert (run_dir / "test_results.json").is_file() and not (tmp_path / "runs").exists()
    assert (run_dir / "config.yaml").read_text() == fitted
    assert "limit_test_batches: 1" in (run_dir / "test_config.yaml").read_text()

    def run_dir_of(*argv: str) -> str:
        out = expand_argv(list(argv), tmp_path)
        return out[out.index("--run_dir") + 1]

    assert run_dir_of("--config", str(REPO / "experiments/temporal_tiny.yaml")) == str(Path("runs/temporal_tiny"))
    assert run_dir_of("--config", str(run_dir / "config.yaml"), "--run_dir", "elsewhere") == "elsewhere"


def test_a_limit_of_one_batch_is_one_batch(synth_root, tmp_path):
    """`--trainer.limit_*_batches 1` on the command line is one batch, not 1.0 (100 %): uv2.train.cli.Trainer."""
    run_dir = tmp_path / "run"
    assert run("fit", _fit_argv(synth_root, run_dir, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1",
                                "--trainer.limit_val_batches", "1", "--trainer.enable_model_summary", "false")) == 0
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 2
    assert "limit_train_batches: 1\n" in (run_dir / "config.yaml").read_text()
    last = str(run_dir / "checkpoints" / "last.ckpt")
    assert run("test", _fit_argv(synth_root, run_dir, "--trainer.limit_test_batches", "1", "--ckpt_path", last,
                                 "--data.init_args.eval_batch_size", "2")) == 0
    assert json.loads((run_dir / "test_results.json").read_text())["num_views"] == 2  # one batch of 2 clips


def test_a_run_without_a_logger(synth_root, tmp_path):
    """`--trainer.logger false` trains and checkpoints, writing no TensorBoard events (Lightning refuses its
    learning-rate monitor without a logger, so uv2 leaves it out)."""
    run_dir = tmp_path / "run"
    assert run("fit", _fit_argv(synth_root, run_dir, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                                "--trainer.logger", "false", "--trainer.enable_model_summary", "false")) == 0
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not list(run_dir.rglob("events.out.tfevents*"))


def test_a_run_without_validation_keeps_last_ckpt_alone(synth_root, tmp_path, capsys):
    """`--trainer.limit_val_batches 0`: last.ckpt and no best-*.ckpt, without Lightning's warning that the best
    checkpoint's val/top1 is missing at every save; --resume and `test --ckpt_path last` find last.ckpt all the same
    (Lightning looks for it beside the best-checkpoint callback)."""
    run_dir = tmp_path / "run"
    argv = _fit_argv(synth_root, run_dir, "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "0",
                     "--trainer.enable_model_summary", "false")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run("fit", [*argv, "--trainer.max_epochs", "2"]) == 0
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    capsys.readouterr()
    assert run("fit", [*argv, "--trainer.max_epochs", "3", "--resume"]) == 0
    assert "fit throughput: 8 clips" in capsys.readouterr().out  # one epoch of 2 batches of 4 after the resume
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6
    assert run("test", [*argv, "--ckpt_path", "last", "--trainer.limit_test_batches", "1"]) == 0
    tested = json.loads((run_dir / "test_results.json").read_text())["checkpoint"]
    assert tested == str(run_dir / "checkpoints" / "last.ckpt")


def test_a_run_stopped_within_an_epoch_keeps_its_best_checkpoint_quiet(synth_root, tmp_path):
    """max_steps ending a run within an epoch, before its validation: no best-*.ckpt and no warning that val/top1 is
    missing; a run that validates keeps the best state of its validations."""
    run_dir = tmp_path / "run"
    argv = _fit_argv(synth_root, run_dir, "--trainer.limit_val_batches", "1", "--trainer.enable_model_summary", "false")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run("fit", [*argv, "--trainer.max_steps", "2"]) == 0
        assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.ckpt"]
        assert run("fit", [*argv, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--run_dir",
                           str(tmp_path / "validated")]) == 0
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    [best] = (tmp_path / "validated" / "checkpoints").glob("best-*.ckpt")
    assert safe_load(best)["global_step"] in (2, 4)


def test_resume_without_a_last_checkpoint_starts_the_run(synth_root, tmp_path, caplog):
    """--resume in a run directory without last.ckpt (a job script's first start) trains from step 0, saying so."""
    run_dir = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="uv2.train.cli")
    assert run("fit", _fit_argv(synth_root, run_dir, "--resume", "--trainer.max_steps", "2",
                                "--trainer.limit_val_batches", "1", "--trainer.enable_model_summary", "false")) == 0
    last = run_dir / "checkpoints" / "last.ckpt"
    assert f"--resume: no {last} yet, so the run starts from the beginning" in caplog.messages
    assert safe_load(last)["global_step"] == 2


@pytest.mark.parametrize("setting,says", [
    # raised in the data module's __init__, which jsonargparse re-raises as a ValueError of its own
    (["--data.init_args.batch_size", "0"], "batch_size must be >= 1, got 0"),
    (["--data.init_args.num_workers", "-1"], "num_workers must be >= 0, got -1"),
    (["--data.init_args.rand_augment", "rand-q3"], "RandAugment config 'rand-q3': bad section 'q3'"),
    (["--model.optim.lr", "-1"], "optim.lr must be > 0, got -1.0"),
    (["--model.optim.min_lr_factor", "1.5"], "optim.min_lr_factor must be in [0, 1], got 1.5"),
    (["--model.arch.num_classes", "7"], "model.arch.num_classes is 7 but the data has 10 classes"),  # at setup
    (["--data.init_args.synthetic_set", "null", "--data.init_args.train_list", "/nonexistent/train.csv",
      "--data.init_args.val_list", "/nonexistent/train.csv"], "video list not found: /nonexistent/train.csv"),
], ids=["batch size", "workers", "RandAugment", "lr", "lr floor", "classes", "missing list"])
def test_an_invalid_setting_ends_the_command_in_one_line(synth_root, tmp_path, capsys, setting, says):
    """A setting the model, optimizer or data module refuses: exit status 2 and one line naming it, however deep
    in Lightning or jsonargparse it was raised."""
    from uv2.__main__ import main as uv2_main

    assert uv2_main(["fit", *_fit_argv(synth_root, tmp_path / "run", "--trainer.max_steps", "1", *setting)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"uv2 fit: error: {says}"), last


def test_a_list_of_undecodable_videos_ends_the_command_in_one_line(synth_root, tmp_path, capsys):
    """Bad data found while training (no decodable video, here in a DataLoader worker): exit status 2 and one line
    naming the files, not torch's re-raised worker traceback."""
    from uv2.__main__ import main as uv2_main

    lines = []
    for i in range(4):
        (tmp_path / f"v{i}.mp4").write_bytes(b"not a video" * 100)
        lines.append(f"{tmp_path / f'v{i}.mp4'},{i % 2}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    layout = {"train_list": str(tmp_path / "list.csv"), "val_list": str(tmp_path / "list.csv"),
              "classes_file": str(tmp_path / "classes.txt")}
    argv = [*_fit_argv(synth_root, tmp_path / "run", "--trainer.max_steps", "1"), *micro_data_args(synth_root, layout=layout),
            "--model.arch.num_classes", "2", "--data.init_args.num_workers", "1"]
    assert uv2_main(["fit", *argv]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(r"uv2 fit: error: no decodable video after \d+ attempts for item \d+ \(video \d: ", last), last
    assert f"first bad files: {tmp_path}" in last


def test_the_cli_raises_a_refused_data_setting_as_itself(synth_root, tmp_path):
    """The data module's SettingError, which jsonargparse re-raises as a ValueError of its own, leaves the CLI as
    itself, and crosses a process boundary (a grid's or variance.py's worker) with its class and message."""
    import pickle

    from uv2.errors import SettingError

    with pytest.raises(SettingError, match="batch_size must be >= 1, got 0") as caught:
        run("fit", _fit_argv(synth_root, tmp_path / "run", "--data.init_args.batch_size", "0"))
    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is SettingError and str(again) == str(caught.value)


def test_input_errors_are_found_through_their_cause_not_their_context():
    """jsonargparse raises from a class's error (``__cause__``): bad input. An error raised while another was being
    handled (``__context__``) is a bug in that handler, whatever it handled."""
    from uv2.errors import SettingError, input_error_in

    bad = SettingError("crop_size must be >= 1, got 0")
    try:
        raise ValueError("Does not validate against any of the Union subtypes") from bad
    except ValueError as wrapped:
        assert input_error_in(wrapped) is bad
    try:
        try:
            raise bad
        except SettingError:
            raise KeyError("a bug in the handler") from None
    except KeyError as bug:
        assert bug.__context__ is bad and input_error_in(bug) is None
    assert input_error_in(bad) is bad and input_error_in(RuntimeError("x")) is None


def test_a_test_without_a_checkpoint_says_which_weights_it_scores(synth_root, tmp_path, caplog):
    """`test` without --ckpt_path scores what model.init_from gives (here none: random weights), and says so; a test
    of a run's checkpoint does not."""
    caplog.set_level(logging.WARNING, logger="uv2.train.cli")
    argv = _fit_argv(synth_root, tmp_path / "run", "--trainer.limit_test_batches", "1")
    assert run("test", argv) == 0
    said = [m for m in caplog.messages if "without --ckpt_path" in m]
    assert said == ["test without --ckpt_path: the weights are those a random initialisation gives (no init_from), "
                    "not a run's; to score a trained run give --ckpt_path RUN_DIR/checkpoints/last.ckpt"]
    caplog.clear()
    assert run("fit", [*argv, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0"]) == 0
    assert run("test", [*argv, "--ckpt_path", str(tmp_path / "run" / "checkpoints" / "last.ckpt")]) == 0
    assert not [m for m in caplog.messages if "without --ckpt_path" in m]


def test_a_test_of_the_best_checkpoint_in_a_process_of_its_own(synth_root, tmp_path):
    """`test --ckpt_path best` after the fit's process has ended scores the run directory's best-*.ckpt (Lightning
    knows it only in the process that fitted), and names the folder where there is none, leaving no run directory
    behind."""
    run_dir = tmp_path / "run"
    argv = _fit_argv(synth_root, run_dir, "--trainer.limit_test_batches", "1",
                     "--trainer.enable_model_summary", "false")
    for name, kind in (("best", "best-*.ckpt"), ("last", "last.ckpt")):
        with pytest.raises(CheckpointError, match=re.escape(f"--ckpt_path {name}: {run_dir / 'checkpoints'} has no "
                                                            f"{kind} (a run writes one as it")):
            run("test", [*argv, "--ckpt_path", name])
    assert not run_dir.exists()
    assert run("fit", [*argv, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                       "--trainer.limit_val_batches", "1"]) == 0
    assert run("test", [*argv, "--ckpt_path", "best"]) == 0
    [best] = (run_dir / "checkpoints").glob("best-*.ckpt")
    assert json.loads((run_dir / "test_results.json").read_text())["checkpoint"] == str(best)


def test_a_run_dir_that_cannot_be_made_is_named(synth_root, tmp_path):
    """--run_dir under a file: an InputError naming the flag and the folder, before any step."""
    (tmp_path / "a_file").write_text("")
    with pytest.raises(InputError, match=f"--run_dir {tmp_path / 'a_file' / 'run'}: cannot create this folder"):
        run("fit", _fit_argv(synth_root, tmp_path / "a_file" / "run", "--trainer.max_steps", "1"))


def test_a_missing_checkpoint_is_named_before_the_run_is_built(tmp_path):
    """--ckpt_path naming no file, or a file that is no checkpoint, stops the command at once, naming it (not a
    traceback from Lightning's torch.load); a checkpoint, Lightning's own names and URLs pass."""
    ckpt = tmp_path / "last.ckpt"
    argv = ["--config", str(REPO / "experiments/temporal_tiny.yaml"), "--ckpt_path", str(ckpt), "--run_dir",
            str(tmp_path / "run")]
    with pytest.raises(CheckpointError, match=f"--ckpt_path {ckpt}: no such checkpoint file"):
        run("test", argv)
    for content, says in ((b"", "an empty file"), (b"<html>Not Found</html>", "not a PyTorch checkpoint")):
        ckpt.write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{ckpt}: {says}"):
            run("test", argv)
    assert not (tmp_path / "run").exists()
    torch.save({"state_dict": {}}, ckpt)
    for value in (str(ckpt), "last", "best", "registry:uv2:latest", "s3://bucket/run/last.ckpt"):
        assert expand_argv([f"--ckpt_path={value}", "--run_dir", "r"], tmp_path)[0] == f"--ckpt_path={value}"


def test_bf16_mixed_precision_fit_on_cpu(synth_root, tmp_path):
    """--trainer.precision bf16-mixed trains on CPU: finite losses, fp32 weights in the checkpoint; every step logs
    the gradients' norm as it was before clipping (log_every_n_steps 1: every step is written)."""
    run_dir = tmp_path / "bf16"
    assert run("fit", _fit_argv(synth_root, run_dir, "--trainer.precision", "bf16-mixed", "--trainer.limit_train_batches", "3",
                                "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1",
                                "--trainer.log_every_n_steps", "1", "--trainer.gradient_clip_val", "1e-4")) == 0
    checkpoint = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3
    weights = checkpoint["state_dict"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert all(torch.isfinite(torch.tensor(e.value)) for e in events.Scalars("val/loss"))
    grad_norms = [e.value for e in events.Scalars("train/grad_norm")]
    assert len(grad_norms) == 3 and all(1e-4 < g < float("inf") for g in grad_norms)  # clipped to 1e-4 after


def test_the_merged_configs_of_gone_runs_are_removed(tmp_path):
    """A SIGKILLed run leaves its merged-config folder behind; the next run removes it, not a running one's."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"uv2-config-{gone.pid}-x1"
    running = tmp_path / f"uv2-config-{os.getpid()}-x2"
    other = tmp_path / "uv2-config-x3"  # no pid: not a run's (kept)
    for folder in (dead, running, other):
        folder.mkdir()
        (folder / "0_temporal_tiny.yaml").write_text("trainer: {}\n")
    assert remove_stale_config_dirs(tmp_path) == [dead]
    assert not dead.exists() and running.exists() and other.exists()


def test_library_notices_are_hidden_and_the_rest_kept(caplog):
    """The CLI hides the libraries' deprecations inside their own code and Lightning's tips, not other warnings or
    Lightning's other lines."""
    rank_zero = "pytorch_lightning.utilities.rank_zero"
    caplog.set_level(logging.INFO, logger=rank_zero)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_library_notices()
        quiet_library_notices()  # a second call (DDP ranks, notebooks) adds nothing
        warnings.warn("'set_vital' is deprecated, please do not call", UserWarning, stacklevel=1)
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)`",
                      FutureWarning, stacklevel=1)
        warnings.warn("The dataloader does not have many workers", UserWarning, stacklevel=1)
        logging.getLogger(rank_zero).info("💡 Tip: For seamless cloud logging, try installing litlogger")
        logging.getLogger(rank_zero).info("GPU available: False, used: False")
    assert [str(w.message) for w in seen] == ["The dataloader does not have many workers"]
    assert [r.getMessage() for r in caplog.records if r.name == rank_zero] == ["GPU available: False, used: False"]
    assert len(logging.getLogger(rank_zero).filters) == 1


def test_predict_cli(synth_root, tmp_path):
    run_dir = tmp_path / "run"
    assert run("fit", _fit_argv(synth_root, run_dir, "--trainer.max_steps", "2", "--trainer.max_epochs", "1")) == 0
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    video = next((synth_root / f"micro_seed{SYNTH_SEED}" / "temporal" / "videos").rglob("*.mp4"))
    classes = (synth_root / f"micro_seed{SYNTH_SEED}" / "temporal" / "classes.txt").read_text().split()
    result = _uv2("predict", "--ckpt", str(ckpt), str(video), "--topk", "3", "--json")
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout.strip().splitlines()[-1])["predictions"][0]
    assert prediction["path"] == str(video) and len(prediction["topk"]) == 3
    assert all(t["class"] in classes for t in prediction["topk"])
    scores = [t["score"] for t in prediction["topk"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video")
    features = tmp_path / "features.pt"
    result = _uv2("predict", "--ckpt", str(ckpt), str(video), str(bad), "--features", str(features))
    assert result.returncode == 1 and "broken.mp4" in result.stderr
    saved = torch.load(features, weights_only=True)
    assert list(saved) == [str(video)]
    assert saved[str(video)]["pooled"].shape == (128,) and saved[str(video)]["layer_cls"].shape == (4, 128)
    (tmp_path / "a_file").write_text("")  # --features under a file: said before any video is read
    with pytest.raises(InputError, match=re.escape(f"--features {tmp_path / 'a_file'}: cannot create this folder "
                                                   f"({tmp_path / 'a_file'} is a file, not a folder)")):
        predict_main(["--ckpt", str(ckpt), str(video), "--features", str(tmp_path / "a_file" / "features.pt")])


def test_cotraining_one_model_a_head_per_set(synth_root, tmp_path):
    """experiments/cotrain_tiny.yaml on the micro scene sets: every step trains on all three sets, validation and the
    multi-view test score each set on its own head, checkpoints keep the head layout and every loader's position."""
    run_dir = tmp_path / "cotrain"
    argv = ["--config", str(REPO / "experiments/cotrain_tiny.yaml"), *micro_multiset_args(synth_root),
            "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--run_dir", str(run_dir)]
    assert run("fit", argv) == 0
    assert run("test", [*argv, "--ckpt_path", str(run_dir / "checkpoints" / "last.ckpt")]) == 0
    sets = ["scene_a", "scene_b", "scene_c"]
    checkpoint = safe_load(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["hyper_parameters"]["sets"] == {s: 8 for s in sets}
    assert checkpoint["state_dict"]["model.head.fc.weight"].shape[0] == 24
    assert len(checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]) == 3  # one position per set
    train_videos = len((synth_root / f"micro_seed{SYNTH_SEED}" / "scene_a" / "train.csv").read_text().splitlines())
    assert checkpoint["global_step"] == train_videos // 4  # one epoch: a step holds a batch of 4 from every set

    results = json.loads((run_dir / "test_results.json").read_text())
    for name in sets:
        val_videos = len((synth_root / f"micro_seed{SYNTH_SEED}" / name / "val.csv").read_text().splitlines())
        assert results["per_set"][name]["num_videos"] == val_videos
    assert results["num_videos"] == sum(r["num_videos"] for r in results["per_set"].values())
    mean = sum(r["metrics"]["top1"] for r in results["per_set"].values()) / 3
    assert abs(results["metrics"]["top1"] - mean) < 1e-6

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"val/top1", "val/scene_a/top1", "val/scene_c/mean_class", "train/scene_b/loss"} <= set(scalars)


# ------------------------------------------------------------------------------------------- non-finite guard
class _Clips(Dataset):
    """Random clips; the listed items are NaN (a corrupted sample or an exploding loss)."""

    def __init__(self, n: int, nan_items: set[int]) -> None:
        self.n, self.nan_items = n, nan_items

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        video = torch.full((3, 2, 32, 32), float("nan")) if i in self.nan_items else torch.randn(3, 2, 32, 32)
        return {"video": video, "label": i % 3}


def _guarded_fit(nan_items: set[int], steps: int, tolerance: int, guard: str = "auto"
                 ) -> tuple[VideoClassifier, pl.Trainer]:
    torch.manual_seed(0)
    arch = ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4", local_type="none")
    module = VideoClassifier(arch=arch, max_nonfinite_steps=tolerance, nonfinite_guard=guard)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(_Clips(steps, nan_items), batch_size=1))
    return module, trainer


@pytest.mark.parametrize("guard", ["auto", "host"])
def test_nonfinite_steps_are_skipped(guard):
    """fp32 on the CPU trains with fused AdamW, so "auto" skips on the device (found_inf), "host" by reading the
    loss back; both count the two NaN steps and keep the weights finite."""
    module, _ = _guarded_fit({1, 3}, steps=6, tolerance=3, guard=guard)
    assert module._guard_on_device == (guard == "auto")
    assert module.guard.total == 2 and not module.guard.pending
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_both_guards_skip_the_same_steps():
    """A step skipped on the device leaves weights, moments and the epoch mean of the loss as a step skipped on the
    host does (the host never runs its backward or update)."""
    (device, device_trainer), (host, host_trainer) = (_guarded_fit({1, 3}, 6, 3, guard) for guard in ("auto", "host"))
    for (name, a), b in zip(device.named_parameters(), host.parameters()):
        assert torch.equal(a, b), name
    device_state, host_state = device_trainer.optimizers[0].state_dict(), host_trainer.optimizers[0].state_dict()
    for p, state in device_state["state"].items():
        for key, value in state.items():
            assert torch.equal(value, host_state["state"][p][key]), (p, key)
    for key in ("train/loss_epoch", "train/top1"):
        torch.testing.assert_close(device_trainer.callback_metrics[key], host_trainer.callback_metrics[key])


@pytest.mark.parametrize("guard", ["auto", "host"])
def test_nonfinite_in_a_row_stops_the_run(guard):
    with pytest.raises(NonFiniteLossError, match="4 consecutive training steps"):
        _guarded_fit(set(range(10)), steps=10, tolerance=3, guard=guard)


def _bf16_fit(clip: float | None, nan_items: frozenset[int] = frozenset(), steps: int = 2, algorithm: str = "norm",
              callbacks: list[pl.Callback] = ()) -> tuple[VideoClassifier, pl.Trainer]:
    torch.manual_seed(0)
    arch = ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4", local_type="none")
    module = VideoClassifier(arch=arch)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", precision="bf16-mixed", gradient_clip_val=clip,
                         gradient_clip_algorithm=algorithm, callbacks=list(callbacks), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(_Clips(steps, set(nan_items)), batch_size=1))
    return module, trainer


@pytest.mark.parametrize("clip", [None, 1.0])
def test_bf16_mixed_keeps_fused_adamw_and_the_device_guard_when_clipping(clip):
    """bf16-mixed trains with fused AdamW, whose steps the device can skip, with gradient clipping too (the paper's
    recipes clip at 20): uv2 clips there itself, where Lightning would refuse an optimizer that unscales itself."""
    module, trainer = _bf16_fit(clip, nan_items={1})
    assert module._guard_on_device
    assert trainer.optimizers[0].defaults["fused"]
    assert module.guard.total == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())


class _GradientsAtTheStep(pl.Callback):
    """The gradients' global L2 norm and largest magnitude as the optimiser's step saw them (after any clipping; read
    after the step, which Lightning runs with the closure that computes and clips them)."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.largest: list[float] = []

    def on_train_start(self, trainer, pl_module) -> None:
        trainer.optimizers[0].register_step_post_hook(self.record)

    def record(self, optimizer, args, kwargs) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        self.largest.append(max(float(g.abs().max()) for g in grads))


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_bf16_mixed_clips_the_gradients_fused_adamw_steps_with(algorithm):
    """With fused AdamW under bf16-mixed the optimiser's step sees the gradients clipped as trainer.gradient_clip_val
    and gradient_clip_algorithm say (this model's gradients are far above 1e-3 unclipped)."""
    unclipped, clipped = _GradientsAtTheStep(), _GradientsAtTheStep()
    _bf16_fit(None, steps=3, algorithm=algorithm, callbacks=[unclipped])
    _, trainer = _bf16_fit(1e-3, steps=3, algorithm=algorithm, callbacks=[clipped])
    assert trainer.optimizers[0].defaults["fused"]
    assert min(unclipped.norms) > 0.1 and min(unclipped.largest) > 1e-2
    if algorithm == "norm":
        assert clipped.norms == pytest.approx([1e-3] * 3, rel=1e-3)
    else:
        assert clipped.largest == pytest.approx([1e-3] * 3, rel=1e-6)


def test_grad_norm_is_computed_on_the_steps_lightning_writes(tmp_path):
    """train/grad_norm appears at exactly the steps train/loss_step is written (every log_every_n_steps), and the
    norm is not computed in between."""
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    arch = ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4", local_type="none")
    module = VideoClassifier(arch=arch)
    norms = []
    original = torch._foreach_norm

    def counting_norm(*args, **kwargs):
        norms.append(module.global_step)
        return original(*args, **kwargs)

    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=TensorBoardLogger(tmp_path, name="", version=""),
                         log_every_n_steps=2, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    with patch.object(torch, "_foreach_norm", counting_norm):
        trainer.fit(module, DataLoader(_Clips(6, set()), batch_size=1))
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    steps = {tag: [e.step for e in events.Scalars(tag)] for tag in ("train/grad_norm", "train/loss_step")}
    assert steps["train/grad_norm"] == steps["train/loss_step"] == [1, 3, 5]
    assert norms == [1, 3, 5]


def test_an_unknown_guard_is_refused():
    with pytest.raises(ValueError, match="model.nonfinite_guard: 'gpu' is not one of auto, host"):
        VideoClassifier(arch=ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4"), nonfinite_guard="gpu")


def test_init_seed_draws_the_initial_weights_apart_from_the_global_stream():
    """model.init_seed: one seed gives the same initial weights whatever seed_everything set, another seed other
    weights, and the global stream (which goes on seeding dropout and the data) is left where it was."""
    arch = ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4", local_type="lmhra")

    def weights(global_seed: int, init_seed: int | None) -> dict[str, torch.Tensor]:
        torch.manual_seed(global_seed)
        return VideoClassifier(arch=arch, init_seed=init_seed).state_dict()

    def differ(a: dict, b: dict) -> bool:
        return any(not torch.equal(a[k], b[k]) for k in a)

    assert not differ(weights(1, 5), weights(2, 5))
    assert differ(weights(1, 5), weights(1, 6))
    assert differ(weights(1, None), weights(2, None))  # without it, the global stream draws them
    assert not differ(weights(5, None), weights(1, 5))  # init_seed k draws what seed k draws (variance's groups)
    torch.manual_seed(1)
    VideoClassifier(arch=arch, init_seed=5)
    untouched = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), untouched)


def test_mixup_cutmix_training_step():
    """Mixup / cutmix (timm's, on clips as (B, C*T, H, W)) train with soft targets."""
    arch = ModelConfig(vit="tiny", num_frames=2, num_classes=3, global_layers="4", local_type="lmhra")
    module = VideoClassifier(arch=arch, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    before = module.model.head.fc.weight.detach().clone()
    trainer.fit(module, DataLoader(_Clips(8, set()), batch_size=4))
    assert module.mixup is not None and trainer.global_step == 2
    assert not torch.equal(before, module.model.head.fc.weight)


@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                    reason="torch.compile's default backend (inductor) builds C++ kernels on CPU and no C++ compiler "
                           "(g++, or $CXX) is on PATH")
def test_compile_equals_eager():
    """model.compile: true compiles the model in place (same state dict keys); in fp32 the compiled model gives the
    eager logits and gradients in training mode and the eager logits in eval mode."""
    from benchmarks.official_layout import randomize_

    arch = ModelConfig(vit="tiny", vit_overrides={"depth": 2}, num_frames=4, num_classes=5, global_layers="2",
                       local_type="lmhra", local_dpe=True, t_down=True, head_dropout=0.0, global_mlp_dropout=0.0)
    eager = VideoClassifier(arch=arch)
    randomize_(eager.model, torch.Generator().manual_seed(0))
    compiled = VideoClassifier(arch=arch, compile=True)
    compiled.model.load_state_dict(eager.model.state_dict(), strict=True)  # the keys are unchanged
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    x = torch.randn(2, 3, 4, 32, 32)
    results = []
    for module in (eager, compiled):
        module.train()
        logits = module(x)
        (logits * torch.linspace(-1, 1, 5)).sum().backward()
        module.eval()
        with torch.no_grad():
            results.append((logits.detach(), module(x), {n: p.grad for n, p in module.model.named_parameters()}))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2, "the model was not compiled"
    (train_eager, eval_eager, grads_eager), (train_compiled, eval_compiled, grads_compiled) = results
    torch.testing.assert_close(train_compiled, train_eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(eval_compiled, eval_eager, rtol=1e-4, atol=1e-5)
    for name, grad in grads_eager.items():  # fused kernels sum in another order: fp32 rounding at each tensor's scale
        torch.testing.assert_close(grads_compiled[name], grad, rtol=1e-4, atol=1e-4 * grad.abs().max().item(),
                                   msg=lambda m, n=name: f"{n}: {m}")
