"""fit's input-pipeline summary (uv2.train.callbacks.ThroughputSummary) and uint8 batches end to end: the loaders
yield uint8, the model trains, validates and tests on float32 made after the transfer."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelSummary

from tests.helpers import REPO
from uv2.data.synthetic import ensure_synthetic
from uv2.train.callbacks import StepClock, ThroughputSummary
from uv2.train.cli import run


def _trainer(workers: int | None = 8, repeats: int = 1) -> SimpleNamespace:
    hparams = {} if workers is None else {"num_workers": workers, "num_repeats": repeats}
    return SimpleNamespace(world_size=1, datamodule=SimpleNamespace(hparams=hparams))


def test_benchmarks_read_the_summary_line():
    """benchmarks/grid_jobs.py and feed_check.py read a fit's clips/s from the line as the fit prints it, its first
    step apart (grid_jobs.py's pattern had matched only a line without that part, and read every fit as failed)."""
    from benchmarks import feed_check, grid_jobs

    line = ThroughputSummary().summary(clips=632, wait_s=1.0, step_s=7.1, failures=0, trainer=_trainer(0),
                                       first=(8, 0.2))
    assert line.startswith("fit throughput: 640 clips, the first step after 0.2 s (worker start-up); then 632 clips")
    assert grid_jobs.SUMMARY.search(line).groups() == ("632", "8.1", "78.0")
    assert feed_check.LINE.search(line).groupdict() == {"all": "640", "first_s": "0.2", "clips": "632", "seconds": "8.1",
                                                        "clips_per_s": "78.0", "wait": "12", "failures": "0"}


def test_summary_line_and_hint():
    summary = ThroughputSummary()
    waiting = summary.summary(clips=640, wait_s=30.0, step_s=10.0, failures=3, trainer=_trainer(8))
    assert waiting.startswith("fit throughput: 640 clips in 40.0 s of training steps, 16.0 clips/s, data wait 75% "
                              "of the step time, 3 decode failures; the model waited for data: raise "
                              "data.num_workers (8 now, ")
    assert "set data.num_repeats 2 (one decode, 2 augmented clips)" in waiting and "short side 320 px" in waiting
    fed = summary.summary(clips=640, wait_s=1.0, step_s=19.0, failures=1, trainer=_trainer(8, repeats=2))
    assert fed == ("fit throughput: 640 clips in 20.0 s of training steps, 32.0 clips/s, data wait 5% of the step "
                   "time, 1 decode failure")
    edge = summary.summary(clips=10, wait_s=2.0, step_s=8.0, failures=0, trainer=_trainer(None))
    assert edge.endswith("data wait 20% of the step time, 0 decode failures")  # at the threshold: no hint
    multiset = SimpleNamespace(world_size=2, datamodule=SimpleNamespace(hparams={"common": {"num_workers": 4}}))
    line = summary.summary(clips=100, wait_s=10.0, step_s=10.0, failures=0, trainer=multiset)
    assert "in 10.0 s" in line and "10.0 clips/s" in line and "num_workers (4 now," in line  # two devices


class _LateClock(StepClock):
    """A device whose marks pass only when the test says so: a mark is the step count at which it passes."""

    def __init__(self) -> None:
        super().__init__(torch.device("cpu"))
        self.now, self.times, self.marks = 0, {}, 0

    def mark(self) -> int:
        self.marks += 1
        return self.marks

    def passed(self, mark: int) -> bool:
        return mark in self.times and self.times[mark] <= self.now

    def seconds(self, start: int, end: int) -> float:
        return self.times[end] - self.times[start]


def test_summary_reads_the_device_timeline_without_waiting():
    """Steps are read only once the device has passed their end mark (per-step scalars lag behind, nothing waits);
    the first step is reported apart; at the end of fit the rest is read. Wait = previous end -> start, step =
    start -> end, on the device's timeline."""
    summary, clock = ThroughputSummary(hint_above=1.0), _LateClock()
    logged = []
    module = SimpleNamespace(device=torch.device("cpu"), log_dict=lambda values, **kw: logged.append(values))
    trainer = SimpleNamespace(world_size=1, is_global_zero=True, datamodule=None)
    batch = {"label": torch.zeros(4), "decode_failures": torch.tensor([0, 1, 0, 0])}
    summary._clock = clock
    summary.on_train_epoch_start(trainer, module)  # mark 1
    # device times of the marks: epoch start 0; step k starts at 10 + 3k (the first after a 10 s start-up) and
    # ends 2 s later: 1 s of data wait before every later step
    clock.times[1] = 0.0
    for k in range(3):
        summary.on_train_batch_start(trainer, module, batch, k)
        clock.times[clock.marks] = 10.0 + 3 * k
        clock.times[clock.marks + 1] = 12.0 + 3 * k
        clock.now = 12.0 + 3 * (k - 1)  # the device is one step behind the host
        summary.on_train_batch_end(trainer, module, None, batch, k)
    assert [v["data/wait_s_step"] for v in logged] == [10.0, 1.0]  # steps 0 and 1 read, step 2 still running
    assert logged[1]["data/wait_fraction_step"] == pytest.approx(1 / 3) and logged[1]["perf/clips_per_s_step"] == 4 / 3
    summary.on_train_epoch_end(trainer, module)  # the epoch's steps read by now, the first (start-up) left out
    assert logged[2] == {"data/wait_s_epoch": 1.0, "data/wait_fraction_epoch": pytest.approx(1 / 3),
                         "perf/clips_per_s_epoch": 4 / 3}
    summary.on_fit_end(trainer, module)
    assert (summary.first_s, summary.first_clips, summary.clips, summary.wait_s, summary.step_s) == (12.0, 4, 8, 2.0,
                                                                                                      4.0)
    assert summary.line == ("fit throughput: 12 clips, the first step after 12.0 s (worker start-up); then 8 clips in "
                            "6.0 s of training steps, 1.3 clips/s, data wait 33% of the step time, 3 decode failures")
    module.compiled = True  # a torch.compiled model: its first step is mostly the compilation
    summary.on_fit_end(trainer, module)
    assert "the first step after 12.0 s (compilation and worker start-up); then 8 clips" in summary.line
    idle = ThroughputSummary()  # a fit that ran no step (a resumed run that had already ended)
    idle.on_fit_end(trainer, module)
    assert idle.line == "fit throughput: no training step ran in this fit"


def test_step_values_only_on_the_steps_the_logger_writes():
    """The per-step scalars are logged only where Lightning writes them (log_every_n_steps); the epoch values from
    the callback's own sums cover every step."""
    summary = ThroughputSummary()
    logged = []
    module = SimpleNamespace(device=torch.device("cpu"), log_dict=lambda values, **kw: logged.append(values))
    connector = SimpleNamespace(should_update_logs=False)
    trainer = SimpleNamespace(world_size=1, is_global_zero=True, datamodule=None, _logger_connector=connector)
    batch = {"label": torch.zeros(2)}
    summary.on_train_epoch_start(trainer, module)
    for k in range(4):
        connector.should_update_logs = k == 2
        summary.on_train_batch_start(trainer, module, batch, k)
        summary.on_train_batch_end(trainer, module, None, batch, k)
    assert len(logged) == 1 and set(logged[0]) == {"data/wait_s_step", "data/wait_fraction_step",
                                                   "perf/clips_per_s_step"}
    summary.on_train_epoch_end(trainer, module)
    assert set(logged[1]) == {"data/wait_s_epoch", "data/wait_fraction_epoch", "perf/clips_per_s_epoch"}
    assert summary.clips == 6  # steps 1-3 counted, the first apart


class _SeenBatches(pl.Callback):
    """What the model receives: the training, validation and test batches after on_after_batch_transfer."""

    def __init__(self) -> None:
        self.dtypes: dict[str, set[torch.dtype]] = {"train": set(), "val": set(), "test": set()}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.dtypes["train"].add(batch["video"].dtype)
        assert not {"aug_flip", "aug_seed", "aug_program"} & set(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.dtypes["val"].add(batch["video"].dtype)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.dtypes["test"].add(batch["video"].dtype)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("synthetic")
    ensure_synthetic(parent / "micro_seed0", "micro", 0, sets=["temporal"])
    return parent


def test_fit_prints_the_summary_and_models_see_float(synth_root, tmp_path, capsys):
    """A fit on the micro benchmark with a DataLoader worker: uint8 from the loader, float32 in every loop, and the
    summary line at the end with its clip count."""
    from uv2.data.datamodule import VideoDataModule

    dm = VideoDataModule(synthetic_set="temporal", synthetic_size="micro", synthetic_root=str(synth_root),
                         num_frames=8, crop_size=32, short_side=32, batch_size=4, num_workers=1,
                         rand_augment="rand-m7-n2-mstd0.5-inc1")
    dm.prepare_data()
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["video"].dtype == torch.uint8
    seen = _SeenBatches()
    summary = ThroughputSummary(hint_above=1.0)
    from uv2.models import ModelConfig
    from uv2.train.module import VideoClassifier

    model = VideoClassifier(arch=ModelConfig(vit="tiny", num_frames=8, num_classes=10, global_layers="4",
                                             local_type="none", vit_overrides={"img_size": 32}))
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         default_root_dir=str(tmp_path),  # test_results.json goes there
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1,
                         limit_test_batches=1, callbacks=[seen, summary])
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    assert seen.dtypes == {"train": {torch.float32}, "val": {torch.float32}, "test": {torch.float32}}
    out = capsys.readouterr().out
    match = re.search(r"fit throughput: (\d+) clips, the first step after [\d.]+ s \(worker start-up\); then (\d+) "
                      r"clips in [\d.]+ s of training steps, [\d.]+ clips/s, data wait \d+% of the step time, "
                      r"(\d+) decode failures?", out)
    assert match and int(match.group(1)) == 12 and int(match.group(2)) == 8 and int(match.group(3)) == 0, out
    assert summary.line == match.group(0)


class SummaryProbe(pl.Callback):
    """Records the model-summary callbacks of a CLI fit (class path tests.test_train_callbacks.SummaryProbe)."""

    seen: list = []

    def on_fit_start(self, trainer, pl_module):
        SummaryProbe.seen.append([(type(c).__name__, c._max_depth) for c in trainer.callbacks
                                  if isinstance(c, ModelSummary)])


def test_cli_fit_registers_the_summaries(synth_root, tmp_path, capsys):
    """A CLI fit prints the throughput line, and its model summary is uv2's (the model's FLOPs), also where the
    config asks for Lightning's own (its depth kept), none where the summary is switched off."""
    argv = ["--config", str(REPO / "experiments/temporal_tiny.yaml"),
            "--data.init_args.synthetic_size", "micro", "--data.init_args.synthetic_root", str(synth_root),
            "--data.init_args.num_workers", "0", "--data.init_args.crop_size", "32", "--model.init_from", "null",
            "--data.init_args.batch_size", "4", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.callbacks+=tests.test_train_callbacks.SummaryProbe"]
    SummaryProbe.seen.clear()
    printed: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: printed.append(record.getMessage())
    summary_log = logging.getLogger("pytorch_lightning.callbacks.model_summary")
    summary_log.addHandler(handler)
    try:
        assert run("fit", [*argv, "--run_dir", str(tmp_path / "run")]) == 0
    finally:
        summary_log.removeHandler(handler)
    assert "fit throughput: 8 clips, the first step after " in capsys.readouterr().out
    total = re.search(r"\n(\S+(?: [KMGT])?)\s+Total Flops", "".join(printed))
    assert total and total.group(1) != "0", printed  # the table Lightning prints holds uv2's count
    assert run("fit", [*argv, "--trainer.enable_model_summary", "false", "--run_dir", str(tmp_path / "quiet")]) == 0
    assert run("fit", [*argv, "--trainer.callbacks+=pytorch_lightning.callbacks.ModelSummary",
                       "--trainer.callbacks.max_depth=3", "--run_dir", str(tmp_path / "configured")]) == 0
    assert SummaryProbe.seen == [[("ModelSummaryWithMacs", 1)], [], [("ModelSummaryWithMacs", 3)]]


class BarProbe(pl.Callback):
    """Records the progress bar a CLI fit runs with (class path tests.test_train_callbacks.BarProbe), and at the end
    of training what the bar shows as the loss, the last logged loss and Lightning's own progress-bar values."""

    seen: list = []

    def on_fit_start(self, trainer, pl_module):
        bar = trainer.progress_bar_callback
        BarProbe.seen.append(None if bar is None else (type(bar).__name__, bar.refresh_rate))

    def on_train_end(self, trainer, pl_module):
        bar = trainer.progress_bar_callback
        shown = None if bar is None else bar.get_metrics(trainer, pl_module).get("train/loss_step")
        BarProbe.seen.append((shown, float(trainer.callback_metrics["train/loss_step"]),
                              sorted(trainer.progress_bar_metrics)))


def test_cli_progress_bar_refreshes_every_few_steps(synth_root, tmp_path):
    """The bar of a CLI fit is redrawn every PROGRESS_REFRESH_STEPS steps and shows the last step's loss; no value
    is logged to Lightning's progress-bar metrics on each step (Lightning would read it back every step, a wait
    for the GPU); no bar when it is switched off."""
    from uv2.train.cli import PROGRESS_REFRESH_STEPS

    argv = ["--config", str(REPO / "experiments/temporal_tiny.yaml"),
            "--data.init_args.synthetic_size", "micro", "--data.init_args.synthetic_root", str(synth_root),
            "--data.init_args.num_workers", "0", "--data.init_args.crop_size", "32", "--model.init_from", "null",
            "--data.init_args.batch_size", "4", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
            "--trainer.callbacks+=tests.test_train_callbacks.BarProbe"]
    BarProbe.seen.clear()
    assert run("fit", [*argv, "--run_dir", str(tmp_path / "bar")]) == 0
    assert run("fit", [*argv, "--trainer.enable_progress_bar", "false", "--run_dir", str(tmp_path / "none")]) == 0
    (bar, bar_end), (none, none_end) = BarProbe.seen[:2], BarProbe.seen[2:]
    assert bar == ("NonBlockingProgressBar", PROGRESS_REFRESH_STEPS) and none is None
    shown, logged, pbar_keys = bar_end
    assert shown == logged and none_end[0] is None
    assert not [k for k in pbar_keys if k.endswith("_step")], pbar_keys
    assert PROGRESS_REFRESH_STEPS > 1


class _Event:
    """A CUDA event stand-in: has the GPU passed it?"""

    def __init__(self, passed: bool) -> None:
        self.passed = passed

    def query(self) -> bool:
        return self.passed


def test_progress_bar_shows_the_newest_landed_copy():
    """The bar shows the newest copy of the loss that has landed; a copy still in flight, and every later one (the
    GPU writes them in order), waits for the next refresh."""
    from uv2.train.callbacks import NonBlockingProgressBar

    bar = NonBlockingProgressBar()
    pending = _Event(False)
    bar._copies = [(torch.tensor(3.0), _Event(True)), (torch.tensor(2.0), _Event(True)),
                   (torch.tensor(1.5), pending), (torch.tensor(1.0), _Event(True))]
    bar._drain()
    assert bar._shown == 2.0 and [float(c) for c, _ in bar._copies] == [1.5, 1.0]
    pending.passed = True
    bar._drain()
    assert bar._shown == 1.0 and not bar._copies
