"""Checkpoint converters (plain functions with key tables, timm style) and the `python -m uv2 convert` CLI.

- Official UniFormerV2 checkpoints (.pyth: {"model_state": ...}, keys under "backbone."): `from_official`
  infers the architecture from the weights and returns an eval-ready UniFormerV2 with the official numerics.
- Image weights for the ViT being armed: OpenAI CLIP (the extracted visual dict, a full CLIP state dict under
  "visual.", or CLIP's TorchScript archive), open_clip and timm ViT state dicts: `load_image_weights`.
- uv2 checkpoints ({"model_config": ..., "state_dict": ...}) and Lightning checkpoints of uv2 runs: `load_model`.
- A classifier cut down to another label set by class name (a Kinetics-710 head to K400 / K600 / K700): `slice_head`.

Every pickle is read with torch.load(weights_only=True) (uv2.io.safe_load).
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from uv2.io import (
    CheckpointError,
    atomic_torch_save,
    is_torchscript_archive,
    load_torchscript_state_dict,
    make_output_dir,
    safe_load,
)
from uv2.labels import class_rows, read_classes_file
from uv2.models.arming import build_vit
from uv2.models.config import ModelConfig, format_layers
from uv2.models.uniformerv2 import UniFormerV2

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]

# official key (after the "backbone." prefix) -> uv2 key. Tensors are reshaped to the uv2 shape where only the
# layout differs (1x1x1 Conv3d -> Linear, (k,1,1) depth-wise Conv3d -> (C, k), (C) -> (1, 1, C), ...).
_BLOCK = r"transformer\.resblocks\.(\d+)\."
_LOCAL = _BLOCK + r"lmhra(\d)\.pos_embed\."
_DEC = r"transformer\.dec\.(\d+)\."
OFFICIAL_KEY_TABLE: list[tuple[str, str]] = [
    (r"conv1\.weight", "patch_embed.proj.weight"),
    (r"class_embedding", "cls_token"),
    (r"positional_embedding", "pos_embed"),
    (r"ln_pre\.(\w+)", r"norm_pre.\1"),
    (_BLOCK + r"attn\.in_proj_(weight|bias)", r"blocks.\1.attn.qkv.\2"),
    (_BLOCK + r"attn\.out_proj\.(\w+)", r"blocks.\1.attn.proj.\2"),
    (_BLOCK + r"ln_1\.(\w+)", r"blocks.\1.norm1.\2"),
    (_BLOCK + r"ln_2\.(\w+)", r"blocks.\1.norm2.\2"),
    (_BLOCK + r"mlp\.c_fc\.(\w+)", r"blocks.\1.mlp.fc1.\2"),
    (_BLOCK + r"mlp\.c_proj\.(\w+)", r"blocks.\1.mlp.fc2.\2"),
    (_LOCAL + r"0\.(\w+)", r"blocks.\1.local\2.norm.\3"),
    (_LOCAL + r"1\.(\w+)", r"blocks.\1.local\2.down.\3"),
    (_LOCAL + r"2\.(\w+)", r"blocks.\1.local\2.conv.\3"),
    (_LOCAL + r"3\.(\w+)", r"blocks.\1.local\2.up.\3"),
    (r"transformer\.temporal_cls_token", "fusion.query"),
    (r"transformer\.dpe\.(\d+)\.(\w+)", r"fusion.dpe.\1.conv.\2"),
    (_DEC + r"attn\.in_proj_(weight|bias)", r"fusion.blocks.\1.attn.in_proj.\2"),  # split into q and kv below
    (_DEC + r"attn\.out_proj\.(\w+)", r"fusion.blocks.\1.attn.proj.\2"),
    (_DEC + r"ln_1\.(\w+)", r"fusion.blocks.\1.norm_q.\2"),
    (_DEC + r"ln_2\.(\w+)", r"fusion.blocks.\1.norm_mlp.\2"),
    (_DEC + r"ln_3\.(\w+)", r"fusion.blocks.\1.norm_kv.\2"),
    (_DEC + r"mlp\.c_fc\.(\w+)", r"fusion.blocks.\1.mlp.0.\2"),
    (_DEC + r"mlp\.c_proj\.(\w+)", r"fusion.blocks.\1.mlp.3.\2"),
    (r"transformer\.proj\.0\.(\w+)", r"head.norm.\1"),
    (r"transformer\.proj\.2\.(\w+)", r"head.fc.\1"),
    (r"transformer\.balance", "head.balance"),
]
_COMPILED = [(re.compile(pattern + "$"), target) for pattern, target in OFFICIAL_KEY_TABLE]
_COMMON_REDUCTIONS = (1.5, 2.0, 4.0, 1.0, 3.0, 8.0)


@dataclass
class LoadReport:
    """What a weight load did: keys loaded, keys the model wanted but the file lacked, keys left unused."""

    source: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    normalisation: dict[str, list[float]] | None = None  # the frames' mean / std the weights trained on, if known

    def summary(self) -> str:
        lines = [f"{self.source}: loaded {len(self.loaded)} tensors, {len(self.missing)} missing, "
                 f"{len(self.unexpected)} unexpected"]
        if self.missing:
            lines.append("  missing (kept at init): " + ", ".join(_abbreviate(self.missing)))
        if self.unexpected:
            lines.append("  unexpected (ignored): " + ", ".join(_abbreviate(self.unexpected)))
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _abbreviate(keys: list[str], limit: int = 12) -> list[str]:
    return keys[:limit] + ([f"... {len(keys) - limit} more"] if len(keys) > limit else [])


# ------------------------------------------------------------------------------------------- official checkpoints
def official_state_dict(source: str | Path | dict[str, Any], name: str | None = None) -> StateDict:
    """The backbone tensors of an official checkpoint, without the "backbone." / "module." prefixes."""
    checkpoint = safe_load(source) if isinstance(source, (str, Path)) else source
    name = name or _name(source)
    state = checkpoint.get("model_state", checkpoint.get("state_dict", checkpoint))
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{name}: no state dict found (expected 'model_state' or a bare state dict)")
    stripped = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key[len(prefix):] if key.startswith(prefix) else key
        stripped[key] = value
    if "conv1.weight" not in stripped or not any(k.startswith("transformer.resblocks.") for k in stripped):
        raise CheckpointError(f"{name}: not an official UniFormerV2 checkpoint (no backbone.conv1.weight / "
                              f"backbone.transformer.resblocks.*); keys start with {sorted(state)[:5]}")
    if stripped["conv1.weight"].ndim != 5:  # CLIP's visual tower has the same keys, with a 2D patch embedding
        raise CheckpointError(f"{name}: not an official UniFormerV2 checkpoint: its conv1.weight is "
                              f"{stripped['conv1.weight'].ndim}-D where the official video model's is a 5-D Conv3d "
                              f"kernel (image weights such as CLIP's visual tower: give them as model.init_from)")
    return stripped


def infer_official_config(state: StateDict, num_frames: int | None = None) -> dict[str, Any]:
    """ModelConfig fields of an official state dict (without prefixes), read from the tensor shapes."""
    conv = state["conv1.weight"]  # (C, 3, kt, P, P)
    width, kt, patch = conv.shape[0], conv.shape[2], conv.shape[-1]
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(_BLOCK, k)))
    grid = math.isqrt(state["positional_embedding"].shape[0] - 1)
    mlp_ratio = state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width
    local_layers = sorted({int(m.group(1)) for k in state if (m := re.match(_LOCAL, k))})
    double = any(re.match(_BLOCK + r"lmhra2\.", k) for k in state)
    fields: dict[str, Any] = dict(
        vit="clip_b16",
        vit_overrides=dict(width=width, depth=depth, patch_size=patch, img_size=grid * patch,
                           heads=max(1, width // 64), mlp_ratio=mlp_ratio),
        t_down=kt > 1,
        num_frames=num_frames or (16 if kt > 1 else 8),
        local_type="lmhra" if local_layers else "none",
        local_layers=format_layers(local_layers),
        local_double=double,
    )
    if local_layers:
        hidden = state[f"transformer.resblocks.{local_layers[0]}.lmhra1.pos_embed.1.weight"].shape[0]
        fields["local_reduction"] = next((r for r in _COMMON_REDUCTIONS if int(width // r) == hidden), width / hidden)
        fields["local_kernel"] = state[f"transformer.resblocks.{local_layers[0]}.lmhra1.pos_embed.2.weight"].shape[2]
    num_global = len({int(m.group(1)) for k in state if (m := re.match(_DEC, k))})
    fields["global_layers"] = format_layers(list(range(depth - num_global, depth)))
    if num_global:
        fields["global_dpe"] = "transformer.dpe.0.weight" in state
        fields["num_queries"] = state["transformer.temporal_cls_token"].shape[1]
        fields["global_mlp_ratio"] = state["transformer.dec.0.mlp.c_fc.weight"].shape[0] / width
        fields["frozen_backbone"] = "transformer.balance" not in state
    fields["num_classes"] = state["transformer.proj.2.weight"].shape[0]
    return fields


def convert_official(state: StateDict, model: nn.Module) -> StateDict:
    """Map an official state dict (without prefixes) onto `model`'s keys and shapes."""
    target = model.state_dict()
    out: StateDict = {}
    for key, value in state.items():
        new_key = next((pattern.sub(repl, key) for pattern, repl in _COMPILED if pattern.match(key)), None)
        if new_key is None:
            out[key] = value  # left for the load report as unexpected
            continue
        if ".attn.in_proj." in new_key:  # packed (3C, ...) query/key/value of a global block
            width = value.shape[0] // 3
            base, kind = new_key.rsplit(".in_proj.", 1)
            out[f"{base}.q.{kind}"], out[f"{base}.kv.{kind}"] = value[:width], value[width:]
            continue
        if new_key in target and value.shape != target[new_key].shape and value.numel() == target[new_key].numel():
            value = value.reshape(target[new_key].shape)
        out[new_key] = value
    return out


def from_official(source: str | Path | dict[str, Any], **overrides: Any) -> UniFormerV2:
    """An eval-ready UniFormerV2 holding an official checkpoint: a .pyth path, a {"model_state": ...} dict or a
    bare state dict. The architecture is read from the weights; `overrides` set ModelConfig fields (for example
    num_frames, drop_path, or vit_overrides={"heads": 8} when heads != width / 64)."""
    checkpoint = safe_load(source) if isinstance(source, (str, Path)) else source
    state = official_state_dict(checkpoint, _name(source))
    fields = infer_official_config(state, _official_num_frames(checkpoint))
    vit_overrides = {**fields.pop("vit_overrides"), **overrides.pop("vit_overrides", {})}
    cfg = ModelConfig(**{**fields, **overrides, "vit_overrides": vit_overrides})
    model = UniFormerV2(cfg)
    report = load_state(model, convert_official(state, model), _name(source))
    log.info(report.summary())
    return model.eval()


def _official_num_frames(checkpoint: Any) -> int | None:
    """DATA.NUM_FRAMES from the YAML config PySlowFast stores beside the weights, when present."""
    cfg_text = checkpoint.get("cfg") if isinstance(checkpoint, dict) else None
    if isinstance(cfg_text, str):
        try:
            return int(yaml.safe_load(cfg_text)["DATA"]["NUM_FRAMES"])
        except (yaml.YAMLError, KeyError, TypeError, ValueError):
            return None
    return None


# ------------------------------------------------------------------------------------------------- image weights
def read_image_state_dict(path: str | Path, checkpoint: Any = None) -> StateDict:
    """The ViT tensors of a CLIP / open_clip / timm file (or of its already loaded contents), in timm's names."""
    path = Path(path)
    if checkpoint is not None:
        state = checkpoint
    elif is_torchscript_archive(path):
        state = load_torchscript_state_dict(path)
    else:
        state = safe_load(path)
    for wrapper in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    if "class_embedding" in state and "conv1.weight" in state:  # CLIP visual weights extracted from the model
        state = {f"visual.{k}": v for k, v in state.items()}
    if not any(k.startswith(("visual.", "module.visual.", "patch_embed.", "blocks.")) for k in state):
        raise CheckpointError(f"{path}: not a CLIP, open_clip or timm ViT state dict; keys start with {sorted(state)[:5]}")
    return state


def load_image_weights(vit: VisionTransformer, path: str | Path, checkpoint: Any = None) -> LoadReport:
    """Load image ViT weights into a timm VisionTransformer (position embeddings resampled to its grid)."""
    state = checkpoint_filter_fn(read_image_state_dict(path, checkpoint), vit)
    unused = [k for k in state if k.startswith(("head.", "norm.", "fc_norm."))]  # the image classifier is not used
    state = {k: v for k, v in state.items() if k not in unused}
    report = load_state(vit, state, str(path), ignore_missing=("head.", "norm.", "fc_norm."))
    if unused:
        report.notes.append(f"image head / final norm not used by UniFormerV2: {', '.join(unused)}")
    return report


def init_from_image_weights(cfg: ModelConfig, path: str | Path, checkpoint: Any = None) -> tuple[UniFormerV2, LoadReport]:
    """UniFormerV2 arming a ViT initialised from a CLIP / open_clip / timm file (2D->3D stem inflation)."""
    vit = build_vit(cfg.vit_cfg, cfg.drop_path)
    report = load_image_weights(vit, path, checkpoint)
    return UniFormerV2(cfg, vit), report


# The input normalisation of the official UniFormerV2 runs: PySlowFast's DATA.MEAN / DATA.STD of [0, 1] pixels, which
# no official config changes (the official checkpoints were trained and tested on it; the paper recipes set it too)
OFFICIAL_NORMALISATION = {"mean": [0.45, 0.45, 0.45], "std": [0.225, 0.225, 0.225]}


def checkpoint_normalisation(checkpoint: Any) -> dict[str, list[float]] | None:
    """The mean / std of [0, 1] pixels a video checkpoint's weights were trained on: what a uv2 or Lightning
    checkpoint records, the official runs' for an official .pyth; None where unknown (image weights, checkpoints
    written before uv2 recorded it)."""
    if not isinstance(checkpoint, dict):
        return None
    if uv2_state_dict(checkpoint) is not None:
        return checkpoint.get("input_normalisation")
    try:
        official_state_dict(checkpoint)
    except CheckpointError:
        return None
    return OFFICIAL_NORMALISATION


def init_model(cfg: ModelConfig, path: str | Path | None = None) -> tuple[UniFormerV2, LoadReport | None]:
    """A model of architecture `cfg` initialised from any weight file uv2 reads: a CLIP / open_clip / timm image
    ViT (armed, stem inflated), an official .pyth, a uv2 checkpoint or a Lightning checkpoint of a uv2 run.
    Video weights of another class count get a new classifier (see the report's notes)."""
    if path is None:
        return UniFormerV2(cfg), None
    if is_torchscript_archive(path):
        return init_from_image_weights(cfg, path, load_torchscript_state_dict(path))
    checkpoint = safe_load(path)
    video_state = uv2_state_dict(checkpoint)
    if video_state is None and isinstance(checkpoint, dict):
        try:
            official = official_state_dict(checkpoint, str(path))
        except CheckpointError:
            official = None
        if official is not None:
            model = UniFormerV2(cfg)
            report = load_state(model, convert_official(official, model), str(path))
            report.normalisation = OFFICIAL_NORMALISATION
            return model, report
    if video_state is None:
        return init_from_image_weights(cfg, path, checkpoint)
    model = UniFormerV2(cfg)
    report = load_state(model, video_state, str(path))
    report.normalisation = checkpoint_normalisation(checkpoint)
    return model, report


def uv2_state_dict(checkpoint: Any) -> StateDict | None:
    """The UniFormerV2 tensors of a uv2 or Lightning checkpoint (None for other files)."""
    if not isinstance(checkpoint, dict):
        return None
    if "model_config" in checkpoint:
        return checkpoint["state_dict"]
    if "arch" in checkpoint.get("hyper_parameters", {}):
        return {k[len("model."):]: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    return None


# --------------------------------------------------------------------------------------------- uv2 checkpoints
def load_state(model: nn.Module, state: StateDict, source: str, ignore_missing: tuple[str, ...] = ()) -> LoadReport:
    """load_state_dict(strict=False) that reports, skips shape mismatches with a note, and resets a classifier
    whose class count differs (fine-tuning on another label set)."""
    report = LoadReport(source)
    target = model.state_dict()
    fitting: StateDict = {}
    for key, value in state.items():
        if key not in target:
            report.unexpected.append(key)
        elif value.shape != target[key].shape:
            report.notes.append(f"{key}: shape {tuple(value.shape)} in file, {tuple(target[key].shape)} in model; "
                                f"kept the model's initialisation")
        else:
            fitting[key] = value
    if isinstance(model, UniFormerV2) and "head.fc.weight" in state and "head.fc.weight" not in fitting:
        report.notes.append(f"new classifier: {state['head.fc.weight'].shape[0]} classes in file, "
                            f"{model.cfg.num_classes} in the model")
    model.load_state_dict(fitting, strict=False)
    report.loaded = sorted(fitting)
    report.missing = sorted(k for k in target if k not in fitting and not k.startswith(ignore_missing))
    return report


def export_image_vit(model: UniFormerV2) -> StateDict:
    """The pretrained-ViT part of a model in timm's VisionTransformer names (for image-pretrained presets): the
    stem squeezed back to 2D (centre tap), the local / global blocks and the head left out."""
    keep = {id(p) for p in model.backbone_parameters()}
    state = {name: p.detach().clone() for name, p in model.named_parameters() if id(p) in keep}
    stem = state.pop("patch_embed.proj.weight")
    state["patch_embed.proj.weight"] = stem[:, :, stem.shape[2] // 2]
    if "patch_embed.proj.bias" in state:
        state["patch_embed.proj.bias"] = state.pop("patch_embed.proj.bias")
    return state


def save_checkpoint(model: UniFormerV2, path: str | Path, **extra: Any) -> None:
    """A uv2 checkpoint: {"model_config": dict, "state_dict": tensors, ...extra}, written atomically."""
    atomic_torch_save({"format": "uv2", "model_config": model.cfg.to_dict(), "state_dict": model.state_dict(), **extra},
                      path)


def load_model(path: str | Path, **overrides: Any) -> UniFormerV2:
    """An eval-ready model from a uv2 checkpoint, a Lightning checkpoint of a uv2 run or an official .pyth."""
    return model_from_checkpoint(safe_load(path), str(path), **overrides)


def model_from_checkpoint(checkpoint: Any, source: str, **overrides: Any) -> UniFormerV2:
    """`load_model` on a checkpoint already read (`source` names it in messages)."""
    state = uv2_state_dict(checkpoint)
    if state is None:
        return from_official(checkpoint, **overrides)
    cfg_fields = checkpoint["model_config"] if "model_config" in checkpoint else checkpoint["hyper_parameters"]["arch"]
    model = UniFormerV2(ModelConfig(**{**cfg_fields, **overrides}))
    report = load_state(model, state, source)
    if report.missing or report.unexpected:
        log.warning(report.summary())
    return model.eval()


def checkpoint_class_names(checkpoint: Any) -> list[str] | None:
    """The class names a checkpoint stores (uv2 checkpoints and Lightning checkpoints of uv2 runs; None otherwise)."""
    if not isinstance(checkpoint, dict):
        return None
    names = checkpoint.get("class_names") or (checkpoint.get("hyper_parameters") or {}).get("class_names")
    return list(names) if names else None


# ------------------------------------------------------------------------------------------------- head slicing
def slice_classifier(state: StateDict, rows: list[int], prefix: str = "head.fc.") -> StateDict:
    """`state` with the classifier's rows `rows`, in that order (the other tensors shared, not copied)."""
    keys = [f"{prefix}weight", f"{prefix}bias"]
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(f"no classifier to slice: {', '.join(missing)} not in the state dict")
    index = torch.tensor(rows, dtype=torch.long)
    return {**state, **{k: state[k].index_select(0, index).clone() for k in keys}}


def slice_head(source: str | Path, target_classes: list[str], source_classes: list[str] | None = None,
               checkpoint: Any = None, **overrides: Any) -> UniFormerV2:
    """The model of a checkpoint (official .pyth, uv2 or Lightning checkpoint) with its classifier cut down to
    `target_classes`, each row taken from the head's row of the same class name: a Kinetics-710 head sliced to the
    K400, K600 or K700 classes for fine-tuning. `source_classes` is the order of the checkpoint's head (default:
    the names the checkpoint stores; an official .pyth stores none); `checkpoint`: the file's contents, already read."""
    checkpoint = safe_load(source) if checkpoint is None else checkpoint
    names = source_classes or checkpoint_class_names(checkpoint)
    if names is None:
        raise CheckpointError(f"{source}: the checkpoint stores no class names (an official .pyth): give the class "
                              f"order of its head (--source-classes, one name per line)")
    model = model_from_checkpoint(checkpoint, str(source), **overrides)
    if len(names) != model.cfg.num_classes:
        raise CheckpointError(f"{source}: its head has {model.cfg.num_classes} classes but the source class list "
                              f"names {len(names)}")
    rows = class_rows(names, target_classes, f"the {len(names)}-class head of {source}",
                      f"the {len(target_classes)} target classes")
    sliced = UniFormerV2(ModelConfig(**{**model.cfg.to_dict(), "num_classes": len(target_classes)}))
    sliced.load_state_dict(slice_classifier(model.state_dict(), rows))
    return sliced.eval()


def _name(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else "<state dict>"


# ------------------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uv2 convert", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    official = sub.add_parser("official", help="official UniFormerV2 .pyth -> uv2 checkpoint")
    official.add_argument("src", type=Path, help="official checkpoint (.pyth)")
    official.add_argument("dst", type=Path, help="uv2 checkpoint to write")
    official.add_argument("--num-frames", type=int, default=None, help="input frames (default: from the file's cfg)")
    official.add_argument("--heads", type=int, default=None, help="attention heads if not width / 64")
    sliced = sub.add_parser("slice-head", help="keep the classifier rows of a target class list, matched by name "
                                               "(a K710 head -> K400 / K600 / K700) -> uv2 checkpoint",
                            description="Cut a checkpoint's classifier down to the classes of --target-classes, each "
                                        "row taken from the head's row of the same class name, and write a uv2 "
                                        "checkpoint to fine-tune from (model.init_from).")
    sliced.add_argument("src", type=Path, help="official .pyth, uv2 checkpoint or Lightning checkpoint of a uv2 run")
    sliced.add_argument("dst", type=Path, help="uv2 checkpoint to write")
    sliced.add_argument("--target-classes", type=Path, required=True,
                        help="the classes to keep, one name per line, in the new head's order (e.g. "
                             "data/k600/classes.txt)")
    sliced.add_argument("--source-classes", type=Path, default=None,
                        help="the class order of SRC's head, one name per line (default: the names SRC stores; an "
                             "official .pyth stores none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_output_dir(args.dst.parent, "dst")  # before the checkpoint is read and converted
    if args.kind == "slice-head":
        try:
            target = read_classes_file(args.target_classes)
            source = read_classes_file(args.source_classes) if args.source_classes else None
            checkpoint = safe_load(args.src)
            model = slice_head(args.src, target, source, checkpoint)
        except (CheckpointError, ValueError, FileNotFoundError) as err:
            parser.error(str(err))
        save_checkpoint(model, args.dst, source=str(args.src), class_names=target,
                        input_normalisation=checkpoint_normalisation(checkpoint))
        print(f"wrote {args.dst}: the {len(target)} classes of {args.target_classes}, rows of {args.src}'s head "
              f"matched by name")
        return 0
    overrides: dict[str, Any] = {}
    if args.num_frames:
        overrides["num_frames"] = args.num_frames
    if args.heads:
        overrides["vit_overrides"] = {"heads": args.heads}
    try:
        model = from_official(args.src, **overrides)
    except CheckpointError as err:
        parser.error(str(err))
    save_checkpoint(model, args.dst, source=str(args.src), input_normalisation=OFFICIAL_NORMALISATION)
    cfg = model.cfg
    print(f"wrote {args.dst}: width {cfg.vit_cfg.width}, depth {cfg.vit_cfg.depth}, patch {cfg.vit_cfg.patch_size}, "
          f"{cfg.vit_cfg.img_size}px, T-Down {cfg.t_down}, local {cfg.local_type} ({cfg.local_layers}, "
          f"x{2 if cfg.local_double else 1}, r={cfg.local_reduction}), global {cfg.global_layers}, "
          f"{cfg.num_classes} classes")
    return 0
