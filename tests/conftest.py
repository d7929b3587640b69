"""Shared test fixtures: deterministic seeds and the official fixture (helpers: tests/helpers.py)."""

from __future__ import annotations

import getpass
import os
import random
import tempfile

import numpy as np
import pytest
import torch

from tests.helpers import FIXTURES


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _subprocess_tmpdir(tmp_path_factory):
    """The processes the tests start keep their temporary files under pytest's base folder, which a passing session
    removes: a run the tests SIGKILL on purpose cannot remove its merged configs (uv2-config-*) or multiprocessing's
    sockets (pymp-*), which under /tmp would pile up run after run. torch.compile's cache stays where it was, warm."""
    inductor_cache = os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")  # torch's default
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", inductor_cache))
        mp.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmpdir")))
        yield


@pytest.fixture(scope="session")
def official_fixture() -> tuple:
    """(path of the official tiny checkpoint, its {"input", "logits", "num_frames"} io dict)."""
    ckpt = FIXTURES / "official_uv2_tiny_A.pyth"
    io = FIXTURES / "official_uv2_tiny_A_io.pt"
    if not ckpt.is_file() or not io.is_file():
        pytest.skip(f"official fixture not found under {FIXTURES} (set UV2_FIXTURES to its folder)")
    return ckpt, torch.load(io, weights_only=True)
