"""`python -m uv2 fit|validate|test --config experiments/NAME.yaml [overrides] [--resume]` (LightningCLI).

LightningCLI conventions hold (YAML sections model / data / trainer, dotted overrides such as
`--model.arch.fusion parallel`, `--print_config`), plus:
- experiment files may inherit: a top-level `base: other.yaml` is merged first (uv2.config.load_experiment);
- `--run_dir DIR` (default runs/<config name>) receives the resolved config.yaml, the TensorBoard logs and
  checkpoints/ (best by val/top1, and last.ckpt, also every `--checkpoint_every_n_steps` optimizer steps);
- `--resume` continues the run in run_dir from its last checkpoint (same step, optimizer, scheduler, sampler).
Checkpoints are written atomically (temporary file + rename), so a killed run never leaves a half-written one.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yaml
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger

from uv2.config import load_experiment
from uv2.io import atomic_torch_save
from uv2.train.callbacks import ThroughputSummary
from uv2.train.module import PerfMonitor, VideoClassifier


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made atomic: a SIGKILL mid-save leaves the previous checkpoint intact."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_torch_save(checkpoint, path)


class UV2CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="run directory (config, TensorBoard logs, checkpoints); default runs/<config name>")
        parser.add_argument("--checkpoint_every_n_steps", type=int, default=0,
                            help="also save last.ckpt every N optimizer steps (mid-epoch resume); 0 = epoch ends")

    def instantiate_trainer(self, **kwargs: Any):
        config = self.config[self.subcommand] if self.subcommand else self.config
        run_dir = Path(config.get("run_dir") or "runs/default")
        kwargs.setdefault("default_root_dir", str(run_dir))
        trainer_cfg = config.get("trainer", {})
        if trainer_cfg.get("logger") in (None, True):
            kwargs["logger"] = TensorBoardLogger(save_dir=str(run_dir), name="", version="", default_hp_metric=False)
        callbacks = [PerfMonitor(), ThroughputSummary(), LearningRateMonitor(logging_interval="step")]
        if trainer_cfg.get("enable_checkpointing", True) is not False:
            ckpt_dir = run_dir / "checkpoints"
            callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="best-epoch{epoch}-step{step}",
                                             auto_insert_metric_name=False, monitor="val/top1", mode="max",
                                             save_top_k=1, save_last=True))
            every = config.get("checkpoint_every_n_steps") or 0
            if every > 0:
                callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True,
                                                 every_n_train_steps=every))
        configured = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        kwargs["callbacks"] = callbacks + list(configured) + list(kwargs.get("callbacks") or [])
        kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)


def expand_argv(argv: list[str]) -> list[str]:
    """Resolve `base:` inheritance of every --config file (into a merged temporary YAML), map --resume to
    --ckpt_path last and default --run_dir to runs/<name of the last config>."""
    out: list[str] = []
    run_dir_given = any(a == "--run_dir" or a.startswith("--run_dir=") for a in argv)
    last_config: Path | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--resume":
            out += ["--ckpt_path", "last"]
        elif arg == "--config" or arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1] if "=" in arg else argv[i + 1])
            i += 0 if "=" in arg else 1
            merged = load_experiment(path)
            tmp = tempfile.NamedTemporaryFile("w", suffix=f"_{path.stem}.yaml", delete=False)
            yaml.safe_dump(merged, tmp, sort_keys=False)
            tmp.close()
            out += ["--config", tmp.name]
            last_config = path
        else:
            out.append(arg)
        i += 1
    if not run_dir_given and last_config is not None:
        out += ["--run_dir", str(Path("runs") / last_config.stem)]
    return out


def run(subcommand: str, argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # sys.argv stays intact: DDP re-launches this command line for ranks > 0 (`python -m uv2.__main__ fit ...`)
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    UV2CLI(
        VideoClassifier,
        pl.LightningDataModule,  # any data module by class_path: uv2.data.VideoDataModule or ImageDataModule
        subclass_mode_data=True,
        args=[subcommand, *expand_argv(argv)],
        save_config_kwargs={"overwrite": True},
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
