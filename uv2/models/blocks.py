"""Small shared layers of UniFormerV2: the local temporal modules, the DPE and the global cross-attention block.

Layout convention. Inside the ViT the tokens of a clip are batch-first, one row per frame: (B*T, 1+S, C) with S =
h*w patches after the class token. The local modules see only the patch tokens, as a (B, T, S, C) view of that
tensor, and work channels-last: a 1x1x1 Conv3d is a Linear over C, a depth-wise temporal conv is a weighted sum of
frame-shifted copies, BatchNorm3d is BatchNorm over the C column. On CPU no (N, C, T, H, W) copies are made at all
(the 3x3x3 DPE runs Conv3d on a channels-last view). On GPUs the depth-wise convolutions take a contiguous (N, C, ...)
copy instead, the layout cuDNN runs as one grouped kernel: see uv2.models.dispatch for the layers with a CPU and a GPU
formulation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath, QuickGELU
from torch import nn

from uv2.models.dispatch import path_for

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
    """Depth-wise conv along T with zero padding: the official (k,1,1) grouped Conv3d, on (B, T, S, C) tensors.

    Dispatched by device (uv2.models.dispatch): on CPU a weighted sum of k frame-shifted copies, multiply-adds
    vectorised along the contiguous C with no layout copy; on GPUs a depth-wise Conv2d on a contiguous (B, C, T, S)
    copy, one kernel each way where the shifted sum is 2k element-wise passes forward and more backward.
    """

    def __init__(self, dim: int, kernel: int = 3) -> None:
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(dim, kernel))  # official Conv3d weight (dim, 1, k, 1, 1)
        self.bias = nn.Parameter(torch.empty(dim))
        bound = 1.0 / math.sqrt(kernel)  # PyTorch's Conv default init (fan_in = k)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if path_for(x) == "cpu":
            return self._shifted_sum(x)
        return self._conv(x)

    def _shifted_sum(self, x: torch.Tensor) -> torch.Tensor:
        T, pad = x.shape[1], self.kernel // 2
        padded = F.pad(x, (0, 0, 0, 0, pad, pad))  # (B, T + 2 pad, S, C)
        out = self.bias + padded[:, :T] * self.weight[:, 0]
        for k in range(1, self.kernel):
            out = out + padded[:, k : k + T] * self.weight[:, k]  # frame t sees t + k - pad
        return out

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        video = x.permute(0, 3, 1, 2).contiguous()  # (B, T, S, C) -> (B, C, T, S), a copy in the NCHW layout
        weight = self.weight[:, None, :, None]  # (C, k) -> (C, 1, k, 1): one k x 1 filter per channel
        out = F.conv2d(video, weight, self.bias, padding=(self.kernel // 2, 0), groups=video.shape[1])
        return out.permute(0, 2, 3, 1)  # (B, T, S, C) view


def depthwise_weight_grad(x: torch.Tensor, grad_out: torch.Tensor, kernel: int) -> torch.Tensor:
    """The weight gradient of a depth-wise k x k x k Conv3d ('same' padding, stride 1), computed as forward
    convolutions: each channel's gradient is its input correlated with its output gradient, summed over the clips,
    so for each clip a depth-wise Conv3d of the input (padded as the layer pads it) whose kernel is that clip's whole
    output gradient (C groups, kernel T x h x w, output k x k x k). On CPUs this is faster than the convolution's
    own weight backward at every DPE size measured: about 1.3x at the SSv2 B/16 design's 16x14x14x768, 3x at the
    tiny grid's, 5-6x at ViT-S sizes (``python benchmarks/dpe_grad.py``, one thread). One clip at a time: a single
    convolution of B*C groups is slower than the loop at ViT sizes. In fp32 whatever the inputs' dtype, as under
    bf16 autocast the sums over a clip's positions would otherwise round in bf16.

    x, grad_out: (B, C, T, h, w), any strides (the DPE's are channels-last views). Returns (C, 1, k, k, k), fp32."""
    x, grad_out = x.float(), grad_out.float()
    channels = grad_out.shape[1]
    grad = grad_out.new_zeros((channels, 1, kernel, kernel, kernel))
    for i in range(len(x)):
        # slices, not x[i][None]: a slice keeps the channels-last-3d strides that the CPU kernels take without a copy
        clip, clip_grad = x[i:i + 1], rearrange(grad_out[i:i + 1], "1 c t h w -> c 1 t h w")
        per_clip = F.conv3d(clip, clip_grad, padding=kernel // 2, groups=channels)  # (1, C, k, k, k)
        grad += rearrange(per_clip, "1 c x y z -> c 1 x y z")
    return grad


class _SameDepthwiseConv3d(torch.autograd.Function):
    """Depth-wise Conv3d (stride 1, odd kernel, 'same' padding) whose gradients are computed as forward
    convolutions, which CPU kernels run far faster than the convolution's own backward; the same numbers up to
    rounding. The input's is the output gradient convolved with the flipped kernel, which is what that gradient is
    (the ViT-S DPE at 8x7x7x384, batch 4: a whole backward 11.8 -> 6.1 ms); the weight's, depthwise_weight_grad."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return F.conv3d(x, weight, bias, padding=weight.shape[-1] // 2, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        kernel, channels = weight.shape[-1], weight.shape[0]
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:  # under autocast the forward ran in bf16: so does this one
            grad_x = F.conv3d(grad_out, weight.to(grad_out.dtype).flip(2, 3, 4), padding=kernel // 2, groups=channels)
        if ctx.needs_input_grad[1]:
            grad_weight = depthwise_weight_grad(x, grad_out, kernel)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.float().sum((0, 2, 3, 4))
        return grad_x, grad_weight, grad_bias


class DepthwiseConv3d(nn.Module):
    """Depth-wise k x k x k Conv3d over a (B, T, h, w, C) channels-last tensor (the DPE).

    Dispatched by device (uv2.models.dispatch). CPU: Conv3d on the permuted view, which has channels-last-3d
    strides and needs no copy, with the flipped-kernel input gradient of _SameDepthwiseConv3d. GPUs: Conv3d on a
    contiguous (B, C, T, h, w) copy with autograd's own backward, as the official code runs it: on that layout
    cuDNN computes the depth-wise weight gradient with one grouped kernel, on the channels-last view with one
    kernel per channel (87.7 % of the SSv2 B/16 design's CUDA time per training step on an H200, in issue 11).
    """

    def __init__(self, dim: int, kernel: int = 3, zero_init: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv3d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        nn.init.zeros_(self.conv.bias)
        if zero_init:
            nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        video = x.permute(0, 4, 1, 2, 3)  # (B, C, T, h, w) view with channels-last-3d strides
        if path_for(x) == "cpu":
            out = _SameDepthwiseConv3d.apply(video, self.conv.weight, self.conv.bias)
        else:
            out = self.conv(video.contiguous())  # NCDHW copy, cuDNN's grouped kernels
        return out.permute(0, 2, 3, 4, 1)  # (B, T, h, w, C) view


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
    """Queries (B, Q, C) attend to tokens (B, M, C) with fused attention; O(Q*M), not O(M^2).

    The tokens are never projected to keys and values (the trick that makes the global blocks cheap): with few
    queries the projections are cheaper on the queries' side. Per head h, with q_h the projected query,
        q_h . (W_k,h x + b_k,h) = (W_k,h^T q_h) . x + q_h . b_k,h
    where the last term is the same for every token, so the softmax drops it, and with weights a_m summing to 1,
        sum_m a_m (W_v,h x_m + b_v,h) = W_v,h (sum_m a_m x_m) + b_v,h.
    So attention runs on the raw tokens with heads * Q queries of width C, costing O(heads*Q*M*C) instead of the
    O(M*C^2) of projecting M tokens (heads * Q << C); the outputs equal the textbook form up to rounding. The
    weights stay the official in-projection (`kv`); `project_tokens = True` computes the textbook form (FLOPs are
    counted that way, the paper's convention).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.project_tokens = False
        # the official block initialises its packed (3C, C) in-projection with Xavier, biases at zero
        bound = math.sqrt(6.0 / (dim + 3 * dim))
        for linear in (self.q, self.kv):
            nn.init.uniform_(linear.weight, -bound, bound)
            nn.init.zeros_(linear.bias)
        nn.init.zeros_(self.proj.weight)  # zero-init: the block starts as the identity on its queries
        nn.init.zeros_(self.proj.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor, return_weights: bool = False):
        q = rearrange(self.q(query), "b q (h d) -> b h q d", h=self.heads)
        attend = self._attend_projected if self.project_tokens else self._attend_raw
        out, weights = attend(q, tokens, return_weights)  # (B, h, Q, d), (B, h, Q, M) or None
        out = self.proj(rearrange(out, "b h q d -> b q (h d)"))
        return (out, weights) if return_weights else out

    def _attend_raw(self, q: torch.Tensor, tokens: torch.Tensor, return_weights: bool):
        """Attention with the key / value projections moved onto the queries (see the class docstring)."""
        # parameters are split with plain views, not einops (whose backend cache, filled per tensor type, would
        # make torch.compile recompile once when it first meets an nn.Parameter)
        w_k, w_v = self.kv.weight.unflatten(0, (2, self.heads, -1))  # (2C, C) -> 2 x (h, d, C)
        b_v = self.kv.bias.view(2, self.heads, 1, -1)[1]  # value bias (h, 1, d)
        q_tokens = rearrange(torch.einsum("bhqd,hdc->bhqc", q, w_k.to(q.dtype)), "b h q c -> b 1 (h q) c")
        # (B, 1, M, C): the heads' queries share one set of keys = values = tokens; under autocast the tokens (a
        # LayerNorm output, fp32) are cast once here rather than by each matmul that reads them
        x = tokens.unsqueeze(1).to(q_tokens.dtype)
        scale = q.shape[-1] ** -0.5  # of the head width d, as in the textbook form
        weights = None
        # Dispatched by device (uv2.models.dispatch): CPU runs the fused attention; on GPUs the head width C is
        # beyond the flash kernel's and the h*Q query rows fill one query tile per clip of the fallback kernel, so
        # two batched matmuls and a softmax over the small (B, 1, h*Q, M) scores are used instead.
        if return_weights or path_for(x) == "cuda":  # explicit softmax (also for the notebooks' attention maps)
            attention = (q_tokens @ x.transpose(-2, -1) * scale).softmax(-1)  # (B, 1, h*Q, M)
            mixed = attention @ x  # (B, 1, h*Q, C)
            if return_weights:
                weights = rearrange(attention, "b 1 (h q) m -> b h q m", h=self.heads)
        else:
            mixed = F.scaled_dot_product_attention(q_tokens, x, x, scale=scale)  # (B, 1, h*Q, C)
        mixed = rearrange(mixed, "b 1 (h q) c -> b h q c", h=self.heads)
        return torch.einsum("bhqc,hdc->bhqd", mixed, w_v.to(mixed.dtype)) + b_v.to(mixed.dtype), weights

    def _attend_projected(self, q: torch.Tensor, tokens: torch.Tensor, return_weights: bool):
        """The textbook form: project every token to a key and a value."""
        k, v = rearrange(self.kv(tokens), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        if return_weights:
            weights = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)  # (B, h, Q, M)
            return weights @ v, weights
        return F.scaled_dot_product_attention(q, k, v), None


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
