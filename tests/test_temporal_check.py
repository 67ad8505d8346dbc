"""The frame-order check: hand-made models whose use of order is known, then a real training run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import TINY_FRAMES

from edge_rcnn.cli import main
from edge_rcnn.core import temporal_check
from edge_rcnn.core.temporal_check import (
    FrameOrderWarning,
    TemporalCheck,
    check_temporal,
    shuffle_frames,
    warn_if_order_blind,
)
from edge_rcnn.core.train import TrainConfig, train

T, SIDE = 6, 4


def batches(x, y, batch=8):
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]


def order_blind_model(classes=3, channels=2):
    """Average over time and space, then a Dense layer: frame order cannot matter."""
    from edge_rcnn.core._keras import keras

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((T, SIDE, SIDE, channels))
    outputs = k.layers.Dense(classes, activation="softmax")(k.layers.GlobalAveragePooling3D()(inputs))
    return k.Model(inputs, outputs)


def last_minus_first_model():
    """Class 1 when the last frame is brighter than the first, else class 0 (constant weights)."""
    from edge_rcnn.core._keras import keras

    k = keras()
    kernel = np.zeros((T, 1, 1, 1, 1), np.float32)
    kernel[0], kernel[-1] = -1.0, 1.0
    inputs = k.Input((T, SIDE, SIDE, 1))
    diff = k.layers.Conv3D(1, (T, 1, 1), use_bias=False, kernel_initializer=k.initializers.Constant(kernel))(inputs)
    pooled = k.layers.GlobalAveragePooling3D()(diff)
    outputs = k.layers.Dense(2, activation="softmax", kernel_initializer=k.initializers.Constant([[-1.0, 1.0]]),
                             bias_initializer="zeros")(pooled)
    return k.Model(inputs, outputs)


def test_an_order_blind_model_scores_the_same_on_every_order(rng):
    model = order_blind_model()
    x = rng.normal(size=(40, T, SIDE, SIDE, 2)).astype(np.float32)
    predicted = model.predict(x, verbose=0).argmax(-1)
    y = np.where(np.arange(40) % 2 == 0, predicted, (predicted + 1) % 3)  # right on half the clips
    check = check_temporal(model, batches(x, y), seed=0)
    assert check.clips == 40 and check.top1 == pytest.approx(float(np.mean(predicted == y)))
    assert check.shuffled_top1 == check.reversed_top1 == check.top1
    assert not check.uses_frame_order and check.to_dict()["uses_frame_order"] is False


def test_a_model_that_reads_change_drops_when_frames_run_backwards(rng):
    model = last_minus_first_model()
    slope = np.where(rng.random(48) < 0.5, -1.0, 1.0)
    x = (rng.normal(size=(48, 1, SIDE, SIDE, 1)) + slope[:, None, None, None, None]
         * np.arange(T)[None, :, None, None, None]).astype(np.float32)  # brightening or darkening clips
    y = (slope > 0).astype(np.int64)
    check = check_temporal(model, batches(x, y), seed=0)
    assert check.top1 == 1.0 and check.reversed_top1 == 0.0  # reversing turns brightening into darkening
    assert check.shuffled_top1 < check.top1 and check.uses_frame_order
    assert check.to_dict() == {"top1": check.top1, "shuffled_top1": check.shuffled_top1,
                               "reversed_top1": check.reversed_top1, "clips": 48, "uses_frame_order": True}


@pytest.mark.parametrize("frames", [2, 3, 8])
def test_every_clip_is_really_shuffled(frames):
    clips = np.broadcast_to(np.arange(frames, dtype=np.float32)[None, :, None, None, None], (64, frames, 2, 2, 1))
    out = shuffle_frames(clips, np.random.default_rng(0))
    orders = out[:, :, 0, 0, 0].astype(int)  # frame t holds the value t
    assert out.shape == clips.shape
    assert (np.sort(orders, axis=1) == np.arange(frames)).all()  # a permutation of the frames
    assert not (orders == np.arange(frames)).all(axis=1).any()  # never the identity
    assert (out == orders[:, :, None, None, None]).all()  # whole frames move, nothing else changes
    if frames > 2:
        assert len({tuple(o) for o in orders}) > 1  # each clip draws its own order
    np.testing.assert_array_equal(shuffle_frames(clips, np.random.default_rng(0)), out)  # seeded


def test_a_single_frame_cannot_be_shuffled():
    with pytest.raises(ValueError, match=r"T >= 2, got shape \(3, 1, 2\)"):
        shuffle_frames(np.zeros((3, 1, 2)), np.random.default_rng(0))


@pytest.mark.parametrize(
    "shuffled, reversed_, uses_order",
    [(0.85, 0.10, False), (0.10, 0.85, False), (0.84, 0.10, True), (0.90, 0.90, False), (0.95, 0.2, False)],
)
def test_close_means_the_better_reordering_is_within_the_margin(shuffled, reversed_, uses_order):
    check = TemporalCheck(top1=0.90, shuffled_top1=shuffled, reversed_top1=reversed_, clips=100)
    assert temporal_check.ORDER_MARGIN == 0.05  # the cases above sit on either side of 5 points
    assert check.uses_frame_order is uses_order
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_order_blind(check)
    assert [w.category for w in caught] == ([] if uses_order else [FrameOrderWarning])
    if caught:
        message = str(caught[0].message)
        assert "\n" not in message and "does not use frame order" in message and "labels do not depend" in message


@pytest.mark.slow  # two training runs
def test_training_records_the_check_and_the_cli_prints_it(digits_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(temporal_check, "ORDER_MARGIN", 1.0)  # every model is "close": the warning must show
    args = ["train", str(digits_dir), "--out", str(run), "--frames", str(TINY_FRAMES), "--size", "32",
            "--backbone", "tiny", "--width", "4", "--units", "8", "--epochs", "1", "--batch", "8"]
    with pytest.warns(FrameOrderWarning) as caught:
        assert main(args) == 0
    out = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    recorded = metrics["temporal_check"]
    check = TemporalCheck(**{k: v for k, v in recorded.items() if k != "uses_frame_order"})
    assert recorded["uses_frame_order"] is False and check.clips == metrics["val_clips"]
    assert check.top1 == pytest.approx(metrics["best_val_accuracy"], abs=1e-6)  # the best model, scored again
    assert check.summary() in out.splitlines()
    blind = [w for w in caught if w.category is FrameOrderWarning]
    assert len(blind) == 1
    shown = warnings.formatwarning(blind[0].message, blind[0].category, blind[0].filename, blind[0].lineno)
    assert shown.startswith("edge-rcnn: warning: the model does not use frame order") and shown.count("\n") == 1

    # The finished run, rerun: nothing to train, the same check again (and no warning once it uses order).
    monkeypatch.setattr(temporal_check, "ORDER_MARGIN", -2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrameOrderWarning)
        again = train(digits_dir, run, {"frames": TINY_FRAMES, "input_size": (32, 32), "backbone": "tiny",
                                        "width": 4, "units": 8},
                      TrainConfig(epochs=1, batch=8))
    assert again.epochs_run == 1 and again.temporal_check == check
    assert json.loads((run / "metrics.json").read_text())["temporal_check"]["uses_frame_order"] is True
