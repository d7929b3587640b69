"""The LightningModule: UniFormerV2 (or a plain image ViT, a 1-frame video) trained with the paper's recipe.

Training: AdamW (no decay on 1-D parameters, biases, tokens), per-iteration cosine schedule with linear warm-up,
label smoothing, optional mixup / cutmix (timm's, applied to clips as (B, C*T, H, W) so one box covers every frame),
a guard that skips non-finite losses and stops after too many in a row (uv2.train.guard). Evaluation: top-1, top-5
and mean class accuracy per clip (validation) and per video (test: softmax scores averaged over every view of a
video, exact under DDP: views gathered from every rank, duplicates from sampler padding removed).

Co-training (a uv2.data.MultiSetDataModule): one model, a head per set. The heads are the classifier's rows
stacked in set order (set k owns rows `head_slices()[k]`, which is the same as k separate linear heads); every
training step takes one batch of each set through the model at once, and each set's loss sees only its own rows.
Validation and test report every set on its own head (val/<set>/top1 ...; val/top1 is their mean). A run on one
set is the same code with one unnamed set owning every row.

Beside it: uv2.train.metrics (accuracies, the video-level protocol, as pure functions), uv2.train.callbacks
(throughput and data wait, the head's balance, exporting the image ViT, TensorBoard's HPARAMS tab from
`hparams_for_logging`), uv2.train.optim.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

from uv2.errors import SettingError
from uv2.io import atomic_write_text
from uv2.models import ModelConfig
from uv2.models.convert import checkpoint_normalisation, init_model
from uv2.train.callbacks import writes_step_logs
from uv2.train.guard import GUARDS, NonFiniteGuard, skips_on_device
from uv2.train.metrics import accuracies, video_level
from uv2.train.optim import OptimConfig, build_optimizer, effective_lr, fusable_optimizer

log = logging.getLogger(__name__)


def train_batch_size(datamodule) -> int:
    """Training clips per step on one device: a MultiSetDataModule's batch of every set, else batch_size."""
    if datamodule is None:
        return 0
    size = getattr(datamodule, "batch_size", None)
    return int(size if size is not None else datamodule.hparams.get("batch_size") or 0)


class VideoClassifier(pl.LightningModule):
    def __init__(
        self,
        arch: ModelConfig = ModelConfig(),
        init_from: str | None = None,
        optim: OptimConfig = OptimConfig(),
        label_smoothing: float = 0.0,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        max_nonfinite_steps: int = 20,
        nonfinite_guard: str = "auto",
        class_names: list[str] | None = None,
        sets: dict[str, int] | None = None,
        compile: bool = False,
        init_seed: int | None = None,
    ) -> None:
        """
        Args:
            arch: the UniFormerV2 switches (uv2.models.ModelConfig).
            init_from: weights to start from: a CLIP / open_clip / timm image ViT file, an official .pyth, a uv2
                checkpoint or a Lightning checkpoint of a uv2 run (a different class count gets a new head).
            optim: optimiser and schedule.
            label_smoothing: label smoothing of the cross-entropy.
            mixup_alpha: mixup Beta(alpha, alpha) (0 = off).
            cutmix_alpha: cutmix Beta(alpha, alpha) (0 = off).
            max_nonfinite_steps: consecutive non-finite losses tolerated (each skips its step) before stopping.
            nonfinite_guard: where a non-finite loss is caught (uv2.train.guard): "auto" on the device where the
                optimiser can skip a step there (fused AdamW, no fp16 gradient scaler; no read-back per step), else
                on the host; "host" reads the loss back after every forward.
            class_names: label names (filled from the data module when omitted; stored in checkpoints).
            sets: co-training: {set name: its class count}, the heads stacked in the classifier in this order
                (filled from a MultiSetDataModule; stored in checkpoints).
            compile: torch.compile the model (training and evaluation; in place, so state dict keys are unchanged).
            init_seed: draw the random initial weights (the new blocks', the head's: what `init_from` does not give)
                from this seed instead of seed_everything's stream, which goes on seeding the rest (dropout and
                drop-path, and with data.seed the training order and draws): ablations/variance.py varies one
                without the other. None: seed_everything's.
        """
        super().__init__()
        if nonfinite_guard not in GUARDS:
            raise SettingError(f"model.nonfinite_guard: {nonfinite_guard!r} is not one of {', '.join(GUARDS)}")
        arch = arch if isinstance(arch, ModelConfig) else ModelConfig(**arch)
        optim = optim if isinstance(optim, OptimConfig) else OptimConfig(**optim)
        # plain containers only, so checkpoints load with torch.load(weights_only=True)
        self.save_hyperparameters({"arch": dataclasses.asdict(arch), "init_from": init_from,
                                   "optim": dataclasses.asdict(optim), "label_smoothing": label_smoothing,
                                   "mixup_alpha": mixup_alpha, "cutmix_alpha": cutmix_alpha,
                                   "max_nonfinite_steps": max_nonfinite_steps, "nonfinite_guard": nonfinite_guard,
                                   "class_names": class_names,
                                   "sets": sets, "init_seed": init_seed},
                                  logger=False)
        self.arch, self.optim_cfg = arch, optim
        with torch.random.fork_rng(devices=[], enabled=init_seed is not None):  # the global stream left as it was
            if init_seed is not None:
                torch.default_generator.manual_seed(init_seed)  # the CPU stream the weights are drawn from
            self.model, report = init_model(arch, init_from)
        self.compiled = compile  # the first training step compiles (ThroughputSummary says so)
        if compile:
            self.model.compile()
        if report is not None:
            log.info(report.summary())
        # the frames' mean / std the initial weights trained on (where the file says), checked against the data's
        self._init_normalisation = (report.normalisation, report.source) if report is not None else (None, "")
        self.class_names = class_names
        self.set_sizes = sets
        self.mixup = None
        if mixup_alpha > 0 or cutmix_alpha > 0:
            self.mixup = Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, label_smoothing=label_smoothing,
                               num_classes=arch.num_classes)
        self.guard = NonFiniteGuard(max_nonfinite_steps)
        self._guard_on_device = False  # decided when training starts (the optimiser and precision are known)
        self._loaded_step: int | None = None  # optimizer step of the checkpoint loaded for test / resume
        self._test_outputs: list[dict[str, torch.Tensor]] = []

    # ------------------------------------------------------------------------------------------------ set-up
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        num_classes = getattr(datamodule, "num_classes", None)
        if num_classes is not None and num_classes != self.arch.num_classes:
            raise SettingError(f"model.arch.num_classes is {self.arch.num_classes} but the data has {num_classes} "
                               f"classes; set model.arch.num_classes: {num_classes}")
        if self.class_names is None and getattr(datamodule, "class_names", None):
            self.class_names = list(datamodule.class_names)
            self.hparams["class_names"] = self.class_names
        if getattr(datamodule, "set_sizes", None) is not None:
            if self.mixup is not None:
                raise SettingError("mixup / cutmix (model.mixup_alpha, model.cutmix_alpha) mix labels of one head; "
                                   "set them to 0 for co-training on several sets")
            self.set_sizes = dict(datamodule.set_sizes)
            self.hparams["sets"] = self.set_sizes

    def head_slices(self) -> dict[str, slice]:
        """The classifier rows of each set: {set: rows} when co-training, else {"": all rows}."""
        if not self.set_sizes:
            return {"": slice(None)}
        bounds = torch.tensor([0, *self.set_sizes.values()]).cumsum(0).tolist()
        return {name: slice(bounds[k], bounds[k + 1]) for k, name in enumerate(self.set_sizes)}

    def global_batch_and_lr(self) -> tuple[int, float]:
        """The global batch (per device x devices x accumulation) and the peak learning rate it scales to."""
        batch = train_batch_size(self.trainer.datamodule)
        global_batch = batch * self.trainer.world_size * self.trainer.accumulate_grad_batches
        return global_batch, effective_lr(self.optim_cfg, global_batch)

    def on_fit_start(self) -> None:
        global_batch, lr = self.global_batch_and_lr()
        scaled = f" (scaled from {self.optim_cfg.lr:g} x {global_batch} / {self.optim_cfg.lr_reference_batch})" \
            if self.optim_cfg.lr_reference_batch else " (no batch-size scaling: set optim.lr_reference_batch)"
        log.info(f"global batch {global_batch} = {train_batch_size(self.trainer.datamodule)} x "
                 f"{self.trainer.world_size} devices x {self.trainer.accumulate_grad_batches} accumulation; "
                 f"peak lr {lr:g}{scaled}")
        self._check_init_normalisation()

    def _check_init_normalisation(self) -> None:
        """Once, where a run uses its initial weights rather than a checkpoint's (those are checked as they load, in
        on_load_checkpoint): warn if the file they came from was trained on frames normalised otherwise."""
        weights, source = self._init_normalisation
        self._init_normalisation = (None, source)
        if self._loaded_step is None:
            warn_if_normalisation_differs(weights, source, data_normalisation(getattr(self.trainer, "datamodule", None)))

    def on_validation_start(self) -> None:
        self._check_init_normalisation()

    def on_test_start(self) -> None:
        self._check_init_normalisation()

    def on_predict_start(self) -> None:
        self._check_init_normalisation()

    def on_train_start(self) -> None:
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        self._guard_on_device = (self.hparams.nonfinite_guard == "auto"
                                 and skips_on_device(self.trainer.optimizers, scaler))
        log.info(f"non-finite losses are caught on the {'device' if self._guard_on_device else 'host'}")

    def on_train_end(self) -> None:
        for step, finite in self.guard.arrived():  # the last step's outcome (the stop is for the next step)
            self.guard.count(finite, step)

    def hparams_for_logging(self) -> dict[str, Any]:
        """The switches of the run, flat, for TensorBoard's HPARAMS tab (written by
        uv2.train.callbacks.HParamsSummary)."""
        global_batch, lr = self.global_batch_and_lr()
        flat = {f"arch/{k}": v for k, v in dataclasses.asdict(self.arch).items()}
        flat.update({f"optim/{k}": v for k, v in dataclasses.asdict(self.optim_cfg).items()})
        flat.update({"global_batch": global_batch, "effective_lr": lr, "init_from": str(self.hparams.init_from),
                     "label_smoothing": self.hparams.label_smoothing, "mixup_alpha": self.hparams.mixup_alpha,
                     "cutmix_alpha": self.hparams.cutmix_alpha})
        return flat

    def configure_optimizers(self):
        _, lr = self.global_batch_and_lr()
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = self.trainer.max_epochs if self.trainer.max_epochs and self.trainer.max_epochs > 0 else 1
        new = {id(p) for p in self.model.new_parameters()}
        optimizer, schedule = build_optimizer(self.model, self.optim_cfg, lr, new, total, total / epochs,
                                              fusable_optimizer(str(self.trainer.precision)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # --------------------------------------------------------------------------------------------- steps
    def clips(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The (B, 3, T, H, W) input of a batch (an image batch (B, 3, H, W) becomes 1-frame clips), with T checked
        against model.arch.num_frames: the network itself accepts any T, the run's config does not."""
        video = batch["video"] if "video" in batch else batch["image"].unsqueeze(2)
        if video.shape[2] != self.arch.num_frames:
            raise ValueError(f"the batch has clips of {video.shape[2]} frames but model.arch.num_frames is "
                             f"{self.arch.num_frames}: the data must sample the model's frame count")
        return video

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model(video)

    def training_step(self, batch: dict, batch_idx: int):
        batches = batch if self.set_sizes else {"": batch}  # co-training: {set: batch}; else one unnamed set
        loss, correct = self._loss(batches)
        value, top1, weight = loss.detach(), 100 * correct.float().mean(), len(correct)
        epoch_value = value
        if self._guard_on_device:  # skipped, if it must be, by the optimiser (uv2.train.guard)
            for step, finite in self.guard.arrived():  # the earlier steps' outcomes
                self._count_nonfinite(finite, step)
            if self.guard.exhausted:  # counted when a checkpoint was written
                raise self.guard.error(self.global_step - 1)
            finite = self.guard.observe(loss, self.global_step)
            # the epoch means are sum(value x batch_size) / sum(batch_size) in Lightning, accumulated as tensors: a
            # device-side batch size of 0 leaves a skipped step out without reading the flag back
            weight = finite.float() * len(correct)
            epoch_value, top1 = torch.where(finite, value, 0.0), torch.where(finite, top1, 0.0)
        elif not self._count_nonfinite(self._loss_is_finite(loss), self.global_step):
            return None  # every rank skips this step together (see _loss_is_finite)
        # not prog_bar: Lightning would read it back every step, a wait for the GPU (the bar of
        # uv2.train.callbacks.NonBlockingProgressBar shows it without one). The step's loss is rank 0's batch; the
        # epoch metrics cover every rank's batches (sync_dist: one all-reduce each when the epoch ends)
        self.log("train/loss_step", value, on_step=True, on_epoch=False, batch_size=len(correct))
        self.log("train/loss_epoch", epoch_value, prog_bar=True, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=weight)  # type: ignore[arg-type]
        self.log("train/top1", top1, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=weight)  # type: ignore[arg-type]
        failures = [b["decode_failures"] for b in batches.values() if "decode_failures" in b]
        if failures:
            self.log("data/decode_failures", torch.cat(failures).sum().float(), on_step=False, on_epoch=True,
                     reduce_fx="sum", sync_dist=True, batch_size=len(correct))
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """train/grad_norm: the global L2 norm of the gradients before clipping (what trainer.gradient_clip_val
        compares against; unscaled under AMP), on the steps Lightning writes (every trainer.log_every_n_steps; the
        norm and the log call cost a few % of a tiny CPU step). With the guard on the device: skip the update there
        unless every loss of the step was finite."""
        if self._guard_on_device:
            self.guard.arm(getattr(optimizer, "_optimizer", optimizer))
        if not writes_step_logs(self.trainer):
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if grads:  # one fused kernel, as clip_grad_norm_ uses
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """trainer.gradient_clip_val, as Lightning clips, except where Lightning refuses: under mixed precision it will
        not clip for an optimizer that unscales its own gradients (fused AdamW), to keep fp16's scaled gradients from
        being clipped. bf16-mixed scales nothing, so uv2 clips there itself (on the device, nothing read back) and
        keeps fused AdamW and the device-side guard: the paper's recipes clip at 20, as the official code does."""
        inner = getattr(optimizer, "_optimizer", optimizer)
        if not (gradient_clip_val and str(self.trainer.precision) == "bf16-mixed"
                and getattr(inner, "_step_supports_amp_scaling", False)):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for group in inner.param_groups for p in group["params"] if p.grad is not None]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val, foreach=True)
        else:
            torch.nn.utils.clip_grad_norm_(params, gradient_clip_val, foreach=True)

    def _loss(self, batches: dict[str, dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss of a step and which clips the model got right. One batch of every set goes through the model at
        once; each set's cross-entropy sees only its own head's rows, and the sets' losses are averaged (each set
        weighs the same whatever its batch size). Without co-training that is one set and every row."""
        slices = self.head_slices()
        videos = [self.clips(batches[name]) for name in slices]
        labels = [batches[name]["label"] for name in slices]
        if self.mixup is not None and videos[0].shape[0] % 2 == 0:  # one set only (setup refuses co-training)
            B, C, T, H, W = videos[0].shape
            mixed, targets = self.mixup(videos[0].reshape(B, C * T, H, W), labels[0])  # one box / lambda per clip
            logits = self.model(mixed.view(B, C, T, H, W))
            return SoftTargetCrossEntropy()(logits, targets), logits.argmax(-1) == labels[0]
        video = videos[0] if len(videos) == 1 else torch.cat(videos)
        logits = self.model(video).split([len(v) for v in videos])  # per set: (B_k, all classes)
        losses, correct = [], []
        for (name, rows), set_logits, set_labels in zip(slices.items(), logits, labels):
            losses.append(F.cross_entropy(set_logits[:, rows], set_labels,
                                          label_smoothing=self.hparams.label_smoothing))
            correct.append(set_logits[:, rows].argmax(-1) == set_labels)
            if name:
                self.log(f"train/{name}/loss", losses[-1], on_step=False, on_epoch=True, batch_size=len(set_labels),
                         sync_dist=True)
        return torch.stack(losses).mean(), torch.cat(correct)

    def _loss_is_finite(self, loss: torch.Tensor) -> bool:
        """The host guard: all ranks agree (one all-reduce) so that a skipped step is skipped everywhere and DDP
        stays in step; reads the loss back (waits for the forward)."""
        finite = torch.isfinite(loss.detach()).float()
        if self.trainer.world_size > 1:
            finite = self.trainer.strategy.reduce(finite, reduce_op="min")
        return bool(finite.item() > 0)

    def _count_nonfinite(self, finite: bool, step: int) -> bool:
        """Count a step's outcome, log train/nonfinite_steps after a skipped one, stop after too many in a row;
        returns ``finite``."""
        self.guard.count(finite, step)
        if self.guard.exhausted:
            raise self.guard.error(step)
        if not finite:
            self.log("train/nonfinite_steps", float(self.guard.total), on_step=True, on_epoch=False)
        return finite

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        name, rows = list(self.head_slices().items())[dataloader_idx]
        logits = self.model(self.clips(batch))[:, rows]
        labels, prefix = batch["label"], f"val/{name}/" if name else "val/"
        log = dict(on_epoch=True, sync_dist=True, batch_size=len(labels), add_dataloader_idx=False)
        self.log(f"{prefix}loss", F.cross_entropy(logits, labels), **log)
        for metric, value in accuracies(logits, labels, logits.shape[1]).items():
            self.log(f"{prefix}{metric}", value, prog_bar=metric == "top1" and not name, **log)

    def on_validation_epoch_end(self) -> None:
        if self.set_sizes and not self.trainer.sanity_checking:  # co-training: val/top1 is the mean over the sets
            tops = [self.trainer.callback_metrics.get(f"val/{name}/top1") for name in self.set_sizes]
            if all(t is not None for t in tops):
                self.log("val/top1", torch.stack([t.float() for t in tops]).mean(), prog_bar=True)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        rows = list(self.head_slices().values())[dataloader_idx]
        scores = self.model(self.clips(batch))[:, rows].float().softmax(-1)  # softmax over the set's own classes
        self._test_outputs.append({"set": dataloader_idx, "scores": scores, "label": batch["label"],
                                   "video": batch.get("video_index", batch.get("index")),
                                   "view": batch.get("view_index", torch.zeros_like(batch["label"]))})

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []

    def on_test_epoch_end(self) -> None:
        per_set = {}
        for k, (name, rows) in enumerate(self.head_slices().items()):  # every rank, every set: gathers stay in step
            num_classes = self.arch.num_classes if not name else rows.stop - rows.start
            per_set[name] = self.video_level_results([o for o in self._test_outputs if o["set"] == k], num_classes)
        self._test_outputs = []
        if self.set_sizes:  # co-training: the mean over the sets, and each set on its own
            result = {"metrics": {m: sum(r["metrics"][m] for r in per_set.values()) / len(per_set)
                                  for m in ("top1", "top5", "mean_class")},
                      "num_videos": sum(r["num_videos"] for r in per_set.values()),
                      "num_views": sum(r["num_views"] for r in per_set.values()), "per_set": per_set}
        else:
            result = per_set[""]
        result["checkpoint"], result["checkpoint_step"] = self.tested_weights()
        self.test_results = result
        metrics = {f"test/{k}": v for k, v in result["metrics"].items()}
        for name, r in result.get("per_set", {}).items():
            metrics.update({f"test/{name}/{k}": v for k, v in r["metrics"].items()})
        metrics["test/videos"] = float(result["num_videos"])
        self.log_dict(metrics, sync_dist=False, rank_zero_only=True)
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            summary = {"metrics": result["metrics"], "num_videos": result["num_videos"], "num_views": result["num_views"],
                       "checkpoint": result["checkpoint"], "checkpoint_step": result["checkpoint_step"],
                       "world_size": self.trainer.world_size}
            if self.set_sizes:
                summary["per_set"] = {name: {"metrics": r["metrics"], "num_videos": r["num_videos"]}
                                      for name, r in per_set.items()}
            atomic_write_text(Path(self.trainer.default_root_dir) / "test_results.json", json.dumps(summary, indent=2))

    def video_level_results(self, outputs: list[dict[str, torch.Tensor]], num_classes: int) -> dict[str, Any]:
        """uv2.train.metrics.video_level over the views of every rank (gathered; padding duplicates count once)."""
        if outputs:
            scores = torch.cat([o["scores"] for o in outputs])
            labels, videos, views = (torch.cat([o[k] for o in outputs]).long() for k in ("label", "video", "view"))
        else:
            scores = torch.zeros(0, num_classes, device=self.device)
            labels = videos = views = torch.zeros(0, dtype=torch.long, device=self.device)
        if self.trainer.world_size > 1:
            scores, labels, videos, views = self._gather_padded(scores, labels, videos, views)
        return video_level(scores, labels, videos, views, num_classes)

    def _gather_padded(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """all_gather of per-rank tensors of different lengths (padded, then unpadded)."""
        length = torch.tensor([len(tensors[0])], device=self.device)
        lengths = self.all_gather(length).flatten().tolist()
        longest = max(lengths)
        gathered = []
        for t in tensors:
            padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
            padded[: len(t)] = t
            everything = self.all_gather(padded)  # (world, longest, ...)
            gathered.append(torch.cat([everything[r, :n] for r, n in enumerate(lengths)]))
        return tuple(gathered)

    def tested_weights(self) -> tuple[str, int]:
        """(which weights the test ran on, their optimizer step): the checkpoint file given to test, or the
        in-memory weights of the fit that just ran."""
        path = self.trainer.ckpt_path
        if path:
            return str(path), int(self._loaded_step if self._loaded_step is not None else self.global_step)
        return "in-memory weights after fit", int(self.global_step)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._loaded_step = checkpoint.get("global_step")
        trainer = self._trainer  # None where the checkpoint is read without one (load_from_checkpoint)
        if trainer is not None:
            warn_if_normalisation_differs(checkpoint_normalisation(checkpoint), str(trainer.ckpt_path),
                                          data_normalisation(getattr(trainer, "datamodule", None)))
        counts = checkpoint.get("uv2_nonfinite_steps")
        if counts:  # a resumed run counts on (train/nonfinite_steps, the stop after too many in a row)
            self.guard.in_a_row, self.guard.total = counts["in_a_row"], counts["total"]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hyper_parameters"]["class_names"] = self.class_names
        # what a test or fine-tuning of these weights should feed them: at the top level, not among the
        # hyper-parameters, which the CLI reads back as arguments
        normalisation = data_normalisation(getattr(self.trainer, "datamodule", None))
        if normalisation is not None:
            checkpoint["input_normalisation"] = normalisation
        checkpoint["hyper_parameters"]["sets"] = self.set_sizes
        for step, finite in self.guard.arrived():  # the steps in flight count in the checkpoint
            self.guard.count(finite, step)
        checkpoint["uv2_nonfinite_steps"] = {"in_a_row": self.guard.in_a_row, "total": self.guard.total}


def data_normalisation(datamodule: Any) -> dict[str, list[float]] | None:
    """The mean / std of [0, 1] pixels a uv2 data module normalises its frames with (None for other data modules)."""
    cfg = getattr(getattr(datamodule, "augment", None), "cfg", None)
    if cfg is None or not hasattr(cfg, "mean"):
        return None
    return {"mean": [float(v) for v in cfg.mean], "std": [float(v) for v in cfg.std]}


def warn_if_normalisation_differs(weights: dict[str, list[float]] | None, source: str,
                                  data: dict[str, list[float]] | None) -> None:
    """Warn when weights that record the frames' normalisation they trained on (official checkpoints: PySlowFast's
    0.45 / 0.225; uv2 checkpoints: their data's) meet data normalised otherwise: their top-1 would be lower than
    theirs, silently. Fine-tuning on other statistics may be meant, so it is a warning, not an error."""
    if weights is None or data is None:
        return
    if all(abs(a - b) < 1e-4 for key in ("mean", "std") for a, b in zip(weights[key], data[key])):
        return

    def shown(values: list[float]) -> str:
        return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"

    log.warning(f"{source} was trained on frames normalised with mean {shown(weights['mean'])} and std "
                f"{shown(weights['std'])}, but the data module normalises with mean {shown(data['mean'])} and std "
                f"{shown(data['std'])}: set data.init_args.mean / data.init_args.std to the checkpoint's to test or "
                f"fine-tune it on the inputs it was trained on")
