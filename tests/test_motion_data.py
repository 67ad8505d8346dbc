"""The built-in motion datasets (edge_rcnn.core.data.motion): their clips move the way their labels say,
train and val share no photograph, and the CLI refuses bad input with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_rcnn.core.data import motion


def _grey(clip: np.ndarray) -> np.ndarray:
    return clip.astype(np.float32).mean(-1)


def test_clips_are_deterministic_from_the_seed_and_labelled_by_class():
    x, y, labels = motion.generate_motion("camera", 2, frames=6, size=32, seed=3, split="val")
    again, _, _ = motion.generate_motion("camera", 2, frames=6, size=32, seed=3, split="val")
    other, _, _ = motion.generate_motion("camera", 2, frames=6, size=32, seed=4, split="val")
    assert x.shape == (2 * len(labels), 6, 32, 32, 3) and x.dtype == np.uint8
    assert labels == motion.LABELS["camera"] and list(y) == [i // 2 for i in range(len(x))]
    assert np.array_equal(x, again) and not np.array_equal(x, other)


def test_train_and_val_clips_come_from_different_photographs():
    assert not set(motion._TRAIN_PHOTOS) & set(motion._VAL_PHOTOS)
    train, val = motion.photos("train"), motion.photos("val")
    assert len(train) >= 10 and len(val) >= 4
    signatures = lambda photos: {(p.shape, float(p.mean())) for p in photos}  # noqa: E731
    assert not signatures(train) & signatures(val)


@pytest.mark.parametrize("label, axis, sign", [("pan_left", 0, 1), ("pan_right", 0, -1), ("pan_up", 1, 1), ("pan_down", 1, -1)])
def test_a_pan_moves_the_content_against_the_camera(label, axis, sign):
    import cv2

    pool = motion.photos("train")
    for seed in range(4):
        clip = _grey(motion.render_camera(label, np.random.default_rng(seed), pool, frames=8, size=64))
        shifts = np.array([cv2.phaseCorrelate(clip[t - 1], clip[t])[0] for t in range(1, len(clip))])
        along, across = shifts[:, axis].mean(), shifts[:, 1 - axis].mean()
        assert sign * along > 0.4, (label, seed, shifts)  # at least ~0.6 px a frame at 64 px
        assert abs(across) < 0.5 * abs(along)


@pytest.mark.parametrize("label", ["zoom_in", "zoom_out", "still"])
def test_zoom_and_still_do_not_translate_the_frame(label):
    import cv2

    clip = _grey(motion.render_camera(label, np.random.default_rng(0), motion.photos("train"), frames=8, size=64))
    shifts = np.array([cv2.phaseCorrelate(clip[t - 1], clip[t])[0] for t in range(1, len(clip))])
    assert np.abs(shifts.mean(0)).max() < 0.5


def _centroids(clip: np.ndarray) -> np.ndarray:
    """(x, y) of the part of each frame that differs from the clip's still background."""
    grey = _grey(clip)
    moving = np.abs(grey - np.median(grey, axis=0))
    ys, xs = np.mgrid[: grey.shape[1], : grey.shape[2]]
    weight = moving.sum((1, 2))
    return np.stack([(moving * xs).sum((1, 2)) / weight, (moving * ys).sum((1, 2)) / weight], 1)


@pytest.mark.parametrize("label, axis, sign", [("right", 0, 1), ("left", 0, -1), ("down", 1, 1), ("up", 1, -1)])
def test_a_translated_object_moves_its_way_and_stays_in_the_frame(label, axis, sign):
    for seed in range(4):
        clip = motion.render_object(label, np.random.default_rng(seed), motion.photos("train"), frames=8, size=64)
        path = _centroids(clip)
        assert sign * (path[-1, axis] - path[0, axis]) > 5, (label, seed, path)
        # the first and last frames keep the whole object: its area is the same at both ends
        grey = _grey(clip)
        background = np.median(grey, axis=0)
        area = [(np.abs(grey[t] - background) > 40).sum() for t in (0, -1)]
        assert abs(area[0] - area[1]) < 0.35 * max(area)


def test_approach_grows_recede_shrinks_and_reversed_approach_looks_like_recede():
    areas = {}
    for label in ("approach", "recede", "still"):
        clip = motion.render_object(label, np.random.default_rng(1), motion.photos("train"), frames=8, size=64)
        # the object's colour is brighter than the dimmed photograph: count its pixels
        areas[label] = [(_grey(clip)[t] > 150).sum() for t in (0, -1)]
    assert areas["approach"][1] > 1.5 * areas["approach"][0]
    assert areas["recede"][0] > 1.5 * areas["recede"][1]
    assert abs(areas["still"][1] - areas["still"][0]) < 0.2 * max(areas["still"])


def test_make_motion_writes_a_folder_that_trains_with_flip_pairs(tmp_path):
    from edge_rcnn.core.data import scan_folder

    out = motion.make_motion("translate", tmp_path / "tr", clips_per_class=4, frames=6, size=32, progress=False)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["name"] == "motion-translate" and meta["labels"] == list(motion.LABELS["translate"])
    assert meta["flip_pairs"] == [["right", "left"]] and meta["counts"] == {"train": 12, "val": 4}
    index = scan_folder(out, frames=6)
    assert set(index.labels) == set(motion.LABELS["translate"]) and len(index.train) == 12 and len(index.val) == 4
    assert index.flip_pairs == (("right", "left"),)


@pytest.mark.parametrize("args, message", [
    (["data", "camera", "{out}", "--size", "33"], "size: expected an even number"),
    (["data", "translate", "{out}", "--seed", "-1"], "seed: expected an integer >= 0"),
    (["data", "approach", "{out}", "--clips-per-class", "1"], "clips_per_class: expected an integer >= 2"),
    (["data", "approach", "{out}", "--frames", "1"], "frames: expected an integer in 2..512"),
])
def test_bad_dataset_arguments_stop_with_one_line_and_exit_2(tmp_path, capsys, args, message):
    from edge_rcnn.cli import main

    out = tmp_path / "out"
    assert main([a.format(out=out) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()  # checked before any folder is made


def test_a_folder_holding_something_else_is_not_overwritten(tmp_path, capsys):
    from edge_rcnn.cli import main

    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["data", "camera", str(tmp_path), "--clips-per-class", "2", "--overwrite"]) == 2
    assert "not a motion-camera folder" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"
