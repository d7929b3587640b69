"""The optimiser's schedule: linear warm-up then cosine, with the official recipes' absolute 1e-6 floors."""

from __future__ import annotations

import pytest
from torch import nn

from uv2.train.optim import OptimConfig, build_optimizer, fusable_optimizer


def _lrs(cfg: OptimConfig, lr: float, total: int = 20, per_epoch: float = 4.0) -> list[float]:
    optimizer, schedule = build_optimizer(nn.Linear(3, 2), cfg, lr, set(), total, per_epoch)
    out = []
    for _ in range(total + 1):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_absolute_warmup_start_and_cosine_end():
    """PySlowFast's WARMUP_START_LR = COSINE_END_LR = 1e-6 at any lr: warm-up from 1e-6, peak at the warm-up's end,
    cosine down to 1e-6 at the last step (lr 1.5e-6 as in the K710 fine-tuning recipes: an almost flat schedule)."""
    cfg = OptimConfig(lr=1.5e-6, warmup_epochs=1, warmup_start_lr=1e-6, min_lr=1e-6)
    lrs = _lrs(cfg, 1.5e-6)
    assert lrs[0] == pytest.approx(1e-6) and lrs[4] == pytest.approx(1.5e-6) and lrs[20] == pytest.approx(1e-6)
    assert lrs[2] == pytest.approx(1.25e-6)  # half way through the warm-up
    factors = _lrs(OptimConfig(lr=1e-5, warmup_epochs=1, warmup_start_factor=0.1, min_lr_factor=0.1), 1e-5)
    assert factors == pytest.approx(_lrs(OptimConfig(lr=1e-5, warmup_epochs=1, warmup_start_lr=1e-6, min_lr=1e-6), 1e-5))


def test_floor_above_the_peak_lr_is_an_error():
    with pytest.raises(ValueError, match=r"optim.min_lr 2e-06 is above the peak lr 1e-06"):
        _lrs(OptimConfig(lr=1e-6, min_lr=2e-6), 1e-6)
    with pytest.raises(ValueError, match=r"optim.warmup_start_lr must be >= 0"):
        OptimConfig(warmup_start_lr=-1.0)


def test_fused_adamw_on_cpu_matches_the_loop():
    """CPU parameters get AdamW's fused kernel, whose steps are the per-parameter loop's up to rounding (decay and
    no-decay groups, new-module lr scale)."""
    import torch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 3))
    cfg = OptimConfig(lr=1e-2, new_module_lr_scale=3.0, warmup_epochs=0)
    new = {id(p) for p in model[2].parameters()}
    fused, _ = build_optimizer(model, cfg, cfg.lr, new, total_steps=10, steps_per_epoch=5)
    assert all(group["fused"] for group in fused.param_groups)
    reference = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 3))
    reference.load_state_dict(model.state_dict())
    loop = torch.optim.AdamW([{**g, "params": [dict(reference.named_parameters())[n] for n in names], "fused": None,
                               "foreach": False} for g, names in zip(fused.param_groups, _names(model, fused))])
    assert not any(group["fused"] for group in loop.param_groups)
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for _ in range(5):
        for net, opt in ((model, fused), (reference, loop)):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    unfused, _ = build_optimizer(model, cfg, cfg.lr, new, 10, 5, fusable=False)
    assert not any(group["fused"] for group in unfused.param_groups)
    # fused wherever the gradients are unscaled when they are clipped and their norm is read: all but fp16's scaler
    assert fusable_optimizer("32-true") and fusable_optimizer("bf16-mixed") and fusable_optimizer("16-true")
    assert fusable_optimizer("bf16-true") and not fusable_optimizer("16-mixed")


def _names(model: nn.Module, optimizer) -> list[list[str]]:
    """The parameter names of each of the optimizer's groups."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return [[by_id[id(p)] for p in g["params"]] for g in optimizer.param_groups]
