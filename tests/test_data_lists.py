"""List formats (uv2.data.lists): Kinetics CSV, SSv2 JSON, folder tree; errors name file and line."""

import json
import os

import pytest

from uv2.data.lists import (
    ListFormatError,
    VideoRecord,
    load_video_list,
    read_classes_file,
    read_csv_list,
    read_folder,
    read_ssv2_list,
    read_video_paths,
)


def _write(path, text):
    path.write_text(text)
    return path


def test_csv_int_labels_both_separators_header_and_paths(tmp_path):
    lst = _write(tmp_path / "train.csv", "path,label\na/x.mp4,0\n\n# comment\nb/y z.mp4,2\n/abs/v.mp4 1\n")
    records, names = read_csv_list(lst)
    assert records == [
        VideoRecord(str(tmp_path / "a/x.mp4"), 0),
        VideoRecord(str(tmp_path / "b/y z.mp4"), 2),
        VideoRecord("/abs/v.mp4", 1),
    ]
    assert names == ["0", "1", "2"]
    records, _ = read_csv_list(lst, data_root="/data/k400")
    assert records[0].path == os.path.join("/data/k400", "a/x.mp4")
    assert records[2].path == "/abs/v.mp4"


def test_csv_class_names_with_classes_file(tmp_path):
    classes = _write(tmp_path / "classes.txt", "abseiling\nair drumming\n\nzumba\n")
    lst = _write(tmp_path / "val.csv", "v1.mp4,zumba\nv2.mp4,air drumming\nv3.mp4 abseiling\nv4.mp4,1\n")
    records, names = read_csv_list(lst, classes_file=classes)
    assert names == ["abseiling", "air drumming", "zumba"]
    assert [r.label for r in records] == [2, 1, 0, 1]
    records2, names2 = load_video_list("csv", lst, classes, None)
    assert records2 == records and names2 == names


@pytest.mark.parametrize(
    "content, classes, line, message",
    [
        ("a.mp4,0\nno_label_here\n", False, 2, "expected 'path,label' or 'path label'"),
        ("a.mp4,0\nb.mp4,\n", False, 2, "expected 'path,label'"),
        ("a.mp4,dancing\n", False, 1, "no classes file was given"),
        ("a.mp4,0\n\nb.mp4,knitting\n", True, 3, "unknown class name 'knitting'"),
        ("a.mp4,0\nb.mp4,7\n", True, 2, "out of range for 2 classes"),
        ("a.mp4,-1\n", False, 1, "must be >= 0"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path, content, classes, line, message):
    lst = _write(tmp_path / "bad.csv", content)
    cls = _write(tmp_path / "classes.txt", "dancing\nsinging\n") if classes else None
    with pytest.raises(ListFormatError) as err:
        read_csv_list(lst, classes_file=cls)
    assert f"{lst}:{line}:" in str(err.value)
    assert message in str(err.value)


def test_classes_file_errors(tmp_path):
    dup = _write(tmp_path / "dup.txt", "a\nb\na\n")
    with pytest.raises(ListFormatError, match=r"dup.txt:3: duplicate class name 'a' \(first on line 1\)"):
        read_classes_file(dup)
    with pytest.raises(ListFormatError, match="no class names"):
        read_classes_file(_write(tmp_path / "empty.txt", "\n\n"))
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_classes_file(tmp_path / "nope.txt")


def _ssv2(tmp_path, items):
    labels = {"Putting something on something": "0", "Pushing something from left to right": "1"}
    labels_path = _write(tmp_path / "labels.json", json.dumps(labels, indent=1))
    split_path = _write(tmp_path / "train.json", json.dumps(items, indent=1))
    return labels_path, split_path


def test_ssv2_template_brackets_removed(tmp_path):
    items = [
        {
            "id": "78687",
            "label": "putting a cup on a table",
            "template": "Putting [something] on [something]",
            "placeholders": ["a cup", "a table"],
        },
        {
            "id": "42326",
            "label": "pushing pen from left to right",
            "template": "Pushing [something] from left to right",
            "placeholders": ["pen"],
        },
    ]
    labels_path, split_path = _ssv2(tmp_path, items)
    records, names = read_ssv2_list(split_path, labels_path, data_root="/ssv2")
    assert names == ["Putting something on something", "Pushing something from left to right"]
    assert records == [VideoRecord("/ssv2/78687.webm", 0), VideoRecord("/ssv2/42326.webm", 1)]
    records, _ = load_video_list("ssv2", split_path, labels_path, None, video_ext=".mp4")
    assert records[1].path == str(tmp_path / "42326.mp4")
    assert read_video_paths(split_path, data_root="/ssv2") == ["/ssv2/78687.webm", "/ssv2/42326.webm"]


def test_ssv2_errors_name_file_and_line(tmp_path):
    good = {"id": "1", "template": "Putting [something] on [something]"}
    labels_path, split_path = _ssv2(tmp_path, [good, {"id": "2", "label": "no template"}])
    with pytest.raises(ListFormatError) as err:
        read_ssv2_list(split_path, labels_path)
    line = 6  # json.dumps(indent=1): "[" line 1, first object lines 2-5, second object starts on line 6
    assert f"{split_path}:{line}:" in str(err.value) and '"template"' in str(err.value)
    labels_path, split_path = _ssv2(tmp_path, [good, {"id": "3", "template": "Dropping [something]"}])
    with pytest.raises(ListFormatError, match=r"train.json:6: class 'Dropping something' \(from template"):
        read_ssv2_list(split_path, labels_path)
    broken = _write(tmp_path / "broken.json", '[\n {"id": "1",\n  "template": }\n]')
    with pytest.raises(ListFormatError, match=r"broken.json:3: invalid JSON"):
        read_ssv2_list(broken, labels_path)
    with pytest.raises(ValueError, match="needs classes_file"):
        load_video_list("ssv2", split_path)


def test_folder_tree(tmp_path):
    for cls, files in {"b_walk": ["2.mp4", "1.webm", "notes.txt"], "a_run": ["x.mkv"], ".hidden": ["h.mp4"]}.items():
        (tmp_path / cls).mkdir()
        for f in files:
            (tmp_path / cls / f).write_bytes(b"")
    records, names = read_folder(tmp_path)
    assert names == ["a_run", "b_walk"]
    assert records == [
        VideoRecord(str(tmp_path / "a_run/x.mkv"), 0),
        VideoRecord(str(tmp_path / "b_walk/1.webm"), 1),
        VideoRecord(str(tmp_path / "b_walk/2.mp4"), 1),
    ]
    assert load_video_list("folder", tmp_path) == (records, names)
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(ListFormatError, match="one sub-directory per class"):
        read_folder(tmp_path / "empty_root")


def test_unknown_format_and_plain_path_lists(tmp_path):
    with pytest.raises(ValueError, match="valid choices: csv, ssv2, folder"):
        load_video_list("tsv", tmp_path / "x")
    plain = _write(tmp_path / "paths.txt", "a.mp4\n/abs/b c.mp4\nd.mp4 3\ne.mp4,walking\n")
    assert read_video_paths(plain) == [
        str(tmp_path / "a.mp4"),
        "/abs/b c.mp4",
        str(tmp_path / "d.mp4"),
        str(tmp_path / "e.mp4"),
    ]
