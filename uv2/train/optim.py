"""AdamW parameter groups (no weight decay on 1-D parameters, biases and tokens; an optional lr multiplier for the
modules UniFormerV2 adds to the pretrained ViT) and the per-iteration cosine schedule with linear warm-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from uv2.errors import SettingError

FUSED_ADAMW_DEVICES = ("cpu", "cuda")  # where torch (>= 2.4) has a fused AdamW kernel


@dataclass
class OptimConfig:
    """Optimiser and schedule of a run (the paper's recipe: AdamW, wd 0.05, cosine with warm-up)."""

    lr: float = 1e-3  # peak learning rate of the pretrained ViT's parameters
    new_module_lr_scale: float = 1.0  # lr multiplier for local/global blocks and the head (1 = one lr for all)
    weight_decay: float = 0.05  # AdamW decoupled weight decay (not on 1-D parameters, biases, tokens)
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    warmup_epochs: float = 1.0  # linear warm-up from warmup_start_factor * lr, stepped per iteration
    warmup_start_factor: float = 0.01
    min_lr_factor: float = 0.01  # cosine ends at min_lr_factor * lr
    # absolute floors instead of the factors (PySlowFast's WARMUP_START_LR / COSINE_END_LR, which the official
    # recipes set to 1e-6 whatever their lr): warm-up starts at warmup_start_lr and the cosine ends at min_lr
    warmup_start_lr: float | None = None
    min_lr: float | None = None
    lr_reference_batch: int | None = None  # opt-in linear scaling: lr * global_batch / lr_reference_batch

    def __post_init__(self) -> None:
        for name in ("lr", "new_module_lr_scale"):
            if not getattr(self, name) > 0:  # NaN too
                raise SettingError(f"optim.{name} must be > 0, got {getattr(self, name)}")
        if not self.warmup_epochs >= 0:
            raise SettingError(f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 <= self.min_lr_factor <= 1:
            raise SettingError(f"optim.min_lr_factor must be in [0, 1], got {self.min_lr_factor}")
        for name in ("warmup_start_lr", "min_lr"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise SettingError(f"optim.{name} must be >= 0 (or null to use the factor), got {value}")

    def factors(self, lr: float) -> tuple[float, float]:
        """(warm-up start, cosine end) as fractions of the peak lr `lr`: the absolute warmup_start_lr / min_lr when
        set, else the factors. An absolute value above the peak lr is an error naming both."""
        out = []
        for absolute, factor, name in ((self.warmup_start_lr, self.warmup_start_factor, "warmup_start_lr"),
                                       (self.min_lr, self.min_lr_factor, "min_lr")):
            if absolute is None:
                out.append(factor)
            elif absolute > lr:
                raise SettingError(f"optim.{name} {absolute:g} is above the peak lr {lr:g} (optim.lr, after any "
                                   f"lr_reference_batch scaling); lower it or set it to null")
            else:
                out.append(absolute / lr)
        return out[0], out[1]


def effective_lr(cfg: OptimConfig, global_batch: int) -> float:
    """The peak lr actually used: scaled by global_batch / lr_reference_batch only when that is set."""
    return cfg.lr * global_batch / cfg.lr_reference_batch if cfg.lr_reference_batch else cfg.lr


def param_groups(model: nn.Module, lr: float, cfg: OptimConfig, new_params: set[int] | None = None) -> list[dict]:
    """Four groups: {pretrained, new} x {decay, no decay}; empty groups dropped. No decay: 1-D parameters, biases
    and what `model.no_weight_decay()` names. `new_params` holds the ids of the parameters that get
    lr * new_module_lr_scale."""
    new_params = new_params or set()
    tokens = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()  # the model names them (timm)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or name.endswith(".bias") or name in tokens
        groups.setdefault((id(param) in new_params, no_decay), []).append(param)
    return [
        {"params": params, "lr": lr * (cfg.new_module_lr_scale if new else 1.0),
         "weight_decay": 0.0 if no_decay else cfg.weight_decay, "name": f"{'new' if new else 'vit'}"
                                                                          f"{'_no_decay' if no_decay else ''}"}
        for (new, no_decay), params in sorted(groups.items())
    ]


def warmup_cosine(total_steps: int, warmup_steps: int, start_factor: float, min_factor: float):
    """Multiplier of the peak lr at optimizer step s: linear warm-up, then cosine down to min_factor."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return start_factor + (1 - start_factor) * step / max(1, warmup_steps)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def fusable_optimizer(precision: str) -> bool:
    """Whether a run can train with fused AdamW: not under fp16's gradient scaler (the gradients stay scaled until the
    fused step, so train/grad_norm and gradient clipping would read them scaled). Under bf16-mixed nothing is scaled,
    and uv2 clips the gradients itself where Lightning would refuse to (VideoClassifier.configure_gradient_clipping)."""
    return precision.startswith("bf16") or "mixed" not in precision


def build_optimizer(model: nn.Module, cfg: OptimConfig, lr: float, new_params: set[int], total_steps: int,
                    steps_per_epoch: float, fusable: bool = True):
    groups = param_groups(model, lr, cfg, new_params)
    # AdamW's fused kernels (CPU since torch 2.4, CUDA): one pass over all parameters per step instead of a loop of
    # small ops per parameter (tests/test_optim.py: the same update up to rounding), and a step the device can skip
    # (uv2.train.guard). Where the run says it cannot take one (``fusable``, see fusable_optimizer) and on devices
    # without them: the default implementation.
    fused = fusable and all(
        p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for g in groups for p in g["params"])
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused or None)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    start_factor, min_factor = cfg.factors(lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, min(warmup, total_steps), start_factor, min_factor))
    return optimizer, schedule
