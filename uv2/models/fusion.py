"""Multi-stage fusion of the global UniBlocks G_1..G_N (table d), each fed by one ViT layer X_i.

The global branch is a side branch: it reads the ViT tokens and never writes back. Fusion runs online, one stage per
feeding layer, so no layer's tokens are kept after their stage:

    state = fusion.start(batch); state = fusion.step(i, state, X_i, grid) for each stage; F = fusion.finish(state)

- sequential:      q <- G_i(q, X_i);                      F = mean over queries of q   (the released design)
- parallel:        o_i = G_i(q_i, X_i);                   F = Linear(concat_i o_i)
- hierarchical_kv: o_i = G_i(q_i, [o_{i-1}, X_i]);        F = o_N   (previous output joins keys and values)
- hierarchical_q:  o_i = G_i([o_{i-1}, q_i], X_i);        F = Linear(concat of o_N's stage tokens)
                   (previous output joins the queries, so o_i holds i groups of Q tokens)

With Q > 1 queries the fused tokens are pooled by their mean. Queries start at zero and every block's residual
branch is zero-initialised, so F = 0 at initialisation for every strategy; the Linear of parallel and
hierarchical_q starts as the mean of its N inputs.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from uv2.models.blocks import DepthwiseConv3d, GlobalBlock

Grid = tuple[int, int, int, int]  # (B, T, h, w)


class Fusion(nn.Module):
    """N global blocks with their DPEs; subclasses define how the stages combine."""

    def __init__(
        self,
        dim: int,
        num_stages: int,
        heads: int,
        num_queries: int = 1,
        dpe: bool = True,
        mlp_ratio: float = 4.0,
        dropout: float = 0.5,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_stages, self.num_queries = num_stages, num_queries
        self.dpe = nn.ModuleList(DepthwiseConv3d(dim) for _ in range(num_stages)) if dpe else None
        rates = [drop_path * i / max(1, num_stages - 1) for i in range(num_stages)]  # linear 0 -> drop_path
        self.blocks = nn.ModuleList(GlobalBlock(dim, heads, mlp_ratio, dropout, rate) for rate in rates)

    def stage_tokens(self, i: int, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        """ViT tokens (B*T, 1+S, C) -> keys/values (B, T*(1+S), C) of stage i, DPE added to the patch tokens."""
        B, T, h, w = grid
        if self.dpe is not None:
            patches = x[:, 1:].unflatten(0, (B, T)).unflatten(2, (h, w))  # (B, T, h, w, C) view
            patches = patches + self.dpe[i](patches)
            x = torch.cat([x[:, :1], patches.flatten(0, 1).flatten(1, 2)], dim=1)
        return rearrange(x, "(b t) l c -> b (t l) c", b=B)

    def start(self, batch: int):
        return None

    def step(self, i: int, state, x: torch.Tensor, grid: Grid):
        return self._step(i, state, self.stage_tokens(i, x, grid))

    def _step(self, i: int, state, tokens: torch.Tensor):
        raise NotImplementedError

    def finish(self, state) -> torch.Tensor:
        raise NotImplementedError


def _mean_init(linear: nn.Linear, num_inputs: int) -> None:
    """Initialise Linear(N*C -> C) to the mean of its N concatenated C-vectors."""
    dim = linear.out_features
    with torch.no_grad():
        linear.weight.copy_(torch.eye(dim).repeat(1, num_inputs) / num_inputs)
        linear.bias.zero_()


class SequentialFusion(Fusion):
    """One query set refined by every stage in turn (the official design)."""

    def __init__(self, dim: int, num_stages: int, heads: int, num_queries: int = 1, **kwargs) -> None:
        super().__init__(dim, num_stages, heads, num_queries, **kwargs)
        self.query = nn.Parameter(torch.zeros(1, num_queries, dim))  # official temporal_cls_token

    def start(self, batch: int) -> torch.Tensor:
        return self.query.expand(batch, -1, -1)

    def _step(self, i: int, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.blocks[i](state, tokens)

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        return state.mean(1)


class ParallelFusion(Fusion):
    """Independent stages, each with its own queries; outputs concatenated and projected."""

    def __init__(self, dim: int, num_stages: int, heads: int, num_queries: int = 1, **kwargs) -> None:
        super().__init__(dim, num_stages, heads, num_queries, **kwargs)
        self.queries = nn.Parameter(torch.zeros(num_stages, num_queries, dim))
        self.proj = nn.Linear(num_stages * dim, dim)
        _mean_init(self.proj, num_stages)

    def start(self, batch: int) -> list[torch.Tensor]:
        return []

    def _step(self, i: int, state: list[torch.Tensor], tokens: torch.Tensor) -> list[torch.Tensor]:
        query = self.queries[i].expand(tokens.shape[0], -1, -1)
        return state + [self.blocks[i](query, tokens)]

    def finish(self, state: list[torch.Tensor]) -> torch.Tensor:
        return self.proj(torch.cat(state, dim=-1)).mean(1)  # (B, Q, N*C) -> (B, Q, C) -> (B, C)


class HierarchicalKVFusion(Fusion):
    """Each stage's queries also attend to the previous stage's output (it joins the keys and values)."""

    def __init__(self, dim: int, num_stages: int, heads: int, num_queries: int = 1, **kwargs) -> None:
        super().__init__(dim, num_stages, heads, num_queries, **kwargs)
        self.queries = nn.Parameter(torch.zeros(num_stages, num_queries, dim))

    def _step(self, i: int, state: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        query = self.queries[i].expand(tokens.shape[0], -1, -1)
        if state is not None:
            tokens = torch.cat([state, tokens], dim=1)  # (B, Q + T*(1+S), C)
        return self.blocks[i](query, tokens)

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        return state.mean(1)


class HierarchicalQFusion(Fusion):
    """The previous stage's output joins the queries; the final query groups are concatenated and projected."""

    def __init__(self, dim: int, num_stages: int, heads: int, num_queries: int = 1, **kwargs) -> None:
        super().__init__(dim, num_stages, heads, num_queries, **kwargs)
        self.queries = nn.Parameter(torch.zeros(num_stages, num_queries, dim))
        self.proj = nn.Linear(num_stages * dim, dim)
        _mean_init(self.proj, num_stages)

    def _step(self, i: int, state: torch.Tensor | None, tokens: torch.Tensor) -> torch.Tensor:
        query = self.queries[i].expand(tokens.shape[0], -1, -1)
        if state is not None:
            query = torch.cat([state, query], dim=1)  # (B, (i+1)*Q, C), stage-major
        return self.blocks[i](query, tokens)

    def finish(self, state: torch.Tensor) -> torch.Tensor:
        groups = rearrange(state, "b (n q) c -> b q (n c)", n=self.num_stages)
        return self.proj(groups).mean(1)


FUSIONS: dict[str, type[Fusion]] = {
    "sequential": SequentialFusion,
    "parallel": ParallelFusion,
    "hierarchical_kv": HierarchicalKVFusion,
    "hierarchical_q": HierarchicalQFusion,
}
