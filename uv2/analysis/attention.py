"""What the global blocks look at: cross-attention maps of one clip over its frames, and the head's balance."""

from __future__ import annotations

import torch
from einops import rearrange

from uv2.models.uniformerv2 import UniFormerV2


@torch.no_grad()
def global_attention_maps(model: UniFormerV2, clip: torch.Tensor) -> list[torch.Tensor]:
    """Per global block, its queries' attention over the clip's patches: (T', h, w) maps, averaged over heads and
    queries, with the class tokens' share left out. `clip` is one (3, T, H, W) video."""
    if model.fusion is None:
        raise ValueError("this model has no global blocks (global_layers: none)")
    blocks = list(model.fusion.blocks)
    for block in blocks:
        block.record_attention = True
    try:
        _, grid = model.embed(clip[None])
        model.eval()(clip[None])
        maps = []
        for block in blocks:
            weights = block.last_attention[0].mean(dim=(0, 1))  # (heads, Q, M) -> (M,)
            B, T, h, w = grid
            per_frame = weights[-T * (1 + h * w):]  # hierarchical KV puts the previous output first
            per_frame = rearrange(per_frame, "(t l) -> t l", t=T)[:, 1:]  # drop each frame's class token
            maps.append(rearrange(per_frame, "t (h w) -> t h w", h=h))
        return maps
    finally:
        for block in blocks:
            block.record_attention = False
            block.last_attention = None


def balance_weight(model: UniFormerV2) -> torch.Tensor | None:
    """w = sigmoid(b) per channel: the share of the class token in Z = (1 - w) F + w cls (None without balance)."""
    return None if model.head.balance is None else torch.sigmoid(model.head.balance.detach())
