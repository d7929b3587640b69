"""Classification metrics as pure functions: accuracies, and the video-level test protocol (softmax scores
averaged over every view of a video, each (video, view) counted once)."""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_accuracy


def accuracies(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, torch.Tensor]:
    """Top-1, top-5 (top-k capped at the class count, for tiny label sets) and mean class accuracy, in percent."""
    return {
        "top1": 100 * multiclass_accuracy(scores, labels, num_classes, average="micro"),
        "top5": 100 * multiclass_accuracy(scores, labels, num_classes, average="micro", top_k=min(5, num_classes)),
        "mean_class": 100 * multiclass_accuracy(scores, labels, num_classes, average="macro"),
    }


def unique_first(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique values of `key` and the index of each one's first occurrence."""
    unique, inverse = torch.unique(key, return_inverse=True)
    order = torch.arange(len(key), device=key.device)
    first = torch.full((len(unique),), len(key), dtype=torch.long, device=key.device).scatter_reduce_(
        0, inverse, order, reduce="amin")
    return unique, first


def video_level(scores: torch.Tensor, labels: torch.Tensor, videos: torch.Tensor, views: torch.Tensor,
                num_classes: int) -> dict[str, Any]:
    """Per-view softmax scores (N, K) with their labels, video and view indices (N,) -> video-level results.

    A (video, view) pair seen more than once (DistributedSampler pads ranks by repeating samples) counts once; a
    video's score is the mean over its views. Returns {"metrics": top1/top5/mean_class, "num_videos", "num_views",
    "video_ids", "scores" (V, K), "labels" (V,)}.
    """
    key = videos * (int(views.max()) + 1 if len(views) else 1) + views
    _, first = unique_first(key)
    scores, labels, videos = scores[first], labels[first], videos[first]
    video_ids, inverse = torch.unique(videos, return_inverse=True)
    summed = torch.zeros(len(video_ids), scores.shape[1], device=scores.device).index_add_(0, inverse, scores)
    counts = torch.zeros(len(video_ids), device=scores.device).index_add_(
        0, inverse, torch.ones_like(inverse, dtype=torch.float))
    video_scores = summed / counts[:, None]
    video_labels = torch.zeros(len(video_ids), dtype=torch.long, device=scores.device).index_copy_(0, inverse, labels)
    metrics = {k: float(v) for k, v in accuracies(video_scores, video_labels, num_classes).items()} \
        if len(video_ids) else {"top1": 0.0, "top5": 0.0, "mean_class": 0.0}
    return {"metrics": metrics, "num_videos": len(video_ids), "num_views": len(key),
            "video_ids": video_ids.cpu(), "scores": video_scores.cpu(), "labels": video_labels.cpu()}
