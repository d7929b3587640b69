"""uv2 data layer: PyAV decoding, clip sampling, transforms, list formats, synthetic benchmark, DataModules.

Modules (imported lazily: ``python -m uv2 synth`` does not import Lightning):

- :mod:`uv2.data.decode`     probe / seek-and-decode only the needed frames / robust frame counting
- :mod:`uv2.data.sampling`   uniform (TSN) and dense frame indices
- :mod:`uv2.data.transforms` clip augmentation (crop, flip, per-clip RandAugment) and normalisation
- :mod:`uv2.data.lists`      Kinetics CSV, SSv2 JSON and folder-per-class lists
- :mod:`uv2.data.synthetic`  the synthetic benchmark (scene / temporal / scene_a,b,c / images)
- :mod:`uv2.data.dataset`    VideoDataset, ImageDataset, collate_clips
- :mod:`uv2.data.datamodule` VideoDataModule, ImageDataModule
- :mod:`uv2.data.multiset`   MultiSetDataModule (co-training on several sets, a head each)
- :mod:`uv2.data.bench`      decode benchmark, data-wait fraction
- :mod:`uv2.data.cli`        ``python -m uv2 synth | check-videos | bench-data``
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "VideoDataModule": "uv2.data.datamodule",
    "ImageDataModule": "uv2.data.datamodule",
    "MultiSetDataModule": "uv2.data.multiset",
    "VideoDataset": "uv2.data.dataset",
    "VideoDatasetConfig": "uv2.data.dataset",
    "ImageDataset": "uv2.data.dataset",
    "TooManyBadVideos": "uv2.data.dataset",
    "collate_clips": "uv2.data.dataset",
    "VideoDecodeError": "uv2.data.decode",
    "decode_frames": "uv2.data.decode",
    "probe_video": "uv2.data.decode",
    "TransformConfig": "uv2.data.transforms",
    "ensure_synthetic": "uv2.data.synthetic",
    "measure_data_wait_fraction": "uv2.data.bench",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'uv2.data' has no attribute {name!r}")
