"""UniFormerV2 in the official code's layout, as a parity oracle and a speed baseline (not used for training).

It follows the official model's data layout and module structure rather than uv2's: tokens as (L, N*T, C),
nn.MultiheadAttention for the spatial attention, the global blocks' cross-attention written out with an explicit
softmax, Conv3d for every local MHRA and DPE (with the permute + contiguous copies between layouts that this needs),
and the official state-dict names (so official .pyth files load into it directly). uv2's tests build random
instances, save their state dicts in the official format and check that `uv2.models.convert.from_official`
reproduces their logits; `benchmarks/speed.py` times it against UniFormerV2 (`from_config` builds the design of a
ModelConfig, with the same drop-path, dropout and activation checkpointing, so both train the same way).

Only what the official code can express exists here: a CLIP-style ViT, local MHRA (kernel 3) in every layer or in
none, single or double, and global blocks with DPE on any layers, Sequential fusion with one query.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint
from timm.layers import DropPath
from torch import nn

from uv2.models.config import ModelConfig


def official_layout_unsupported(cfg: ModelConfig) -> str | None:
    """Why the official layout (and the official code) cannot express `cfg`, or None when it can."""
    vit = cfg.vit_cfg
    if (vit.act, vit.pre_norm, vit.layer_scale, vit.qkv_bias, vit.mlp_ratio, vit.norm_eps) != \
            ("quick_gelu", True, None, True, 4.0, 1e-5):
        return "the ViT must be CLIP-style (QuickGELU, ln_pre, LayerNorm eps 1e-5, qkv bias, MLP ratio 4, no LayerScale)"
    local_ids = cfg.local_layer_ids
    if local_ids and (cfg.local_type != "lmhra" or len(local_ids) != vit.depth or cfg.local_kernel != 3
                      or cfg.local_dpe):
        return "the local blocks must be local MHRA (kernel 3, no local DPE) in every layer, or none"
    if not cfg.global_layer_ids or not cfg.global_dpe:
        return "global blocks with DPE are needed"
    if cfg.fusion != "sequential" or cfg.num_queries != 1:
        return "only Sequential fusion with one query"
    if cfg.global_heads not in (None, vit.num_heads) or cfg.global_mlp_ratio != 4.0:
        return "the global blocks must have the ViT's heads and MLP ratio 4"
    if cfg.frozen_backbone:
        return "no frozen-backbone head"
    return None


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _LocalMHRA(nn.Module):
    def __init__(self, width: int, reduction: float) -> None:
        super().__init__()
        hidden = int(width // reduction)
        self.pos_embed = nn.Sequential(
            nn.BatchNorm3d(width),
            nn.Conv3d(width, hidden, 1),
            nn.Conv3d(hidden, hidden, (3, 1, 1), padding=(1, 0, 0), groups=hidden),
            nn.Conv3d(hidden, width, 1),
        )
        nn.init.zeros_(self.pos_embed[3].weight)
        nn.init.zeros_(self.pos_embed[3].bias)

    def forward(self, x: torch.Tensor, T: int, drop_path: nn.Module) -> torch.Tensor:
        """x: (L, N*T, C) with the class token first; returns x with the local update on the patch tokens."""
        patches = x[1:]
        L, NT, C = patches.shape
        side = int(L ** 0.5)
        video = patches.view(side, side, NT // T, T, C).permute(2, 4, 3, 0, 1).contiguous()  # (N, C, T, H, W)
        video = video + drop_path(self.pos_embed(video))
        patches = video.view(NT // T, C, T, L).permute(3, 0, 2, 1).contiguous().view(L, NT, C)
        return torch.cat([x[:1], patches], dim=0)


class _ResBlock(nn.Module):
    def __init__(self, width: int, heads: int, local: str, reduction: float, drop_path: float = 0.0,
                 checkpoint: bool = False) -> None:
        super().__init__()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()  # one for every residual
        self.checkpoint = checkpoint  # recompute attention and MLP in backward, as the official use_checkpoint
        if local in ("single", "double"):
            self.lmhra1 = _LocalMHRA(width, reduction)
        if local == "double":
            self.lmhra2 = _LocalMHRA(width, reduction)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", _QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)

    def _attention(self, y: torch.Tensor) -> torch.Tensor:
        return self.attn(y, y, y, need_weights=False)[0]

    def _run(self, fn, y: torch.Tensor) -> torch.Tensor:
        if self.checkpoint and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, y, use_reentrant=False)
        return fn(y)

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        if hasattr(self, "lmhra1"):
            x = self.lmhra1(x, T, self.drop_path)
        x = x + self.drop_path(self._run(self._attention, self.ln_1(x)))
        if hasattr(self, "lmhra2"):
            x = self.lmhra2(x, T, self.drop_path)
        return x + self.drop_path(self._run(self.mlp, self.ln_2(x)))


class _Extractor(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float = 0.5, drop_path: float = 0.0) -> None:
        super().__init__()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", _QuickGELU())
        self.mlp.add_module("dropout", nn.Dropout(dropout))
        self.mlp.add_module("c_proj", nn.Linear(4 * width, width))
        for zero in (self.attn.out_proj, self.mlp.c_proj):
            nn.init.zeros_(zero.weight)
            nn.init.zeros_(zero.bias)

    def cross_attention(self, q_in: torch.Tensor, kv_in: torch.Tensor) -> torch.Tensor:
        """q_in: (Q, N, C), kv_in: (M, N, C) -> (Q, N, C), with an explicit softmax."""
        C, heads = q_in.shape[-1], self.attn.num_heads
        w, b = self.attn.in_proj_weight, self.attn.in_proj_bias
        q = q_in @ w[:C].T + b[:C]
        k = kv_in @ w[C:2 * C].T + b[C:2 * C]
        v = kv_in @ w[2 * C:].T + b[2 * C:]
        q, k, v = (t.view(t.shape[0], t.shape[1], heads, C // heads).permute(1, 2, 0, 3) for t in (q, k, v))
        attn = (q @ k.transpose(-2, -1) / (C // heads) ** 0.5).softmax(-1)
        out = (attn @ v).permute(2, 0, 1, 3).flatten(2)
        return self.attn.out_proj(out)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        q = q + self.drop_path(self.cross_attention(self.ln_1(q), self.ln_3(kv)))
        return q + self.drop_path(self.mlp(self.ln_2(q)))


class _Transformer(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, local: str, reduction: float, return_list: list[int],
                 num_classes: int, drop_path: float = 0.0, global_drop_path: float = 0.0, mlp_dropout: float = 0.5,
                 cls_dropout: float = 0.5, checkpoint_blocks: int = 0) -> None:
        super().__init__()
        rates = torch.linspace(0, drop_path, depth).tolist()  # stochastic depth, linear over the layers
        self.resblocks = nn.ModuleList(_ResBlock(width, heads, local, reduction, rates[i], i < checkpoint_blocks)
                                       for i in range(depth))
        self.return_list = list(return_list)
        num_global = len(self.return_list)
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.dpe = nn.ModuleList(nn.Conv3d(width, width, 3, padding=1, groups=width) for _ in range(num_global))
        global_rates = torch.linspace(0, global_drop_path, num_global).tolist()
        self.dec = nn.ModuleList(_Extractor(width, heads, mlp_dropout, rate) for rate in global_rates)
        self.proj = nn.Sequential(nn.LayerNorm(width), nn.Dropout(cls_dropout), nn.Linear(width, num_classes))
        self.balance = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        L, NT, C = x.shape
        N, side = NT // T, int((L - 1) ** 0.5)
        query = self.temporal_cls_token.repeat(1, N, 1)
        j = 0
        for i, block in enumerate(self.resblocks):
            x = block(x, T)
            if i in self.return_list:
                tokens = x.view(L, N, T, C)
                feats = tokens[1:].permute(1, 3, 2, 0).reshape(N, C, T, side, side)
                feats = self.dpe[j](feats).view(N, C, T, L - 1).permute(3, 0, 2, 1).contiguous()
                tokens = torch.cat([tokens[:1], tokens[1:] + feats], dim=0)  # out of place: conv saved its input
                query = self.dec[j](query, tokens.permute(2, 0, 1, 3).flatten(0, 1))  # (T*L, N, C)
                j += 1
        weight = torch.sigmoid(self.balance)
        cls_mean = x.view(L, N, T, C)[0].mean(1)
        return self.proj((1 - weight) * query[0] + weight * cls_mean)


class OfficialLayoutUniFormerV2(nn.Module):
    """Official-layout UniFormerV2 (Sequential fusion, one query); state dict keys as in official checkpoints
    without the "backbone." prefix."""

    def __init__(self, width: int = 128, depth: int = 4, patch_size: int = 8, img_size: int = 32,
                 t_down: bool = True, local: str = "double", reduction: float = 1.5, num_global: int = 3,
                 num_classes: int = 10, heads: int | None = None, global_layers: list[int] | None = None,
                 drop_path: float = 0.0, global_drop_path: float = 0.0, mlp_dropout: float = 0.5,
                 cls_dropout: float = 0.5, checkpoint_blocks: int = 0) -> None:
        """`global_layers`: 0-based layers feeding the global blocks (the official return_list); default the last
        `num_global`. The rest as in the official VisionTransformer (drop_path = backbone_drop_path_rate,
        global_drop_path = drop_path_rate, checkpoint_blocks = checkpoint_num with use_checkpoint)."""
        super().__init__()
        if local not in ("none", "single", "double"):
            raise ValueError(f"local: invalid value {local!r}; valid choices: none, single, double")
        return_list = list(range(depth - num_global, depth)) if global_layers is None else sorted(global_layers)
        kt, st = (3, 2) if t_down else (1, 1)
        self.t_stride = st
        self.conv1 = nn.Conv3d(3, width, (kt, patch_size, patch_size), (st, patch_size, patch_size),
                               (kt // 2, 0, 0), bias=False)
        self.class_embedding = nn.Parameter(width ** -0.5 * torch.randn(width))
        self.positional_embedding = nn.Parameter(width ** -0.5 * torch.randn((img_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, depth, heads or max(1, width // 64), local, reduction, return_list,
                                        num_classes, drop_path, global_drop_path, mlp_dropout, cls_dropout,
                                        checkpoint_blocks)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> OfficialLayoutUniFormerV2:
        """The official-layout model of a ModelConfig's design (no local blocks when local_type is none), with its
        drop-path, dropout and activation checkpointing; ValueError when the official layout cannot express it."""
        reason = official_layout_unsupported(cfg)
        if reason is not None:
            raise ValueError(f"the official layout cannot express this design: {reason}")
        vit = cfg.vit_cfg
        local = "none" if not cfg.local_layer_ids else ("double" if cfg.local_double else "single")
        return cls(width=vit.width, depth=vit.depth, patch_size=vit.patch_size, img_size=vit.img_size,
                   t_down=cfg.t_down, local=local, reduction=cfg.local_reduction,
                   num_global=len(cfg.global_layer_ids), num_classes=cfg.num_classes, heads=vit.num_heads,
                   global_layers=cfg.global_layer_ids, drop_path=cfg.drop_path, global_drop_path=cfg.global_drop_path,
                   mlp_dropout=cfg.global_mlp_dropout, cls_dropout=cfg.head_dropout,
                   checkpoint_blocks=cfg.checkpoint_blocks)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.conv1(video)  # (N, C, T, H, W)
        N, C, T = x.shape[:3]
        x = x.permute(0, 2, 3, 4, 1).reshape(N * T, -1, C)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, C, dtype=x.dtype, device=x.device)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        return self.transformer(x.permute(1, 0, 2), T)

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict as an official .pyth stores it: {"model_state": {"backbone.<key>": tensor}}."""
        return {"model_state": {f"backbone.{k}": v for k, v in self.state_dict().items()}}


def randomize_(model: nn.Module, generator: torch.Generator | None = None, scale: float = 0.2) -> nn.Module:
    """Non-zero random values in every parameter and BatchNorm statistic (zero-inits would hide key mix-ups)."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator) * scale
            if name.endswith("running_var") or name.endswith("norm.weight") or ".ln_" in name and "weight" in name:
                noise = 1 + noise.abs()
            tensor.copy_(noise)
    return model
