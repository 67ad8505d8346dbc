"""Flip augmentation: off unless labels survive a mirror, mirrored labels through flip pairs, bad pairs."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest
from conftest import TINY_FRAMES, tiny_model_config

from edge_rcnn.cli import main
from edge_rcnn.core.data import DataWarning, normalize, read_clip, scan_folder
from edge_rcnn.core.data.pipeline import check_flip_pairs, flip_label_map, unpaired_direction_labels
from edge_rcnn.core.errors import ConfigError, DataError
from edge_rcnn.core.train import TrainConfig

LABELS = ("left", "right", "still")
CLIPS = 3  # per label
SIZE = 32
MIRROR = {"left": "right", "right": "left", "still": "still"}


def write_motion_folder(root, dataset_json=None):
    """DATA/<label>/c<k>/*.png: a bright bar that moves 2 px a frame left or right, or stands still.

    Each clip draws its bar on its own band of rows, so a mirrored clip still shows which clip it was.
    """
    for n, (label, k) in enumerate((label, k) for label in LABELS for k in range(CLIPS)):
        folder = root / label / f"c{k}"
        folder.mkdir(parents=True)
        for i in range(TINY_FRAMES):
            column = {"right": 4 + 2 * i, "left": 24 - 2 * i, "still": 4}[label]
            frame = np.zeros((SIZE, SIZE, 3), np.uint8)
            frame[3 * n:3 * n + 3, column:column + 4] = 200
            cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    if dataset_json is not None:
        (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


def motion(clip):
    """+1 when the bright pixels move right from the first to the last frame, -1 left, 0 still."""
    grey = clip.mean(-1) - clip.min()
    columns = np.arange(grey.shape[-1])
    first, last = ((g.sum(0) * columns).sum() / g.sum() for g in (grey[0], grey[-1]))
    return int(np.sign(round(last - first)))


def test_a_mirrored_clip_takes_its_pair_label_and_symmetric_labels_keep_theirs(tmp_path, monkeypatch):
    from edge_rcnn.core.data import make_dataset, pipeline

    monkeypatch.setattr(pipeline, "MAX_CROP", 0.0)
    monkeypatch.setattr(pipeline, "MAX_BRIGHTNESS", 0.0)
    index = scan_folder(write_motion_folder(tmp_path), frames=TINY_FRAMES, val_fraction=0.0)
    config = tiny_model_config(labels=LABELS)
    plain = [normalize(read_clip(ref, frames=TINY_FRAMES, size=SIZE), config) for ref in index.train]
    assert [motion(c) for c in plain] == [-1] * CLIPS + [1] * CLIPS + [0] * CLIPS

    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # every direction label has its pair: no warning
        ds = make_dataset(index.train, config, batch=len(plain), training=True, seed=3, flip=True,
                          flip_pairs=[("left", "right")])
    seen = set()
    batches = [(x.numpy(), y.numpy()) for _ in range(2) for x, y in ds]  # two epochs, one batch each
    for x, y in batches:
        for sample, label in zip(x, y):
            name = LABELS[label]
            source = [j for j, c in enumerate(plain) if np.allclose(sample, c, atol=1e-5)]
            mirrored = [j for j, c in enumerate(plain) if np.allclose(sample, c[:, :, ::-1], atol=1e-5)]
            assert len(source) + len(mirrored) == 1  # the clip itself or its mirror image, nothing else
            if source:
                assert name == index.train[source[0]].label
            else:
                assert name == MIRROR[index.train[mirrored[0]].label]
            assert motion(sample) == {"left": -1, "right": 1, "still": 0}[name]  # the label says what moves
            seen.add((index.train[(source or mirrored)[0]].label, bool(mirrored)))
    assert {("left", True), ("left", False), ("right", True), ("still", True)} <= seen


def test_flip_label_map_and_pair_checks():
    np.testing.assert_array_equal(flip_label_map(LABELS, [["left", "right"]]), [1, 0, 2])
    np.testing.assert_array_equal(flip_label_map(LABELS, ()), [0, 1, 2])
    assert check_flip_pairs([["left", "right"]]) == (("left", "right"),)
    for pairs, words in [
        ([("left", "lft")], ["'lft' is not a label", "left, right, still"]),
        ([("left", "left")], ["'left' is paired with itself"]),
        ([("left", "right"), ("right", "still")], ["'right' is in two pairs"]),
        ([("left",)], ["two label names"]),
        ("left:right", ["a list of"]),
    ]:
        with pytest.raises(ConfigError) as info:
            flip_label_map(LABELS, pairs)
        assert all(word in str(info.value) for word in ["flip_pairs", *words]), info.value


def test_direction_words_are_matched_on_word_parts():
    labels = ("swipe_left", "Pan-Right", "turn CW", "rotate_counterclockwise", "go east", "leftover", "up", "wave")
    assert unpaired_direction_labels(labels, ()) == list(labels[:5])
    assert unpaired_direction_labels(labels, [("swipe_left", "Pan-Right")]) == list(labels[2:5])


def test_one_warning_names_the_direction_labels_without_a_pair(tmp_path):
    from edge_rcnn.core.data import make_dataset

    index = scan_folder(write_motion_folder(tmp_path), frames=TINY_FRAMES, val_fraction=0.0)
    config = tiny_model_config(labels=LABELS)
    with pytest.warns(DataWarning, match=r"\['left', 'right'\].*no flip pair") as record:
        make_dataset(index.train, config, batch=4, training=True, flip=True)
    assert len([w for w in record if issubclass(w.category, DataWarning)]) == 1
    assert "still" not in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no flips, no warning
        make_dataset(index.train, config, batch=4, training=True, flip=False)
        make_dataset(index.train, config, batch=4, training=False, flip=True)


# --- which flips training uses: dataset.json, --flip and --flip-pairs --------------------------------------


class _Stop(Exception):
    """Raised by the stand-in make_epoch_datasets: the flip settings are known, no need to train."""


@pytest.fixture
def flips_of(monkeypatch):
    """``flips_of(argv)``: the (flip, flip_pairs) that ``edge-rcnn train`` hands to the training pipeline."""
    from edge_rcnn.core import train

    seen = {}

    def stand_in(refs, config, **kwargs):
        seen.update(flip=kwargs["flip"], flip_pairs=kwargs["flip_pairs"])
        raise _Stop

    monkeypatch.setattr(train, "make_epoch_datasets", stand_in)  # what train() hands the flips to
    monkeypatch.setenv("EDGE_RCNN_DEBUG", "1")  # let _Stop through the CLI's error handling

    def run(argv):
        with pytest.raises(_Stop):
            main(argv)
        return seen["flip"], seen["flip_pairs"]

    return run


def _train_args(data, out, *extra):
    return ["train", str(data), "--out", str(out), "--frames", str(TINY_FRAMES), "--size", str(SIZE), *extra]


@pytest.mark.parametrize("dataset_json, extra, expected", [
    (None, [], (False, ())),  # no dataset.json: labels may not survive a mirror
    (None, ["--flip", "yes"], (True, ())),
    (None, ["--flip-pairs", "left:right"], (True, (("left", "right"),))),
    (None, ["--flip-pairs", "left:right", "--flip", "no"], (False, (("left", "right"),))),
    ({"flip_invariant": True}, [], (True, ())),
    ({"flip_invariant": False, "flip_pairs": []}, [], (False, ())),  # what moving digits writes
    ({"flip_pairs": [["right", "left"]]}, [], (True, (("right", "left"),))),
    ({"flip_pairs": [["right", "left"]]}, ["--flip-pairs", ""], (False, ())),  # the CLI's pairs win
])
def test_flip_setting_from_dataset_json_and_the_cli(tmp_path, flips_of, dataset_json, extra, expected):
    data = write_motion_folder(tmp_path / "data", dataset_json)
    assert flips_of(_train_args(data, tmp_path / "run", *extra)) == expected


def test_scan_folder_without_dataset_json_says_no_flips(tmp_path):
    index = scan_folder(write_motion_folder(tmp_path), frames=TINY_FRAMES)
    assert (index.flip_invariant, index.flip_pairs) == (False, ())


@pytest.mark.parametrize("dataset_json, extra, words", [
    (None, ["--flip-pairs", "left"], ["--flip-pairs", "'left'", "label:mirrored_label"]),
    (None, ["--flip-pairs", "left:"], ["--flip-pairs", "'left:'"]),
    (None, ["--flip-pairs", "left:lft"], ["flip_pairs", "'lft' is not a label", "left, right, still"]),
    (None, ["--flip-pairs", "left:left"], ["flip_pairs", "'left' is paired with itself"]),
    (None, ["--flip-pairs", "left:right,still:right"], ["flip_pairs", "'right' is in two pairs"]),
    ({"flip_pairs": [["left", "up"]]}, [], ["dataset.json: flip_pairs", "'up' is not a label", "left, right, still"]),
    ({"flip_pairs": [["left"]]}, [], ["dataset.json: flip_pairs", "two label names"]),
    ({"flip_pairs": "left:right"}, [], ["dataset.json: flip_pairs", "a list of"]),
    ({"flip_invariant": "yes"}, [], ["dataset.json: flip_invariant", "'yes'"]),
])
def test_bad_flip_pairs_are_one_line_and_exit_2_before_training(tmp_path, capsys, dataset_json, extra, words):
    data = write_motion_folder(tmp_path / "data", dataset_json)
    code = main(_train_args(data, tmp_path / "run", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert all(word in err for word in words), err
    assert not (tmp_path / "run").exists()  # stopped before the run folder, the model or any decoding


def test_train_config_checks_flip_settings():
    assert TrainConfig(flip_pairs=[["left", "right"]]).flip_pairs == (("left", "right"),)
    with pytest.raises(ConfigError, match="flip: expected True, False or None"):
        TrainConfig(flip="yes")
    with pytest.raises(ConfigError, match="flip_pairs: 'a' is paired with itself"):
        TrainConfig(flip_pairs=[("a", "a")])


@pytest.mark.slow  # a training run through the CLI
@pytest.mark.filterwarnings("ignore:the model does not use frame order")  # one epoch: not the point here
def test_the_run_records_the_flips_it_used(tmp_path):
    data = write_motion_folder(tmp_path / "data")
    args = _train_args(data, tmp_path / "run", "--flip-pairs", "left:right", "--backbone", "tiny", "--width", "4",
                       "--units", "8", "--epochs", "1", "--batch", "4")
    assert main(args) == 0
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["train_config"]
    assert (recorded["flip"], recorded["flip_pairs"]) == (True, [["left", "right"]])


def test_a_dataset_json_with_bad_pairs_fails_the_scan(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.json: flip_pairs: 'up' is not a label"):
        scan_folder(write_motion_folder(tmp_path, {"flip_pairs": [["left", "up"]]}), frames=TINY_FRAMES)
