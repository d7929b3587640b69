"""Video lists: Kinetics-style CSV, Something-Something V2 JSON, folder-per-class trees.

Every reader returns ``(records, class_names)``: a list of :class:`VideoRecord` (path, integer label) and the class
names indexed by label.

``csv`` (Kinetics style). One video per line, ``path,label`` or ``path label`` (when the line has a comma the text
after the last comma is the label, otherwise the text after the last run of whitespace, so paths may contain spaces
in the comma form and commas in the space form only if followed by a comma-separated label). The label is an integer
index or a class name; names need a classes file (one class name per line, index = line order, blank lines ignored).
An optional header line ``path,label`` (or ``path label``) is skipped, as are blank lines and lines starting with
``#``.

``ssv2``. ``labels.json`` maps class name -> index as a string (``{"Putting something on something": "0", ...}``); a
split file (``train.json``/``validation.json``) is a JSON list of ``{"id": "123", "template": "Putting [something]
on [something]", "label": ..., "placeholders": [...]}``. The video is ``{id}{video_ext}`` (``.webm`` by default) and
the class is the template with the square brackets removed, the official SSv2 convention.

``folder``. ``root/<class name>/<video files>``; classes are the sorted sub-directory names, videos the files with a
video extension, sorted.

Paths. Relative video paths are joined to ``data_root`` when given, else to the directory of the list file (for
``folder``: the root itself), so lists written next to their videos need no data root.

Errors name the file, the line number and what was expected (:class:`ListFormatError`, a ``ValueError``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Literal, NamedTuple

from uv2.io import atomic_write_text

__all__ = [
    "VideoRecord",
    "ListFormatError",
    "ListFormat",
    "read_classes_file",
    "read_csv_list",
    "read_ssv2_list",
    "read_folder",
    "load_video_list",
    "read_video_paths",
    "write_csv_list",
    "write_lines_atomic",
]

ListFormat = Literal["csv", "ssv2", "folder"]
LIST_FORMATS: tuple[str, ...] = ("csv", "ssv2", "folder")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


class ListFormatError(ValueError):
    """A malformed list or classes file; the message names the file and line."""


class VideoRecord(NamedTuple):
    """One video of a list: a ``(path, label)`` tuple."""

    path: str  # path of the video file (data root already applied)
    label: int  # class index into the list's class names


def _resolve(path: str, base: str | os.PathLike | None) -> str:
    return os.path.normpath(os.path.join(base, path)) if base and not os.path.isabs(path) else path


def write_lines_atomic(path: str | os.PathLike, lines: Sequence[str]) -> None:
    """Write text lines to ``path`` atomically (a temporary file in the same directory, then ``os.replace``)."""
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_classes_file(path: str | os.PathLike) -> list[str]:
    """Class names, one per line (blank lines ignored); duplicate names are an error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"classes file not found: {path}")
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


def _split_line(line: str) -> tuple[str, str] | None:
    """``path,label`` or ``path label`` -> (path, label); None when there is no separator."""
    if "," in line:
        path, label = line.rsplit(",", 1)
    else:
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            return None
        path, label = parts
    path, label = path.strip(), label.strip()
    return (path, label) if path and label else None


def read_csv_list(
    list_path: str | os.PathLike,
    classes_file: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Read a Kinetics-style list (see module docstring).

    Without a classes file the labels must be integers and the class names are ``"0" .. str(max label)``.
    """
    list_path = os.fspath(list_path)
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"video list not found: {list_path}")
    class_names = read_classes_file(classes_file) if classes_file else None
    name_to_index = {n: i for i, n in enumerate(class_names)} if class_names else {}
    base = data_root if data_root else os.path.dirname(os.path.abspath(list_path))
    expected = "expected 'path,label' or 'path label' with an integer label or a class name"
    records: list[VideoRecord] = []
    first_content = True
    with open(list_path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            split = _split_line(line)
            if first_content:
                first_content = False
                if split is not None and (split[0].lower(), split[1].lower()) == ("path", "label"):
                    continue
            if split is None:
                raise ListFormatError(f"{list_path}:{lineno}: {expected}; got {line!r}")
            path, label_text = split
            if _is_int(label_text):
                label = int(label_text)
                if label < 0:
                    raise ListFormatError(f"{list_path}:{lineno}: label must be >= 0, got {label}")
                if class_names is not None and label >= len(class_names):
                    raise ListFormatError(
                        f"{list_path}:{lineno}: label {label} out of range for {len(class_names)} classes "
                        f"in {classes_file} (valid: 0..{len(class_names) - 1})"
                    )
            elif class_names is None:
                raise ListFormatError(
                    f"{list_path}:{lineno}: label {label_text!r} is a class name but no classes file was given; "
                    "pass classes_file (one class name per line) or use integer labels"
                )
            elif label_text in name_to_index:
                label = name_to_index[label_text]
            else:
                raise ListFormatError(
                    f"{list_path}:{lineno}: unknown class name {label_text!r}; not in {classes_file} "
                    f"({len(class_names)} classes, e.g. {', '.join(map(repr, class_names[:5]))})"
                )
            records.append(VideoRecord(_resolve(path, base), label))
    if not records:
        raise ListFormatError(f"{list_path}: no videos listed ({expected})")
    if class_names is None:
        class_names = [str(i) for i in range(max(r.label for r in records) + 1)]
    return records, class_names


def _is_int(text: str) -> bool:
    return text.isdigit() or (text[:1] in "+-" and text[1:].isdigit())


def _json_array_with_lines(path: str) -> list[tuple[int, object]]:
    """Parse a JSON array file, returning (line number, element) pairs."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    decoder = json.JSONDecoder()
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise ListFormatError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise ListFormatError(f"{path}:{text.count(chr(10), 0, pos) + 1}: expected a JSON list of videos")
    pos = _skip_ws(text, pos + 1)
    items: list[tuple[int, object]] = []
    while pos < len(text) and text[pos] != "]":
        value, end = decoder.raw_decode(text, pos)
        items.append((text.count("\n", 0, pos) + 1, value))
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    return items


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def read_ssv2_labels(labels_json: str | os.PathLike) -> list[str]:
    """Class names from SSv2 ``labels.json`` ({"class name": "index"}), ordered by index."""
    labels_json = os.fspath(labels_json)
    if not os.path.isfile(labels_json):
        raise FileNotFoundError(f"SSv2 labels file not found: {labels_json}")
    with open(labels_json, encoding="utf-8") as f:
        text = f.read()
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as e:
        raise ListFormatError(f"{labels_json}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ListFormatError(f'{labels_json}:1: expected a JSON object {{"class name": "index", ...}}')
    names: dict[int, str] = {}
    for name, value in mapping.items():
        line = text.count("\n", 0, max(text.find(json.dumps(name)), 0)) + 1
        if not (isinstance(value, str) and value.isdigit()) and not isinstance(value, int):
            raise ListFormatError(
                f"{labels_json}:{line}: class {name!r} has index {value!r}; expected an integer string"
            )
        index = int(value)
        if index in names:
            raise ListFormatError(f"{labels_json}:{line}: index {index} used by both {names[index]!r} and {name!r}")
        names[index] = name
    if sorted(names) != list(range(len(names))):
        raise ListFormatError(f"{labels_json}: class indices must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


def read_ssv2_list(
    split_json: str | os.PathLike,
    labels_json: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
) -> tuple[list[VideoRecord], list[str]]:
    """Read an SSv2 split file with its ``labels.json`` (see module docstring)."""
    split_json = os.fspath(split_json)
    if not os.path.isfile(split_json):
        raise FileNotFoundError(f"SSv2 split file not found: {split_json}")
    class_names = read_ssv2_labels(labels_json)
    name_to_index = {n: i for i, n in enumerate(class_names)}
    base = data_root if data_root else os.path.dirname(os.path.abspath(split_json))
    expected = 'expected an object {"id": "<video id>", "template": "<class with [brackets]>", ...}'
    records = []
    for lineno, item in _json_array_with_lines(split_json):
        if not isinstance(item, dict) or "id" not in item or "template" not in item:
            raise ListFormatError(f"{split_json}:{lineno}: {expected}; got {json.dumps(item)[:120]}")
        video_id = str(item["id"]).strip()
        if not video_id:
            raise ListFormatError(f"{split_json}:{lineno}: empty video id; {expected}")
        name = str(item["template"]).replace("[", "").replace("]", "")
        if name not in name_to_index:
            raise ListFormatError(
                f"{split_json}:{lineno}: class {name!r} (from template {item['template']!r}) is not in {labels_json}"
            )
        records.append(VideoRecord(_resolve(video_id + video_ext, base), name_to_index[name]))
    if not records:
        raise ListFormatError(f"{split_json}: no videos listed ({expected})")
    return records, class_names


def read_folder(
    root: str | os.PathLike, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> tuple[list[VideoRecord], list[str]]:
    """Read ``root/<class>/<video>`` (classes = sorted sub-directories, videos = sorted files with ``extensions``)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"video folder not found: {root}")
    class_names = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    if not class_names:
        raise ListFormatError(f"{root}: expected one sub-directory per class (root/<class name>/<video files>)")
    exts = tuple(e.lower() for e in extensions)
    records = []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            if file.lower().endswith(exts) and os.path.isfile(os.path.join(folder, file)):
                records.append(VideoRecord(os.path.join(folder, file), label))
    if not records:
        raise ListFormatError(f"{root}: no video files ({', '.join(exts)}) in its class sub-directories")
    return records, class_names


def load_video_list(
    list_format: ListFormat,
    list_path: str | os.PathLike,
    classes_file: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
) -> tuple[list[VideoRecord], list[str]]:
    """Read a list in any format.

    Args:
        list_format: "csv", "ssv2" or "folder".
        list_path: the CSV file, the SSv2 split JSON, or the folder root.
        classes_file: CSV: optional classes file; SSv2: ``labels.json`` (required); folder: unused.
        data_root: prefix for relative video paths (CSV, SSv2).
        video_ext: SSv2 video file extension.
    """
    if list_format == "csv":
        return read_csv_list(list_path, classes_file, data_root)
    if list_format == "ssv2":
        if not classes_file:
            raise ValueError(f"list_format='ssv2' needs classes_file (the SSv2 labels.json) for {list_path}")
        return read_ssv2_list(list_path, classes_file, data_root, video_ext)
    if list_format == "folder":
        return read_folder(list_path)
    raise ValueError(f"unknown list_format {list_format!r}; valid choices: {', '.join(LIST_FORMATS)}")


def read_video_paths(
    list_path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
) -> list[str]:
    """Video paths of any list, labels ignored (for ``check-videos``).

    A directory is read as a folder tree (or, without class sub-directories, its video files); ``*.json`` as an SSv2
    split (only ``id`` is needed); anything else as lines of ``path``, ``path,label`` or ``path label`` (a trailing
    label is dropped only when it is an integer or the line has a comma; a header ``path,label`` is skipped).
    """
    list_path = os.fspath(list_path)
    if os.path.isdir(list_path):
        subdirs = [d for d in os.scandir(list_path) if d.is_dir() and not d.name.startswith(".")]
        if subdirs:
            return [r.path for r in read_folder(list_path)[0]]
        return [
            os.path.join(list_path, f) for f in sorted(os.listdir(list_path)) if f.lower().endswith(VIDEO_EXTENSIONS)
        ]
    if not os.path.isfile(list_path):
        raise FileNotFoundError(f"video list not found: {list_path}")
    base = data_root if data_root else os.path.dirname(os.path.abspath(list_path))
    if list_path.lower().endswith(".json"):
        paths = []
        for lineno, item in _json_array_with_lines(list_path):
            if not isinstance(item, dict) or "id" not in item:
                raise ListFormatError(f'{list_path}:{lineno}: expected an object with an "id" field')
            paths.append(_resolve(str(item["id"]) + video_ext, base))
        return paths
    paths = []
    with open(list_path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            split = _split_line(line)
            if split is not None and (split[0].lower(), split[1].lower()) == ("path", "label") and not paths:
                continue
            if split is not None and ("," in line or _is_int(split[1])):
                line = split[0]
            paths.append(_resolve(line, base))
    return paths


def write_csv_list(path: str | os.PathLike, records: Sequence[tuple[str, int]]) -> None:
    """Write ``path,label`` lines atomically (no header)."""
    write_lines_atomic(path, [f"{p},{label}" for p, label in records])
