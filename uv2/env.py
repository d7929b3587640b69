"""`python -m uv2 env [--json]`: the environment block to paste into a bug report.

Python and platform, torch with its CUDA / cuDNN build and the GPUs it sees, PyAV with its FFmpeg and the video codecs
that decode, the other libraries uv2 runs on, and a decode self-test: a clip is encoded, probed and decoded
frame-exactly through uv2's own decode path, so a PyAV that installs but cannot decode shows up here first.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# codecs that real video datasets use (Kinetics: H.264, VP9, MPEG-4; SSv2: VP9; older AVIs: Cinepak, MJPEG, ...)
VIDEO_CODECS = ("h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg", "cinepak",
                "msmpeg4v3", "theora", "prores", "rawvideo")
LIBRARIES = ("torch", "torchvision", "pytorch-lightning", "lightning", "torchmetrics", "timm", "einops", "av",
             "numpy", "jsonargparse", "torchdata", "tensorboard", "pyyaml", "torchcodec", "uv2")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_info() -> dict[str, Any]:
    import torch

    from uv2.train.hardware import cpu_capability

    info: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda,
                            "cuda_available": torch.cuda.is_available(), "cudnn": None, "gpus": [],
                            "threads": torch.get_num_threads(), "cpu_capability": cpu_capability()}
    if torch.backends.cudnn.is_available():
        info["cudnn"] = torch.backends.cudnn.version()
    if info["cuda_available"]:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append({"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                                 "capability": f"{p.major}.{p.minor}"})
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def pyav_info() -> dict[str, Any]:
    import av

    from uv2.data.pyav_compat import open_keywords

    libs = getattr(av, "library_versions", {}) or {}
    decoders = []
    for name in VIDEO_CODECS:
        try:
            av.codec.Codec(name, "r")
        except Exception:  # noqa: BLE001 - a codec this FFmpeg lacks (UnknownCodecError / ValueError by release)
            continue
        decoders.append(name)
    return {"version": av.__version__,
            "ffmpeg": getattr(av, "ffmpeg_version_info", None),
            "libraries": {k: ".".join(map(str, v)) for k, v in libs.items()},
            "video_decoders": decoders,
            "missing_decoders": [c for c in VIDEO_CODECS if c not in decoders],
            "open_keywords": sorted(open_keywords())}


def decode_self_test() -> dict[str, Any]:
    """Encode 24 numbered frames (H.264, B-frames off), then probe and seek-decode 4 of them through uv2."""
    import numpy as np

    from uv2.data.decode import decode_frames, probe_video
    from uv2.data.synthetic import write_video

    start = time.perf_counter()
    try:
        frames = np.zeros((24, 48, 64, 3), np.uint8)
        for i in range(24):
            frames[i, :, :, :] = i * 10  # each frame one grey level: the number survives compression
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "self_test.mp4"
            write_video(path, frames, fps=12)
            index = probe_video(path)
            wanted = [0, 7, 15, 23]
            got, _ = decode_frames(path, wanted, index)
        numbers = [int(round(float(f.mean()) / 10)) for f in got]
        ok = index.num_frames == 24 and numbers == wanted
        error = None if ok else f"frames {numbers} decoded for {wanted} (index says {index.num_frames} frames)"
    except Exception as err:  # noqa: BLE001 - the report must come out whatever fails; the traceback goes in it
        ok, error = False, "".join(traceback.format_exception_only(err)).strip()
    return {"ok": ok, "error": error, "seconds": round(time.perf_counter() - start, 3)}


def collect() -> dict[str, Any]:
    from uv2.train.hardware import cpu_model

    # processor: the CPU's model, as results.csv's hardware names it (platform.processor() is empty on most Linux)
    return {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
            "machine": platform.machine(), "processor": cpu_model() or None, "cpu_count": os.cpu_count(),
            "torch": torch_info(), "pyav": pyav_info(),
            "libraries": {name: _version(name) for name in LIBRARIES},
            "decode_self_test": decode_self_test()}


def render(info: dict[str, Any]) -> str:
    t, a, test = info["torch"], info["pyav"], info["decode_self_test"]
    gpus = ", ".join(f"{g['name']} ({g['memory_gb']} GB, sm {g['capability']})" for g in t["gpus"]) or "none"
    rows = [
        ("Python", f"{info['python']} ({info['executable']})"),
        ("Platform", f"{info['platform']} ({info['machine']})"),
        ("CPU", f"{info['processor'] or 'unknown model'}, {info['cpu_count']} logical CPUs, "
                f"torch's kernels {t['cpu_capability']}"),
        ("torch", f"{t['version']}, CUDA build {t['cuda_build']}, cuDNN {t['cudnn']}, "
                  f"CUDA available: {t['cuda_available']}, {t['threads']} CPU threads"),
        ("GPUs", gpus),
        ("PyAV", f"{a['version']}, FFmpeg {a['ffmpeg'] or '?'} (libavcodec {a['libraries'].get('libavcodec', '?')}), "
                 f"av.open keywords: {', '.join(a['open_keywords']) or 'none'}"),
        ("video decoders", ", ".join(a["video_decoders"])
         + (f" (missing: {', '.join(a['missing_decoders'])})" if a["missing_decoders"] else "")),
    ]
    rows += [(name, version or "not installed") for name, version in info["libraries"].items()
             if name not in ("torch", "av")]
    rows.append(("decode self-test", f"{'ok' if test['ok'] else 'FAILED: ' + str(test['error'])} "
                                     f"({test['seconds']} s)"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"{label:<{width}}{value}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uv2 env", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    info = collect()
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0 if info["decode_self_test"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
