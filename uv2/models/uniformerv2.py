"""UniFormerV2: an image ViT armed with local temporal blocks and global cross-attention blocks.

    video (B, 3, T, H, W) -> VideoPatchEmbed -> (B*T', 1+S, C) tokens -> LocalUniBlocks ...
                                                                 \\-> Fusion of global blocks on chosen layers -> F
    Z = head.combine(F, mean_t(class token)) -> logits

`UniFormerV2(cfg)` builds everything from a ModelConfig; `UniFormerV2(cfg, vit=timm_vit)` arms an existing (e.g.
pretrained) timm VisionTransformer. `uv2.models.config.VARIANTS` names the released designs.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from uv2.models.arming import LocalUniBlock, VideoPatchEmbed, build_vit
from uv2.models.blocks import build_local_module
from uv2.models.config import ModelConfig
from uv2.models.fusion import FUSIONS, Fusion
from uv2.models.head import ClassifierHead


class UniFormerV2(nn.Module):
    def __init__(self, cfg: ModelConfig, vit: VisionTransformer | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        vcfg = cfg.vit_cfg
        vit = vit if vit is not None else build_vit(vcfg, cfg.drop_path)
        if vit.patch_embed.proj.out_channels != vcfg.width or len(vit.blocks) != vcfg.depth:
            raise ValueError(f"the given ViT (width {vit.embed_dim}, depth {len(vit.blocks)}) does not match "
                             f"vit config (width {vcfg.width}, depth {vcfg.depth})")
        width, heads = vcfg.width, vcfg.num_heads
        # --- stem and embeddings, taken from the image ViT
        self.patch_embed = VideoPatchEmbed.from_2d(vit.patch_embed.proj, cfg.t_down)
        self.cls_token = vit.cls_token  # (1, 1, C)
        self.pos_embed = vit.pos_embed  # (1, 1+S, C) for the pretrained grid
        self.pos_grid = vcfg.img_size // vcfg.patch_size  # its side (a plain int: torch.compile traces no config)
        self.norm_pre = vit.norm_pre
        # --- the armed blocks
        local_ids = set(cfg.local_layer_ids)

        def local() -> nn.Module:
            return build_local_module(cfg.local_type, width, cfg.local_reduction, cfg.local_kernel, heads)

        self.blocks = nn.ModuleList(
            LocalUniBlock(
                block,
                local1=local() if i in local_ids else None,
                local2=local() if (i in local_ids and cfg.local_double) else None,
                local_dpe=cfg.local_dpe,
                checkpoint=i < cfg.checkpoint_blocks,
            )
            for i, block in enumerate(vit.blocks)
        )
        # --- the global branch
        self.global_layer_ids = cfg.global_layer_ids
        self.fusion: Fusion | None = None
        if self.global_layer_ids:
            self.fusion = FUSIONS[cfg.fusion](
                width, len(self.global_layer_ids), cfg.global_heads or heads,
                num_queries=cfg.num_queries, dpe=cfg.global_dpe, mlp_ratio=cfg.global_mlp_ratio,
                dropout=cfg.global_mlp_dropout, drop_path=cfg.global_drop_path,
            )
        mode = "cls" if self.fusion is None else ("global" if cfg.frozen_backbone else "balance")
        self.head = ClassifierHead(width, cfg.num_classes, cfg.head_dropout, mode)
        if cfg.frozen_backbone:
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------------------------------------ parameters
    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters that come from the pretrained image ViT (frozen in frozen mode, base lr otherwise)."""
        params = [*self.patch_embed.parameters(), self.cls_token, self.pos_embed, *self.norm_pre.parameters()]
        for block in self.blocks:
            params += [p for m in block.pretrained_modules() for p in m.parameters()]
        return params

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters that are tokens or gates rather than weights, never weight-decayed (timm's
        convention; the optimiser also leaves every 1-D parameter and bias undecayed)."""
        tokens = {"cls_token", "pos_embed", "fusion.query", "fusion.queries", "head.balance"}
        return {name for name, _ in self.named_parameters() if name in tokens}

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters UniFormerV2 adds to the image ViT (local and global blocks, head)."""
        backbone = {id(p) for p in self.backbone_parameters()}
        return [p for p in self.parameters() if id(p) not in backbone]

    # --------------------------------------------------------------------------------------------------- forward
    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        grid = self.pos_grid
        if (h, w) == (grid, grid):
            return self.pos_embed
        return resample_abs_pos_embed(self.pos_embed, (h, w), (grid, grid), num_prefix_tokens=1)

    def embed(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """video (B, 3, T, H, W) -> tokens (B*T', 1+S, C) and grid (B, T', h, w)."""
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected a video batch (B, 3, T, H, W), got shape {tuple(video.shape)}")
        B, patch = video.shape[0], self.patch_embed.patch_size
        h, w = video.shape[-2] // patch, video.shape[-1] // patch
        x = self.patch_embed(video)  # (B*T', S, C)
        grid = (B, x.shape[0] // B, h, w)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)  # (B*T', 1+S, C)
        return self.norm_pre(x + self._pos_embed(h, w).to(x.dtype)), grid

    def _features(self, video: torch.Tensor, intermediates: bool) -> dict[str, torch.Tensor | None]:
        """The forward pass up to the classifier; per-layer class tokens only when asked for."""
        x, grid = self.embed(video)
        B, T = grid[:2]
        state = self.fusion.start(B) if self.fusion is not None else None
        stage = {layer: j for j, layer in enumerate(self.global_layer_ids)}
        layer_cls: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x, grid)
            if i in stage:
                state = self.fusion.step(stage[i], state, x, grid)
            if intermediates:
                layer_cls.append(x[:, 0].unflatten(0, (B, T)).mean(1))  # (B*T, C) -> (B, T, C) -> (B, C)
        frame_cls = x[:, 0].unflatten(0, (B, T))  # (B*T, C) -> (B, T, C)
        cls_feature = frame_cls.mean(1)  # (B, C)
        global_feature = self.fusion.finish(state) if self.fusion is not None else None
        parts = {"features": self.head.combine(global_feature, cls_feature), "global": global_feature,
                 "cls": cls_feature}
        if intermediates:
            parts["frame_cls"], parts["layer_cls"] = frame_cls, torch.stack(layer_cls, 1)
        return parts

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, H, W) -> Z (B, C), the features the classifier sees."""
        return self._features(video, intermediates=False)["features"]

    def forward_intermediates(self, video: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """video (B, 3, T, H, W) -> every intermediate feature, by name:

        features (B, C): Z, what the classifier sees; global (B, C): the fused global branch F (None without global
        blocks); cls (B, C): the last layer's time-averaged class token; frame_cls (B, T', C): the last layer's class
        token per token frame; layer_cls (B, depth, C): the time-averaged class token after every layer.
        """
        return self._features(video, intermediates=True)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Z (B, C) -> logits (B, num_classes)."""
        return self.head(features)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, H, W) -> logits (B, num_classes)."""
        return self.forward_head(self.forward_features(video))


def build_model(cfg: ModelConfig | dict[str, Any], vit: VisionTransformer | None = None) -> UniFormerV2:
    """UniFormerV2 from a ModelConfig or a dict of its fields."""
    return UniFormerV2(cfg if isinstance(cfg, ModelConfig) else ModelConfig(**cfg), vit)
