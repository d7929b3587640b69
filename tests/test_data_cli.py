"""Data CLIs (python -m uv2 synth | check-videos | untrimmed-lists | bench-data) and the data-wait measurement."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data_helpers import encode, make_bad_files, numbered_frames, write_images
from uv2.data.bench import measure_data_wait_fraction
from uv2.data.cli import bench_data_main, check_videos_main, synth_main, untrimmed_lists_main
from uv2.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mixed_list(tmp_path_factory):
    d = tmp_path_factory.mktemp("check")
    good = [
        encode(d / "a.mp4", numbered_frames(12), options={"preset": "veryfast"}),
        encode(d / "b.mkv", numbered_frames(9, 48, 62), options={"preset": "veryfast"}),
    ]
    bad = make_bad_files(d / "bad", good[0])
    lines = ["path,label", "a.mp4,0", "b.mkv,1"] + [f"{os.path.relpath(p, d)},0" for p in bad.values()]
    (d / "list.csv").write_text("\n".join(lines) + "\n")
    (d / "good.txt").write_text("a.mp4\nb.mkv\n")
    return d, good, bad


def _json_last_line(text):
    last = text.strip().splitlines()[-1]
    return json.loads(last)


def test_check_videos_json_mixed(mixed_list, capsys):
    d, good, bad = mixed_list
    rc = check_videos_main([str(d / "list.csv"), "--json"])
    out = capsys.readouterr().out
    assert rc == 1
    files = _json_last_line(out)["files"]
    assert [f["path"] for f in files] == [str(p) for p in good] + [str(p) for p in bad.values()]
    by_path = {f["path"]: f for f in files}
    assert by_path[str(good[0])] == {
        "path": str(good[0]),
        "ok": True,
        "frames": 12,
        "fps": 15.0,
        "width": 96,
        "height": 64,
        "error": None,
        "header_frames": 12,
    }
    assert by_path[str(good[1])]["ok"] and by_path[str(good[1])]["frames"] == 9
    assert (by_path[str(good[1])]["width"], by_path[str(good[1])]["height"]) == (62, 48)
    for kind, path in bad.items():
        entry = by_path[str(path)]
        assert entry["ok"] is False and isinstance(entry["error"], str) and entry["error"], kind
    assert "mid-stream" in by_path[str(bad["mid_decode"])]["error"]
    assert out.count("BAD ") == len(bad) and "10 files, 2 ok, 8 bad" in out
    # the same result with a process pool
    assert check_videos_main([str(d / "list.csv"), "--json", "--workers", "2"]) == 1
    assert _json_last_line(capsys.readouterr().out)["files"] == files


def test_check_videos_exit_codes(mixed_list, tmp_path, capsys):
    d, _, _ = mixed_list
    assert check_videos_main([str(d / "good.txt")]) == 0
    assert "2 files, 2 ok, 0 bad" in capsys.readouterr().out
    assert check_videos_main([str(tmp_path / "nope.csv")]) == 2
    assert "video list not found" in capsys.readouterr().err


def test_check_videos_subprocess_last_line_is_json(mixed_list):
    d, _, _ = mixed_list
    proc = subprocess.run(
        [sys.executable, "-m", "uv2", "check-videos", str(d / "good.txt"), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    files = _json_last_line(proc.stdout)["files"]
    assert [f["ok"] for f in files] == [True, True]


def test_check_videos_reads_mit_rows(mixed_list, capsys):
    """Moments in Time's `filename,class,votes,votes` rows: the filename is the video (the path,label reading took
    `filename,class,votes` for a path)."""
    d, good, _ = mixed_list
    (d / "mit.csv").write_text("a.mp4,blocking,3,0\nb.mkv,walking,2,1\n")
    assert check_videos_main([str(d / "mit.csv"), "--json"]) == 0
    out = capsys.readouterr().out
    assert [f["path"] for f in _json_last_line(out)["files"]] == [str(p) for p in good]
    assert "2 files, 2 ok, 0 bad (list format mit)" in out


def test_check_videos_checks_frame_folders(tmp_path, capsys):
    """Frame folders are checked frame by frame: a gap, a frame that does not decode, or fewer frames than the
    rawframe list gives make a folder bad; SSv1 lists name their folders by id under --data-root."""
    root = tmp_path / "frames"
    for name, count in (("10", 6), ("11", 4), ("12", 5), ("13", 3)):
        write_images(numbered_frames(count, 32, 48), root / name)
    (root / "11" / "00002.jpg").unlink()
    (root / "12" / "00005.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (tmp_path / "ssv1.csv").write_text("10;Pushing something\n11;Pushing something\n12;Pulling something\n")
    assert check_videos_main([str(tmp_path / "ssv1.csv"), "--data-root", str(root), "--json"]) == 1
    out = capsys.readouterr().out
    files = {Path(f["path"]).name: f for f in _json_last_line(out)["files"]}
    assert files["10"] == {"path": str(root / "10"), "ok": True, "frames": 6, "fps": 0.0, "width": 48, "height": 32,
                           "error": None, "header_frames": 0}
    assert files["11"]["error"] == "frame 00002.jpg is missing (00001.jpg to 00004.jpg expected)"
    assert files["12"]["error"].startswith("frame 00005.jpg: ") and files["12"]["frames"] == 4
    assert "frame folder" in out and "3 files, 1 ok, 2 bad (list format ssv1)" in out
    (tmp_path / "raw.txt").write_text(f"{root / '10'} 6 0\n{root / '13'} 4 1\n")
    assert check_videos_main([str(tmp_path / "raw.txt"), "--json", "--workers", "2"]) == 1
    files = _json_last_line(capsys.readouterr().out)["files"]
    assert files[0]["ok"] and files[0]["header_frames"] == 6
    assert files[1]["error"] == "the list gives 4 frames but the folder holds 3 (00001.jpg to 00003.jpg)"
    assert check_videos_main([str(tmp_path / "raw.txt"), "--frame-template", "{:05d}.txt"]) == 2
    assert "frame_template '{:05d}.txt' must name an image file" in capsys.readouterr().err


def test_untrimmed_lists(tmp_path, capsys):
    """ActivityNet / HACS: train.csv / val.csv of the downloaded videos (found by id, with or without the crawler's
    v_ prefix, in any sub-folder), rows relative to the data root; missing videos are reported, and the lists are
    what the csv reader and the anet recipes read."""
    from uv2.data.lists import read_csv_list

    root = tmp_path / "anet"
    for rel in ("videos/v_abc.mp4", "videos/Shot put/jkl.mkv", "val/v_def.webm", "notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    database = {
        "abc": {"subset": "training", "annotations": [{"segment": [1.0, 9.0], "label": "Long jump"}]},
        "xyz": {"subset": "training", "annotations": [{"segment": [1.0, 9.0], "label": "Long jump"}]},
        "jkl": {"subset": "training", "annotations": [{"segment": [0.0, 3.0], "label": "Shot put"}]},
        "def": {"subset": "validation", "annotations": [{"segment": [2.0, 4.0], "label": "Discus throw"}]},
        "ghi": {"subset": "testing", "annotations": []},
    }
    (tmp_path / "anet.json").write_text(json.dumps({"database": database}))
    assert untrimmed_lists_main(["--annotations", str(tmp_path / "anet.json"), "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "train.csv: 2 of the 3 training videos; 1 not found under" in out and "(xyz)" in out
    assert (root / "train.csv").read_text() == "videos/v_abc.mp4,Long jump\nvideos/Shot put/jkl.mkv,Shot put\n"
    assert (root / "val.csv").read_text() == "val/v_def.webm,Discus throw\n"
    records, classes = read_csv_list(root / "train.csv", root / "classes.txt", data_root=root)
    assert classes == ["Discus throw", "Long jump", "Shot put"]
    assert records[1].path == str(root / "videos/Shot put/jkl.mkv") and records[1].label == 2
    assert untrimmed_lists_main(["--annotations", str(tmp_path / "anet.json"), "--data-root", str(tmp_path / "e"),
                                 "--out", str(tmp_path / "o")]) == 2
    assert "data root not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert untrimmed_lists_main(["--annotations", str(tmp_path / "anet.json"), "--data-root",
                                 str(tmp_path / "empty")]) == 1
    assert "no annotated video found under" in capsys.readouterr().err
    assert untrimmed_lists_main(["--annotations", str(tmp_path / "nope.json"), "--data-root", str(root)]) == 2
    with pytest.raises(InputError, match="is a file, not a folder"):  # --out under a file, before any search
        untrimmed_lists_main(["--annotations", str(tmp_path / "anet.json"), "--data-root", str(root), "--out",
                              str(root / "train.csv" / "lists")])


def test_synth_cli(tmp_path, capsys):
    out = tmp_path / "synth"
    assert synth_main(["--out", str(out), "--size", "micro", "--sets", "temporal", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "temporal" in text and (out / "temporal" / "train.csv").is_file()
    assert (out / "temporal" / "reversal_pairs.json").is_file()
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert synth_main(["--out", str(out), "--size", "micro", "--sets", "temporal"]) == 0  # skipped: up to date
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    assert synth_main(["--out", str(out), "--size", "tiny", "--sets", "temporal"]) == 2
    assert "different benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        synth_main(["--out", str(out), "--sets", "kinetics"])
    capsys.readouterr()
    for flag, value in (("--motion-scale", "0"), ("--motion-scale", "nan"), ("--object-scale", "-1"),
                        ("--val-per-class", "0")):
        with pytest.raises(SystemExit):  # refused before anything is written
            synth_main(["--out", str(tmp_path / "refused"), "--size", "micro", flag, value])
        assert f"{flag} {value}: expected" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(InputError, match=f"--out {tmp_path / 'a_file' / 'synth'}: cannot create this folder"):
        synth_main(["--out", str(tmp_path / "a_file" / "synth"), "--size", "micro"])


def test_bench_data_prints_the_split(capsys):
    """bench-data times the training pipeline per decoder and the CPU path, and prints every stage's ms per clip."""
    from uv2.data.backends import DECODERS, backend_unavailable
    from uv2.data.bench import SPLIT

    small = ["--videos", "2", "--seconds", "1", "--fps", "12", "--width", "96", "--height", "64", "--size", "32",
             "--clips-per-video", "2", "--keyint", "6", "--batch-size", "2", "--json"]
    assert bench_data_main(small + ["--rand-augment", "rand-m7-n2"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("decoder") and "|" in line)  # not "skipped"
    assert header.split("|")[1].split()[3:] == list(SPLIT)  # "ms per clip:" then the stages
    usable = [d for d in DECODERS if backend_unavailable(d) is None]
    results = _json_last_line(out)["results"]
    runs = [(r["decoder"], r["path"], r["sampling"]) for r in results]
    assert runs == [run for s in ("uniform", "dense") for run in [(d, "uint8", s) for d in usable] + [("pyav", "float", s)]]
    for r in results:
        assert r["clips"] == 4 and r["per_worker_clips_per_s"] > 0 and r["wall_clips_per_s"] > 0
        assert set(r["stage_s"]) == set(SPLIT) and all(v >= 0 for v in r["stage_s"].values())
        assert r["stage_s"]["decode"] > 0 and r["stage_s"]["collate"] > 0
        if r["path"] == "uint8":
            assert r["stage_s"]["device"] > 0  # RandAugment and normalisation after the transfer
        else:
            assert r["stage_s"]["device"] == 0 and r["stage_s"]["augment"] > 0  # all on the worker
    rows = [line.split() for line in out.splitlines() if line.startswith(tuple(usable))]
    assert len(rows) == len(results) and all(len(row) == 6 + 1 + len(SPLIT) for row in rows)
    # two worker processes, one decoder, two repeats per decode
    assert bench_data_main(small + ["--workers", "2", "--decoders", "pyav", "--repeats", "2", "--sampling",
                                    "uniform", "--no-float-path"]) == 0
    (result,) = _json_last_line(capsys.readouterr().out)["results"]
    assert result["workers"] == 2 and result["clips"] == 8  # 4 items x 2 repeats
    with pytest.raises(SystemExit):
        bench_data_main(["--decoders", "decord"])


def test_measure_data_wait_fraction():
    def slow_loader():
        for i in range(8):
            time.sleep(0.03)
            yield i

    seen = []
    stats = measure_data_wait_fraction(
        slow_loader(), lambda b: (seen.append(b), time.sleep(0.01)), num_steps=5, warmup=2
    )
    assert stats.steps == 5 and seen == list(range(7))
    assert 0.6 < stats.wait_fraction < 0.85
    assert measure_data_wait_fraction(iter(range(3)), lambda b: None, num_steps=10, warmup=1).steps == 2
