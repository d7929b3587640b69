"""Decoded videos kept on disk, shared by processes and runs (``cache_decoded`` with a ``decoded_cache_dir``).

``cache_decoded`` keeps a process's decoded videos in memory; every new process decodes them again. An ablation grid
runs each cell in a process of its own on the same videos: a tiny scene cell decoded its 2,560 test videos in about
3.5 s of its 16, and every scene cell of a table decoded them anew. With a cache folder, the first process to
decode a video writes its frames there as one ``.npy`` file (uint8 (N, H, W, 3), 110 KB for a tiny 48x48 video of
16 frames) and the others load that file, 10-14x faster than decoding the H.264 (``python
benchmarks/decoded_cache.py``).

A video's file is named by the SHA-1 of its absolute path, size and modification time (ns), so a video rewritten in
place (a synthetic set generated again) is decoded again under a new name. Files are written under a temporary name
and renamed, so processes that decode the same video at once each write a whole file and a reader never sees part of
one. A file that cannot be read is decoded again; a cache that cannot be written is reported once and the run goes
on with what it decoded. A process killed while writing (SIGKILL, a preempted job) leaves its temporary file behind:
a process's first write to the cache removes those older than ``ABANDONED_AFTER_S``, which no write takes. Frame
folders (``uv2.data.frames``) are not kept: a folder's modification time does not change when one of its images is
rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["DecodedCache"]

# a temporary file this old is a killed writer's: writing one video's frames takes seconds, even on a network disk
ABANDONED_AFTER_S = 3600.0


class DecodedCache:
    """Decoded videos as ``.npy`` files in ``folder`` (created on first use), keyed by each video's identity."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._write_failed = False  # reported once per process
        self._swept = False  # abandoned temporary files removed (at this process's first write)

    def file_for(self, video: str | os.PathLike) -> Path:
        """Where the frames of ``video`` as it is now (path, size, modification time) are kept."""
        path = os.path.abspath(video)
        stat = os.stat(path)
        digest = hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode(), usedforsecurity=False).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npy"

    def load(self, video: str | os.PathLike) -> np.ndarray | None:
        """The kept frames of ``video``; None when there are none (or the video itself cannot be read: the decoder
        then reports it as it would without a cache)."""
        try:
            file = self.file_for(video)
        except OSError:
            return None
        if not file.is_file():
            return None
        try:
            frames = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as e:
            log.warning("decoded-video cache: cannot read %s (%s); decoding %s again", file, e, video)
            return None
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            log.warning("decoded-video cache: %s holds %s %s, not uint8 (N, H, W, 3) frames; decoding %s again",
                        file, frames.dtype, frames.shape, video)
            return None
        return frames

    def save(self, video: str | os.PathLike, frames: np.ndarray) -> None:
        """Keep the decoded ``frames`` of ``video`` for other processes (atomically; failures are logged once)."""
        if not self._swept:
            self._swept = True
            self.remove_abandoned()
        try:
            file = self.file_for(video)
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, frames, allow_pickle=False)
                os.replace(tmp, file)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            if not self._write_failed:
                self._write_failed = True
                log.warning("decoded-video cache: cannot write to %s (%s); videos stay decoded in memory only",
                            self.folder, e)

    def remove_abandoned(self, older_than_s: float = ABANDONED_AFTER_S) -> int:
        """Remove the temporary files that killed writers left (older than ``older_than_s``); how many went."""
        removed, cutoff = 0, time.time() - older_than_s
        for tmp in self.folder.glob("*/.*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
                    removed += 1
            except OSError:  # another process removed or renamed it first
                continue
        if removed:
            log.info("decoded-video cache: removed %d temporary files that killed writers left in %s", removed,
                     self.folder)
        return removed
