"""The classifier: Z = (1 - w) * F + w * mean_t(class token), w = sigmoid(b); logits = Linear(Dropout(LN(Z))).

(The paper calls w the balance of the global branch F against the class token; "fusion" in uv2 always means the
multi-stage fusion of the global blocks, uv2.models.fusion.)"""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """Balances the global branch F with the ViT's time-averaged class token, then classifies.

    mode "balance": both (the released model); "global": F only (frozen backbone); "cls": class token only (no
    global blocks, the plain ViT baseline of table a).
    """

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.5, mode: str = "balance") -> None:
        super().__init__()
        if mode not in ("balance", "global", "cls"):
            raise ValueError(f"head mode: invalid value {mode!r}; valid choices: balance, global, cls")
        self.mode = mode
        self.balance = nn.Parameter(torch.zeros(dim)) if mode == "balance" else None  # b: w = sigmoid(b) = 0.5
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, num_classes)

    def combine(self, global_feature: torch.Tensor | None, cls_feature: torch.Tensor) -> torch.Tensor:
        """Z (B, C) from F (B, C) and the class token (B, C), by the head's mode."""
        if self.mode == "cls":
            return cls_feature
        if self.mode == "global":
            return global_feature
        weight = torch.sigmoid(self.balance)
        return (1 - weight) * global_feature + weight * cls_feature

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.norm(z)))
