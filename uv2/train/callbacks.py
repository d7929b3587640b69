"""Callbacks of a uv2 run: throughput and data wait (per step, and fit's summary line), the progress bar, the model
summary with its FLOPs, the head's balance, exporting the image ViT, and TensorBoard's HPARAMS tab (the run's switches
beside its validation and test top-1)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelSummary, TQDMProgressBar
from pytorch_lightning.utilities.model_summary import ModelSummary as LayerSummaryTable

from uv2.io import atomic_torch_save
from uv2.models.convert import export_image_vit
from uv2.models.flops import model_macs
from uv2.models.uniformerv2 import UniFormerV2

log = logging.getLogger(__name__)


def batch_clips(batch: dict) -> int:
    """Clips in a training batch (a plain batch, or a co-training batch {set: batch})."""
    return len(batch["label"]) if "label" in batch else sum(len(b["label"]) for b in batch.values())


class BalanceMonitor(pl.Callback):
    """Every `every` steps, logs the head's balance w = sigmoid(b) between the global branch and the class token
    (model/balance_weight_{mean,min,max}); nothing for models without it."""

    def __init__(self, every: int = 50) -> None:
        self.every = every

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        balance = pl_module.model.head.balance
        if balance is not None and trainer.global_step % self.every == 0:
            weight = torch.sigmoid(balance.detach())
            pl_module.log_dict({"model/balance_weight_mean": weight.mean(), "model/balance_weight_min": weight.min(),
                                "model/balance_weight_max": weight.max()}, on_step=True, on_epoch=False)


def view_macs(pl_module: torch.nn.Module) -> dict[str, float]:
    """MACs of one view per module of `pl_module` (by `named_modules` name; "" the whole), for each UniFormerV2 in it:
    uv2.models.flops' count of the model's design, on the meta device. Empty where it holds no UniFormerV2."""
    models = [(name, m) for name, m in pl_module.named_modules() if isinstance(m, UniFormerV2)]
    outermost = [(name, m) for name, m in models if not any(name.startswith(o + ".") for o, _ in models)]
    macs: dict[str, float] = {}
    for name, model in outermost:
        macs.update({".".join(filter(None, (name, sub))): count for sub, count in model_macs(model.cfg).items()})
    if outermost:
        macs.setdefault("", sum(macs[name] for name, _ in outermost))
    return macs


class _MacsTable(LayerSummaryTable):
    """Lightning's layer table with the FLOPs column and total given (MACs of one view), not counted by a forward."""

    def __init__(self, model: pl.LightningModule, max_depth: int, macs: dict[str, float]) -> None:
        self._macs = macs  # set first: the table is built in __init__
        super().__init__(model, max_depth=max_depth)

    @property
    def total_flops(self) -> int:
        return int(self._macs[""])

    @property
    def flop_counts(self) -> dict[str, dict[Any, int]]:
        return {name: {"macs": int(self._macs.get(name, 0))} for name in self.layer_names}


class ModelSummaryWithMacs(ModelSummary):
    """Lightning's model summary, its FLOPs column and "Total Flops" filled in by uv2.models.flops: the MACs of one
    view (the config's frames and input side), the paper's GFLOPs as `python -m uv2 flops` prints them.

    Lightning counts FLOPs only by running the LightningModule's ``example_input_array`` through the model, a forward
    at every fit's start (and on a CPU it would not see the depth-wise convolutions' shifted multiply-adds); uv2 sets
    none, so its table said 0. This count builds the design on the meta device: no memory, no compute.
    """

    @classmethod
    def of(cls, callback: pl.Callback) -> pl.Callback:
        """A configured callback as a fit runs it: Lightning's own ModelSummary (whose FLOPs say 0) becomes this one
        with the same settings; any other callback, a summary of another kind included, stays itself."""
        if type(callback) is not ModelSummary:
            return callback
        return cls(max_depth=callback._max_depth, **callback._summarize_kwargs)

    def _summary(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        macs = view_macs(pl_module)
        if not macs or getattr(trainer.strategy, "zero_stage_3", False):  # DeepSpeed's sharded summary as it is
            return super()._summary(trainer, pl_module)
        return _MacsTable(pl_module, self._max_depth, macs)


class ExportImageViT(pl.Callback):
    """At the end of fit, write the ViT part of the model (timm names, 2D stem) to RUN_DIR/`filename`, so an
    image-pretrained preset initialises the video presets (model.init_from)."""

    def __init__(self, filename: str = "vit.pth") -> None:
        self.filename = filename

    def on_fit_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / self.filename
            atomic_torch_save(export_image_vit(pl_module.model), path)
            log.info(f"exported the image ViT to {path}")


# ------------------------------------------------------------------------------------------- TensorBoard HPARAMS
HPARAMS_METRICS = {"hp/val_top1": "best validation top-1 (%) so far", "hp/test_top1": "multi-view test top-1 (%)"}


def hparams_value(value: Any) -> bool | float | str:
    """A hyperparameter as the HPARAMS tab holds it: booleans stay booleans (a switch, not 0/1), numbers become
    floats, anything else (None, lists, dicts) its text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def hparams_summaries(hparams: dict[str, Any], metrics: dict[str, str] = HPARAMS_METRICS) -> list:
    """The summaries that open a session in TensorBoard's hparams plugin: the experiment (which hyperparameters and
    metrics the tab has as columns) and the session start (this run's values)."""
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionStartInfo

    types = {bool: api_pb2.DATA_TYPE_BOOL, float: api_pb2.DATA_TYPE_FLOAT64, str: api_pb2.DATA_TYPE_STRING}
    values = {name: hparams_value(v) for name, v in hparams.items()}
    start = SessionStartInfo(start_time_secs=time.time())
    for name, v in values.items():
        setattr(start.hparams[name], {bool: "bool_value", float: "number_value", str: "string_value"}[type(v)], v)
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=name, type=types[type(v)]) for name, v in values.items()],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), description=text)
                      for tag, text in metrics.items()])
    return [_hparams_summary(metadata.EXPERIMENT_TAG, HParamsPluginData(experiment=experiment)),
            _hparams_summary(metadata.SESSION_START_INFO_TAG, HParamsPluginData(session_start_info=start))]


def session_end_summary(status: str) -> Any:
    """The summary that closes a session: status is one of TensorBoard's, "success", "failure" or "unknown" (an
    interrupted fit: TensorBoard has no "aborted", and the run is resumable, its resumed fit ending the session
    again)."""
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData, SessionEndInfo

    end = SessionEndInfo(status=api_pb2.Status.Value(f"STATUS_{status.upper()}"), end_time_secs=time.time())
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, HParamsPluginData(session_end_info=end))


def _hparams_summary(tag: str, data) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata

    data.version = metadata.PLUGIN_DATA_VERSION
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


class HParamsSummary(pl.Callback):
    """TensorBoard's HPARAMS tab for a run: one session with the model's switches
    (``VideoClassifier.hparams_for_logging``) and `hparams` (e.g. the grid's table, row, dataset and seed), and its
    metrics ``hp/val_top1`` (best validation top-1 so far; not in a run that does not validate) and ``hp/test_top1``
    (the multi-view test).

    The session start is written once per run, at the start of the first fit, and flushed at once; a resumed fit
    does not write it again (whether it was written travels in the checkpoint, with the best validation top-1).
    The session end (success, failure, or unknown for a fit stopped by Ctrl-C) is written when the fit ends. The
    metrics are scalars written to the run's event files when they are known, also by a later test stage
    (``python -m uv2 test``).

    A co-training run also opens one session per set, in the sub-run ``<log dir>/<set>``, with that set's
    validation and test top-1 and the set's entries of `set_hparams` ({set: {name: value}}) over `hparams`, so the
    tab lists each set like a run of its own; the run's own session holds the mean over the sets.

    Only a TensorBoard logger is written to; without one this callback does nothing.
    """

    def __init__(self, hparams: dict[str, Any] | None = None,
                 set_hparams: dict[str, dict[str, Any]] | None = None) -> None:
        self.run_hparams, self.set_hparams = dict(hparams or {}), dict(set_hparams or {})
        self.started = False  # the session start of this run is written (restored on resume)
        self.best_val: dict[str, float] = {}  # "" (the run) or a set -> best validation top-1
        self._writers: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"started": self.started, "best_val": dict(self.best_val)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.started = bool(state_dict.get("started", False))
        self.best_val = dict(state_dict.get("best_val", {}))

    # --------------------------------------------------------------------------------------------- writers
    @staticmethod
    def _logger(trainer: pl.Trainer):
        from pytorch_lightning.loggers import TensorBoardLogger

        if not trainer.is_global_zero:
            return None
        return next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def _sessions(self, pl_module) -> list[str]:
        """"" (the run) and, when co-training, every set."""
        return ["", *(getattr(pl_module, "set_sizes", None) or {})]

    def _writer(self, trainer: pl.Trainer, session: str):
        """The run's SummaryWriter ("") or a set's, in its sub-run (opened on first use)."""
        logger = self._logger(trainer)
        if logger is None:
            return None
        if not session:
            return logger.experiment
        if session not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[session] = SummaryWriter(str(Path(logger.log_dir) / session))
        return self._writers[session]

    def _close_set_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write(self, trainer: pl.Trainer, session: str, summaries: list) -> None:
        writer = self._writer(trainer, session)
        if writer is not None:
            file_writer = writer._get_file_writer()  # the summary-level writer (what Lightning uses too)
            for summary in summaries:
                file_writer.add_summary(summary)
            writer.flush()

    def _scalar(self, trainer: pl.Trainer, session: str, tag: str, value: float) -> None:
        writer = self._writer(trainer, session)
        if writer is not None:
            writer.add_scalar(tag, value, trainer.global_step)
            writer.flush()

    # ----------------------------------------------------------------------------------------------- hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module) -> None:
        if self.started or self._logger(trainer) is None:
            return
        switches = {**pl_module.hparams_for_logging(), **self.run_hparams}
        # the metrics this run will have: a run that does not validate (a tiny grid cell) has no hp/val_top1
        metrics = {tag: text for tag, text in HPARAMS_METRICS.items()
                   if tag != "hp/val_top1" or trainer.limit_val_batches != 0}
        for session in self._sessions(pl_module):
            values = {**switches, **self.set_hparams.get(session, {})} if session else switches
            self._write(trainer, session, hparams_summaries(values, metrics))
        self.started = True

    def on_validation_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":  # `validate` alone does not change the fit's best
            return
        for session in self._sessions(pl_module):
            top1 = trainer.callback_metrics.get(f"val/{session}/top1" if session else "val/top1")
            if top1 is not None:
                self.best_val[session] = max(float(top1), self.best_val.get(session, float("-inf")))
                self._scalar(trainer, session, "hp/val_top1", self.best_val[session])

    def on_test_end(self, trainer: pl.Trainer, pl_module) -> None:
        for session in self._sessions(pl_module):
            top1 = trainer.callback_metrics.get(f"test/{session}/top1" if session else "test/top1")
            if top1 is not None:
                self._scalar(trainer, session, "hp/test_top1", float(top1))
        self._close_set_writers()

    def on_fit_end(self, trainer: pl.Trainer, pl_module) -> None:
        self._end(trainer, pl_module, "success")

    def on_exception(self, trainer: pl.Trainer, pl_module, exception: BaseException) -> None:
        self._end(trainer, pl_module, "unknown" if isinstance(exception, KeyboardInterrupt) else "failure")

    def _end(self, trainer: pl.Trainer, pl_module, status: str) -> None:
        if self.started:
            for session in self._sessions(pl_module):
                self._write(trainer, session, [session_end_summary(status)])
        self._close_set_writers()


def _decode_failures(batch) -> torch.Tensor | None:
    """Failed decodes behind a training batch (plain, or co-training {set: batch}), as a tensor where the batch is
    (reading it would wait for the device); None for batches that carry no counts."""
    batches = [batch] if "label" in batch else list(batch.values())
    counts = [b["decode_failures"].sum() for b in batches if "decode_failures" in b]
    return torch.stack(counts).sum() if counts else None


class StepClock:
    """Time marks on the timeline where the training steps run, read without waiting for the device.

    On a CPU a mark is ``time.perf_counter()``. On a CUDA device it is an event recorded on the current stream: the
    time at which the GPU gets there. The host runs ahead of the GPU (kernels are queued), so host time between two
    hooks says when the host got there, not what the GPU did: a host that waits for the GPU at some point of one
    step (reading a value back) charges the GPU's unfinished work to whatever it measures next. Marks on the GPU's
    own timeline do not depend on where the host waits. ``passed`` never blocks; ``seconds`` needs both marks
    passed.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def passed(self, mark: Any) -> bool:
        return mark.query() if self.cuda else True

    def seconds(self, start: Any, end: Any) -> float:
        return start.elapsed_time(end) / 1000.0 if self.cuda else end - start

    def synchronize(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def writes_step_logs(trainer: pl.Trainer) -> bool:
    """Whether the logger writes this training step's on_step values (every trainer.log_every_n_steps). Lightning's
    own test, a private attribute: where it is missing, every step counts as written. A value logged on the other
    steps is computed and dropped; Lightning's log call alone costs ~0.5 ms on a CPU (a few % of a tiny step)."""
    return getattr(getattr(trainer, "_logger_connector", None), "should_update_logs", True)


class NonBlockingProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, showing the step's training loss without making the host wait for the GPU.

    Lightning reads every value logged on a training step with ``prog_bar=True`` back to the host (``.item()``) at
    the end of that step, whether or not a bar shows it (Lightning issue 21232): the host then waits for the GPU's
    whole queue once per step, and the next batch's transfer and augmentation start on an idle GPU. On one H200 that
    was the data wait of K400 B/16 training with RandAugment on the device (``benchmarks/step_probe.py``). So the
    module logs ``train/loss_step`` without ``prog_bar``, and this bar shows it from pinned host copies queued after
    each step: at a refresh, the newest copy that has landed (on a GPU a step or two behind; on a CPU the step's own
    value).
    """

    KEY = "train/loss_step"  # the logged value the bar shows

    def __init__(self, refresh_rate: int = 1) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self._copies: list[tuple[torch.Tensor, Any]] = []  # (host copy, CUDA event after the copy or None), in order
        self._shown: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        value = trainer.callback_metrics.get(self.KEY) if self.is_enabled else None  # disabled on ranks > 0
        if torch.is_tensor(value):  # a device tensor: converting it here would wait for the GPU
            self._drain()  # the copies in flight stay few: a step's copy lands within a step or two
            value = value.detach()
            if value.is_cuda:
                host = torch.empty((), dtype=value.dtype, pin_memory=True)
                host.copy_(value, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
                self._copies.append((host, event))
            else:
                self._copies = [(value, None)]
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _drain(self) -> None:
        """Take the copies that have landed, in order; the newest is shown."""
        while self._copies and (self._copies[0][1] is None or self._copies[0][1].query()):
            self._shown = float(self._copies.pop(0)[0])

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, int | float | str]:
        self._drain()
        metrics = super().get_metrics(trainer, pl_module)
        if self._shown is not None:
            metrics[self.KEY] = self._shown
        return metrics


class ThroughputSummary(pl.Callback):
    """Throughput of the training loop: data/wait_s, data/wait_fraction and perf/clips_per_s, per step (``_step``,
    on the steps the logger writes: rank 0's) and per epoch (``_epoch``: the epoch's wait per step, and its wait and
    clips over its time, averaged over the devices), and at the end of ``fit`` one line, e.g.::

        fit throughput: 1280 clips, the first step after 14.2 s (worker start-up); then 1248 clips in 61.2 s of
        training steps, 20.4 clips/s, data wait 63% of the step time, 0 decode failures; the model waited for data:
        raise data.num_workers (8 now, 16 CPUs), set data.num_repeats 2 (one decode, 2 augmented clips), or store
        the videos smaller (short side 320 px, ...)

    A step's data wait is the time between the end of the previous step and the start of this one where the step
    runs (:class:`StepClock`: on a GPU, on the GPU's timeline): fetching the batch, the transfer, the DataModule's
    ``on_after_batch_transfer`` (the batch's augmentation on the device) and any time the device sat idle in
    between. On a GPU the values are read once the GPU has passed them, so the per-step scalars lag a step or two
    behind the step they are logged at; nothing waits for the GPU until the end of ``fit``. The first step of the fit
    (worker start-up, the first batch, lazy initialisation) is reported on its own and left out of the rates and the
    epoch values.

    Clips count every device (world size x local clips); the wait fraction and the decode failures are summed over
    the devices.

    Args:
        hint_above: the wait fraction above which the line suggests how to feed the model faster.
    """

    def __init__(self, hint_above: float = 0.2) -> None:
        self.hint_above = hint_above  # wait fraction above which a hint is printed
        self.first_s = 0.0  # seconds of the fit's first step, wait included (start-up)
        self.first_clips = 0  # its clips on this device
        self.clips = 0  # training clips on this device after the first step
        self.wait_s = 0.0  # seconds waited for batches on this device after the first step
        self.step_s = 0.0  # seconds inside training steps on this device after the first step
        self._failures: torch.Tensor | None = None  # failed decodes behind this device's batches (on the device)
        self._clock: StepClock | None = None
        self._previous_end: Any = None  # mark at the end of the previous step (or the start of the epoch)
        self._start: Any = None  # mark at the start of the current step
        self._pending: list[tuple[Any, Any, Any, int]] = []  # (previous end, start, end, clips) not yet read
        self._steps = 0  # steps read so far
        self._epoch_totals = (0.0, 0.0, 0, 0)  # this epoch's wait seconds, step seconds, clips and steps (those read)
        self.line: str | None = None  # the summary, once fit ended (global rank 0)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._clock is None:
            self._clock = StepClock(pl_module.device)
        self._previous_end = self._clock.mark()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._clock is None:  # a run resumed mid-epoch starts without on_train_epoch_start
            self._clock = StepClock(pl_module.device)
            self._previous_end = self._clock.mark()
        self._start = self._clock.mark()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        end = self._clock.mark()
        self._pending.append((self._previous_end, self._start, end, batch_clips(batch)))
        self._previous_end = end
        failures = _decode_failures(batch)
        if failures is not None:
            self._failures = failures if self._failures is None else self._failures + failures
        latest = self._read(self._clock.passed)
        if latest is not None and writes_step_logs(trainer):
            pl_module.log_dict(self._values(*latest, trainer.world_size, "_step"), on_step=True, on_epoch=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wait, step, clips, steps = self._epoch_totals
        if steps:  # the mean step of the epoch's steps read by now (on a GPU the last one or two count in the next)
            values = self._values(wait / steps, step / steps, clips / steps, trainer.world_size, "_epoch")
            pl_module.log_dict(values, on_step=False, on_epoch=True, sync_dist=True)  # the mean over the devices
        self._epoch_totals = (0.0, 0.0, 0, 0)

    @staticmethod
    def _values(wait: float, step: float, clips: float, world_size: int, suffix: str) -> dict[str, float]:
        """The scalars of a step (or an epoch's mean step): seconds waited, the wait's share, clips/s of every
        device."""
        seconds = max(wait + step, 1e-9)
        return {f"data/wait_s{suffix}": wait, f"data/wait_fraction{suffix}": wait / seconds,
                f"perf/clips_per_s{suffix}": clips * world_size / seconds}

    def _read(self, passed) -> tuple[float, float, int] | None:
        """Read the pending steps whose end mark has passed, in order; the last one's (wait, step, clips)."""
        latest = None
        while self._pending and passed(self._pending[0][2]):
            previous_end, start, end, clips = self._pending.pop(0)
            wait, step = self._clock.seconds(previous_end, start), self._clock.seconds(start, end)
            if self._steps == 0:
                self.first_s, self.first_clips = wait + step, clips
            else:
                self.clips += clips
                self.wait_s += wait
                self.step_s += step
                totals = self._epoch_totals
                self._epoch_totals = (totals[0] + wait, totals[1] + step, totals[2] + clips, totals[3] + 1)
            self._steps += 1
            latest = wait, step, clips
        return latest

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._clock is not None:
            self._clock.synchronize()
            self._read(lambda mark: True)
        failures = 0.0 if self._failures is None else float(self._failures)
        totals = torch.tensor([self.first_clips, self.first_s, self.clips, self.wait_s, self.step_s, failures],
                              dtype=torch.float64, device=pl_module.device)
        if trainer.world_size > 1:  # every rank reaches on_fit_end: one all-reduce
            totals = trainer.strategy.reduce(totals, reduce_op="sum")
        first_clips, first_s, clips, wait_s, step_s, failures = totals.tolist()
        if not trainer.is_global_zero:
            return
        if not first_clips:  # e.g. --resume of a run that had already finished
            self.line = "fit throughput: no training step ran in this fit"
        else:
            self.line = self.summary(int(clips), wait_s, step_s, int(failures), trainer,
                                     first=(int(first_clips), first_s / max(trainer.world_size, 1)),
                                     compiled=bool(getattr(pl_module, "compiled", False)))
        print(self.line, flush=True)  # on stdout, once: benchmarks/feed_check.py and grid_jobs.py read it there

    def summary(self, clips: int, wait_s: float, step_s: float, failures: int, trainer: pl.Trainer,
                first: tuple[int, float] | None = None, compiled: bool = False) -> str:
        """The line (wait and step seconds summed over the devices; the wall time is their mean per device).
        ``first``: the first step's clips (all devices) and seconds, reported apart from the rates; ``compiled``: the
        model is torch.compiled, so that step's time is mostly its compilation."""
        devices = max(trainer.world_size, 1)
        seconds = (wait_s + step_s) / devices
        wait = wait_s / (wait_s + step_s) if wait_s + step_s > 0 else 0.0
        head = "fit throughput: "
        if first is not None:
            start_up = "compilation and worker start-up" if compiled else "worker start-up"
            head += f"{clips + first[0]} clips, the first step after {first[1]:.1f} s ({start_up}); then "
        line = (f"{head}{clips} clips in {seconds:.1f} s of training steps, "
                f"{clips / seconds if seconds > 0 else 0.0:.1f} clips/s, data wait {wait:.0%} of the step time, "
                f"{failures} decode failure{'s' if failures != 1 else ''}")
        if wait > self.hint_above:
            line += "; " + self.hint(trainer)
        return line

    def hint(self, trainer: pl.Trainer) -> str:
        datamodule = getattr(trainer, "datamodule", None)
        hparams = getattr(datamodule, "hparams", {}) or {}
        common = hparams.get("common") or {}  # MultiSetDataModule: the arguments every set shares
        workers = hparams.get("num_workers", common.get("num_workers"))
        repeats = hparams.get("num_repeats", common.get("num_repeats")) or 1
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        now = f" ({workers} now, {cpus} CPUs)" if workers is not None else f" ({cpus} CPUs)"
        return (f"the model waited for data: raise data.num_workers{now}, set data.num_repeats {repeats + 1} "
                f"(one decode, {repeats + 1} augmented clips), or store the videos smaller (short side 320 px, "
                f"e.g. ffmpeg -vf scale=-2:320)")
