"""Shared test settings: deterministic seeds, the repository paths and the official fixture."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# the official fixture lives beside the checkout (../shared/fixtures); UV2_FIXTURES points elsewhere
_CANDIDATES = [os.environ.get("UV2_FIXTURES"), REPO.parent / "shared" / "fixtures", "/work/shared/fixtures"]
FIXTURES = next((Path(p) for p in _CANDIDATES if p and (Path(p) / "official_uv2_tiny_A.pyth").is_file()),
                REPO.parent / "shared" / "fixtures")


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def official_fixture() -> tuple[Path, dict]:
    """(path of the official tiny checkpoint, its {"input", "logits", "num_frames"} io dict)."""
    ckpt = FIXTURES / "official_uv2_tiny_A.pyth"
    io = FIXTURES / "official_uv2_tiny_A_io.pt"
    if not ckpt.is_file() or not io.is_file():
        pytest.skip(f"official fixture not found under {FIXTURES} (set UV2_FIXTURES)")
    return ckpt, torch.load(io, weights_only=True)


def micro_grid_spec(root: Path) -> dict:
    """A tiny-scale dataset entry for ablations/datasets.yaml-style files that points at the micro synthetic
    benchmark under root, one quick epoch per cell, no image-pretrained init."""
    return {"experiment": "experiments/temporal_tiny.yaml", "epochs": 1,
            "data": {"synthetic_size": "micro", "synthetic_root": str(root / "synthetic"), "batch_size": 4},
            "overrides": {"model": {"init_from": None}}}
