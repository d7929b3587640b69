"""PyAV compatibility (uv2.data.pyav_compat): every keyword uv2 passes to PyAV exists in the installed PyAV, and
programming errors inside the decode path propagate instead of being counted as bad videos."""

from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import uv2
from tests.data_helpers import encode, numbered_frames, read_frame_numbers
from uv2.data import decode
from uv2.data.dataset import VideoDataset, VideoDatasetConfig
from uv2.data.decode import decode_frames, inspect_video, probe_video
from uv2.data.lists import VideoRecord
from uv2.data.pyav_compat import OPEN_KEYWORD_PROBES, as_fraction, open_keywords
from uv2.data.transforms import TransformConfig

PACKAGE = Path(uv2.__file__).parent
PYAV = Path(av.__file__).parent
# PyAV callables that uv2 passes keywords to: method name -> (stub file, class or None, function) in the installed
# PyAV's type stubs. A **kwargs parameter forwards to the entries listed in FORWARDS.
PYAV_API = {
    "open": ("container/core.pyi", None, "open"),
    "seek": ("container/input.pyi", "InputContainer", "seek"),
    "demux": ("container/input.pyi", "InputContainer", "demux"),
    "to_ndarray": ("video/frame.pyi", "VideoFrame", "to_ndarray"),
    "reformat": ("video/frame.pyi", "VideoFrame", "reformat"),
    "from_ndarray": ("video/frame.pyi", "VideoFrame", "from_ndarray"),
    "add_stream": ("container/output.pyi", "OutputContainer", "add_stream"),
}
FORWARDS = {"to_ndarray": "reformat"}  # VideoFrame.to_ndarray(**kwargs) hands its keywords to reformat


def _stub_parameters(name: str) -> tuple[set[str], bool]:
    """(keyword parameter names over every overload, whether one overload takes **kwargs) from the stubs."""
    stub, cls, func = PYAV_API[name]
    path = PYAV / stub
    if not path.is_file():
        pytest.skip(f"the installed PyAV ships no type stub {stub}")
    body = ast.parse(path.read_text()).body
    if cls is not None:
        body = next(n.body for n in body if isinstance(n, ast.ClassDef) and n.name == cls)
    names, var_kw = set(), False
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == func:
            a = node.args
            names |= {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
            var_kw |= a.kwarg is not None
    assert names, f"{stub}: no {cls + '.' if cls else ''}{func} in the installed PyAV's stubs"
    return names, var_kw


def _pyav_keyword_calls() -> list[tuple[str, str, str]]:
    """(file:line, PyAV function, keyword) of every keyword uv2 passes in a call to a PYAV_API name, in the modules
    that import av."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        imports_av = any(isinstance(n, ast.Import) and any(a.name == "av" for a in n.names) for n in ast.walk(tree))
        if not imports_av:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PYAV_API:
                for kw in node.keywords:
                    if kw.arg is not None:  # **mapping: checked by test_open_keywords_match_the_stubs
                        found.append((f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.func.attr, kw.arg))
    return found


def test_every_keyword_uv2_passes_exists_in_the_installed_pyav():
    calls = _pyav_keyword_calls()
    assert {"open", "seek", "reformat", "add_stream", "from_ndarray"} <= {f for _, f, _ in calls}
    for where, func, keyword in calls:
        names, var_kw = _stub_parameters(func)
        if keyword in names:
            continue
        assert var_kw and func in FORWARDS, f"{where}: {func}() has no keyword {keyword!r} in PyAV {av.__version__}"
        forwarded, _ = _stub_parameters(FORWARDS[func])
        assert keyword in forwarded, f"{where}: {func}() -> {FORWARDS[func]}() has no keyword {keyword!r}"


def test_open_keywords_match_the_stubs():
    """The probe of av.open agrees with the installed PyAV's declared signature (PyAV <= 18 declares
    metadata_errors, PyAV 19 does not), and opening a file with what it chose works."""
    declared, _ = _stub_parameters("open")
    chosen = open_keywords()
    for name in OPEN_KEYWORD_PROBES:
        assert (name in chosen) == (name in declared), f"probe and stub disagree on av.open({name}=...)"


def test_rationals_become_fractions():
    assert as_fraction(Fraction(1, 15)) == Fraction(1, 15)
    assert as_fraction(None) is None and as_fraction(Fraction(0)) is None
    if hasattr(av, "AVRational"):  # PyAV >= 19
        assert as_fraction(av.AVRational(1, 30)) == Fraction(1, 30)
        assert as_fraction(av.AVRational(0, 1)) is None


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return encode(tmp_path_factory.mktemp("compat") / "v.mp4", numbered_frames(24),
                  options={"g": "8", "preset": "veryfast", "crf": "12"})


def test_index_holds_plain_fractions(video):
    index = probe_video(video)
    assert type(index.time_base) is Fraction and index.fps > 0
    frames, _ = decode_frames(video, [0, 5, 23], index)
    assert read_frame_numbers(frames).tolist() == [0, 5, 23]


def _raise_type_error(*args, **kwargs):
    raise TypeError("open() got an unexpected keyword argument 'made_up'")


def test_programming_error_in_open_propagates(video, monkeypatch):
    monkeypatch.setattr(av, "open", _raise_type_error)
    with pytest.raises(TypeError, match="made_up"):
        probe_video(video)
    with pytest.raises(TypeError, match="made_up"):
        inspect_video(video)  # the checker reports bad files, not bugs


def test_programming_error_in_decoding_propagates(video, monkeypatch):
    index = probe_video(video)

    def broken(*args, **kwargs):
        raise AttributeError("'VideoFrame' object has no attribute 'made_up'")

    monkeypatch.setattr(decode, "_to_rgb", broken)
    with pytest.raises(AttributeError, match="made_up"):
        decode_frames(video, [0, 1], index)
    with pytest.raises(AttributeError, match="made_up"):
        decode.decode_all_frames(video)


@pytest.mark.parametrize("cache_decoded", [False, True])
def test_dataset_does_not_count_bugs_as_bad_videos(video, monkeypatch, cache_decoded):
    records = [VideoRecord(str(video), 0), VideoRecord(str(video), 1)]
    cfg = VideoDatasetConfig(num_frames=4, transform=TransformConfig(crop_size=32), cache_decoded=cache_decoded)
    dataset = VideoDataset(records, "val", cfg)
    monkeypatch.setattr(av, "open", _raise_type_error)
    with pytest.raises(TypeError, match="made_up"):
        dataset[0]
    assert dataset._bad == {}  # nothing was recorded as a corrupt video
    monkeypatch.undo()
    item = dataset[0]
    assert item["decode_failures"] == 0 and np.isfinite(item["video"].numpy()).all()
