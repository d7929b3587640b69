"""Shared test fixtures: deterministic seeds and the official fixture (helpers: tests/helpers.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.helpers import FIXTURES


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def official_fixture() -> tuple:
    """(path of the official tiny checkpoint, its {"input", "logits", "num_frames"} io dict)."""
    ckpt = FIXTURES / "official_uv2_tiny_A.pyth"
    io = FIXTURES / "official_uv2_tiny_A_io.pt"
    if not ckpt.is_file() or not io.is_file():
        pytest.skip(f"official fixture not found under {FIXTURES} (set UV2_FIXTURES to its folder)")
    return ckpt, torch.load(io, weights_only=True)
