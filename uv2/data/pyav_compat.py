"""PyAV across the releases uv2 supports (12 through 19), chosen by feature, never by version number.

What differs between releases, and how uv2 meets it:

- ``av.open(..., metadata_errors=...)`` exists up to PyAV 18, where ``"ignore"`` keeps a file whose tags are not
  UTF-8 readable (the default, ``"strict"``, raises ``UnicodeDecodeError`` on opening it). PyAV 19 removed the
  argument and reads metadata as UTF-8 with ``surrogateescape``, which never fails. :func:`open_input` probes once
  per process whether the installed ``av.open`` takes the keyword.
- ``VideoReformatter.reformat(..., threads=N)`` exists in newer PyAV releases (not in 12; in 18 and 19), where its
  default (0) runs swscale on every CPU: inside a DataLoader worker that is one thread per core per worker,
  slower than one thread (measured 0.61 ms vs 0.31 ms per 604x340 -> 224x224 frame on 2 cores) and it competes
  with the other workers.
  :func:`reformat_keywords` gives ``{"threads": 1}`` where the keyword exists, ``{}`` before.
- Rational attributes (``time_base``, ``average_rate``, ...) are ``fractions.Fraction`` or ``None`` up to PyAV 18 and
  ``av.AVRational`` from 19 (never ``None``; falsy when unset). :func:`as_fraction` turns either into a ``Fraction``
  or ``None``, so what uv2 stores (a :class:`~uv2.data.decode.VideoIndex`) pickles and compares the same everywhere.

Errors. :data:`DATA_ERRORS` are the exceptions a broken, truncated or unreadable *file* makes PyAV or the OS raise.
Only these are turned into "bad video" errors by the data layer; anything else (``TypeError``, ``AttributeError``,
``NameError``, ``ImportError``, ...) is a bug in the calling code or an incompatible PyAV, and propagates with its
traceback instead of being counted as a corrupt video.
"""

from __future__ import annotations

import functools
import io
import os
from fractions import Fraction
from typing import Any

import av

__all__ = ["DATA_ERRORS", "OPEN_KEYWORD_PROBES", "as_fraction", "open_input", "open_keywords", "reformat_keywords"]

#: exceptions that mean "this file cannot be read", as opposed to a programming error
DATA_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, EOFError, UnicodeDecodeError)

#: optional keyword arguments of ``av.open`` for reading, each used only where the installed PyAV accepts it
OPEN_KEYWORD_PROBES: dict[str, Any] = {"metadata_errors": "ignore"}


def _accepts_open_keyword(name: str, value: Any) -> bool:
    """Whether the installed ``av.open`` takes keyword ``name``: open an empty in-memory file with it; PyAV rejects
    an unknown keyword with ``TypeError`` before it reads anything, and fails on the empty data otherwise."""
    try:
        av.open(io.BytesIO(b""), mode="r", **{name: value}).close()
    except TypeError as err:
        if name in str(err):
            return False
        raise
    except DATA_ERRORS:  # the keyword was accepted; the empty input is what failed
        pass
    return True


@functools.cache
def open_keywords() -> dict[str, Any]:
    """The optional ``av.open`` keywords (of :data:`OPEN_KEYWORD_PROBES`) the installed PyAV accepts."""
    return {name: value for name, value in OPEN_KEYWORD_PROBES.items() if _accepts_open_keyword(name, value)}


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """``av.open(path, mode="r")`` with the keywords that make reading tolerant on this PyAV."""
    return av.open(os.fspath(path), mode="r", **open_keywords())


@functools.cache
def reformat_keywords() -> dict[str, Any]:
    """Keywords for ``VideoReformatter.reformat`` that keep scaling on the calling thread (see the module docstring):
    ``threads=1`` where the installed PyAV takes it. Probed on a 2x2 frame; an unknown keyword is a ``TypeError``."""
    from av.video.reformatter import VideoReformatter

    frame = av.VideoFrame(2, 2, "yuv420p")
    try:
        VideoReformatter().reformat(frame, format="rgb24", threads=1)
    except TypeError as err:
        if "threads" in str(err):
            return {}
        raise
    return {"threads": 1}


def as_fraction(value: Any) -> Fraction | None:
    """A PyAV rational (``Fraction``, ``AVRational``, ``None``) as a ``Fraction``; ``None`` when unset or zero."""
    if value is None or not value:
        return None
    return Fraction(int(value.numerator), int(value.denominator))
