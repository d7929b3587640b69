"""`python -m uv2 predict --ckpt CKPT VIDEO... [--topk 5] [--json] [--features OUT.pt]`

Top-k class names and scores per video, softmax averaged over the test views the run was trained with (clips x
crops, from the checkpoint's data settings; --clips / --crops override). With --features, writes instead a dict
{video path: {"pooled": (C,), "global": (C,), "cls": (C,), "layer_cls": (depth, C)}} of view-averaged features for
downstream use. A video that cannot be decoded is reported and skipped; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import torch

from uv2.data.dataset import VideoDataset, VideoDatasetConfig
from uv2.data.decode import VideoDecodeError
from uv2.data.lists import VideoRecord
from uv2.data.transforms import CLIP_MEAN, CLIP_STD, TransformConfig
from uv2.io import atomic_torch_save, make_output_dir, safe_load
from uv2.models import ModelConfig
from uv2.models.convert import load_model

log = logging.getLogger(__name__)


def view_config(checkpoint: dict[str, Any], model_cfg: ModelConfig, clips: int | None,
                crops: int | None) -> VideoDatasetConfig:
    """Test-time sampling and views of the run that wrote `checkpoint` (defaults when it has none); clips of the
    model's frame count."""
    data = checkpoint.get("datamodule_hyper_parameters", {}) if isinstance(checkpoint, dict) else {}
    crop = data.get("crop_size") or model_cfg.vit_cfg.img_size
    return VideoDatasetConfig(
        num_frames=model_cfg.num_frames,
        sampling=data.get("sampling", "uniform"),
        frame_stride=data.get("frame_stride", 8),
        num_test_clips=clips or data.get("num_test_clips", 1),
        num_test_crops=crops or data.get("num_test_crops", 1),
        transform=TransformConfig(crop_size=crop, short_side=data.get("short_side"),
                                  mean=tuple(data.get("mean") or CLIP_MEAN), std=tuple(data.get("std") or CLIP_STD)),
    )


@torch.no_grad()
def predict_video(model, dataset: VideoDataset, video_index: int) -> dict[str, torch.Tensor]:
    """Softmax scores and features of one video, averaged over its views."""
    views = torch.stack([dataset.load_view(video_index, v) for v in range(dataset.views)])  # (V, 3, T, H, W)
    parts = model.forward_intermediates(views)
    out = {"scores": model.forward_head(parts["features"]).softmax(-1).mean(0), "pooled": parts["features"].mean(0),
           "cls": parts["cls"].mean(0), "layer_cls": parts["layer_cls"].mean(0)}
    if parts["global"] is not None:
        out["global"] = parts["global"].mean(0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uv2 predict", description=__doc__.split("\n\n")[1])
    parser.add_argument("videos", nargs="+", type=Path, help="video files")
    parser.add_argument("--ckpt", type=Path, required=True, help="checkpoint of a uv2 run (Lightning or uv2 format)")
    parser.add_argument("--topk", type=int, default=5)
    parser.add_argument("--clips", type=int, default=None, help="temporal clips per video (default: the run's)")
    parser.add_argument("--crops", type=int, choices=[1, 3], default=None, help="spatial crops (default: the run's)")
    parser.add_argument("--json", action="store_true", help='last line: {"predictions": [...]}')
    parser.add_argument("--features", type=Path, default=None, help="write features to this .pt file instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.features:  # its folder, before any video is read: features are not computed to be lost
        make_output_dir(args.features.parent, "--features")

    checkpoint = safe_load(args.ckpt)
    model = load_model(args.ckpt)
    names = (checkpoint.get("hyper_parameters", {}).get("class_names") if isinstance(checkpoint, dict) else None) \
        or [str(i) for i in range(model.cfg.num_classes)]
    cfg = view_config(checkpoint, model.cfg, args.clips, args.crops)
    topk = min(args.topk, len(names))
    predictions, features, failed = [], {}, 0
    for path in args.videos:
        dataset = VideoDataset([VideoRecord(str(path), -1)], "test", cfg)
        try:
            result = predict_video(model, dataset, 0)
        except VideoDecodeError as err:
            failed += 1
            print(f"{path}: cannot decode ({err.reason})", file=sys.stderr)
            predictions.append({"path": str(path), "error": err.reason, "topk": []})
            continue
        if args.features:
            features[str(path)] = {k: v for k, v in result.items() if k != "scores"}
            continue
        scores, classes = result["scores"].topk(topk)
        top = [{"class": names[c], "score": round(float(s), 6)} for s, c in zip(scores, classes)]
        predictions.append({"path": str(path), "error": None, "topk": top})
        print(f"{path}: " + ", ".join(f"{t['class']} {t['score']:.3f}" for t in top))
    if args.features:
        atomic_torch_save(features, args.features)
        print(f"wrote features of {len(features)} videos to {args.features}")
    if args.json:
        print(json.dumps({"predictions": predictions}))
    return 1 if failed else 0
