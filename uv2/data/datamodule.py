"""Lightning DataModules: :class:`VideoDataModule` (video classification) and :class:`ImageDataModule` (images).

Both take plain typed constructor arguments so LightningCLI / jsonargparse can build them from YAML.

Data source: either lists (``list_format`` + ``train_list`` / ``val_list`` / ``test_list`` + ``classes_file`` +
``data_root``; see :mod:`uv2.data.lists`) or a synthetic set (``synthetic_set``): then ``prepare_data`` generates
``<synthetic_root>/<synthetic_size>_seed<synthetic_seed>`` with :func:`~uv2.data.synthetic.ensure_synthetic` and the
lists point there (``train.csv``; ``val.csv`` for both validation and test). Explicit list arguments override the
synthetic ones.

Loaders: train shuffles (and drops the last partial batch), val serves one centre view per video, test serves every view
(``num_test_clips x num_test_crops`` items per video, tagged with ``video_index`` / ``view_index`` for per-video
averaging). Batches are dicts (see :mod:`uv2.data.dataset`); with ``num_repeats > 1`` the train batch is flattened
to ``(batch_size * num_repeats, 3, T, H, W)`` by :func:`~uv2.data.dataset.collate_clips`. Under DDP Lightning
inserts a ``DistributedSampler``; per-video aggregation of test views is the LightningModule's job.

uint8 to the device. Loaders yield uint8 clips (pinned when a GPU is present); Lightning moves them to the device
and calls :meth:`VideoDataModule.on_after_batch_transfer`, which turns them into the model's input there
(:class:`~uv2.data.augment.BatchAugment`: flip, RandAugment, normalisation, as float32 of the same shape). Every
loop (fit, validate, test, predict) therefore sees float batches, as before, and the LightningModule is unchanged.
RandAugment plans are made on the host in ``on_before_batch_transfer`` (they need the seeds as Python numbers).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from uv2.data.augment import BatchAugment
from uv2.data.backends import DECODERS
from uv2.data.dataset import ImageDataset, VideoDataset, VideoDatasetConfig, collate_clips, worker_init_fn
from uv2.data.lists import LIST_FORMATS, ListFormat, VideoRecord, load_video_list, read_csv_list
from uv2.data.sampler import ResumableDataLoader, ShuffleSampler, derive_seed
from uv2.data.synthetic import (
    ALL_SETS,
    DECODED_DIR,
    DEFAULT_ROOT,
    DEFAULT_SEED,
    DEFAULT_SIZE,
    SIZES,
    ensure_synthetic,
    read_manifest,
)
from uv2.data.transforms import CLIP_MEAN, CLIP_STD, TransformConfig, parse_rand_augment
from uv2.errors import SettingError
from uv2.io import make_output_dir
from uv2.labels import read_reversal_pairs

log = logging.getLogger(__name__)

__all__ = ["VideoDataModule", "ImageDataModule", "synthetic_root_for"]


def _pin(pin_memory: bool | None) -> bool:
    """``pin_memory`` None: pin when CUDA is present (page-locked buffers make the copy asynchronous)."""
    return torch.cuda.is_available() if pin_memory is None else pin_memory


def synthetic_root_for(synthetic_root: str, size: str, seed: int) -> Path:
    """Where a DataModule keeps the synthetic benchmark of (size, seed)."""
    return Path(synthetic_root) / f"{size}_seed{seed}"


def synthetic_set_dir(init_args: dict) -> Path:
    """The folder (train.csv, val.csv, classes.txt) of the synthetic set a VideoDataModule's arguments name."""
    root = synthetic_root_for(init_args.get("synthetic_root", DEFAULT_ROOT), init_args.get("synthetic_size", DEFAULT_SIZE),
                              init_args.get("synthetic_seed", DEFAULT_SEED))
    return root / init_args["synthetic_set"]


def eval_generator(seed: int) -> torch.Generator:
    """The generator of an evaluation loader's base seeds: iterating it draws nothing from torch's global generator,
    whose state (dropout masks) a resumed run restores (uv2.train.resume.RandomStates)."""
    return torch.Generator().manual_seed(seed)


class TrainSeed:
    """The seed of a DataModule's training order and draws, kept in checkpoints (DataModule.state_dict).

    Derived from torch's seed when the DataModule is built (LightningCLI seeds before it builds: seed_everything),
    the DataModule's ``seed`` and a stream number (co-training gives each set its own); a checkpoint's seed wins, so a
    resumed run keeps its order even when its seed_everything was drawn at random (``seed_everything: true``).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.initial = torch.initial_seed()
        self.stream = 0
        self.restored: int | None = None
        self.sampler: ShuffleSampler | None = None

    @property
    def value(self) -> int:
        return self.restored if self.restored is not None else derive_seed(self.initial, self.seed, self.stream)

    def state_dict(self) -> dict[str, int]:
        return {"train_seed": self.value}

    def loader(self, datamodule: pl.LightningDataModule, dataset, **kwargs: Any) -> ResumableDataLoader:
        """The training loader of ``datamodule``: a ResumableDataLoader over a ShuffleSampler of this seed, split
        across the Trainer's ranks under DDP (uv2.data.sampler: order and draws are pure functions of seed, epoch,
        pass, position)."""
        trainer = datamodule.trainer
        split = (trainer.distributed_sampler_kwargs if trainer is not None else None) or {}
        self.sampler = ShuffleSampler(dataset, self.value, num_replicas=split.get("num_replicas", 1),
                                      rank=split.get("rank", 0))
        return ResumableDataLoader(dataset, sampler=self.sampler, **kwargs)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "train_seed" in state:
            self.restored = int(state["train_seed"])
            if self.sampler is not None:  # a loader built before the restore (strategies that restore after setup)
                self.sampler.seed = self.restored


class VideoDataModule(pl.LightningDataModule):
    """Video clips for training, validation (centre view) and multi-view testing.

    Args:
        list_format: "csv" (Kinetics-style), "ssv2" (SSv2 JSON; classes_file = labels.json), "folder", "mit"
            (Moments in Time as released), "ssv1" (Something-Something V1 id;label lists of frame folders) or
            "rawframes" (mmaction2's `frame_dir total_frames label` lists). Any format may list frame folders
            (directories of numbered images), read like videos (uv2.data.frames).
        train_list: training list (CSV file, SSv2 split JSON, folder root, ...).
        val_list: validation list.
        test_list: test list (default: val_list).
        classes_file: class names, one per line (csv; optional with integer labels), or SSv2 labels.json.
        data_root: prefix for relative video paths (default: the list file's directory).
        video_ext: SSv2 video extension.
        synthetic_set: use a generated synthetic set instead of lists ("scene", "temporal", "scene_a", ...).
        synthetic_size: "micro", "tiny", "small" or "medium".
        synthetic_seed: generation seed of the synthetic set.
        synthetic_root: parent directory of generated synthetic benchmarks.
        num_frames: frames per clip (T). Leave it unset: the frame count is the model's (``model.arch.num_frames``),
            read from the Trainer's model at setup. A value that differs from the model's is an error naming both;
            without a Trainer (tools, tests) give it here.
        sampling: "uniform" (TSN segments) or "dense" (stride over a window).
        frame_stride: dense sampling stride.
        crop_size: model input height = width.
        short_side: eval short-side resize before cropping (default crop_size).
        train_crop: "random_resized" (Inception crop) or "jitter" (short-side jitter + random crop).
        scale_min: random_resized: minimum crop area fraction.
        scale_max: random_resized: maximum crop area fraction.
        ratio_min: random_resized: minimum aspect ratio.
        ratio_max: random_resized: maximum aspect ratio.
        jitter_min: jitter: minimum short side (default crop_size * 256 / 224).
        jitter_max: jitter: maximum short side (default crop_size * 320 / 224).
        flip: random horizontal flip in training (off for SSv2-like data).
        rand_augment: timm RandAugment string (e.g. "rand-m7-n4-mstd0.5-inc1") or None.
        mean: normalisation mean (default CLIP's).
        std: normalisation std (default CLIP's).
        num_test_clips: temporal clips per test video.
        num_test_crops: spatial crops per test clip (1 or 3).
        num_repeats: augmented clips per training video per item (repeated augmentation: one decode, R clips with
            their own temporal offsets, crops, flips and RandAugment; the cheapest multiplier when the GPU waits).
        time_reversal: probability that a training clip of a class with a time-reversed partner (``reversal_pairs``) is
            played backwards and labelled as the partner: twice the clips of every such pair, and of each video the
            same frames under both labels, which only the frames' order tells apart. 0: off.
        reversal_pairs: JSON file of the classes that are each other's time reversal, ``{"pairs": [[name, name],
            ...]}`` by class name (default for the synthetic temporal set: its ``reversal_pairs.json``).
        batch_size: training batch size (videos; the model sees batch_size * num_repeats clips).
        eval_batch_size: val/test batch size (default batch_size).
        num_workers: DataLoader worker processes.
        worker_start_method: how workers start. "forkserver" (default) and "spawn" start clean processes (about 3 s
            once per loader, as workers persist); "fork" starts instantly but can deadlock when the parent holds
            locks of running threads (OpenMP, TensorBoard's writer, decoder threads) at fork time.
        pin_memory: pin batches in page-locked memory (None: when CUDA is available).
        max_bad_fraction: raise TooManyBadVideos when more than this fraction of videos fail to decode.
        min_bad_attempts: ... measured once this many distinct videos were attempted in a worker.
        max_retries: replacement videos tried for one item.
        cache_decoded: decode each video once and keep its frames in memory (per process, one cache for the
            train, validation and test sets; for small sets such as the synthetic benchmark, where it removes
            decoding from every epoch after the first and from a test on the validation videos).
        decoded_cache_dir: with cache_decoded, a folder that also keeps every decoded video on disk (one .npy file
            each, keyed by the video's path, size and modification time), where other processes and later runs load
            it instead of decoding it again: an ablation grid's cells, DataLoader workers, DDP ranks
            (uv2.data.decoded_cache). None: a synthetic set's videos are kept beside it, in
            ``<synthetic_root>/<synthetic_size>_seed<synthetic_seed>/decoded`` (removed when the set is generated
            again); other videos in memory only.
        seed: seeds replacement choices and (with torch's seed) the augmentation RNGs.
        decoder: video decoder backend, "pyav" (default) or "torchcodec" (optional; see uv2.data.backends).
        frame_template: file names of the frames in frame folders, one integer field (e.g. "img_{:05d}.jpg",
            "{:05d}.jpg"); None: read off each folder (its one series of numbered images).
    """

    def __init__(
        self,
        list_format: ListFormat = "csv",
        train_list: str | None = None,
        val_list: str | None = None,
        test_list: str | None = None,
        classes_file: str | None = None,
        data_root: str | None = None,
        video_ext: str = ".webm",
        synthetic_set: str | None = None,
        synthetic_size: Literal["micro", "tiny", "small", "medium"] = DEFAULT_SIZE,
        synthetic_seed: int = DEFAULT_SEED,
        synthetic_root: str = DEFAULT_ROOT,
        num_frames: int | None = None,
        sampling: Literal["uniform", "dense"] = "uniform",
        frame_stride: int = 8,
        crop_size: int = 224,
        short_side: int | None = None,
        train_crop: Literal["random_resized", "jitter"] = "random_resized",
        scale_min: float = 0.08,
        scale_max: float = 1.0,
        ratio_min: float = 3 / 4,
        ratio_max: float = 4 / 3,
        jitter_min: int | None = None,
        jitter_max: int | None = None,
        flip: bool = True,
        rand_augment: str | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        num_test_clips: int = 1,
        num_test_crops: int = 1,
        num_repeats: int = 1,
        time_reversal: float = 0.0,
        reversal_pairs: str | None = None,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 2,
        worker_start_method: Literal["forkserver", "spawn", "fork"] = "forkserver",
        pin_memory: bool | None = None,
        max_bad_fraction: float = 0.01,
        min_bad_attempts: int = 500,
        max_retries: int = 10,
        cache_decoded: bool = False,
        decoded_cache_dir: str | None = None,
        seed: int = 0,
        decoder: Literal["pyav", "torchcodec"] = "pyav",
        frame_template: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        if list_format not in LIST_FORMATS:
            raise SettingError(f"unknown list_format {list_format!r}; valid choices: {', '.join(LIST_FORMATS)}")
        if synthetic_set is not None:
            if synthetic_set not in ALL_SETS or synthetic_set == "images":
                valid = ", ".join(s for s in ALL_SETS if s != "images")
                raise SettingError(f"unknown synthetic_set {synthetic_set!r} for videos; valid choices: {valid}")
            if synthetic_size not in SIZES:
                raise SettingError(f"unknown synthetic_size {synthetic_size!r}; valid choices: {', '.join(SIZES)}")
        if (jitter_min is None) != (jitter_max is None):
            raise SettingError("give both jitter_min and jitter_max, or neither")
        if rand_augment is not None:
            parse_rand_augment(rand_augment)
        if decoder not in DECODERS:
            raise SettingError(f"unknown decoder {decoder!r}; valid choices: {', '.join(DECODERS)}")
        for name, value, least in (("batch_size", batch_size, 1), ("eval_batch_size", eval_batch_size, 1),
                                   ("num_workers", num_workers, 0)):
            if value is not None and value < least:
                raise SettingError(f"{name} must be >= {least}, got {value}")
        transform = TransformConfig(
            crop_size=crop_size,
            short_side=short_side,
            train_crop=train_crop,
            scale=(scale_min, scale_max),
            ratio=(ratio_min, ratio_max),
            jitter_short_side=None if jitter_min is None else (jitter_min, jitter_max),
            flip=flip,
            rand_augment=rand_augment,
            mean=tuple(mean) if mean is not None else CLIP_MEAN,
            std=tuple(std) if std is not None else CLIP_STD,
        )
        self.dataset_cfg = VideoDatasetConfig(
            num_frames=num_frames or 1,  # validates the other fields now; the frame count is settled in setup()
            sampling=sampling,
            frame_stride=frame_stride,
            num_test_clips=num_test_clips,
            num_test_crops=num_test_crops,
            num_repeats=num_repeats,
            time_reversal=time_reversal,
            max_bad_fraction=max_bad_fraction,
            min_attempts=min_bad_attempts,
            max_retries=max_retries,
            cache_decoded=cache_decoded,
            decoded_cache_dir=decoded_cache_dir or self._default_decoded_cache_dir(),
            seed=seed,
            decoder=decoder,
            frame_template=frame_template,
            transform=transform,
        )
        self.augment = BatchAugment(transform)  # the per-batch work on the device
        self.train_seed = TrainSeed(seed)  # the training order and draws (uv2.data.sampler), kept in checkpoints
        self.class_names: list[str] | None = None
        self.train_dataset: VideoDataset | None = None
        self.val_dataset: VideoDataset | None = None
        self.test_dataset: VideoDataset | None = None
        # with cache_decoded, every dataset's decoded videos (path -> frames), one dict for all three: the test
        # list is often the validation list, whose videos are then decoded once in a process, not once per stage
        self._decoded: dict[str, torch.Tensor] = {}

    # -- sources --------------------------------------------------------------------------------------------------

    @property
    def synthetic_dir(self) -> Path | None:
        hp = self.hparams
        if hp.synthetic_set is None:
            return None
        return synthetic_root_for(hp.synthetic_root, hp.synthetic_size, hp.synthetic_seed)

    def _default_decoded_cache_dir(self) -> str | None:
        """Where a synthetic set's decoded videos are kept when decoded_cache_dir is not given (with cache_decoded)."""
        if not self.hparams.cache_decoded or self.synthetic_dir is None:
            return None
        return str(self.synthetic_dir / DECODED_DIR)

    def _sources(self) -> dict[str, str | None]:
        """list_format, lists, classes file and data root after applying the synthetic defaults."""
        hp = self.hparams
        src = dict(
            list_format=hp.list_format,
            train=hp.train_list,
            val=hp.val_list,
            test=hp.test_list,
            classes=hp.classes_file,
            root=hp.data_root,
        )
        if hp.synthetic_set is not None:
            d = self.synthetic_dir / hp.synthetic_set
            src["list_format"] = "csv"
            src["train"] = src["train"] or str(d / "train.csv")
            src["val"] = src["val"] or str(d / "val.csv")
            src["classes"] = src["classes"] or str(d / "classes.txt")
        src["test"] = src["test"] or src["val"]
        return src

    def prepare_data(self) -> None:
        """Generate the synthetic set when one is configured (called once per node by Lightning)."""
        hp = self.hparams
        if hp.synthetic_set is not None:
            make_output_dir(self.synthetic_dir, "data.init_args.synthetic_root")
            ensure_synthetic(
                self.synthetic_dir, size=hp.synthetic_size, seed=hp.synthetic_seed, sets=[hp.synthetic_set]
            )

    def _load(self, which: str) -> list[VideoRecord]:
        src = self._sources()
        path = src[which]
        if path is None:
            raise SettingError(f"no {which} list configured (set {which}_list)")
        if self.hparams.synthetic_set is not None and read_manifest(self.synthetic_dir) is None:
            raise FileNotFoundError(f"synthetic data missing in {self.synthetic_dir}; call prepare_data() first")
        records, names = load_video_list(src["list_format"], path, src["classes"], src["root"], self.hparams.video_ext)
        if self.class_names is None or len(names) > len(self.class_names):
            self.class_names = names
        return records

    def clip_frames(self) -> int:
        """Frames per clip: the model's ``arch.num_frames`` (through the Trainer), or ``num_frames`` when no model
        is attached; both given and different is an error naming both."""
        given = self.hparams.num_frames
        module = self.trainer.lightning_module if self.trainer is not None else None
        arch = getattr(module, "arch", None)
        model_frames = getattr(arch, "num_frames", None)
        if given is not None and model_frames is not None and given != model_frames:
            raise SettingError(f"data.init_args.num_frames is {given} but model.arch.num_frames is {model_frames}: the "
                               f"clips must have the model's frame count; drop data.init_args.num_frames (the data "
                               f"module takes it from the model)")
        frames = given if given is not None else model_frames
        if frames is None:
            raise SettingError("num_frames is not set and no model is attached to take it from: give num_frames, or "
                               "use the data module with a Trainer and a uv2 model (model.arch.num_frames)")
        return frames

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs ("fit", "validate", "test", "predict"; None: all available)."""
        cfg = self.dataset_cfg = replace(self.dataset_cfg, num_frames=self.clip_frames())
        src = self._sources()
        if not any(src[k] for k in ("train", "val", "test")):
            raise SettingError("VideoDataModule needs lists (train_list / val_list / test_list) or synthetic_set")
        if stage in ("fit", None) and src["train"] is not None and self.train_dataset is None:
            records = self._load("train")  # and the class names, which the reversal pairs name
            self.train_dataset = VideoDataset(records, "train", cfg, self._decoded, self._reversal_partners())
        if stage in ("fit", "validate", None) and src["val"] is not None and self.val_dataset is None:
            self.val_dataset = VideoDataset(self._load("val"), "val", cfg, self._decoded)
        if stage in ("test", "predict", None) and src["test"] is not None and self.test_dataset is None:
            self.test_dataset = VideoDataset(self._load("test"), "test", cfg, self._decoded)
        if stage == "fit" and self.train_dataset is None:
            raise SettingError("stage 'fit' needs train_list (or synthetic_set)")

    def _reversal_partners(self) -> dict[int, int] | None:
        """With time_reversal, label -> its time-reversed class's label from the reversal_pairs file."""
        hp = self.hparams
        if not hp.time_reversal:
            return None
        path = hp.reversal_pairs
        if path is None and hp.synthetic_set is not None:
            path = self.synthetic_dir / hp.synthetic_set / "reversal_pairs.json"
            if not path.is_file():
                raise SettingError(f"data.init_args.time_reversal: the synthetic set {hp.synthetic_set!r} has no "
                                   f"time-reversed classes ({path} missing); the temporal set has")
        if path is None:
            raise SettingError("data.init_args.time_reversal needs data.init_args.reversal_pairs: a JSON file "
                               '{"pairs": [[class name, class name], ...]} of the classes that are each other\'s '
                               "time reversal")
        return read_reversal_pairs(path, self.class_names)

    @property
    def num_classes(self) -> int:
        """Number of classes (after setup)."""
        if self.class_names is None:
            raise RuntimeError("num_classes is known after setup()")
        return len(self.class_names)

    @property
    def num_test_videos(self) -> int:
        """Videos in the test list (after setup('test')); the test loader yields this times the views."""
        if self.test_dataset is None:
            raise RuntimeError("num_test_videos is known after setup('test')")
        return self.test_dataset.num_videos

    # -- loaders --------------------------------------------------------------------------------------------------

    def _loader(self, dataset: VideoDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() with the matching stage before asking for its DataLoader")
        hp = self.hparams
        common = dict(
            num_workers=hp.num_workers,
            pin_memory=_pin(hp.pin_memory),
            persistent_workers=hp.num_workers > 0,
            multiprocessing_context=hp.worker_start_method if hp.num_workers > 0 else None,
            worker_init_fn=worker_init_fn if hp.num_workers > 0 else None,
            collate_fn=collate_clips,
        )
        if train:  # Lightning saves its position in every checkpoint: a resumed run continues exactly
            return self.train_seed.loader(self, dataset, batch_size=hp.batch_size,
                                          drop_last=len(dataset) >= hp.batch_size, **common)
        return DataLoader(dataset, batch_size=hp.eval_batch_size or hp.batch_size, shuffle=False,
                          generator=eval_generator(hp.seed), **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, train=False)

    def state_dict(self) -> dict[str, Any]:
        """Kept in checkpoints: the seed of the training order and draws."""
        return self.train_seed.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_seed.load_state_dict(state_dict)

    # -- the per-batch work on the device -------------------------------------------------------------------------

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the host: RandAugment plans from the clips' seeds."""
        return self.augment.before_transfer(batch)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device: uint8 clips -> the model's float input (flip, RandAugment, normalisation)."""
        return self.augment(batch)


class ImageDataModule(pl.LightningDataModule):
    """Images listed as ``path,label`` (default: the synthetic ``images`` set) for image-ViT pretraining.

    Args:
        train_list: training CSV (default: the synthetic images set's train.csv).
        val_list: validation CSV (default: the synthetic images set's val.csv).
        classes_file: class names file.
        data_root: prefix for relative image paths (default: the list file's directory).
        synthetic_size: size of the synthetic benchmark when lists are not given.
        synthetic_seed: its generation seed.
        synthetic_root: parent directory of generated synthetic benchmarks.
        crop_size: output height = width.
        short_side: eval short-side resize (default crop_size).
        scale_min: training crop minimum area fraction.
        scale_max: training crop maximum area fraction.
        flip: random horizontal flip in training.
        mean: normalisation mean (default CLIP's).
        std: normalisation std (default CLIP's).
        batch_size: batch size.
        num_workers: DataLoader workers.
        worker_start_method: how workers start (see VideoDataModule).
        seed: augmentation seed (combined with torch's seed).
    """

    def __init__(
        self,
        train_list: str | None = None,
        val_list: str | None = None,
        classes_file: str | None = None,
        data_root: str | None = None,
        synthetic_size: Literal["micro", "tiny", "small", "medium"] = DEFAULT_SIZE,
        synthetic_seed: int = DEFAULT_SEED,
        synthetic_root: str = DEFAULT_ROOT,
        crop_size: int = 32,
        short_side: int | None = None,
        scale_min: float = 0.35,
        scale_max: float = 1.0,
        flip: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        batch_size: int = 64,
        num_workers: int = 2,
        worker_start_method: Literal["forkserver", "spawn", "fork"] = "forkserver",
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.transform = TransformConfig(
            crop_size=crop_size,
            short_side=short_side,
            scale=(scale_min, scale_max),
            flip=flip,
            mean=tuple(mean) if mean is not None else CLIP_MEAN,
            std=tuple(std) if std is not None else CLIP_STD,
        )
        self.augment = BatchAugment(self.transform)  # flip + normalisation on the device
        self.train_seed = TrainSeed(seed)  # the training order and draws (uv2.data.sampler), kept in checkpoints
        self.class_names: list[str] | None = None
        self.train_dataset: ImageDataset | None = None
        self.val_dataset: ImageDataset | None = None

    @property
    def _synthetic(self) -> bool:
        return self.hparams.train_list is None and self.hparams.val_list is None

    @property
    def synthetic_dir(self) -> Path:
        hp = self.hparams
        return synthetic_root_for(hp.synthetic_root, hp.synthetic_size, hp.synthetic_seed)

    def prepare_data(self) -> None:
        if self._synthetic:
            hp = self.hparams
            make_output_dir(self.synthetic_dir, "data.init_args.synthetic_root")
            ensure_synthetic(self.synthetic_dir, size=hp.synthetic_size, seed=hp.synthetic_seed, sets=["images"])

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        d = self.synthetic_dir / "images"
        train = hp.train_list or (str(d / "train.csv") if self._synthetic else None)
        val = hp.val_list or (str(d / "val.csv") if self._synthetic else None)
        classes = hp.classes_file or (str(d / "classes.txt") if self._synthetic else None)
        if train is not None and self.train_dataset is None:
            records, self.class_names = read_csv_list(train, classes, hp.data_root)
            self.train_dataset = ImageDataset(records, True, self.transform, hp.seed)
        if val is not None and self.val_dataset is None:
            records, names = read_csv_list(val, classes, hp.data_root)
            self.class_names = self.class_names or names
            self.val_dataset = ImageDataset(records, False, self.transform, hp.seed)

    @property
    def num_classes(self) -> int:
        if self.class_names is None:
            raise RuntimeError("num_classes is known after setup()")
        return len(self.class_names)

    def _loader(self, dataset: ImageDataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a DataLoader")
        hp = self.hparams
        common = dict(
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
            pin_memory=_pin(None),
            persistent_workers=hp.num_workers > 0,
            multiprocessing_context=hp.worker_start_method if hp.num_workers > 0 else None,
            worker_init_fn=worker_init_fn if hp.num_workers > 0 else None,
        )
        if train:
            return self.train_seed.loader(self, dataset, drop_last=len(dataset) >= hp.batch_size, **common)
        return DataLoader(dataset, shuffle=False, generator=eval_generator(hp.seed), **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, False)

    def state_dict(self) -> dict[str, Any]:
        """Kept in checkpoints: the seed of the training order and draws."""
        return self.train_seed.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_seed.load_state_dict(state_dict)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """On the device: uint8 images -> the model's float input (flip, normalisation)."""
        return self.augment(batch)
