"""Table (e): a union label set built by class name from several lists, and heads sliced from its classifier.

The union ("K710" from K400/K600/K700) merges classes of the same name, keeps each set's training videos and removes
from training every video that any set uses for validation (Kinetics sets overlap: a K600 training video can be a
K400 validation video). Videos are identified by their path, or with identity="name" by file name, for lists
whose copies of one video live under different roots (Kinetics files are named by YouTube id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from uv2.data.lists import read_csv_list, write_lines_atomic


@dataclass
class LabelSet:
    """One labelled set: its lists and class names file (Kinetics-style CSV)."""

    name: str
    train_list: Path
    val_list: Path
    classes_file: Path


def union_classes(class_lists: list[list[str]]) -> list[str]:
    """Every class name of the sets, once, sorted (so the union's label indices do not depend on set order)."""
    return sorted({name for names in class_lists for name in names})


def build_union(sets: list[LabelSet], out_dir: str | os.PathLike, identity: str = "path") -> dict[str, object]:
    """Write out_dir/{train.csv,val.csv,classes.txt} of the union; return counts for the report."""
    if identity not in ("path", "name"):
        raise ValueError(f"identity: invalid value {identity!r}; valid choices: path, name")
    out_dir = Path(out_dir)

    def key_of(path: str) -> str:
        return Path(path).name if identity == "name" else os.path.abspath(path)

    loaded = {}
    for s in sets:
        train, names = read_csv_list(s.train_list, s.classes_file)
        val, _ = read_csv_list(s.val_list, s.classes_file)
        loaded[s.name] = (train, val, names)
    classes = union_classes([names for _, _, names in loaded.values()])
    index = {name: i for i, name in enumerate(classes)}
    held_out = {key_of(r.path) for _, val, _ in loaded.values() for r in val}
    train_lines, val_lines, seen, removed = [], [], set(), 0
    for train, val, names in loaded.values():
        for record in train:
            key = key_of(record.path)
            if key in held_out:
                removed += 1
                continue
            if key not in seen:
                seen.add(key)
                train_lines.append(f"{os.path.abspath(record.path)},{index[names[record.label]]}")
        val_lines += [f"{os.path.abspath(r.path)},{index[names[r.label]]}" for r in val]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_lines_atomic(out_dir / "classes.txt", classes)
    write_lines_atomic(out_dir / "train.csv", train_lines)
    write_lines_atomic(out_dir / "val.csv", val_lines)
    return {"classes": len(classes), "train": len(train_lines), "val": len(val_lines), "removed_from_train": removed}


def slice_head(state_dict: dict[str, torch.Tensor], source_classes: list[str], target_classes: list[str],
               prefix: str = "head.fc.") -> dict[str, torch.Tensor]:
    """The state dict with the classifier's rows picked from the union head by class name, in the target order."""
    position = {name: i for i, name in enumerate(source_classes)}
    missing = [name for name in target_classes if name not in position]
    if missing:
        raise ValueError(f"classes {missing[:5]} of the target set are not in the source head's classes")
    rows = torch.tensor([position[name] for name in target_classes])
    out = dict(state_dict)
    for key in (f"{prefix}weight", f"{prefix}bias"):
        out[key] = state_dict[key][rows].clone()
    return out
