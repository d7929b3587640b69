"""Video lists: Kinetics-style CSV, Something-Something V2 JSON, Moments in Time and Something-Something V1 lists
as released, mmaction2's rawframe lists, folder-per-class trees; ActivityNet / HACS annotation files to video-level
lists.

Every reader returns ``(records, class_names)``: a list of :class:`VideoRecord` (path, integer label, and the frame
count when the list gives one) and the class names indexed by label. A record's path is a video file or a frame
folder (a directory of numbered images, :mod:`uv2.data.frames`); the dataset tells them apart on disk, so any format
may list either.

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

``mit`` (Moments in Time V1 as released in ``Moments_in_Time_Raw``). The classes file is ``moments_categories.txt``,
one ``class name,index`` per line (indices 0..N-1, any order); a split file (``trainingSet.csv`` /
``validationSet.csv``) has one ``filename,class name,positive votes,negative votes`` row per video (only the first
two fields are read; a header row starting with ``filename`` is skipped). The release keeps the videos of
``trainingSet.csv`` under ``training/`` and those of ``validationSet.csv`` under ``validation/`` (filenames such as
``blocking/getty-karate-video-id635808620_4.mp4``), so for those two file names the videos are looked up in that
sub-directory of the data root; any other list's filenames are relative to the data root itself.

``ssv1`` (Something-Something V1 as released: frame folders). A split file (``something-something-v1-train.csv`` /
``-validation.csv``) has one ``id;class name`` line per video; the labels file
(``something-something-v1-labels.csv``) has one class name per line, the line order being the label index. A
record's path is the video's frame folder ``<data root>/<id>`` (JPEG frames ``00001.jpg``, ...), counted when read.

``rawframes`` (mmaction2's rawframe lists, any frame-folder layout). One ``frame_dir total_frames label`` line per
video, whitespace-separated: the frame folder, its frame count (the frames the video has, as mmaction2 reads them:
files numbered past it are ignored) and the label, an integer or a class name of the classes file (the rest of the
line, so names may hold spaces). Blank lines and lines starting with ``#`` are skipped. mmaction2's variants with a
frame offset or several labels per line are not read: their lines are reported.

``folder``. ``root/<class name>/<videos>``; classes are the sorted sub-directory names, videos the files with a video
extension and the sub-directories (frame folders, e.g. ``root/<class>/<video>/img_00001.jpg``) of each, sorted.

ActivityNet v1.3 and HACS Segments (untrimmed videos) are released as an annotation JSON (``database``: per YouTube
id its ``subset``, ``duration`` and annotated ``segment``/``label`` pairs). The official UniFormerV2 configs train and
test them as Kinetics is trained (``TRAIN.DATASET: kinetics_sparse``): a video-level ``path label`` list, clips
sampled over the whole untrimmed video. :func:`read_untrimmed_annotations` turns the JSON into such lists (one row
per video of a subset, its class the label its segments carry), written as ``csv`` lists by ``python -m uv2
untrimmed-lists``.

Paths. Relative video paths are joined to ``data_root`` when given, else to the directory of the list file (for
``folder``: the root itself), so lists written next to their videos need no data root.

Errors name the file, the line number and what was expected (:class:`ListFormatError`, a ``ValueError``).
"""

from __future__ import annotations

import csv
import difflib
import json
import os
import re
from collections.abc import Sequence
from typing import Literal, NamedTuple

from uv2.errors import MissingFileError
from uv2.io import atomic_write_text
from uv2.labels import ListFormatError, read_classes_file

__all__ = [
    "VideoRecord",
    "ListFormatError",
    "ListFormat",
    "read_classes_file",
    "read_csv_list",
    "read_ssv2_list",
    "read_folder",
    "read_mit_categories",
    "read_mit_list",
    "read_ssv1_list",
    "read_rawframe_list",
    "read_untrimmed_annotations",
    "load_video_list",
    "guess_list_format",
    "read_list_entries",
    "read_video_paths",
    "write_csv_list",
    "write_lines_atomic",
]

ListFormat = Literal["csv", "ssv2", "folder", "mit", "ssv1", "rawframes"]
LIST_FORMATS: tuple[str, ...] = ("csv", "ssv2", "folder", "mit", "ssv1", "rawframes")
# Moments in Time: the release's split file -> the sub-directory of the data root that holds its videos
MIT_SPLIT_DIRS = {"trainingSet.csv": "training", "validationSet.csv": "validation"}
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


class VideoRecord(NamedTuple):
    """One video of a list: ``(path, label)``; for frame folders, what the list format says of them."""

    path: str  # path of the video file or frame folder (data root already applied)
    label: int  # class index into the list's class names
    num_frames: int | None = None  # frames of a frame folder as the list gives them (rawframes); None: counted
    frame_folder: bool = False  # the list format names frame folders (ssv1, rawframes); else told on disk (a directory)


def _resolve(path: str, base: str | os.PathLike | None) -> str:
    return os.path.normpath(os.path.join(base, path)) if base and not os.path.isabs(path) else path


def write_lines_atomic(path: str | os.PathLike, lines: Sequence[str]) -> None:
    """Write text lines to ``path`` atomically (a temporary file in the same directory, then ``os.replace``)."""
    atomic_write_text(path, "".join(line + "\n" for line in lines))


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


def _base_dir(list_path: str, data_root: str | os.PathLike | None) -> str | os.PathLike:
    """Where a list's relative paths start: the data root when given, else the list's own folder."""
    return data_root if data_root else os.path.dirname(os.path.abspath(list_path))


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
        raise MissingFileError(f"video list not found: {list_path}")
    class_names = read_classes_file(classes_file) if classes_file else None
    name_to_index = {n: i for i, n in enumerate(class_names)} if class_names else {}
    base = _base_dir(list_path, data_root)
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
            label = _label(label_text, f"{list_path}:{lineno}", class_names, name_to_index, classes_file)
            records.append(VideoRecord(_resolve(path, base), label))
    if not records:
        raise ListFormatError(f"{list_path}: no videos listed ({expected})")
    if class_names is None:
        class_names = [str(i) for i in range(max(r.label for r in records) + 1)]
    return records, class_names


def _label(
    text: str,
    where: str,
    class_names: list[str] | None,
    name_to_index: dict[str, int],
    classes_file: str | os.PathLike | None,
) -> int:
    """A list's label field: an integer index (in range of the classes file when there is one) or a class name of
    the classes file; ``where`` (``file:line``) starts the error."""
    if _is_int(text):
        label = int(text)
        if label < 0:
            raise ListFormatError(f"{where}: label must be >= 0, got {label}")
        if class_names is not None and label >= len(class_names):
            raise ListFormatError(f"{where}: label {label} out of range for {len(class_names)} classes in "
                                  f"{classes_file} (valid: 0..{len(class_names) - 1})")
        return label
    if class_names is None:
        raise ListFormatError(f"{where}: label {text!r} is a class name but no classes file was given; pass "
                              "classes_file (one class name per line) or use integer labels")
    if text not in name_to_index:
        raise ListFormatError(f"{where}: unknown class name {text!r}; not in {classes_file} ({len(class_names)} "
                              f"classes, e.g. {', '.join(map(repr, class_names[:5]))}{_closest(text, class_names)})")
    return name_to_index[text]


def _is_int(text: str) -> bool:
    return text.isdigit() or (text[:1] in "+-" and text[1:].isdigit())


def _read_json(path: str) -> tuple[str, object]:
    """(the file's text, its JSON value); invalid JSON is a ListFormatError naming the file, line and column."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as e:
        raise ListFormatError(f"{path}:{e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None


def _json_array_with_lines(path: str) -> list[tuple[int, object]]:
    """Parse a JSON array file, returning (line number, element) pairs."""
    text, _ = _read_json(path)
    decoder = json.JSONDecoder()
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
        raise MissingFileError(f"SSv2 labels file not found: {labels_json}")
    text, mapping = _read_json(labels_json)
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
        raise MissingFileError(f"SSv2 split file not found: {split_json}")
    class_names = read_ssv2_labels(labels_json)
    name_to_index = {n: i for i, n in enumerate(class_names)}
    base = _base_dir(split_json, data_root)
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
    """Read ``root/<class>/<video>`` (classes = sorted sub-directories; videos = the files with ``extensions`` and the
    frame folders (sub-directories, not hidden) of each class, sorted)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise MissingFileError(f"video folder not found: {root}")
    class_names = sorted(d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith("."))
    if not class_names:
        raise ListFormatError(f"{root}: expected one sub-directory per class (root/<class name>/<video files>)")
    exts = tuple(e.lower() for e in extensions)
    records = []
    for label, name in enumerate(class_names):
        folder = os.path.join(root, name)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            video_file = entry.name.lower().endswith(exts) and entry.is_file()
            if video_file or (entry.is_dir() and not entry.name.startswith(".")):
                records.append(VideoRecord(os.path.join(folder, entry.name), label))
    if not records:
        raise ListFormatError(f"{root}: no video files ({', '.join(exts)}) or frame folders in its class "
                              "sub-directories")
    return records, class_names


def read_mit_categories(path: str | os.PathLike) -> list[str]:
    """Class names of Moments in Time's ``moments_categories.txt`` (``class name,index`` lines), ordered by index."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"Moments in Time categories file not found: {path}")
    by_index: dict[int, tuple[str, int]] = {}
    lines_of: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            name, sep, index = line.rpartition(",")
            name, index = name.strip(), index.strip()
            if not sep or not name or not index.isdigit():
                raise ListFormatError(f"{path}:{lineno}: expected 'class name,index' (moments_categories.txt); "
                                      f"got {line!r}")
            if name in lines_of:
                raise ListFormatError(f"{path}:{lineno}: duplicate class name {name!r} (first on line {lines_of[name]})")
            if int(index) in by_index:
                raise ListFormatError(f"{path}:{lineno}: index {index} used by both {by_index[int(index)][0]!r} "
                                      f"(line {by_index[int(index)][1]}) and {name!r}")
            lines_of[name] = lineno
            by_index[int(index)] = (name, lineno)
    if not by_index:
        raise ListFormatError(f"{path}: no classes (expected 'class name,index' lines, moments_categories.txt)")
    if sorted(by_index) != list(range(len(by_index))):
        gaps = sorted(set(range(max(by_index) + 1)) - set(by_index))[:5]
        raise ListFormatError(f"{path}: class indices must be 0..{len(by_index) - 1} without gaps; missing {gaps}")
    return [by_index[i][0] for i in range(len(by_index))]


def read_mit_list(
    split_csv: str | os.PathLike,
    categories_file: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Read a Moments in Time split file with ``moments_categories.txt`` (see module docstring)."""
    split_csv = os.fspath(split_csv)
    if not os.path.isfile(split_csv):
        raise MissingFileError(f"Moments in Time split file not found: {split_csv}")
    class_names = read_mit_categories(categories_file)
    name_to_index = {n: i for i, n in enumerate(class_names)}
    root = _base_dir(split_csv, data_root)
    base = os.path.join(root, MIT_SPLIT_DIRS.get(os.path.basename(split_csv), ""))
    expected = "expected 'filename,class name[,positive votes,negative votes]'"
    records: list[VideoRecord] = []
    with open(split_csv, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            fields = [field.strip() for field in row]
            if not any(fields) or fields[0].startswith("#"):
                continue
            if not records and fields[0].lower() == "filename":
                continue  # a header row
            if len(fields) < 2 or not fields[0] or not fields[1]:
                raise ListFormatError(f"{split_csv}:{lineno}: {expected}; got {','.join(row)!r}")
            name = fields[1]
            if name not in name_to_index:
                raise ListFormatError(f"{split_csv}:{lineno}: class {name!r} is not in {categories_file} "
                                      f"({len(class_names)} classes{_closest(name, class_names)})")
            records.append(VideoRecord(_resolve(fields[0], base), name_to_index[name]))
    if not records:
        raise ListFormatError(f"{split_csv}: no videos listed ({expected})")
    return records, class_names


def read_ssv1_list(
    split_csv: str | os.PathLike,
    labels_file: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Read a Something-Something V1 split file (``id;class name`` lines) with its labels file (one class name per
    line). Records point at frame folders ``<data_root>/<id>`` (see module docstring)."""
    split_csv = os.fspath(split_csv)
    if not os.path.isfile(split_csv):
        raise MissingFileError(f"Something-Something V1 split file not found: {split_csv}")
    class_names = read_classes_file(labels_file)
    name_to_index = {n: i for i, n in enumerate(class_names)}
    base = _base_dir(split_csv, data_root)
    expected = "expected 'id;class name' (something-something-v1-train.csv / -validation.csv)"
    records: list[VideoRecord] = []
    with open(split_csv, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            video_id, sep, name = line.partition(";")
            video_id, name = video_id.strip(), name.strip()
            if not sep or not video_id or not name:
                hint = " (the released test list has no labels)" if not sep and video_id.isdigit() else ""
                raise ListFormatError(f"{split_csv}:{lineno}: {expected}; got {line!r}{hint}")
            if name not in name_to_index:
                raise ListFormatError(f"{split_csv}:{lineno}: class {name!r} is not in {labels_file} "
                                      f"({len(class_names)} classes{_closest(name, class_names)})")
            records.append(VideoRecord(_resolve(video_id, base), name_to_index[name], frame_folder=True))
    if not records:
        raise ListFormatError(f"{split_csv}: no videos listed ({expected})")
    return records, class_names


def read_rawframe_list(
    list_path: str | os.PathLike,
    classes_file: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Read an mmaction2 rawframe list (``frame_dir total_frames label`` lines; see the module docstring). Without a
    classes file the labels must be integers and the class names are ``"0" .. str(max label)``."""
    list_path = os.fspath(list_path)
    if not os.path.isfile(list_path):
        raise MissingFileError(f"rawframe list not found: {list_path}")
    class_names = read_classes_file(classes_file) if classes_file else None
    name_to_index = {n: i for i, n in enumerate(class_names)} if class_names else {}
    base = _base_dir(list_path, data_root)
    expected = "expected 'frame_dir total_frames label' (mmaction2's rawframe list)"
    records: list[VideoRecord] = []
    with open(list_path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(None, 2)
            where = f"{list_path}:{lineno}"
            if len(fields) != 3 or not fields[1].isdigit():
                raise ListFormatError(f"{where}: {expected}; got {line!r}")
            frame_dir, total, label_text = fields
            if int(total) < 1:
                raise ListFormatError(f"{where}: total_frames must be >= 1, got {total} ({expected})")
            if all(_is_int(t) for t in label_text.split()) and len(label_text.split()) > 1:
                raise ListFormatError(f"{where}: {expected}; got {line!r}: several integers after the frame count "
                                      "(mmaction2's frame-offset or multi-label lines are not read; one label per "
                                      "video)")
            label = _label(label_text, where, class_names, name_to_index, classes_file)
            records.append(VideoRecord(_resolve(frame_dir, base), label, int(total), frame_folder=True))
    if not records:
        raise ListFormatError(f"{list_path}: no videos listed ({expected})")
    if class_names is None:
        class_names = [str(i) for i in range(max(r.label for r in records) + 1)]
    return records, class_names


#: the subsets of an ActivityNet / HACS annotation file that have labels
UNTRIMMED_SUBSETS: tuple[str, ...] = ("training", "validation")


def read_untrimmed_annotations(path: str | os.PathLike) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """An ActivityNet v1.3 / HACS Segments annotation JSON as video-level labels.

    Returns ``({subset: [(video id, class name), ...]}, class names)``: for each labelled subset
    (:data:`UNTRIMMED_SUBSETS`) its videos in the file's order, each labelled with the class of its annotated
    segments (the class covering the most annotated seconds when a video's segments carry several: none do in
    ActivityNet v1.3), and every class name of the annotations, sorted. Videos without segments (the unlabelled
    ``testing`` subset) are left out. The official configs train and test on such video-level lists over the whole
    untrimmed videos (``kinetics_sparse``); the segments' times are not used.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"annotation file not found: {path}")
    _, data = _read_json(path)
    expected = ('expected ActivityNet / HACS Segments annotations: {"database": {"<video id>": {"subset": '
                '"training", "annotations": [{"segment": [start, end], "label": "<class>"}, ...]}, ...}}')
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict) or not database:
        raise ListFormatError(f"{path}: no \"database\" object; {expected}")
    subsets: dict[str, list[tuple[str, str]]] = {name: [] for name in UNTRIMMED_SUBSETS}
    classes: set[str] = set()
    for video_id, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations", []), list):
            raise ListFormatError(f"{path}: video {video_id!r}: {expected}")
        seconds: dict[str, float] = {}
        for annotation in entry.get("annotations", []):
            label, segment = (annotation.get("label"), annotation.get("segment")) if isinstance(annotation, dict) \
                else (None, None)
            if not isinstance(label, str) or not label or not (isinstance(segment, list) and len(segment) == 2):
                raise ListFormatError(f"{path}: video {video_id!r}: annotation {annotation!r}; {expected}")
            seconds[label] = seconds.get(label, 0.0) + max(float(segment[1]) - float(segment[0]), 0.0)
        classes |= set(seconds)
        subset = entry.get("subset")
        if seconds and subset in subsets:
            subsets[subset].append((video_id, max(seconds, key=seconds.__getitem__)))
    if not classes:
        raise ListFormatError(f"{path}: no annotated video; {expected}")
    return subsets, sorted(classes)


def _closest(name: str, class_names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, class_names, n=1, cutoff=0.8)
    return f"; closest: {close[0]!r}" if close else ""


def load_video_list(
    list_format: ListFormat,
    list_path: str | os.PathLike,
    classes_file: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
) -> tuple[list[VideoRecord], list[str]]:
    """Read a list in any format.

    Args:
        list_format: "csv", "ssv2", "folder", "mit", "ssv1" or "rawframes".
        list_path: the CSV file, the SSv2 split JSON, the folder root, the MiT split CSV, the SSv1 split file or the
            rawframe list.
        classes_file: CSV, rawframes: optional classes file; SSv2: ``labels.json``; MiT: ``moments_categories.txt``;
            SSv1: the labels file (required for SSv2, MiT and SSv1); folder: unused.
        data_root: prefix for relative video paths (all but folder).
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
    if list_format in ("mit", "ssv1"):
        what = "moments_categories.txt" if list_format == "mit" else "something-something-v1-labels.csv"
        if not classes_file:
            raise ValueError(f"list_format={list_format!r} needs classes_file ({what}) for {list_path}")
        reader = read_mit_list if list_format == "mit" else read_ssv1_list
        return reader(list_path, classes_file, data_root)
    if list_format == "rawframes":
        return read_rawframe_list(list_path, classes_file, data_root)
    raise ValueError(f"unknown list_format {list_format!r}; valid choices: {', '.join(LIST_FORMATS)}")


def _content_lines(list_path: str) -> list[tuple[int, str]]:
    """(line number, stripped line) of a list's lines that are neither blank nor ``#`` comments."""
    with open(list_path, encoding="utf-8") as f:
        lines = [(lineno, raw.strip()) for lineno, raw in enumerate(f, 1)]
    return [(lineno, line) for lineno, line in lines if line and not line.startswith("#")]


def _is_mit_row(line: str) -> bool:
    """``filename,class name,positive votes,negative votes``."""
    fields = next(csv.reader([line]), [])
    return len(fields) == 4 and _is_int(fields[2].strip()) and _is_int(fields[3].strip())


def guess_list_format(list_path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> str:
    """The format of a list for tools that read only its paths (``check-videos``): a directory is a ``folder`` tree,
    ``*.json`` an ``ssv2`` split; a file whose every line is a Moments in Time row (4 CSV fields, the last two
    integer votes) is ``mit``, one whose every line is ``id;...`` (an id without commas or spaces) ``ssv1``, one
    whose every line is ``name N label`` with the first line's ``name`` an existing folder ``rawframes``; anything
    else ``csv`` (lines of ``path``, ``path,label`` or ``path label``)."""
    list_path = os.fspath(list_path)
    if os.path.isdir(list_path):
        return "folder"
    if list_path.lower().endswith(".json"):
        return "ssv2"
    if not os.path.isfile(list_path):
        raise MissingFileError(f"video list not found: {list_path}")
    lines = [line for _, line in _content_lines(list_path)]
    rows = lines[1:] if lines and lines[0].lower().startswith("filename,") else lines  # a header row
    if rows and all(_is_mit_row(line) for line in rows):
        return "mit"
    if lines and all(";" in line and not re.search(r"[,\s]", line.partition(";")[0]) for line in lines):
        return "ssv1"
    rows = [line.split(None, 2) for line in lines]
    base = _base_dir(list_path, data_root)
    if rows and all(len(r) == 3 and r[1].isdigit() for r in rows) and os.path.isdir(_resolve(rows[0][0], base)):
        return "rawframes"
    return "csv"


def read_list_entries(
    list_path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
    list_format: str = "auto",
) -> list[tuple[str, int | None]]:
    """``(path, frame count the list gives or None)`` of every video of a list, labels ignored (``check-videos``).

    ``list_format``: one of :data:`LIST_FORMATS`, or ``"auto"`` (:func:`guess_list_format`). ``folder``: a folder
    tree (or, without class sub-directories, the folder's video files); ``ssv2``: a split's ``id`` fields; ``mit``:
    the first field of each row (under ``training/`` / ``validation/`` for the release's two split files);
    ``ssv1``: the id before ``;``; ``rawframes``: the frame folder and its count; ``csv``: lines of ``path``,
    ``path,label`` or ``path label`` (a trailing label is dropped only when it is an integer or the line has a
    comma; a header ``path,label`` is skipped).
    """
    list_path = os.fspath(list_path)
    if list_format == "auto":
        list_format = guess_list_format(list_path, data_root)
    if list_format not in LIST_FORMATS:
        raise ValueError(f"unknown list_format {list_format!r}; valid choices: auto, {', '.join(LIST_FORMATS)}")
    if list_format == "folder":
        if not os.path.isdir(list_path):
            raise MissingFileError(f"video folder not found: {list_path}")
        subdirs = [d for d in os.scandir(list_path) if d.is_dir() and not d.name.startswith(".")]
        if subdirs:
            return [(r.path, None) for r in read_folder(list_path)[0]]
        return [(os.path.join(list_path, f), None) for f in sorted(os.listdir(list_path))
                if f.lower().endswith(VIDEO_EXTENSIONS)]
    if not os.path.isfile(list_path):
        raise MissingFileError(f"video list not found: {list_path}")
    base = _base_dir(list_path, data_root)
    if list_format == "ssv2":
        entries = []
        for lineno, item in _json_array_with_lines(list_path):
            if not isinstance(item, dict) or "id" not in item:
                raise ListFormatError(f'{list_path}:{lineno}: expected an object with an "id" field')
            entries.append((_resolve(str(item["id"]) + video_ext, base), None))
        return entries
    if list_format == "rawframes":
        entries = []
        for lineno, line in _content_lines(list_path):
            fields = line.split(None, 2)
            if len(fields) != 3 or not fields[1].isdigit() or int(fields[1]) < 1:
                raise ListFormatError(f"{list_path}:{lineno}: expected 'frame_dir total_frames label' (mmaction2's "
                                      f"rawframe list, total_frames >= 1); got {line!r}")
            entries.append((_resolve(fields[0], base), int(fields[1])))
        return entries
    if list_format == "mit":
        base = os.path.join(base, MIT_SPLIT_DIRS.get(os.path.basename(list_path), ""))
        entries = []
        for _, line in _content_lines(list_path):
            first = next(csv.reader([line]))[0].strip()
            if first and not (not entries and first.lower() == "filename"):
                entries.append((_resolve(first, base), None))
        return entries
    if list_format == "ssv1":
        return [(_resolve(line.partition(";")[0].strip(), base), None) for _, line in _content_lines(list_path)]
    entries = []
    for _, line in _content_lines(list_path):
        split = _split_line(line)
        if split is not None and (split[0].lower(), split[1].lower()) == ("path", "label") and not entries:
            continue
        if split is not None and ("," in line or _is_int(split[1])):
            line = split[0]
        entries.append((_resolve(line, base), None))
    return entries


def read_video_paths(
    list_path: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    video_ext: str = ".webm",
    list_format: str = "auto",
) -> list[str]:
    """Video paths (files or frame folders) of any list, labels ignored: :func:`read_list_entries`' paths."""
    return [path for path, _ in read_list_entries(list_path, data_root, video_ext, list_format)]


def write_csv_list(path: str | os.PathLike, records: Sequence[tuple[str, int]]) -> None:
    """Write ``path,label`` lines atomically (no header)."""
    write_lines_atomic(path, [f"{record[0]},{record[1]}" for record in records])
