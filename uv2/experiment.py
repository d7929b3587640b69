"""Experiment files: YAML in LightningCLI layout (model / data / trainer sections) with single inheritance.

An experiment holds only its differences from a base: a top-level `base: other.yaml` (relative to the file) is
loaded first and the file's sections are deep-merged over it (mappings merge key by key; lists and scalars
replace; a section naming another class_path replaces the base's section whole). A released design is named, not
restated: `model.arch.variant: uv2_b16_ssv2` stands for that design's fields (uv2.models.config.VARIANTS), which
the file's other `model.arch` keys override. `load_experiment` returns the merged mapping with the variant
expanded; the training CLI passes it to LightningCLI.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from uv2.errors import InputError
from uv2.models.config import VARIANTS

RUN_CONFIG = "config.yaml"  # a fit's resolved experiment, written in its run directory (Lightning's SaveConfigCallback)


class ExperimentError(InputError, ValueError):
    """An experiment file is missing, malformed or inherits in a cycle."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `override` merged over `base`, recursively for nested mappings."""
    if "class_path" in override and base.get("class_path") not in (None, override["class_path"]):
        return copy.deepcopy(override)  # another class: its own arguments, nothing inherited
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_experiment(path: str | Path) -> dict[str, Any]:
    """The fully merged experiment mapping of `path`: its `base:` chain resolved, its model variant expanded."""
    experiment = _load_chain(Path(path).resolve(), ())
    arch = (experiment.get("model") or {}).get("arch") if isinstance(experiment.get("model"), dict) else None
    if isinstance(arch, dict) and "variant" in arch:
        arch = dict(arch)
        name = arch.pop("variant")
        if name not in VARIANTS:
            raise ExperimentError(f"{path}: model.arch.variant: unknown variant {name!r}; valid choices: "
                                  f"{', '.join(sorted(VARIANTS))}")
        experiment["model"]["arch"] = {**VARIANTS[name], **arch}
    return experiment


def _load_chain(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise ExperimentError(f"{path}: inheritance cycle through {' -> '.join(str(p) for p in seen)}")
    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ExperimentError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ExperimentError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    return deep_merge(_load_chain(path.parent / base, seen + (path,)), data)


def model_section(experiment: dict[str, Any], source: str = "experiment") -> dict[str, Any]:
    """The ModelConfig fields of an experiment (model.arch)."""
    try:
        arch = experiment["model"]["arch"]
    except (KeyError, TypeError) as err:
        raise ExperimentError(f"{source}: no model.arch section (the ModelConfig fields)") from err
    if not isinstance(arch, dict):
        raise ExperimentError(f"{source}: model.arch must be a mapping of ModelConfig fields")
    return arch
