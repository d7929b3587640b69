"""Small shared layers of UniFormerV2: the local temporal modules, the DPE and the global cross-attention block.

Layout convention. Inside the ViT the tokens of a clip are batch-first, one row per frame: (B*T, 1+S, C) with S =
h*w patches after the class token. The local modules see only the patch tokens, as a (B, T, S, C) view of that
tensor, and work channels-last: a 1x1x1 Conv3d is a Linear over C, a depth-wise temporal conv is a weighted sum of
frame-shifted copies, BatchNorm3d is BatchNorm over the C column. No (N, C, T, H, W) copies are made except inside
the 3x3x3 DPE, which runs Conv3d on a channels-last view (no copy either).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, QuickGELU
from torch import nn

QUICK_GELU_SCALE = 1.702


def quick_gelu_mlp(fc1: nn.Linear, fc2: nn.Linear, x: torch.Tensor, dropout: nn.Module | None = None) -> torch.Tensor:
    """fc2(dropout(QuickGELU(fc1(x)))), computed with one fused activation kernel.

    QuickGELU(h) = h * sigmoid(1.702 h) = SiLU(1.702 h) / 1.702. The two constants are folded into the weights
    (scaling C x 4C weights instead of making extra passes over every token), so the activation is a single SiLU
    forward and a single SiLU backward instead of five element-wise passes. Dropout commutes with the scale.
    """
    s = QUICK_GELU_SCALE
    h = F.silu(F.linear(x, fc1.weight * s, None if fc1.bias is None else fc1.bias * s))
    if dropout is not None:
        h = dropout(h)
    return F.linear(h, fc2.weight / s, fc2.bias)


class DepthwiseTemporalConv(nn.Module):
    """Depth-wise conv along T with zero padding: the official (k,1,1) grouped Conv3d, on (B, T, S, C) tensors."""

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(dim, kernel))  # official Conv3d weight (dim, 1, k, 1, 1)
        self.bias = nn.Parameter(torch.empty(dim))
        bound = 1.0 / math.sqrt(kernel)  # PyTorch's Conv default init (fan_in = k)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, pad = x.shape[1], self.kernel // 2
        padded = F.pad(x, (0, 0, 0, 0, pad, pad))  # (B, T + 2 pad, S, C)
        out = self.bias + padded[:, :T] * self.weight[:, 0]
        for k in range(1, self.kernel):
            out = out + padded[:, k : k + T] * self.weight[:, k]  # frame t sees t + k - pad
        return out


class DepthwiseConv3d(nn.Module):
    """Depth-wise k x k x k Conv3d over a (B, T, h, w, C) channels-last tensor (the DPE)."""

    def __init__(self, dim: int, kernel: int = 3, zero_init: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv3d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        nn.init.zeros_(self.conv.bias)
        if zero_init:
            nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a permuted view: (B, C, T, h, w) with channels-last-3d strides, so Conv3d needs no copy
        out = self.conv(x.permute(0, 4, 1, 2, 3))
        return out.permute(0, 2, 3, 4, 1)  # (B, T, h, w, C)


# ----------------------------------------------------------------------------------------- local temporal modules
# Each maps patch tokens (B, T, S, C) to a residual update of the same shape and starts at exactly zero, so a
# freshly armed model computes what the image ViT computes.


class LocalMHRA(nn.Module):
    """Local temporal MHRA: BatchNorm -> 1x1x1 down to C/r -> depth-wise temporal conv -> 1x1x1 up (zero-init)."""

    def __init__(self, dim: int, reduction: float = 1.5, kernel: int = 3) -> None:
        super().__init__()
        hidden = int(dim // reduction)
        self.norm = nn.BatchNorm1d(dim)  # = BatchNorm3d(C): statistics over every (b, t, s) position
        self.down = nn.Linear(dim, hidden)
        self.conv = DepthwiseTemporalConv(hidden, kernel)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x.reshape(-1, x.shape[-1])).view(x.shape)  # (B, T, S, C)
        return self.up(self.conv(self.down(y)))


class STAdapter(nn.Module):
    """ST-Adapter: no norm, down to C/r -> depth-wise temporal conv -> GELU -> up (zero-init)."""

    def __init__(self, dim: int, reduction: float = 1.5, kernel: int = 3) -> None:
        super().__init__()
        hidden = int(dim // reduction)
        self.down = nn.Linear(dim, hidden)
        self.conv = DepthwiseTemporalConv(hidden, kernel)
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.conv(self.down(x))))


class TemporalConv(nn.Module):
    """A plain (dense, not depth-wise) temporal convolution C -> C with kernel (k, 1, 1), zero-initialised.

    Written as a Linear over the k-frame window: unfold T, flatten (C, k), project.
    """

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.proj = nn.Linear(dim * kernel, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.kernel // 2
        windows = F.pad(x, (0, 0, 0, 0, pad, pad)).unfold(1, self.kernel, 1)  # (B, T, S, C, k)
        return self.proj(windows.flatten(-2))  # (B, T, S, C*k) -> (B, T, S, C)


class TemporalMHSA(nn.Module):
    """Self-attention along time at each spatial position (pre-norm), output projection zero-initialised."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, S, C = x.shape
        tokens = rearrange(x, "b t s c -> (b s) t c")
        q, k, v = rearrange(self.qkv(self.norm(tokens)), "n t (three h d) -> three n h t d", three=3, h=self.heads)
        out = rearrange(F.scaled_dot_product_attention(q, k, v), "(b s) h t d -> b t s (h d)", b=B)
        return self.proj(out)


def build_local_module(kind: str, dim: int, reduction: float, kernel: int, heads: int) -> nn.Module:
    """The local temporal module named by ModelConfig.local_type."""
    if kind == "lmhra":
        return LocalMHRA(dim, reduction, kernel)
    if kind == "st_adapter":
        return STAdapter(dim, reduction, kernel)
    if kind == "temporal_conv":
        return TemporalConv(dim, kernel)
    if kind == "temporal_mhsa":
        return TemporalMHSA(dim, heads)
    raise ValueError(f"local_type: invalid value {kind!r}; valid choices: lmhra, temporal_mhsa, temporal_conv, st_adapter")


# ------------------------------------------------------------------------------------------- global UniBlock


class CrossAttention(nn.Module):
    """Queries (B, Q, C) attend to tokens (B, M, C) with fused attention; O(Q*M), not O(M^2)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        # the official block initialises its packed (3C, C) in-projection with Xavier, biases at zero
        bound = math.sqrt(6.0 / (dim + 3 * dim))
        for linear in (self.q, self.kv):
            nn.init.uniform_(linear.weight, -bound, bound)
            nn.init.zeros_(linear.bias)
        nn.init.zeros_(self.proj.weight)  # zero-init: the block starts as the identity on its queries
        nn.init.zeros_(self.proj.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, return_weights: bool = False):
        q = rearrange(self.q(query), "b q (h d) -> b h q d", h=self.heads)
        k, v = rearrange(self.kv(tokens), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        if return_weights:  # explicit softmax, for attention maps in the analysis notebooks
            weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)  # (B, h, Q, M)
            out = weights @ v
        else:
            weights, out = None, F.scaled_dot_product_attention(q, k, v)
        out = self.proj(rearrange(out, "b h q d -> b q (h d)"))
        return (out, weights) if return_weights else out


class GlobalBlock(nn.Module):
    """Global UniBlock: q = q + CrossAttn(LN(q), LN(X)); q = q + FFN(LN(q)) (QuickGELU, dropout inside)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.5, drop_path: float = 0.0):
        super().__init__()
        hidden = round(mlp_ratio * dim)
        self.norm_q = nn.LayerNorm(dim)  # official ln_1
        self.norm_kv = nn.LayerNorm(dim)  # official ln_3
        self.attn = CrossAttention(dim, heads)
        self.norm_mlp = nn.LayerNorm(dim)  # official ln_2
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), QuickGELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        nn.init.xavier_uniform_(self.mlp[0].weight)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.last_attention: torch.Tensor | None = None  # (B, heads, Q, M) when record_attention is set
        self.record_attention = False

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if self.record_attention:
            update, self.last_attention = self.attn(self.norm_q(query), self.norm_kv(tokens), return_weights=True)
        else:
            update = self.attn(self.norm_q(query), self.norm_kv(tokens))
        query = query + self.drop_path(update)
        return query + self.drop_path(quick_gelu_mlp(self.mlp[0], self.mlp[3], self.norm_mlp(query), self.mlp[2]))
