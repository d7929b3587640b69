"""Arming a timm image ViT for video: a 3D patch stem and local UniBlocks around the pretrained blocks.

`build_vit` makes the timm VisionTransformer of a `ViTConfig`; `VideoPatchEmbed.from_2d` inflates its patch
embedding (T-Down puts the 2D kernel in the centre of a 3-frame kernel); `LocalUniBlock` adopts a timm `Block`'s
layers under their timm names (norm1, attn, ls1, norm2, mlp, ls2), so timm state dicts load into it unchanged,
and inserts the local temporal modules:

    X_T = X + DPE(X) + Local1(X)        (patch tokens only; DPE optional)
    X_S = X_T + MHSA(LN(X_T))           (the pretrained spatial attention, within one frame)
    X_S = X_S + Local2(X_S)             (only with local_double)
    X_L = X_S + FFN(LN(X_S))            (the pretrained MLP)
"""

from __future__ import annotations

from functools import partial

import torch
import torch.utils.checkpoint
from einops import rearrange
from timm.layers import QuickGELU
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from uv2.models.blocks import DepthwiseConv3d, quick_gelu_mlp
from uv2.models.config import ViTConfig


def build_vit(cfg: ViTConfig, drop_path: float = 0.0) -> VisionTransformer:
    """The timm VisionTransformer described by `cfg` (random init; weights come from uv2.models.convert)."""
    return VisionTransformer(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        embed_dim=cfg.width,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        init_values=cfg.layer_scale,
        pre_norm=cfg.pre_norm,
        num_classes=0,
        global_pool="token",
        act_layer=QuickGELU if cfg.act == "quick_gelu" else nn.GELU,
        norm_layer=partial(nn.LayerNorm, eps=cfg.norm_eps),
        drop_path_rate=drop_path,
    )


def inflate_patch_weight(weight_2d: torch.Tensor, frames: int) -> torch.Tensor:
    """(C, 3, P, P) -> (C, 3, frames, P, P) with the 2D kernel in the centre slice and zeros elsewhere."""
    weight_3d = weight_2d.new_zeros(weight_2d.shape[0], weight_2d.shape[1], frames, *weight_2d.shape[2:])
    weight_3d[:, :, frames // 2] = weight_2d
    return weight_3d


class VideoPatchEmbed(nn.Module):
    """Conv3d patch embedding: kernel 1xPxP, or 3xPxP with temporal stride 2 and padding 1 (T-Down)."""

    def __init__(self, width: int, patch_size: int, t_down: bool, bias: bool) -> None:
        super().__init__()
        kt, st = (3, 2) if t_down else (1, 1)
        self.patch_size = patch_size
        self.proj = nn.Conv3d(3, width, (kt, patch_size, patch_size), (st, patch_size, patch_size), (kt // 2, 0, 0),
                              bias=bias)

    @classmethod
    def from_2d(cls, patch_embed_2d: nn.Conv2d, t_down: bool) -> VideoPatchEmbed:
        stem = cls(patch_embed_2d.out_channels, patch_embed_2d.kernel_size[0], t_down, patch_embed_2d.bias is not None)
        with torch.no_grad():
            stem.proj.weight.copy_(inflate_patch_weight(patch_embed_2d.weight, stem.proj.kernel_size[0]))
            if patch_embed_2d.bias is not None:
                stem.proj.bias.copy_(patch_embed_2d.bias)
        return stem

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.proj(video)  # (B, C, T', h, w)
        return rearrange(x, "b c t h w -> (b t) (h w) c")


class LocalUniBlock(nn.Module):
    """A pretrained ViT block armed with local temporal modules; tokens (B*T, 1+S, C), class token first."""

    def __init__(
        self,
        vit_block: Block,
        local1: nn.Module | None = None,
        local2: nn.Module | None = None,
        local_dpe: bool = False,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        # adopt the pretrained layers under timm's names
        self.norm1, self.attn, self.ls1 = vit_block.norm1, vit_block.attn, vit_block.ls1
        self.norm2, self.mlp, self.ls2 = vit_block.norm2, vit_block.mlp, vit_block.ls2
        self.drop_path = vit_block.drop_path1  # the official code shares one drop-path for every residual
        width = self.norm1.normalized_shape[0]
        self.local_dpe = DepthwiseConv3d(width, zero_init=True) if (local_dpe and local1 is not None) else None
        self.local1, self.local2 = local1, local2
        self.checkpoint = checkpoint  # recompute attention and FFN in backward (activation checkpointing)
        # CLIP's QuickGELU FFN runs as one fused SiLU (blocks.quick_gelu_mlp); other activations use timm's Mlp
        mlp = self.mlp
        self.fused_quick_gelu = (isinstance(getattr(mlp, "act", None), QuickGELU)
                                 and isinstance(getattr(mlp, "norm", None), nn.Identity) and mlp.drop2.p == 0)

    def pretrained_modules(self) -> list[nn.Module]:
        return [self.norm1, self.attn, self.ls1, self.norm2, self.mlp, self.ls2]

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        return self.ls1(self.attn(self.norm1(x)))

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused_quick_gelu:
            return self.ls2(quick_gelu_mlp(self.mlp.fc1, self.mlp.fc2, self.norm2(x), self.mlp.drop1))
        return self.ls2(self.mlp(self.norm2(x)))

    def _run(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.checkpoint and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, x, use_reentrant=False)
        return fn(x)

    def _local(self, module: nn.Module, x: torch.Tensor, grid: tuple[int, int, int, int], dpe: bool) -> torch.Tensor:
        B, T, h, w = grid
        patches = x[:, 1:].unflatten(0, (B, T))  # (B, T, S, C) view
        update = module(patches)
        if dpe:
            update = update + self.local_dpe(patches.unflatten(2, (h, w))).flatten(2, 3)
        patches = patches + self.drop_path(update)
        return torch.cat([x[:, :1], patches.flatten(0, 1)], dim=1)  # class tokens untouched

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int, int]) -> torch.Tensor:
        """x: (B*T, 1+S, C); grid = (B, T, h, w) with S = h*w."""
        if self.local1 is not None:
            x = self._local(self.local1, x, grid, dpe=self.local_dpe is not None)
        x = x + self.drop_path(self._run(self._attention, x))
        if self.local2 is not None:
            x = self._local(self.local2, x, grid, dpe=False)
        return x + self.drop_path(self._run(self._ffn, x))
