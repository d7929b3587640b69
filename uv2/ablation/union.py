"""Table (e): a union label set built by class name from several lists, and heads sliced from its classifier.

The union ("K710" from K400/K600/K700) merges classes of the same name, keeps each set's training videos and removes
from training every video that any set uses for validation (Kinetics sets overlap: a K600 training video can be a
K400 validation video). Videos are identified by their path; with identity="name" by file name, for lists whose
copies of one video live under different roots; with identity="youtube_id" by the first 11 characters of the file
name, the YouTube id Kinetics files start with (`<id>_<start>_<end>.mp4` or `<id>.mp4`), as the official K710 removes
repeated videos "according to YouTube IDs".

`python -m uv2 union OUT --set NAME TRAIN VAL CLASSES ...` writes OUT/{train.csv,val.csv,classes.txt}.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from uv2.data.lists import read_csv_list, write_lines_atomic
from uv2.labels import class_rows, union_classes
from uv2.models.convert import slice_classifier

__all__ = ["LabelSet", "IDENTITIES", "union_classes", "build_union", "slice_head", "main"]

IDENTITIES = ("path", "name", "youtube_id")
YOUTUBE_ID_LENGTH = 11


@dataclass
class LabelSet:
    """One labelled set: its lists and class names file (Kinetics-style CSV; relative video paths under data_root,
    default the list's folder)."""

    name: str
    train_list: Path
    val_list: Path
    classes_file: Path
    data_root: Path | None = None


def video_key(path: str, identity: str) -> str:
    """What identifies a video under `identity` (see the module docstring)."""
    if identity == "path":
        return os.path.abspath(path)
    name = Path(path).name
    if identity == "name":
        return name
    video_id = Path(path).stem[:YOUTUBE_ID_LENGTH]
    if len(video_id) < YOUTUBE_ID_LENGTH:
        raise ValueError(f"identity youtube_id: {path}: the file name is shorter than a YouTube id "
                         f"({YOUTUBE_ID_LENGTH} characters); use identity 'name' or 'path' for these lists")
    return video_id


def build_union(sets: list[LabelSet], out_dir: str | os.PathLike, identity: str = "path") -> dict[str, object]:
    """Write out_dir/{train.csv,val.csv,classes.txt} of the union; return counts for the report."""
    if identity not in IDENTITIES:
        raise ValueError(f"identity: invalid value {identity!r}; valid choices: {', '.join(IDENTITIES)}")
    out_dir = Path(out_dir)
    loaded = {}
    for s in sets:
        train, names = read_csv_list(s.train_list, s.classes_file, s.data_root)
        val, _ = read_csv_list(s.val_list, s.classes_file, s.data_root)
        loaded[s.name] = (train, val, names)
    classes = union_classes([names for _, _, names in loaded.values()])
    index = {name: i for i, name in enumerate(classes)}
    held_out = {video_key(r.path, identity) for _, val, _ in loaded.values() for r in val}
    train_lines, val_lines, seen, removed, repeated = [], [], set(), 0, 0
    for train, val, names in loaded.values():
        for record in train:
            key = video_key(record.path, identity)
            if key in held_out:
                removed += 1
                continue
            if key in seen:
                repeated += 1
                continue
            seen.add(key)
            train_lines.append(f"{os.path.abspath(record.path)},{index[names[record.label]]}")
        val_lines += [f"{os.path.abspath(r.path)},{index[names[r.label]]}" for r in val]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_lines_atomic(out_dir / "classes.txt", classes)
    write_lines_atomic(out_dir / "train.csv", train_lines)
    write_lines_atomic(out_dir / "val.csv", val_lines)
    return {"classes": len(classes), "train": len(train_lines), "val": len(val_lines), "removed_from_train": removed,
            "repeated_in_train": repeated}


def slice_head(state_dict: dict[str, torch.Tensor], source_classes: list[str], target_classes: list[str],
               prefix: str = "head.fc.") -> dict[str, torch.Tensor]:
    """The state dict with the classifier's rows picked from the union head by class name, in the target order."""
    rows = class_rows(source_classes, target_classes, "the source head's classes", "the target set")
    return slice_classifier(state_dict, rows, prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uv2 union",
        description="Build a union label set (Kinetics-710 from the K400 / K600 / K700 lists): classes merged by "
                    "name, every set's validation videos removed from training, repeated videos kept once.")
    parser.add_argument("out", type=Path, help="folder to write train.csv, val.csv and classes.txt to")
    parser.add_argument("--set", nargs=4, action="append", required=True, metavar=("NAME", "TRAIN", "VAL", "CLASSES"),
                        help="one set: its name, training list, validation list and classes file (Kinetics CSV)")
    parser.add_argument("--identity", choices=IDENTITIES, default="path",
                        help="what makes two list entries one video: its path, its file name, or its YouTube id (the "
                             "first 11 characters of the file name; the official K710 rule)")
    args = parser.parse_args(argv)
    try:
        sets = [LabelSet(name, Path(train), Path(val), Path(classes)) for name, train, val, classes in args.set]
        counts = build_union(sets, args.out, args.identity)
    except (OSError, ValueError) as err:
        print(f"uv2 union: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {counts['classes']} classes, {counts['train']} training videos "
          f"({counts['removed_from_train']} removed as another set's validation videos, {counts['repeated_in_train']} "
          f"repeats dropped), {counts['val']} validation videos")
    return 0
