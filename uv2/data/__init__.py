"""uv2 data layer: PyAV decoding, clip sampling, transforms, list formats, synthetic benchmark, DataModules.

Modules (imported lazily: ``python -m uv2 synth`` does not import Lightning):

- :mod:`uv2.data.decode`     probe / seek-and-decode only the needed frames, cropped and resized in the scaler /
                             robust frame counting / per-stage timing
- :mod:`uv2.data.backends`   the decoder backends behind ``decoder``: pyav (default), torchcodec (optional)
- :mod:`uv2.data.augment`    the per-batch work after the transfer: flip, RandAugment, normalisation of uint8 clips
- :mod:`uv2.data.sampling`   uniform (TSN) and dense frame indices
- :mod:`uv2.data.transforms` clip augmentation (crop, flip, per-clip RandAugment) and normalisation
- :mod:`uv2.data.lists`      Kinetics CSV, SSv2 JSON and folder-per-class lists
- :mod:`uv2.data.synthetic`  the synthetic benchmark (scene / temporal / scene_a,b,c / images)
- :mod:`uv2.data.dataset`    VideoDataset, ImageDataset, collate_clips
- :mod:`uv2.data.datamodule` VideoDataModule, ImageDataModule
- :mod:`uv2.data.multiset`   MultiSetDataModule (co-training on several sets, a head each)
- :mod:`uv2.data.bench`      input-pipeline benchmark with the per-stage split, data-wait fraction
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
    "FrameSpec": "uv2.data.decode",
    "BatchAugment": "uv2.data.augment",
    "get_backend": "uv2.data.backends",
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
