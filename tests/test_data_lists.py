"""List formats (uv2.data.lists): Kinetics CSV (K400 / K600 / K700 class names), SSv2 JSON, Moments in Time and
Something-Something V1 as released, mmaction2 rawframe lists, folder trees (of videos and frame folders), ActivityNet /
HACS annotations to video-level lists, the path-only reading of check-videos; errors name file and line."""

import json
import os

import pytest

from uv2.data.lists import (
    ListFormatError,
    VideoRecord,
    guess_list_format,
    load_video_list,
    read_classes_file,
    read_csv_list,
    read_folder,
    read_list_entries,
    read_mit_categories,
    read_mit_list,
    read_rawframe_list,
    read_ssv1_list,
    read_ssv2_list,
    read_untrimmed_annotations,
    read_video_paths,
    write_csv_list,
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
    with pytest.raises(ValueError, match="valid choices: csv, ssv2, folder, mit, ssv1, rawframes"):
        load_video_list("tsv", tmp_path / "x")
    plain = _write(tmp_path / "paths.txt", "a.mp4\n/abs/b c.mp4\nd.mp4 3\ne.mp4,walking\n")
    assert read_video_paths(plain) == [
        str(tmp_path / "a.mp4"),
        "/abs/b c.mp4",
        str(tmp_path / "d.mp4"),
        str(tmp_path / "e.mp4"),
    ]


def test_csv_covers_kinetics_600_700_class_names(tmp_path):
    """K600 / K700 lists are `path,class name` lines with the set's classes file: names with spaces, parentheses,
    apostrophes and the K600+ spellings resolve; in the space-separated form a name with spaces cannot be told from
    the path and the error says which line."""
    names = ["dyeing hair", "massaging person's head", "petting animal (not cat)", "tying knot (not on a tie)"]
    classes = _write(tmp_path / "k700_classes.txt", "\n".join(names) + "\n")
    lst = _write(tmp_path / "k700_train.csv", "train/dyeing hair/abc_000010_000020.mp4,dyeing hair\n"
                 "train/x/def_000000_000010.mp4,tying knot (not on a tie)\n"
                 "train/x/ghi_000003_000013.mp4,massaging person's head\n")
    records, got = read_csv_list(lst, classes, data_root="/data/k700")
    assert got == names
    assert [r.label for r in records] == [0, 3, 1]
    assert records[0].path == "/data/k700/train/dyeing hair/abc_000010_000020.mp4"
    spaces = _write(tmp_path / "spaces.csv", "a.mp4 petting animal (not cat)\n")
    with pytest.raises(ListFormatError, match=r"spaces.csv:1: unknown class name 'cat\)'"):
        read_csv_list(spaces, classes)


def _mit_release(tmp_path):
    root = tmp_path / "Moments_in_Time_Raw"
    root.mkdir()
    _write(root / "moments_categories.txt", "blocking,1\nadult+female+singing,0\nwalking,2\n")
    _write(root / "trainingSet.csv", "blocking/getty-karate-video-id635808620_4.mp4,blocking,3,0\n"
           "walking/yt-abc_12.mp4,walking,2,1\n")
    _write(root / "validationSet.csv", "adult+female+singing/vid_1.mp4,adult+female+singing,3,0\n")
    return root


def test_mit_release_lists(tmp_path):
    root = _mit_release(tmp_path)
    assert read_mit_categories(root / "moments_categories.txt") == ["adult+female+singing", "blocking", "walking"]
    records, names = read_mit_list(root / "trainingSet.csv", root / "moments_categories.txt")
    assert names == ["adult+female+singing", "blocking", "walking"]
    # the release keeps trainingSet.csv's videos under training/, validationSet.csv's under validation/
    assert records == [VideoRecord(str(root / "training/blocking/getty-karate-video-id635808620_4.mp4"), 1),
                       VideoRecord(str(root / "training/walking/yt-abc_12.mp4"), 2)]
    val, _ = load_video_list("mit", root / "validationSet.csv", root / "moments_categories.txt", "/data/mit")
    assert val == [VideoRecord("/data/mit/validation/adult+female+singing/vid_1.mp4", 0)]
    own = _write(tmp_path / "mine.csv", "filename,label\nclips/a.mp4,walking,3,0\n")  # header row skipped
    assert load_video_list("mit", own, root / "moments_categories.txt", "/data/mit")[0] == \
        [VideoRecord("/data/mit/clips/a.mp4", 2)]


@pytest.mark.parametrize("file,content,message", [
    ("moments_categories.txt", "blocking\n", r"moments_categories.txt:1: expected 'class name,index'"),
    ("moments_categories.txt", "a,0\nb,2\n", r"indices must be 0..1 without gaps; missing \[1\]"),
    ("moments_categories.txt", "a,0\nb,0\n", r"moments_categories.txt:2: index 0 used by both 'a' \(line 1\) and 'b'"),
    ("trainingSet.csv", "blocking/x.mp4\n", r"trainingSet.csv:1: expected 'filename,class name"),
    ("trainingSet.csv", "w/x.mp4,walkin,3,0\n", r"trainingSet.csv:1: class 'walkin' is not in .*closest: 'walking'"),
])
def test_mit_errors_name_file_and_line(tmp_path, file, content, message):
    root = _mit_release(tmp_path)
    _write(root / file, content)
    with pytest.raises(ListFormatError, match=message):
        read_mit_list(root / "trainingSet.csv", root / "moments_categories.txt")


def test_ssv1_release_lists_point_at_frame_folders(tmp_path):
    labels = _write(tmp_path / "something-something-v1-labels.csv",
                    "Approaching something with your camera\nPutting something, something and something on the table\n")
    train = _write(tmp_path / "something-something-v1-train.csv",
                   "100218;Putting something, something and something on the table\n\n7;Approaching something with your camera\n")
    records, names = load_video_list("ssv1", train, labels, "/data/ssv1/20bn-something-something-v1")
    assert names == ["Approaching something with your camera", "Putting something, something and something on the table"]
    assert records == [VideoRecord("/data/ssv1/20bn-something-something-v1/100218", 1, frame_folder=True),
                       VideoRecord("/data/ssv1/20bn-something-something-v1/7", 0, frame_folder=True)]
    assert read_ssv1_list(train, labels)[0][1].path == str(tmp_path / "7")
    unlabelled = _write(tmp_path / "something-something-v1-test.csv", "1420\n")
    with pytest.raises(ListFormatError, match=r"test.csv:1: expected 'id;class name'.*released test list has no labels"):
        read_ssv1_list(unlabelled, labels)
    typo = _write(tmp_path / "typo.csv", "5;Approaching something with your cam\n")
    with pytest.raises(ListFormatError, match=r"typo.csv:1: class .* closest: 'Approaching something with your camera'"):
        read_ssv1_list(typo, labels)
    with pytest.raises(ValueError, match=r"list_format='ssv1' needs classes_file \(something-something-v1-labels.csv\)"):
        load_video_list("ssv1", train)


def test_rawframe_lists(tmp_path):
    """mmaction2's `frame_dir total_frames label` lines: integer labels or class names (with spaces), the count kept
    in the record, frame folders by format."""
    lst = _write(tmp_path / "train_rawframes.txt", "# mmaction2\nclimbing/v_001 120 0\n/abs/v_002 96 2\n\n")
    records, names = read_rawframe_list(lst, data_root="/data/ucf")
    assert records == [VideoRecord("/data/ucf/climbing/v_001", 0, 120, frame_folder=True),
                       VideoRecord("/abs/v_002", 2, 96, frame_folder=True)]
    assert names == ["0", "1", "2"]
    classes = _write(tmp_path / "classes.txt", "rock climbing\nsurfing\n")
    named = _write(tmp_path / "named.txt", "a 10 rock climbing\nb 7 1\n")
    assert [(r.path, r.label, r.num_frames) for r in load_video_list("rawframes", named, classes)[0]] == \
        [(str(tmp_path / "a"), 0, 10), (str(tmp_path / "b"), 1, 7)]


@pytest.mark.parametrize("content,message", [
    ("v_001 0\n", r"bad.txt:1: expected 'frame_dir total_frames label'"),
    ("v_001 many 3\n", r"bad.txt:1: expected 'frame_dir total_frames label'"),
    ("ok 5 0\nv_001 0 3\n", r"bad.txt:2: total_frames must be >= 1"),
    ("v_001 40 3 7\n", r"bad.txt:1: .*several integers after the frame count .*one label per video"),
    ("v_001 40 climbing\n", r"bad.txt:1: label 'climbing' is a class name but no classes file"),
])
def test_rawframe_errors_name_file_and_line(tmp_path, content, message):
    with pytest.raises(ListFormatError, match=message):
        read_rawframe_list(_write(tmp_path / "bad.txt", content))


def test_folder_tree_of_frame_folders(tmp_path):
    """root/<class>/<video>/ frame folders are videos of the tree too (UCF101-style extractions)."""
    for path in ("jump/v1/img_00001.jpg", "jump/v2.mp4", "run/v3/img_00001.jpg", "run/.cache/x", "run/notes.txt"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    records, names = read_folder(tmp_path)
    assert names == ["jump", "run"]
    assert records == [VideoRecord(str(tmp_path / "jump/v1"), 0), VideoRecord(str(tmp_path / "jump/v2.mp4"), 0),
                       VideoRecord(str(tmp_path / "run/v3"), 1)]
    write_csv_list(tmp_path / "out.csv", records)  # records with their extra fields write as path,label
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == f"{tmp_path / 'jump/v1'},0"


def test_paths_of_every_format_for_check_videos(tmp_path):
    """check-videos reads only paths: each format's own field, the format guessed from the file when not given."""
    mit = _write(tmp_path / "mit_val.csv", "filename,label,pos,neg\n\"blocking/a,b.mp4\",blocking,3,0\n"
                                          "walking/c.mp4,walking,2,1\n")  # a quoted name with a comma
    assert guess_list_format(mit) == "mit"
    assert read_video_paths(mit, "/data/mit") == ["/data/mit/blocking/a,b.mp4", "/data/mit/walking/c.mp4"]
    release = _write(tmp_path / "validationSet.csv", "adult+female+singing/vid_1.mp4,adult+female+singing,3,0\n")
    assert read_video_paths(release, "/data/mit") == ["/data/mit/validation/adult+female+singing/vid_1.mp4"]
    ssv1 = _write(tmp_path / "something-something-v1-validation.csv",
                  "9223;Putting something, something and something on the table\n74225;Pushing something\n")
    assert guess_list_format(ssv1) == "ssv1"
    assert read_video_paths(ssv1, "/data/ssv1/frames") == ["/data/ssv1/frames/9223", "/data/ssv1/frames/74225"]
    (tmp_path / "rgb" / "v_1").mkdir(parents=True)
    raw = _write(tmp_path / "val_rawframes.txt", "rgb/v_1 40 3\nrgb/v_2 12 0\n")
    assert guess_list_format(raw) == "rawframes"
    assert read_list_entries(raw) == [(str(tmp_path / "rgb/v_1"), 40), (str(tmp_path / "rgb/v_2"), 12)]
    kinetics = _write(tmp_path / "k400.csv", "path,label\nabseiling/x y.mp4,abseiling\nb.mp4 3\n")
    assert guess_list_format(kinetics) == "csv"
    assert read_list_entries(kinetics) == [(str(tmp_path / "abseiling/x y.mp4"), None), (str(tmp_path / "b.mp4"), None)]
    assert read_video_paths(ssv1, "/r", list_format="csv") != read_video_paths(ssv1, "/r")  # a given format wins
    assert guess_list_format(tmp_path) == "folder"
    with pytest.raises(ValueError, match="unknown list_format 'tsv'; valid choices: auto, csv"):
        read_list_entries(kinetics, list_format="tsv")
    with pytest.raises(ListFormatError, match=r"bad_raw.txt:2: expected 'frame_dir total_frames label'"):
        read_list_entries(_write(tmp_path / "bad_raw.txt", "a 1 0\nb x 0\n"), list_format="rawframes")


def _activitynet(tmp_path, database):
    return _write(tmp_path / "activity_net.v1-3.min.json", json.dumps({"version": "VERSION 1.3", "database": database}))


def test_untrimmed_annotations_give_video_level_labels(tmp_path):
    """ActivityNet / HACS Segments JSON: one (video, class) per annotated video of each labelled subset, in the
    file's order; the class with the most annotated seconds when segments disagree; unlabelled test videos left
    out; every class name, sorted."""
    annotations = _activitynet(tmp_path, {
        "abc": {"subset": "training", "duration": 120.0, "annotations": [
            {"segment": [10.0, 20.0], "label": "Long jump"}, {"segment": [50.0, 55.0], "label": "Long jump"}]},
        "def": {"subset": "validation", "duration": 60.0, "annotations": [
            {"segment": [0.0, 5.0], "label": "Shot put"}, {"segment": [10.0, 40.0], "label": "Discus throw"}]},
        "ghi": {"subset": "testing", "duration": 30.0, "annotations": []},
        "jkl": {"subset": "training", "duration": 80.0, "annotations": [{"segment": [1, 79], "label": "Shot put"}]},
    })
    subsets, classes = read_untrimmed_annotations(annotations)
    assert subsets == {"training": [("abc", "Long jump"), ("jkl", "Shot put")], "validation": [("def", "Discus throw")]}
    assert classes == ["Discus throw", "Long jump", "Shot put"]


@pytest.mark.parametrize("content,message", [
    ("[1, 2]", r'no "database" object; expected ActivityNet / HACS Segments annotations'),
    ('{"database": {"abc": {"subset": "training", "annotations": [{"segment": [1]}]}}}', r"video 'abc': annotation"),
    ('{"database": {"abc": {"subset": "testing", "annotations": []}}}', "no annotated video"),
    ('{"database": ', r"anet.json:1: invalid JSON"),
])
def test_untrimmed_annotation_errors(tmp_path, content, message):
    with pytest.raises(ListFormatError, match=message):
        read_untrimmed_annotations(_write(tmp_path / "anet.json", content))
