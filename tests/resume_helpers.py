"""Killing a run at a state the test chose, and comparing a resumed run with the uninterrupted one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Checkpoint

from tests.helpers import REPO
from uv2.train.checkpointing import LastCheckpoint


def uv2_fit(args: list[str], log: Path, timeout: float = 600) -> int:
    """`python -m uv2 fit` in a subprocess (every run of a comparison is one: same threads, same start), its output
    in `log`; its return code. Run in a session of its own, which is killed once the run has ended: a run killed with
    SIGKILL leaves its DataLoader workers (forkserver children) behind."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uv2", "fit", *args], cwd=REPO, stdout=out, stderr=out,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


class KillAfterCheckpoint(Checkpoint):
    """SIGKILLs its own process right after last.ckpt holds optimizer step `step` (give it as a trainer callback), so
    a test kills a run at a state it chose, whatever the machine's load. A ``Checkpoint`` given after LastCheckpoint,
    so that Lightning runs it after LastCheckpoint's write (checkpoint callbacks run last, in the order given).

    Args:
        step: the optimizer step.
        write: False: wait until the run's LastCheckpoint writes that step (`--checkpoint_every_n_steps`, an epoch
            end); True: set the LastCheckpoint's interval to `step` first, for runs whose interval a test cannot set
            (the ablation grid's cells).
        marker: a file; the process kills itself only while it does not exist, and creates it first, so that a rerun
            of the same config (the grid resumes a cell only when its config is unchanged) runs on.
    """

    def __init__(self, step: int, write: bool = False, marker: str | None = None) -> None:
        self.step, self.write, self.marker = step, write, marker

    def _disarmed(self) -> bool:
        return bool(self.marker) and Path(self.marker).exists()

    @staticmethod
    def _last(trainer: pl.Trainer) -> LastCheckpoint:
        return next(c for c in trainer.callbacks if isinstance(c, LastCheckpoint))

    def on_train_start(self, trainer, pl_module) -> None:
        if self.write and not self._disarmed():
            self._last(trainer).every_n_steps = self.step

    def _kill_if_written(self, trainer: pl.Trainer) -> None:
        if trainer.global_step == self.step and self._last(trainer)._saved_step == self.step and not self._disarmed():
            if self.marker:
                Path(self.marker).write_text(str(self.step))
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._kill_if_written(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._kill_if_written(trainer)


def weight_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest |difference| between two state dicts (same keys)."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0 for k in a)


def logged_scalars(run_dir: Path, newest_only: bool = False) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of a run's own event files (the newest file only: what a resumed run logged)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    files = sorted(Path(run_dir).glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns)
    scalars: dict[str, dict[int, float]] = {}
    for path in files[-1:] if newest_only else files:
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, {})[event.step] = value.simple_value
                elif value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
                    from tensorboard.util import tensor_util

                    scalars.setdefault(value.tag, {})[event.step] = float(tensor_util.make_ndarray(value.tensor))
    return scalars
