"""UniFormerV2 in the official code's layout, as a parity oracle and a speed baseline (not used for training).

It follows the official model's data layout and module structure rather than uv2's: tokens as (L, N*T, C),
nn.MultiheadAttention for the spatial attention, the global blocks' cross-attention written out with an explicit
softmax, Conv3d for every local MHRA and DPE (with the permute + contiguous copies between layouts that this needs),
and the official state-dict names (so official .pyth files load into it directly). uv2's tests build random
instances, save their state dicts in the official format and check that `uv2.models.convert.from_official`
reproduces their logits; `benchmarks/speed.py` times it against UniFormerV2.

Only the released arms exist here: Sequential fusion with one query, local MHRA none / single / double.
"""

from __future__ import annotations

import torch
from torch import nn


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

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """x: (L, N*T, C) with the class token first; returns x with the local update on the patch tokens."""
        patches = x[1:]
        L, NT, C = patches.shape
        side = int(L ** 0.5)
        video = patches.view(side, side, NT // T, T, C).permute(2, 4, 3, 0, 1).contiguous()  # (N, C, T, H, W)
        video = video + self.pos_embed(video)
        patches = video.view(NT // T, C, T, L).permute(3, 0, 2, 1).contiguous().view(L, NT, C)
        return torch.cat([x[:1], patches], dim=0)


class _ResBlock(nn.Module):
    def __init__(self, width: int, heads: int, local: str, reduction: float) -> None:
        super().__init__()
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

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        if hasattr(self, "lmhra1"):
            x = self.lmhra1(x, T)
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        if hasattr(self, "lmhra2"):
            x = self.lmhra2(x, T)
        return x + self.mlp(self.ln_2(x))


class _Extractor(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1, self.ln_2, self.ln_3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(width, 4 * width))
        self.mlp.add_module("gelu", _QuickGELU())
        self.mlp.add_module("dropout", nn.Dropout(0.5))
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
        q = q + self.cross_attention(self.ln_1(q), self.ln_3(kv))
        return q + self.mlp(self.ln_2(q))


class _Transformer(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, local: str, reduction: float, num_global: int,
                 num_classes: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(_ResBlock(width, heads, local, reduction) for _ in range(depth))
        self.return_list = list(range(depth - num_global, depth))
        self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.dpe = nn.ModuleList(nn.Conv3d(width, width, 3, padding=1, groups=width) for _ in range(num_global))
        self.dec = nn.ModuleList(_Extractor(width, heads) for _ in range(num_global))
        self.proj = nn.Sequential(nn.LayerNorm(width), nn.Dropout(0.5), nn.Linear(width, num_classes))
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
                 num_classes: int = 10, heads: int | None = None) -> None:
        super().__init__()
        if local not in ("none", "single", "double"):
            raise ValueError(f"local: invalid value {local!r}; valid choices: none, single, double")
        kt, st = (3, 2) if t_down else (1, 1)
        self.t_stride = st
        self.conv1 = nn.Conv3d(3, width, (kt, patch_size, patch_size), (st, patch_size, patch_size),
                               (kt // 2, 0, 0), bias=False)
        self.class_embedding = nn.Parameter(width ** -0.5 * torch.randn(width))
        self.positional_embedding = nn.Parameter(width ** -0.5 * torch.randn((img_size // patch_size) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, depth, heads or max(1, width // 64), local, reduction, num_global,
                                        num_classes)

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
