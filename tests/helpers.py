"""Helpers shared by the tests: the repository's paths, the official fixture's location, micro grid settings.

(Video helpers: tests/data_helpers.py. Fixtures: tests/conftest.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the official fixture lives beside the checkout (../shared/fixtures); UV2_FIXTURES points elsewhere
FIXTURES = Path(os.environ.get("UV2_FIXTURES") or REPO.parent / "shared" / "fixtures")


def micro_grid_spec(root: Path) -> dict:
    """A tiny-scale dataset entry for ablations/datasets.yaml-style files that points at the micro synthetic
    benchmark under root, one quick epoch per cell, no image-pretrained init."""
    return {"experiment": "experiments/temporal_tiny.yaml", "epochs": 1,
            "data": {"synthetic_size": "micro", "synthetic_root": str(root / "synthetic"), "batch_size": 4},
            "overrides": {"model": {"init_from": None}}}
