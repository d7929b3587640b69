"""One cell's training run, in-process: fit (resuming from its last checkpoint when asked), then the multi-view
test, through the same LightningCLI as `python -m uv2 fit`; and the peak memory it took.

How a cell's run is displayed is decided here, for every scale: Lightning's progress bar and model summary are
off (the grid reports progress through the callbacks it passes, uv2.ablation.progress) and Lightning's INFO lines
are hidden.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from uv2.errors import SettingError
from uv2.io import atomic_torch_save
from uv2.train.hardware import hardware

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from uv2.train.callbacks import HParamsSummary

CHECKPOINT_EVERY = 50  # optimizer steps between mid-epoch checkpoints (resume after a kill loses at most this many)


def quiet_warnings() -> None:
    """A grid process's log: warnings and errors only, and none of the libraries' own warnings (Lightning's advice
    on worker counts and small batches does not apply to tiny cells). The grid's and each worker process's."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", module="pytorch_lightning|lightning_fabric|torchdata")


def quiet_lightning() -> None:
    """One progress line per cell: Lightning's own INFO lines (devices, seeds, summaries) are hidden."""
    for name in ("pytorch_lightning", "lightning_fabric", "pytorch_lightning.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "lightning_fabric.utilities.seed", "uv2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def averages_weights(callback: pl.Callback) -> bool:
    """Whether a callback keeps an average of the weights (Lightning >= 2.6's WeightAveraging, EMAWeightAveraging)."""
    try:
        from pytorch_lightning.callbacks import WeightAveraging
    except ImportError:  # Lightning < 2.6
        return False
    return isinstance(callback, WeightAveraging)


def refused_fields(message: str) -> str:
    """jsonargparse's error on one line, which key and why (`Parser key "data": Problem with given class_path
    'uv2.data.VideoDataModule': Option 'batch_sise' is not accepted`), without its account of the union's other
    subtypes and of the whole value it was given."""
    skip = ("Given value", "Subtypes:", "Errors:", "Does not validate against any of the Union subtypes",
            "Expected a <class 'NoneType'>")
    lines = (line.strip().removeprefix("- ") for line in message.splitlines())
    return " ".join(line for line in lines if line and not line.startswith(skip))


def fit_and_test(config_path: Path, run_dir: Path, resume: bool, callbacks: Sequence[pl.Callback] = (),
                 hparams_summary: HParamsSummary | None = None) -> dict[str, Any]:
    """Fit an experiment in run_dir (resuming from its last checkpoint when asked), then test it.

    `callbacks` join the run's own (the grid's progress line); `hparams_summary` writes TensorBoard's HPARAMS
    entry of the run (default: the model's switches only).

    Returns the test metrics, timings and class count; a co-training run (several sets) returns the mean metrics
    and, under "per_set", each set's. Video-level predictions go to run_dir/test_predictions[_<set>].pt.
    """
    import pytorch_lightning as pl
    from jsonargparse import ArgumentError

    from uv2.train.checkpointing import LAST
    from uv2.train.cli import UV2CLI
    from uv2.train.module import VideoClassifier, train_batch_size

    quiet_lightning()
    try:  # a field the parser refuses raises here instead of ending the grid's process (argparse's exit)
        cli = UV2CLI(VideoClassifier, pl.LightningDataModule, subclass_mode_data=True, run=False,
                     args=["--config", str(config_path), "--run_dir", str(run_dir), "--checkpoint_every_n_steps",
                           str(CHECKPOINT_EVERY), "--trainer.enable_progress_bar", "false",
                           "--trainer.enable_model_summary", "false"],
                     parser_kwargs={"exit_on_error": False}, save_config_kwargs={"overwrite": True},
                     trainer_defaults={"callbacks": list(callbacks)}, hparams_summary=hparams_summary)
    except ArgumentError as err:
        raise SettingError(f"{Path(config_path).name}: {refused_fields(str(err))}") from None
    last = run_dir / "checkpoints" / LAST
    start = time.perf_counter()
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule,
                        ckpt_path=str(last) if resume and last.exists() else None)
    except SystemExit:  # Lightning ends an interrupted fit with sys.exit(1); the grid records the cell as interrupted
        if cli.trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    train_s = time.perf_counter() - start
    if cli.trainer.interrupted:
        raise KeyboardInterrupt
    # the test names its weights: last.ckpt, the final state of the fit (test_results.json and results.csv). A
    # weight-averaging callback (Lightning's EMAWeightAveraging) saves the average as last.ckpt's weights and, in the
    # trainer that fitted, loads the current weights back from it: it leaves first, so the test is of the weights
    # that `python -m uv2 test --ckpt_path last.ckpt` tests (Lightning's advice to add the callback back is not for
    # this test, which leaves it out on purpose)
    cli.trainer.callbacks = [c for c in cli.trainer.callbacks if not averages_weights(c)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks used to create")
        cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=str(last), verbose=False)
    result, names = cli.model.test_results, cli.model.class_names
    per_set = result.get("per_set", {"": result})
    summary: dict[str, Any] = {}
    for name, rows in cli.model.head_slices().items():
        r, set_names = per_set[name], names[rows]
        if name:  # co-training: the set's own class names, without the "set/" prefix
            set_names = [n.split("/", 1)[1] for n in set_names]
        atomic_torch_save({"video_ids": r["video_ids"], "scores": r["scores"], "labels": r["labels"],
                           "class_names": set_names}, run_dir / f"test_predictions{'_' + name if name else ''}.pt")
        summary[name] = {**r["metrics"], "num_classes": len(set_names), "checkpoint": result["checkpoint"],
                         "checkpoint_step": result["checkpoint_step"]}
    steps = cli.trainer.global_step
    batch = train_batch_size(cli.datamodule) * cli.trainer.world_size
    out = {**result["metrics"], "train_s": train_s, "clips_per_s": steps * batch / max(train_s, 1e-9),
           "num_classes": cli.model.arch.num_classes, "checkpoint": result["checkpoint"],
           "checkpoint_step": result["checkpoint_step"], "hardware": hardware(cli.trainer.strategy.root_device)}
    if "per_set" in result:
        out["per_set"] = summary
    return out


class PeakMemory:
    """Peak resident memory of this process while the block runs (GPU: peak allocated), in MB."""

    def __enter__(self) -> PeakMemory:
        self.peak, self._stop = 0.0, threading.Event()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.is_set():
            try:
                rss = int(Path("/proc/self/statm").read_text().split()[1]) * page / 2**20
            except (OSError, ValueError, IndexError):
                return
            self.peak = max(self.peak, rss)
            self._stop.wait(0.25)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() / 2**20
