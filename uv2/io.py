"""Safe checkpoint reading, atomic writing and the output folders a user names, shared by the model converters,
training, the synthetic benchmark and the ablation runner."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
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


def check_checkpoint_file(path: str | os.PathLike) -> str:
    """The format of `path`, if it can be a file torch.save wrote: "zip" (torch's format since 1.6, holding a
    data.pkl; TorchScript archives too) or "pickle" (its legacy format); or "safetensors" (the hub's format for timm
    and open_clip weights: an 8-byte little-endian header length, then the header, a JSON object). Otherwise a
    CheckpointError that names the file and says what it is instead: missing, empty, a zip archive cut short,
    another format. Reads the file's first bytes and an archive's directory, never its tensors, so it costs the same
    for a checkpoint of any size."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        head = f.read(9)
    if not head:
        raise CheckpointError(f"{path}: an empty file, not a checkpoint (a download or copy that did not finish?)")
    if head[8:] == b"{" and 0 < int.from_bytes(head[:8], "little") < path.stat().st_size:
        return "safetensors"
    if head[:4] == b"PK\x03\x04":  # a zip archive
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as err:
            raise CheckpointError(f"{path}: a zip archive cut short or corrupted, not a readable checkpoint (a "
                                  f"download or copy that did not finish?)") from err
        if not any(name.endswith("data.pkl") for name in names):
            raise CheckpointError(f"{path}: a zip archive, but not one torch.save wrote (no data.pkl in it)")
        return "zip"
    if head[0] != 0x80:  # every pickle torch writes starts with the PROTO opcode
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive torch.save writes, nor a "
                              f"pickle, nor a safetensors file)")
    return "pickle"


def safe_load(path: str | os.PathLike) -> Any:
    """torch.load(path, weights_only=True): tensors, containers and primitives only; a safetensors file's tensors
    (a dict, on the CPU). A pickle that would run code is refused, and a file that is no checkpoint named as such
    (check_checkpoint_file), with a CheckpointError."""
    path = Path(path)
    if check_checkpoint_file(path) == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except SafetensorError as err:
            raise CheckpointError(f"{path}: not a readable safetensors file, truncated or corrupted? ({err})") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path}: refused to load: the file holds Python objects that could run code when unpickled "
            f"(torch.load(weights_only=True) rejected it: {_refusal(str(err))}). If you trust its source, load it "
            f"yourself and re-save only its tensors: torch.save(state_dict, 'clean.pt')."
        ) from err
    except (RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupted? ({first})") from err


def _refusal(message: str) -> str:
    """The line of torch's weights_only error that says what it refused, e.g. 'Unsupported global: GLOBAL
    argparse.Namespace was not an allowed global by default', without the advice that follows it."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    named = [line for line in lines if "global" in line.lower() or "reduce" in line]
    reason = (named or lines or ["no reason given"])[0].removeprefix("WeightsUnpickler error: ")
    return reason.split(". ")[0].rstrip(".")


def load_torchscript_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """State dict of a TorchScript archive (OpenAI CLIP's .pt files). torch.jit.load's C++ unpickler only builds
    TorchScript types and never calls Python functions, so this is as safe as weights_only loading."""
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; CLIP still ships its weights this way
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return dict(module.state_dict())


def make_output_dir(path: str | os.PathLike, setting: str) -> Path:
    """Create the folder `path` (and its parents) that the user named through `setting` (a flag or config field,
    e.g. '--run_dir'), or raise an InputError that names both and says why it cannot be created (an existing file
    on the way, no permission, a read-only file system). Returns the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocking} is a file, not a folder" if blocking else (err.strerror or str(err))
        raise InputError(f"{setting} {path}: cannot create this folder ({reason})") from err
    return path


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


NO_FILE_LOCKS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP}  # flock's errors where a file system has none


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, before_waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created, with its folder, where missing) for the block: one process
    at a time makes what several may need at once (the synthetic benchmark, the image-pretrained ViT). The file holds
    the holder's pid. Where another process holds the lock, `before_waiting(its pid as the file says)` is called
    first (to say why this one waits, or to raise instead of waiting), then this one waits for it. On a file system
    without locks (Lustre mounted with noflock, NFS without its lock daemon) the block runs unlocked, with a warning,
    rather than every job that needs the file stopping."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as lock:
        if not _flock_exclusive(lock, path, before_waiting):
            yield
            return
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _flock_exclusive(lock, path: Path, before_waiting: Callable[[str], None] | None) -> bool:
    """exclusive_lock's lock: True once held, False where the file system has no locks."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    except OSError as err:
        if err.errno not in NO_FILE_LOCKS:
            raise
        warnings.warn(f"{path}: this file system has no file locks ({err.strerror}); going on unlocked, so "
                      f"processes started together may each do the work the lock gives to one of them", stacklevel=4)
        return False
    if before_waiting is not None:
        lock.seek(0)
        before_waiting(lock.read().strip())
    fcntl.flock(lock, fcntl.LOCK_EX)
    return True
