"""Label sets by class name: class-name files, the union of several sets (Kinetics-710 from K400 / K600 / K700), the
rows of one set's classes in another set's classifier, and a set's time-reversed class pairs.

Classes are matched by their exact name, as the paper builds Kinetics-710 ("duplicates merged by name"); a name
that is missing from the other set is an error listing the missing names and their closest spellings, since two
releases of one dataset can spell a class differently. This module imports nothing from uv2: the data lists read
class files with it, the checkpoint converter (`python -m uv2 convert slice-head`) slices classifier heads with it,
and table (e)'s union scripts build their union label set with it; the data modules' time reversal reads its class
pairs with it.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence

from uv2.errors import InputError, MissingFileError

__all__ = ["ListFormatError", "read_classes_file", "union_classes", "class_rows", "read_reversal_pairs"]


class ListFormatError(InputError, ValueError):
    """A malformed list or classes file; the message names the file and line."""


def read_classes_file(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (blank lines ignored; index = line order); a duplicate name is an error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"classes file not found: {path}")
    names: list[str] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            name = line.strip()
            if not name:
                continue
            if name in seen:
                raise ListFormatError(f"{path}:{lineno}: duplicate class name {name!r} (first on line {seen[name]})")
            seen[name] = lineno
            names.append(name)
    if not names:
        raise ListFormatError(f"{path}: classes file has no class names (expected one class name per line)")
    return names


def union_classes(class_lists: Sequence[Sequence[str]]) -> list[str]:
    """Every class name of the sets, once, sorted (so the union's label indices do not depend on set order)."""
    return sorted({name for names in class_lists for name in names})


def class_rows(source: Sequence[str], target: Sequence[str], source_name: str = "the source classes",
               target_name: str = "the target classes") -> list[int]:
    """For each class of `target`, in order, its index in `source` (matched by name).

    Raises ValueError naming the target classes that `source` lacks (with the closest source spellings), or a
    class named twice in `source` (which of its rows would be meant?). `target` may repeat a name: co-training heads
    stacked one per set hold a row for every set that has the class.
    """
    seen: set[str] = set()
    repeated = sorted({n for n in source if n in seen or seen.add(n)})
    if repeated:
        raise ValueError(f"{source_name}: class names listed twice: {', '.join(map(repr, repeated[:5]))}")
    position = {name: i for i, name in enumerate(source)}
    missing = [name for name in target if name not in position]
    if missing:
        shown = []
        for name in missing[:5]:
            close = difflib.get_close_matches(name, list(position), n=1, cutoff=0.8)
            shown.append(f"{name!r}" + (f" (closest: {close[0]!r})" if close else ""))
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ValueError(f"{len(missing)} of the {len(target)} classes of {target_name} are not in {source_name} "
                         f"({len(source)} classes): {', '.join(shown)}{more}")
    return [position[name] for name in target]


def read_reversal_pairs(path: str | os.PathLike, class_names: Sequence[str]) -> dict[int, int]:
    """Label -> label of its time-reversed class, both ways, from a JSON file ``{"pairs": [[name, name], ...]}``
    (the synthetic temporal set's ``reversal_pairs.json``): a pair's second class is its first played backwards.

    Raises MissingFileError for a missing file and ListFormatError naming the file for a malformed one, a class it
    names that `class_names` lacks (with the closest spelling), a class paired with itself or in two pairs.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"reversal pairs file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            pairs = json.load(f).get("pairs")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ListFormatError(f'{path}: not a JSON object {{"pairs": [[name, name], ...]}} ({e})') from None
    if not isinstance(pairs, list) or not pairs or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(n, str) for n in p) for p in pairs):
        raise ListFormatError(f'{path}: "pairs" must be a non-empty list of [class name, class name] pairs, got '
                              f"{pairs!r:.120}")
    try:
        rows = class_rows(class_names, [name for pair in pairs for name in pair], "the dataset's classes",
                          f"the reversal pairs of {path}")
    except ValueError as e:
        raise ListFormatError(str(e)) from None
    partner: dict[int, int] = {}
    for first, second in zip(rows[::2], rows[1::2]):
        if first == second:
            raise ListFormatError(f"{path}: class {class_names[first]!r} is paired with itself")
        for label in (first, second):
            if label in partner:
                raise ListFormatError(f"{path}: class {class_names[label]!r} is in more than one reversal pair")
        partner[first], partner[second] = second, first
    return partner
