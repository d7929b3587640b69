"""Typed, validated configuration of the image ViT and of every UniFormerV2 switch.

Two small dataclasses in the nanoGPT style: `ViTConfig` describes the image transformer being armed (named
presets in `VIT_PRESETS`), `ModelConfig` every switch of the paper's ablation tables (a)-(d). A wrong value raises
`ConfigError` naming the field and the valid choices.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_type_hints

from uv2.errors import InputError

LocalType = Literal["none", "lmhra", "temporal_mhsa", "temporal_conv", "st_adapter"]
FusionType = Literal["sequential", "parallel", "hierarchical_kv", "hierarchical_q"]
ActType = Literal["quick_gelu", "gelu"]


class ConfigError(InputError, ValueError):
    """A config value is invalid; the message names the field and the valid choices."""


@dataclass
class ViTConfig:
    """The image ViT that UniFormerV2 arms (timm's standard pre-norm VisionTransformer block)."""

    img_size: int = 224  # input resolution the position embedding is laid out for
    patch_size: int = 16  # square patch side in pixels
    width: int = 768  # token channels C
    depth: int = 12  # number of transformer blocks
    heads: int | None = None  # attention heads; None -> width // 64 as in CLIP and the official code
    mlp_ratio: float = 4.0  # FFN hidden width / C
    act: ActType = "quick_gelu"  # CLIP uses QuickGELU, supervised / DeiT / DINO / MAE ViTs use GELU
    norm_eps: float = 1e-5  # LayerNorm eps: 1e-5 for CLIP (torch default), 1e-6 for timm's supervised ViTs
    pre_norm: bool = True  # LayerNorm after the embeddings (CLIP's ln_pre); CLIP's patch conv then has no bias
    layer_scale: float | None = None  # LayerScale init (DeiT III); None = no LayerScale
    qkv_bias: bool = True  # bias on the qkv projection

    @property
    def num_heads(self) -> int:
        return self.heads or max(1, self.width // 64)

    def __post_init__(self) -> None:
        _check_types(self)
        _check(self.img_size % self.patch_size == 0, "vit.img_size",
               f"{self.img_size} is not a multiple of patch_size {self.patch_size}")
        _check(self.width % self.num_heads == 0, "vit.heads", f"width {self.width} is not divisible by {self.num_heads}")


# Named image ViTs (timm-style small dicts). The CLIP entries are the paper's backbones; the others are the
# "different image pretraining" rows; tiny / small are the CPU presets the synthetic benchmark trains.
_SUPERVISED = dict(act="gelu", norm_eps=1e-6, pre_norm=False)
VIT_PRESETS: dict[str, dict[str, Any]] = {
    "clip_b16": dict(width=768, depth=12, patch_size=16, img_size=224),
    "clip_l14": dict(width=1024, depth=24, patch_size=14, img_size=224),
    "clip_l14_336": dict(width=1024, depth=24, patch_size=14, img_size=336),
    "vit_b16_in21k": dict(width=768, depth=12, patch_size=16, img_size=224, **_SUPERVISED),
    "deit3_b16": dict(width=768, depth=12, patch_size=16, img_size=224, layer_scale=1e-6, **_SUPERVISED),
    "dino_b16": dict(width=768, depth=12, patch_size=16, img_size=224, **_SUPERVISED),
    "mae_b16": dict(width=768, depth=12, patch_size=16, img_size=224, **_SUPERVISED),
    "vit_s16": dict(width=384, depth=12, patch_size=16, img_size=224, heads=6, **_SUPERVISED),
    # CPU presets (CLIP-style, trained on the synthetic image set)
    "tiny": dict(width=128, depth=4, patch_size=8, img_size=32, heads=2),
    "small": dict(width=192, depth=6, patch_size=8, img_size=48, heads=3),
}


def vit_config(preset: str, **overrides: Any) -> ViTConfig:
    """`ViTConfig` of a named preset, with field overrides (e.g. img_size=112)."""
    _check(preset in VIT_PRESETS, "vit", f"unknown preset {preset!r}; valid choices: {sorted(VIT_PRESETS)}")
    valid = {f.name for f in dataclasses.fields(ViTConfig)}
    unknown = sorted(set(overrides) - valid)
    _check(not unknown, "vit_overrides", f"unknown fields {unknown}; valid fields: {sorted(valid)}")
    return ViTConfig(**{**VIT_PRESETS[preset], **overrides})


@dataclass
class ModelConfig:
    """Every switch of UniFormerV2. Layer specs are 1-based inclusive ranges as in the paper ("1-12", "9-12").

    The defaults are the released Kinetics-400 B/16 design (``VARIANTS["uv2_b16_k400"]``): CLIP ViT-B/16, no local
    temporal modules, global blocks on layers 9-12, 8 frames, 400 classes.
    """

    # --- the image ViT being armed
    vit: str = "clip_b16"  # preset name in VIT_PRESETS
    vit_overrides: dict[str, Any] = field(default_factory=dict)  # ViTConfig fields to change, e.g. {img_size: 112}
    num_frames: int = 8  # input frames T (T-Down halves the token frames)
    num_classes: int = 400  # classes of the linear head
    # --- local UniBlock (table b)
    local_type: LocalType = "none"  # temporal module in the local UniBlock ("none": the Kinetics design)
    local_layers: str = "all"  # ViT layers armed with it: "all", "none", "1-8", "1,3,5"
    local_reduction: float = 1.5  # r: hidden channels = int(C // r) (lmhra, st_adapter, temporal_conv)
    local_double: bool = True  # "Local MHRA x2": a second temporal module after the spatial MHSA
    local_dpe: bool = False  # a zero-initialised depth-wise 3x3x3 DPE before the local module
    local_kernel: int = 3  # temporal kernel of the local convolutions
    t_down: bool = False  # stem kernel 3xPxP with temporal stride 2 (tokens for T/2 frames)
    # --- global UniBlock and fusion (tables c, d)
    global_layers: str = "9-12"  # ViT layers feeding a global block ("none" disables the global branch)
    global_dpe: bool = True  # depth-wise 3x3x3 DPE on the tokens before each global block
    fusion: FusionType = "sequential"  # multi-stage fusion of the global blocks
    num_queries: int = 1  # learnable query tokens per stage (pooled by their mean)
    global_heads: int | None = None  # None -> the ViT's heads (C // 64 for CLIP)
    global_mlp_ratio: float = 4.0  # FFN hidden width / C in the global blocks
    global_mlp_dropout: float = 0.5  # dropout inside the global blocks' FFN
    # --- head
    frozen_backbone: bool = False  # freeze the pretrained ViT; logits from the global branch F only
    head_dropout: float = 0.5  # dropout before the classifier
    # --- regularisation and memory
    drop_path: float = 0.0  # stochastic depth of the ViT blocks (linear 0 -> value over depth)
    global_drop_path: float = 0.0  # stochastic depth of the global blocks (linear 0 -> value)
    checkpoint_blocks: int = 0  # activation checkpointing of the first K ViT blocks (attention and FFN)

    def __post_init__(self) -> None:
        _check_types(self)
        depth = self.vit_cfg.depth  # builds the ViTConfig: validates the preset and its overrides
        _check(self.num_frames >= 1, "num_frames", f"must be >= 1, got {self.num_frames}")
        _check(not self.t_down or self.num_frames % 2 == 0, "num_frames",
               f"T-Down needs an even frame count, got {self.num_frames}")
        _check(self.num_classes >= 1, "num_classes", f"must be >= 1, got {self.num_classes}")
        _check(self.local_reduction > 0, "local_reduction", f"must be > 0, got {self.local_reduction}")
        _check(self.local_kernel % 2 == 1, "local_kernel", f"must be odd, got {self.local_kernel}")
        _check(self.num_queries >= 1, "num_queries", f"must be >= 1, got {self.num_queries}")
        for name in ("drop_path", "global_drop_path", "head_dropout", "global_mlp_dropout"):
            value = getattr(self, name)
            _check(0.0 <= value < 1.0, name, f"must be in [0, 1), got {value}")
        parse_layers(self.local_layers, depth, "local_layers")
        _check(0 <= self.checkpoint_blocks <= depth, "checkpoint_blocks", f"must be in [0, {depth}]")
        if self.global_layer_ids:
            heads = self.global_heads or self.vit_cfg.num_heads
            _check(self.vit_cfg.width % heads == 0, "global_heads", f"width {self.vit_cfg.width} not divisible by {heads}")
        else:
            _check(not self.frozen_backbone, "frozen_backbone", "a frozen backbone needs global blocks")

    @property
    def vit_cfg(self) -> ViTConfig:
        return vit_config(self.vit, **self.vit_overrides)

    @property
    def local_layer_ids(self) -> list[int]:
        """0-based ViT layers with a local module ([] when local_type is "none")."""
        if self.local_type == "none":
            return []
        return parse_layers(self.local_layers, self.vit_cfg.depth, "local_layers")

    @property
    def global_layer_ids(self) -> list[int]:
        """0-based ViT layers feeding a global block, in order."""
        return parse_layers(self.global_layers, self.vit_cfg.depth, "global_layers")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The released designs (reference: "Released designs") as their differences from ModelConfig()'s defaults, which
# are the Kinetics B/16 design. Experiment files name one with `model.arch.variant` (uv2.experiment expands it); the
# paper's recipes add the training settings on top.
VARIANTS: dict[str, dict[str, Any]] = {
    "uv2_b16_k400": {},
    "uv2_b16_ssv2": dict(local_type="lmhra", local_layers="all", local_double=True, t_down=True,
                         global_layers="5-12", num_frames=16, num_classes=174),
    "uv2_l14_k400": dict(vit="clip_l14", global_layers="21-24"),
    "uv2_l14_336_k400": dict(vit="clip_l14_336", global_layers="21-24"),  # L/14 at 336 px (CLIP ViT-L/14@336)
    # the frozen-backbone design (the official "frozen_*" checkpoints): CLIP ViT frozen, logits from the global
    # branch only (no balance weight)
    "uv2_l14_336_k400_frozen": dict(vit="clip_l14_336", global_layers="21-24", frozen_backbone=True),
    "uv2_l14_ssv2": dict(vit="clip_l14", local_type="lmhra", local_layers="all", local_double=True, t_down=True,
                         global_layers="9-24", num_frames=16, num_classes=174),
}


def model_config(variant: str, **overrides: Any) -> ModelConfig:
    """ModelConfig of a named released design (VARIANTS), with field overrides."""
    _check(variant in VARIANTS, "variant", f"unknown variant {variant!r}; valid choices: {sorted(VARIANTS)}")
    return ModelConfig(**{**VARIANTS[variant], **overrides})


def parse_layers(spec: str, depth: int, name: str = "layers") -> list[int]:
    """'1-12' / '9-12' / '1,3,5-6' / 'all' / 'none' (1-based, inclusive) -> sorted 0-based indices."""
    text = str(spec).strip().lower()
    if text in ("", "none", "no", "off"):
        return []
    if text == "all":
        return list(range(depth))
    layers: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        _check(match is not None, name, f"cannot parse {spec!r}; use 'all', 'none', '1-12', '9-12' or '1,3,5'")
        lo, hi = int(match.group(1)), int(match.group(2) or match.group(1))
        _check(1 <= lo <= hi <= depth, name, f"{part.strip()!r} is outside layers 1-{depth} of this ViT")
        layers.update(range(lo - 1, hi))
    return sorted(layers)


def format_layers(layers: list[int]) -> str:
    """Inverse of parse_layers for contiguous runs: [8, 9, 10, 11] -> '9-12'."""
    if not layers:
        return "none"
    runs, start, prev = [], layers[0], layers[0]
    for i in list(layers[1:]) + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        runs.append(f"{start + 1}-{prev + 1}" if prev > start else f"{start + 1}")
        if i is not None:
            start = prev = i
    return ",".join(runs)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")


def _check_types(cfg: Any) -> None:
    """Check Literal-typed fields against their choices and reject obviously wrong types."""
    hints = get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        choices = get_args(hint) if getattr(hint, "__origin__", None) is Literal else None
        if choices is not None:
            _check(value in choices, f.name, f"invalid value {value!r}; valid choices: {list(choices)}")
        elif hint is bool:
            _check(isinstance(value, bool), f.name, f"expected true/false, got {value!r}")
        elif hint in (int, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            _check(ok and (hint is float or float(value).is_integer()), f.name,
                   f"expected {hint.__name__}, got {value!r}")
