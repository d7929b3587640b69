"""`python -m uv2 fit|validate|test --config experiments/NAME.yaml [overrides] [--resume]` (LightningCLI).

LightningCLI conventions hold (YAML sections model / data / trainer, dotted overrides such as
`--model.arch.fusion parallel`, `--print_config`), plus:
- experiment files may inherit: a top-level `base: other.yaml` is merged first (uv2.experiment.load_experiment);
- `--run_dir DIR` (default: the config's `run_dir`, which a run's own config.yaml holds, else runs/<config name>)
  receives the resolved config.yaml, the TensorBoard logs and checkpoints/: best-*.ckpt (by val/top1) and
  last.ckpt, the newest state (every epoch end, every `--checkpoint_every_n_steps` optimizer steps, the end of
  training, Ctrl-C / SIGTERM: uv2.train.checkpointing);
- `--resume` continues the run in run_dir from last.ckpt, bit-identically to the uninterrupted run (same step,
  optimizer, scheduler, data position and augmentation draws, random generators, epoch metric sums:
  uv2.train.resume).
Checkpoints are written atomically (temporary file + rename), so a killed run never leaves a half-written one.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from pytorch_lightning.callbacks import LearningRateMonitor, ModelSummary, ProgressBar
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger

from uv2.errors import EXIT_INTERRUPTED, input_error_in
from uv2.experiment import RUN_CONFIG, load_experiment
from uv2.io import CheckpointError, check_checkpoint_file, make_output_dir
from uv2.train.callbacks import (
    BalanceMonitor,
    HParamsSummary,
    ModelSummaryWithMacs,
    NonBlockingProgressBar,
    ThroughputSummary,
)
from uv2.train.checkpointing import LAST, AtomicCheckpointIO, LastCheckpoint, best_checkpoint
from uv2.train.module import VideoClassifier
from uv2.train.resume import EpochMetricSums, RandomStates, TrainLoaderPosition

log = logging.getLogger(__name__)

PROGRESS_REFRESH_STEPS = 10  # training steps between updates of the progress bar (see instantiate_trainer)
# warnings of the libraries that a uv2 user cannot act on: torch >= 2.14's deprecations called inside torchdata's
# StatefulDataLoader and Lightning's pytree helper (they print on every fit)
LIBRARY_DEPRECATIONS = ("'set_vital' is deprecated", r"`isinstance\(treespec, LeafSpec\)` is deprecated")


class _HideTips(logging.Filter):
    """Drops Lightning's "💡 Tip: ..." lines (an advertisement for its cloud logger at every fit)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_library_notices() -> None:
    """Hide the libraries' notices that say nothing about this run (LIBRARY_DEPRECATIONS, Lightning's tips); their
    other warnings and Lightning's own lines (devices, seeds, the model summary) stay."""
    for message in LIBRARY_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideTips) for f in logger.filters):
            logger.addFilter(_HideTips())


class Trainer(pl.Trainer):
    """Lightning's Trainer, with `limit_*_batches` typed so that the command line's and a config's integers stay
    integers.

    Lightning annotates them `Optional[Union[int, float]]`, but typing caches Unions by their members regardless of
    order: once anything imported before Lightning has written `Union[float, int]`, Lightning's annotation is that
    one, jsonargparse tries float first, and `--trainer.limit_test_batches 1` arrives as 1.0: 100 % of the batches
    instead of one (Lightning counts 2.0 and up as batches). `int | float` is not cached, so int is tried first.

    Args:
        limit_train_batches: training batches per epoch: an int is a count, a float a fraction (default 1.0, all).
        limit_val_batches: validation batches, the same way.
        limit_test_batches: test batches, the same way.
        limit_predict_batches: prediction batches, the same way.
    """

    def __init__(self, *args: Any, limit_train_batches: int | float | None = None,
                 limit_val_batches: int | float | None = None, limit_test_batches: int | float | None = None,
                 limit_predict_batches: int | float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, limit_train_batches=limit_train_batches, limit_val_batches=limit_val_batches,
                         limit_test_batches=limit_test_batches, limit_predict_batches=limit_predict_batches, **kwargs)


class UV2CLI(LightningCLI):
    """LightningCLI with run directories, atomic checkpoints and uv2's callbacks.

    `hparams_summary`: the HPARAMS-tab callback of the run (default: the model's switches only); the ablation grid
    gives one that also holds the cell's table, row, dataset and seed.
    """

    def __init__(self, *args: Any, hparams_summary: HParamsSummary | None = None, **kwargs: Any) -> None:
        self.hparams_summary = hparams_summary or HParamsSummary()  # set first: the trainer is built in __init__
        kwargs.setdefault("trainer_class", Trainer)
        super().__init__(*args, **kwargs)

    def instantiate_classes(self) -> None:
        """Lightning's, but bad input that a class raised in its __init__ (a data module's SettingError, which
        jsonargparse re-raises as a ValueError of its own) comes out as itself: one line at the command line, the
        grid's record of a cell, and an error that keeps its message between processes (uv2.errors)."""
        try:
            super().instantiate_classes()
        except Exception as err:
            if (bad := input_error_in(err)) is None or bad is err:
                raise
            raise bad from None

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="run directory (config, TensorBoard logs, checkpoints); default runs/<config name>, "
                                 "or the config's run_dir")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=0,
                            help="also save last.ckpt every N optimizer steps (mid-epoch resume); 0: at epoch ends")

    def instantiate_trainer(self, **kwargs: Any):
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.subcommand in ("validate", "test"):
            self._find_named_checkpoint()  # before the run directory is made: a refused run leaves no folder behind
        run_dir = make_output_dir(run_dir_of(config), "--run_dir")
        kwargs.setdefault("default_root_dir", str(run_dir))
        trainer_cfg = config.get("trainer", {})
        if trainer_cfg.get("logger") in (None, True):
            kwargs["logger"] = TensorBoardLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False)
        # RandomStates, TrainLoaderPosition and EpochMetricSums restore what Lightning leaves out (uv2.train.resume);
        # EpochMetricSums before LastCheckpoint: after a resume it merges the epoch sums before the next write
        callbacks = [ThroughputSummary(), BalanceMonitor()]
        if trainer_cfg.get("logger") is not False:  # `--trainer.logger false`: Lightning refuses the monitor then
            callbacks.append(LearningRateMonitor(logging_interval="step"))
        callbacks += [self.hparams_summary, RandomStates(), TrainLoaderPosition(), EpochMetricSums()]
        if trainer_cfg.get("enable_checkpointing", True) is not False:  # uv2.train.checkpointing: what each file is
            ckpt_dir = run_dir / "checkpoints"
            if trainer_cfg.get("limit_val_batches") != 0:  # no validation, no best: Lightning warned at every save
                callbacks.append(best_checkpoint(ckpt_dir))
            callbacks.append(LastCheckpoint(ckpt_dir, every_n_steps=config.get("checkpoint_every_n_steps") or 0))
        configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        configured = [ModelSummaryWithMacs.of(c) for c in configured]  # Lightning's summary with the model's FLOPs
        if trainer_cfg.get("enable_progress_bar", True) is not False and not any(
                isinstance(c, ProgressBar) for c in [*configured, *(kwargs.get("callbacks") or [])]):
            # the training loss without a wait for the GPU (NonBlockingProgressBar); redrawn every few steps
            callbacks.append(NonBlockingProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS))
        if trainer_cfg.get("enable_model_summary", True) is not False and not any(
                isinstance(c, ModelSummary) for c in [*configured, *(kwargs.get("callbacks") or [])]):
            callbacks.append(ModelSummaryWithMacs())  # the model's FLOPs, which Lightning's own summary leaves at 0
        kwargs["callbacks"] = callbacks + list(configured) + list(kwargs.get("callbacks") or [])
        kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)

    def _run_subcommand(self, subcommand: str) -> None:
        """Lightning ends a run stopped by Ctrl-C with exit status 1, after its graceful stop (last.ckpt written, the
        TensorBoard session closed): exit with the shell's 130 for an interrupt instead, which scripts and job
        schedulers tell apart from a failure."""
        try:
            super()._run_subcommand(subcommand)
        except SystemExit as stop:
            if stop.code == 1 and self.trainer.interrupted:
                raise SystemExit(EXIT_INTERRUPTED) from None
            raise

    def before_fit(self) -> None:
        """--resume (`ckpt_path: last`) continues from the run directory's last.ckpt, named as a file (see
        named_checkpoints). Where there is no last.ckpt yet (the first start under a job script that always resumes)
        the run starts afresh, saying so."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        found = named_checkpoints(run_dir_of(config), "last")
        if not found:
            log.info(f"--resume: no {run_dir_of(config) / 'checkpoints' / LAST} yet, so the run starts from the "
                     f"beginning")
        config["ckpt_path"] = str(found[0]) if found else None

    def before_validate(self) -> None:
        self._say_which_weights()

    def before_test(self) -> None:
        self._say_which_weights()

    def _find_named_checkpoint(self) -> None:
        """`--ckpt_path best` / `last`: the run directory's file (named_checkpoints), or one line naming the folder."""
        config = self.config_init[self.subcommand]
        name = config.get("ckpt_path")
        if name not in ("best", "last"):
            return
        found = named_checkpoints(run_dir_of(config), name)
        folder = run_dir_of(config) / "checkpoints"
        if not found:
            kind, when = ("best-*.ckpt", "as it validates") if name == "best" else (LAST, "as it trains")
            raise CheckpointError(f"--ckpt_path {name}: {folder} has no {kind} (a run writes one {when}); give "
                                  f"--run_dir of a run that has, or --ckpt_path a checkpoint file")
        if len(found) > 1:
            raise CheckpointError(f"--ckpt_path {name}: {folder} holds {len(found)} best-*.ckpt files "
                                  f"({', '.join(p.name for p in found)}); give --ckpt_path one of them")
        config["ckpt_path"] = str(found[0])
        log.info(f"--ckpt_path {name}: {found[0]}")

    def _say_which_weights(self) -> None:
        """A test or validate without --ckpt_path scores the weights model.init_from gives (the way to score an
        official checkpoint), which for image weights means untrained blocks and head: said, not assumed."""
        if self.config_init[self.subcommand].get("ckpt_path") or not self.trainer.is_global_zero:
            return
        init_from = self.model.hparams.get("init_from")
        given = f"model.init_from gives ({init_from})" if init_from else "a random initialisation gives (no init_from)"
        log.warning(f"{self.subcommand} without --ckpt_path: the weights are those {given}, not a run's; to score a "
                    f"trained run give --ckpt_path RUN_DIR/checkpoints/last.ckpt")


def named_checkpoints(run_dir: Path, name: str) -> list[Path]:
    """The files `--ckpt_path best` / `last` name in a run directory: its best-*.ckpt, its last.ckpt (where they
    exist). uv2 resolves the names itself: Lightning knows the best file only in the process that fitted, and looks
    for last.ckpt beside its best-checkpoint callback, which a run without validation does not have."""
    ckpt_dir = run_dir / "checkpoints"
    return sorted(ckpt_dir.glob("best-*.ckpt")) if name == "best" else [p for p in [ckpt_dir / LAST] if p.exists()]


def run_dir_of(config) -> Path:
    """The run directory a parsed config names (--run_dir, or the config's run_dir; expand_argv sets a default)."""
    return Path(config.get("run_dir") or "runs/default")


def expand_argv(argv: list[str], tmp_dir: str | Path) -> list[str]:
    """Resolve every --config file (`base:` inheritance, `model.arch.variant`) into a merged YAML in tmp_dir, map
    --resume to --ckpt_path last and default --run_dir to runs/<name of the last config> where neither the command
    line nor a config sets it (a run's own config.yaml does: testing with it writes beside the run)."""
    out: list[str] = []
    run_dir_given = any(a == "--run_dir" or a.startswith("--run_dir=") for a in argv)
    last_config: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--resume":
            out += ["--ckpt_path", "last"]
        elif arg.startswith("--ckpt_path=") or (arg == "--ckpt_path" and i + 1 < len(argv)):
            check_ckpt_path(arg.split("=", 1)[1] if "=" in arg else argv[i + 1])
            out.append(arg)
        elif arg == "--config" or arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1] if "=" in arg else argv[i + 1])
            i += 0 if "=" in arg else 1
            merged = Path(tmp_dir) / f"{len(out)}_{path.stem}.yaml"
            config = load_experiment(path)
            run_dir_given = run_dir_given or bool(config.get("run_dir"))
            merged.write_text(yaml.safe_dump(config, sort_keys=False))
            out += ["--config", str(merged)]
            last_config = path
        else:
            out.append(arg)
        i += 1
    if not run_dir_given and last_config is not None:
        out += ["--run_dir", str(Path("runs") / last_config.stem)]
    return out


# --ckpt_path values that Lightning resolves itself rather than as a file
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry", "null")


def check_ckpt_path(value: str) -> None:
    """A --ckpt_path that names a file must exist and can be a checkpoint (uv2.io.check_checkpoint_file): said
    before the run is built, not in a traceback from Lightning's torch.load."""
    if value.split(":")[0] in LIGHTNING_CKPT_NAMES or "://" in value:
        return
    if Path(value).is_file():
        check_checkpoint_file(value)
        return
    raise CheckpointError(f"--ckpt_path {value}: no such checkpoint file (or one of Lightning's names: "
                          f"{', '.join(LIGHTNING_CKPT_NAMES[:-1])})")


CONFIG_DIR_PREFIX = "uv2-config-"  # + "<pid>-<random>": a run's merged configs, in the temporary folder


def remove_stale_config_dirs(tmp_root: str | Path | None = None) -> list[Path]:
    """Remove the merged-config folders of runs whose process is gone (a SIGKILLed run cannot remove its own);
    those of running processes stay. Returns the folders removed."""
    removed = []
    for folder in Path(tmp_root or tempfile.gettempdir()).glob(f"{CONFIG_DIR_PREFIX}*-*"):
        pid = folder.name[len(CONFIG_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or not folder.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # no such process: its run is over
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except PermissionError:  # another user's running process
            pass
    return removed


def run(subcommand: str, argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # sys.argv stays intact: DDP re-launches this command line for ranks > 0 (`python -m uv2.__main__ fit ...`)
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    quiet_library_notices()
    remove_stale_config_dirs()
    # the merged configs live while the run does
    with tempfile.TemporaryDirectory(prefix=f"{CONFIG_DIR_PREFIX}{os.getpid()}-") as tmp_dir:
        UV2CLI(
            VideoClassifier,
            pl.LightningDataModule,  # any data module by class_path: uv2.data.VideoDataModule or ImageDataModule
            subclass_mode_data=True,
            args=[subcommand, *expand_argv(argv, tmp_dir)],
            # the run's config.yaml stays the fit's: a test or validate writes its own (test_config.yaml) beside it
            save_config_kwargs={"overwrite": True, "config_filename": RUN_CONFIG if subcommand == "fit"
                                else f"{subcommand}_{RUN_CONFIG}"},
            parser_kwargs={"parser_mode": "yaml"},
        )
    return 0


def fit_main(argv: list[str]) -> int:
    return run("fit", argv)


def validate_main(argv: list[str]) -> int:
    return run("validate", argv)


def test_main(argv: list[str]) -> int:
    return run("test", argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2:]))
