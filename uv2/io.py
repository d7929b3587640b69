"""Safe checkpoint reading and atomic writing, shared by the model converters, training and the ablation runner."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from uv2.errors import InputError


class CheckpointError(InputError, RuntimeError):
    """A checkpoint file cannot be read safely or has an unknown layout."""


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """True for a TorchScript zip (it holds compiled code under code/__torch__)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/__torch__" in name or name.startswith("code/__torch__") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def safe_load(path: str | os.PathLike) -> Any:
    """torch.load(path, weights_only=True): tensors, containers and primitives only. A pickle that would run code,
    and a file that is no checkpoint (empty, truncated, another format), raise a CheckpointError that names the
    file and says which it is."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: an empty file, not a checkpoint (a download or copy that did not finish?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _refusal(str(err))
        if reason is None:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive torch.save writes nor a "
                                  f"pickle it can read)") from err
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects that could run code when unpickled "
            f"(torch.load(weights_only=True) rejected it: {reason}). If you trust its source, load it yourself and "
            f"re-save only its tensors: torch.save(state_dict, 'clean.pt')."
        ) from err
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupted? ({first})") from err


def _refusal(message: str) -> str | None:
    """The line of torch's weights_only error that says what it refused (e.g. 'Unsupported global: GLOBAL
    argparse.Namespace ...'), or None where the bytes were no pickle at all ('Unsupported operand', 'invalid load
    key': a file of another format)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if any("Unsupported operand" in line or "invalid load key" in line for line in lines):
        return None
    named = [line for line in lines if "GLOBAL" in line or "global" in line.lower() or "reduce" in line]
    return (named or lines or ["no reason given"])[0].removeprefix("WeightsUnpickler error: ").split(". ")[0]


def load_torchscript_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict of a TorchScript archive (OpenAI CLIP's .pt files). torch.jit.load's C++ unpickler only builds
    TorchScript types and never calls Python functions, so this is as safe as weights_only loading."""
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; CLIP still ships its weights this way
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return dict(module.state_dict())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
