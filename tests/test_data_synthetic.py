"""Synthetic benchmark (uv2.data.synthetic): determinism, idempotence, time-reversal pairs, set layout."""

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from uv2.data.decode import decode_all_frames
from uv2.data.lists import read_csv_list
from uv2.data.synthetic import (
    APPEARANCES,
    GENERATOR_VERSION,
    IMAGE_APPEARANCES,
    SCENE_SETS,
    SIZES,
    TEMPORAL_CLASSES,
    TEMPORAL_PAIRS,
    TRANSLATION_CLASSES,
    ensure_synthetic,
    generate,
    read_manifest,
    render_temporal,
    reversal_partner,
    sample_temporal_params,
    temporal_video_params,
    write_video,
)

SETS = ["temporal", "scene_a"]


@pytest.fixture(scope="module")
def micro_roots(tmp_path_factory):
    """Two generations with seed 0 (one in parallel, one serial) and one with seed 1."""
    base = tmp_path_factory.mktemp("synth")
    generate(base / "a", size="micro", seed=0, sets=SETS, workers=2)
    generate(base / "b", size="micro", seed=0, sets=SETS, workers=1)
    generate(base / "c", size="micro", seed=1, sets=SETS, workers=1)
    return base / "a", base / "b", base / "c"


def _label_files(root):
    return {
        p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in (".csv", ".txt", ".json")
    }


def test_same_seed_identical_different_seed_differs(micro_roots):
    a, b, c = micro_roots
    files_a, files_b = _label_files(a), _label_files(b)
    assert set(files_a) >= {
        p.relative_to(a)
        for p in [a / "manifest.json", a / "temporal/train.csv", a / "temporal/classes.txt", a / "scene_a/val.csv"]
    }
    assert files_a == files_b  # byte-identical lists, classes files, manifest, reversal pairs
    videos = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
    assert len(videos) == 3 * 10 + 3 * 8
    differs = 0
    for rel in videos:
        frames_a = decode_all_frames(a / rel)
        assert np.array_equal(frames_a, decode_all_frames(b / rel)), rel
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        differs += not np.array_equal(frames_a, decode_all_frames(c / rel))
    assert differs == len(videos)
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_c = json.loads((c / "manifest.json").read_text())
    assert manifest_a["seed"] == 0 and manifest_c["seed"] == 1
    assert {k: v for k, v in manifest_a.items() if k != "seed"} == {k: v for k, v in manifest_c.items() if k != "seed"}


def test_a_temporal_videos_latent_draws_are_drawn_again_from_the_manifest(micro_roots, tmp_path):
    """temporal_video_params renders each video of the set again (up to the H.264 coding), from the root with seed 0
    and not from the one with seed 1; a folder without a manifest is refused."""
    a, _, c = micro_roots
    for video in sorted((a / "temporal" / "videos" / "val").rglob("*.mp4")):
        decoded = decode_all_frames(video).astype(np.float32)
        name, index = video.parent.name, int(video.stem)
        again = render_temporal(name, temporal_video_params(a, "val", index)).astype(np.float32)
        other = render_temporal(name, temporal_video_params(c, "val", index)).astype(np.float32)
        # mean |difference| per pixel: here 1.7-3.2 from the same draws, 14-160 from another root's
        assert np.abs(decoded - again).mean() < 4 and np.abs(decoded - other).mean() > 12, video
    with pytest.raises(FileNotFoundError, match="no manifest of a generated synthetic root"):
        temporal_video_params(tmp_path, "val", 0)


def test_manifest_and_lists_match(micro_roots):
    root = micro_roots[0]
    manifest = json.loads((root / "manifest.json").read_text())
    spec = SIZES["micro"]
    assert manifest["size"] == "micro" and manifest["frames"] == spec.frames
    assert manifest["resolution"] == [spec.resolution, spec.resolution]
    assert set(manifest["sets"]) == set(SETS)
    for name in SETS:
        entry = manifest["sets"][name]
        train, classes = read_csv_list(root / name / "train.csv", root / name / "classes.txt")
        val, _ = read_csv_list(root / name / "val.csv", root / name / "classes.txt")
        assert (entry["train"], entry["val"], entry["classes"]) == (len(train), len(val), len(classes))
        assert all(r.path.startswith(str(root / name)) for r in train)
        frames = decode_all_frames(train[0].path)
        assert frames.shape == (spec.frames, spec.resolution, spec.resolution, 3)
    pairs = json.loads((root / "temporal" / "reversal_pairs.json").read_text())
    assert [tuple(p) for p in pairs["pairs"]] == TEMPORAL_PAIRS
    classes = (root / "temporal" / "classes.txt").read_text().split("\n")[:-1]
    assert classes == TEMPORAL_CLASSES
    assert all(classes[i] == reversal_partner(classes[j]) for i, j in pairs["pair_indices"])


def test_generation_is_idempotent_and_refuses_other_params(micro_roots):
    root = micro_roots[1]
    video = next(root.rglob("*.mp4"))
    stamps = (video.stat().st_mtime_ns, (root / "manifest.json").stat().st_mtime_ns)
    assert ensure_synthetic(root, size="micro", seed=0, sets=SETS) == root
    generate(root, size="micro", seed=0, sets=["temporal"])
    assert (video.stat().st_mtime_ns, (root / "manifest.json").stat().st_mtime_ns) == stamps
    with pytest.raises(ValueError, match="size='micro', asked 'tiny'"):
        generate(root, size="tiny", seed=0, sets=["temporal"])
    with pytest.raises(ValueError, match="valid: scene, temporal"):
        generate(root, size="micro", seed=0, sets=["kinetics"])


def test_a_larger_test_set_extends_the_size_s(micro_roots, tmp_path):
    """val_per_class: the size's training and validation videos come first and byte for byte, then the new ones;
    the manifest records the counts, and a root of the standard size refuses them rather than write over itself
    (as does the larger root when asked for the standard size)."""
    standard = micro_roots[0]  # micro: 1 validation video per class, 10 temporal classes
    generate(tmp_path, size="micro", seed=0, sets=["temporal"], workers=1, val_per_class=3)
    lines = (tmp_path / "temporal" / "val.csv").read_text().splitlines()
    assert len(lines) == 30 and lines[:10] == (standard / "temporal" / "val.csv").read_text().splitlines()
    for name in ("train.csv", "classes.txt"):
        assert (tmp_path / "temporal" / name).read_bytes() == (standard / "temporal" / name).read_bytes()
    for line in lines[:10] + (standard / "temporal" / "train.csv").read_text().splitlines()[:3]:
        path = line.split(",")[0]
        assert (tmp_path / "temporal" / path).read_bytes() == (standard / "temporal" / path).read_bytes()
    manifest = read_manifest(tmp_path)
    assert manifest["size_spec"]["val_per_class"] == 3 and manifest["sets"]["temporal"]["val"] == 30
    with pytest.raises(ValueError, match="val_per_class=3, asked 1"):
        ensure_synthetic(tmp_path, size="micro", seed=0, sets=["temporal"])
    with pytest.raises(ValueError, match="val_per_class=1, asked 3"):
        generate(standard, size="micro", seed=0, sets=["temporal"], val_per_class=3)
    assert len((tmp_path / "temporal" / "val.csv").read_text().splitlines()) == 30  # nothing written over
    with pytest.raises(ValueError, match="val_per_class must be >= 1"):
        generate(tmp_path / "none", size="micro", seed=0, sets=["temporal"], val_per_class=0)


def test_a_shorter_motion_changes_only_the_translations(micro_roots, tmp_path):
    """motion_scale: the same draws, the translation's distance scaled (its centre within the margins that
    leaves); the set's lists stay, its moving videos change, the manifest records the scale (a standard root's
    manifest still has no such field), and each root refuses the other's benchmark."""
    full = sample_temporal_params(np.random.default_rng(7), 48, 16, nuisance=0.0)
    half = sample_temporal_params(np.random.default_rng(7), 48, 16, nuisance=0.0, motion_scale=0.5)
    assert half.amplitude == pytest.approx(full.amplitude / 2)
    path = {"amplitude": full.amplitude, "cx": full.cx, "cy": full.cy}
    assert replace(half, **path) == full and (half.cx, half.cy) != (full.cx, full.cy)
    standard = micro_roots[0]
    generate(tmp_path, size="micro", seed=0, sets=["temporal"], workers=1, motion_scale=0.5)
    for name in ("train.csv", "val.csv", "classes.txt"):
        assert (tmp_path / "temporal" / name).read_bytes() == (standard / "temporal" / name).read_bytes()
    moving = next(line.split(",")[0] for line in (tmp_path / "temporal" / "train.csv").read_text().splitlines()
                  if "/move_right/" in line)
    assert (tmp_path / "temporal" / moving).read_bytes() != (standard / "temporal" / moving).read_bytes()
    assert read_manifest(tmp_path)["size_spec"]["motion_scale"] == 0.5
    assert "motion_scale" not in read_manifest(standard)["size_spec"]
    with pytest.raises(ValueError, match="motion_scale=0.5, asked 1.0"):
        ensure_synthetic(tmp_path, size="micro", seed=0, sets=["temporal"])
    with pytest.raises(ValueError, match="motion_scale=1.0, asked 0.5"):
        generate(standard, size="micro", seed=0, sets=["temporal"], motion_scale=0.5)
    for refused in (0, float("nan")):
        with pytest.raises(ValueError, match="motion_scale must be > 0"):
            generate(tmp_path / "none", size="micro", seed=0, sets=["temporal"], motion_scale=refused)
        assert not (tmp_path / "none").exists()  # refused before anything is written


def test_larger_objects_change_only_the_radius_and_the_margins(micro_roots, tmp_path):
    """object_scale: the same draws, the radius scaled (and the path's centre within the margins that leaves); the
    manifest records it beside a default motion scale left out, and a root of the standard set refuses it."""
    standard = sample_temporal_params(np.random.default_rng(7), 48, 16, nuisance=0.0)
    large = sample_temporal_params(np.random.default_rng(7), 48, 16, nuisance=0.0, object_scale=1.3)
    assert large.radius == pytest.approx(1.3 * standard.radius)
    assert replace(large, radius=standard.radius, cx=standard.cx, cy=standard.cy) == standard
    generate(tmp_path, size="micro", seed=0, sets=["temporal"], workers=1, object_scale=1.3)
    spec = read_manifest(tmp_path)["size_spec"]
    assert spec["object_scale"] == 1.3 and "motion_scale" not in spec
    with pytest.raises(ValueError, match="object_scale=1.0, asked 1.3"):
        generate(micro_roots[0], size="micro", seed=0, sets=["temporal"], object_scale=1.3)
    with pytest.raises(ValueError, match="object_scale must be > 0"):
        generate(tmp_path / "none", size="micro", seed=0, sets=["temporal"], object_scale=0)


def test_adding_a_set_keeps_the_others(tmp_path):
    generate(tmp_path, size="micro", seed=3, sets=["scene_c"], workers=1)
    first = (tmp_path / "scene_c" / "train.csv").read_bytes()
    generate(tmp_path, size="micro", seed=3, sets=["images"], workers=1)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest["sets"]) == {"scene_c", "images"}
    assert (tmp_path / "scene_c" / "train.csv").read_bytes() == first
    assert len(list((tmp_path / "images").rglob("*.png"))) == len(IMAGE_APPEARANCES) * (1 + 1)


def test_image_classes_are_no_video_class():
    """The image pretraining set is other data than the videos (as CLIP is for the paper's ViTs): no image class is
    a scene class by name or by definition, and its appearances use only the video sets' shapes, colours, textures
    and backgrounds."""
    assert not set(IMAGE_APPEARANCES) & (set(APPEARANCES) | set(TEMPORAL_CLASSES))
    assert not set(IMAGE_APPEARANCES.values()) & set(APPEARANCES.values())
    for attribute in ("shape", "colour", "texture", "background"):
        scene_values = {getattr(a, attribute) for a in APPEARANCES.values()}
        image_values = {getattr(a, attribute) for a in IMAGE_APPEARANCES.values()}
        assert image_values - scene_values <= ({"L", "T", "half_disc"} if attribute == "shape" else set())


def test_an_older_generator_version_is_generated_again(tmp_path, caplog):
    generate(tmp_path, size="micro", seed=3, sets=["scene_c", "images"], workers=1)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(manifest | {"generator_version": GENERATOR_VERSION - 1}))
    with pytest.raises(ValueError, match="generator_version"):  # generate() never overwrites another benchmark
        generate(tmp_path, size="micro", seed=3, sets=["scene_c"], workers=1)
    with caplog.at_level("WARNING"):
        ensure_synthetic(tmp_path, size="micro", seed=3, sets=["scene_c"], workers=1)  # a cache: made again
    assert f"generator version {GENERATOR_VERSION - 1}" in caplog.text
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert set(manifest["sets"]) == {"scene_c"}  # the stale images set is no longer listed as complete


@pytest.mark.parametrize("forward, backward", TEMPORAL_PAIRS)
def test_temporal_partner_is_time_reversal(tmp_path, forward, backward):
    rng = np.random.default_rng(7)
    for trial, nuisance in enumerate((0.0, 1.0)):  # the tiny set's clean videos and the medium set's
        params = sample_temporal_params(rng, 48, 16, nuisance=nuisance)
        fwd, bwd = render_temporal(forward, params), render_temporal(backward, params)
        assert np.array_equal(bwd, fwd[::-1])
        write_video(tmp_path / f"f{trial}.mp4", fwd)
        write_video(tmp_path / f"b{trial}.mp4", bwd)
        dec_f = decode_all_frames(tmp_path / f"f{trial}.mp4").astype(np.float32)
        dec_b = decode_all_frames(tmp_path / f"b{trial}.mp4").astype(np.float32)
        reversed_err = np.abs(dec_f[::-1] - dec_b).mean()
        forward_err = np.abs(dec_f - dec_b).mean()
        assert reversed_err < 2.5, reversed_err  # only codec noise
        assert forward_err > 1.5 * reversed_err + 1.0, (forward_err, reversed_err)  # the order really matters
        # an order-blind view (the set of frames) cannot tell the two classes apart
        assert np.array_equal(np.sort(fwd.reshape(16, -1), axis=0), np.sort(bwd.reshape(16, -1), axis=0))


def test_temporal_classes_are_motion_not_appearance():
    """Same params, different pairs: the first frames can be identical while the motion differs."""
    params = sample_temporal_params(np.random.default_rng(3), 48, 16)
    params.jitter = np.zeros((16, 2)).tolist()
    params.drift = [0.0, 0.0]
    starts = {c: render_temporal(c, params) for c in ("move_right", "move_down", "right_then_down")}
    mids = {c: v[8].astype(np.float32) for c, v in starts.items()}
    ends = {c: v[-1].astype(np.float32) for c, v in starts.items()}
    assert np.abs(mids["move_right"] - mids["move_down"]).mean() < 8  # near mid-clip the poses agree
    assert np.abs(ends["move_right"] - ends["move_down"]).mean() > np.abs(mids["move_right"] - mids["move_down"]).mean()
    with pytest.raises(ValueError, match="valid: move_right"):
        render_temporal("jump", params)


def test_right_then_down_moves_right_then_down():
    """The L-shaped pair: across first, then down (its partner, up then across to the left, is the reversal)."""
    params = sample_temporal_params(np.random.default_rng(5), 48, 16, noise=0.0, nuisance=0.0)
    frames = render_temporal("right_then_down", params).astype(np.int32)
    background = np.median(frames.reshape(-1, 3), axis=0)
    centres = []
    for frame in frames:
        ys, xs = np.nonzero(np.abs(frame - background).sum(-1) > 60)  # the object's pixels
        centres.append((xs.mean(), ys.mean()))
    (x0, y0), (x7, y7), (x8, y8), (x15, y15) = (centres[k] for k in (0, 7, 8, 15))
    step = params.amplitude / 2
    assert x7 - x0 > step and abs(y7 - y0) < 1  # first half: to the right, level
    assert y15 - y8 > step and abs(x15 - x8) < 1  # second half: down, in one column


def test_translation_classes_are_those_whose_object_moves():
    """TRANSLATION_CLASSES are the temporal classes whose object's centre moves (by at least a quarter of the
    frame); the others grow, shrink or fade where they stand (their centre moves by under 5 pixels: an L grown about
    its centre shifts its own by about 2)."""
    params = sample_temporal_params(np.random.default_rng(5), 48, 16, noise=0.0, nuisance=0.0)
    moved = {}
    for name in TEMPORAL_CLASSES:
        frames = render_temporal(name, params).astype(np.int32)
        background = np.median(frames.reshape(-1, 3), axis=0)
        centres = [(xs.mean(), ys.mean()) for ys, xs in
                   (np.nonzero(np.abs(frame - background).sum(-1) > 60) for frame in frames) if len(xs)]
        moved[name] = float(np.hypot(*np.subtract(centres[-1], centres[0])))
    assert {name for name, distance in moved.items() if distance > 12} == set(TRANSLATION_CLASSES)
    assert all(moved[name] < 5 for name in TEMPORAL_CLASSES if name not in TRANSLATION_CLASSES), moved


def test_scene_sets_overlap_by_name_with_identical_definitions():
    a, b, c = (set(SCENE_SETS[s]) for s in ("scene_a", "scene_b", "scene_c"))
    assert len(a) == len(b) == len(c) == 8
    assert (len(a & b), len(a & c), len(b & c)) == (4, 2, 2)
    assert len(a | b | c) == 16
    assert a - b - c and b - a - c and c - a - b  # every set has unique classes
    assert all(name in APPEARANCES for name in a | b | c)
    looks = [(x.shape, x.colour, x.texture, x.background) for x in APPEARANCES.values()]
    assert len(set(looks)) == len(looks)  # distinct names are distinct appearances


def _ensure_in_child(root: str) -> str:
    """What ensure_synthetic says in a spawned worker while its parent holds the generation lock."""
    try:
        ensure_synthetic(root, "micro", 0, sets=["temporal"])
    except RuntimeError as err:
        return str(err)
    return "no error"


def test_worker_that_reruns_the_main_script_gets_an_error_not_a_deadlock(tmp_path):
    """multiprocessing's spawn re-imports __main__ in its workers: a script without a __main__ guard calls
    ensure_synthetic again in every worker while the parent holds the lock. That is an error naming the fix."""
    import fcntl
    import multiprocessing

    root = tmp_path / "synthetic"
    root.mkdir()
    with open(root / ".generate.lock", "w") as lock:  # as ensure_synthetic holds it: locked, with its pid
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(str(os.getpid()))
        lock.flush()
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            message = pool.apply(_ensure_in_child, (str(root),))
    assert 'if __name__ == "__main__":' in message


def test_worker_waits_for_a_sibling_that_generates(tmp_path):
    """Workers of one parent (the ablation grid's cells side by side) that need the same set: the one that finds
    another process generating it waits for it, as another run would, instead of taking it for its parent."""
    import fcntl
    import multiprocessing

    root = tmp_path / "synthetic"
    root.mkdir()
    # the grid's kind of worker (not daemonic: generating a set starts processes of its own)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with open(root / ".generate.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            lock.write("1")  # held by a process that is not the worker's parent
            lock.flush()
            pending = pool.submit(_ensure_in_child, str(root))
            time.sleep(2.0)
            assert not pending.done()  # waiting, not failing
        assert pending.result(timeout=120) == "no error"  # the lock released: it generated the set
    assert read_manifest(root)["sets"].keys() == {"temporal"}
