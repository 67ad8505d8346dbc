"""Training from a folder: outputs, resume, interruption, strategies and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import TINY_DIGITS, TINY_DIRECTIONS, TINY_FRAMES, tiny_model_config

from edge_rcnn.cli import main
from edge_rcnn.core.errors import ConfigError
from edge_rcnn.core.model import load_model
from edge_rcnn.core.train import TrainConfig, train

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the session's training run (20 epochs)
def test_trained_model_learns_and_writes_its_run(trained_model_file):
    run = trained_model_file.parent
    metrics = json.loads((run / "metrics.json").read_text())
    # 4 classes: chance is 25%; direction and digit must both be read to get far above it.
    assert metrics["best_val_accuracy"] >= 0.6
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == metrics["epochs_run"] and history["loss"][-1] < history["loss"][0]
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (run / png).read_bytes()[:8] == PNG
    model, config = load_model(trained_model_file)
    assert set(config.labels) == {f"{d}_{m}" for d in TINY_DIGITS for m in TINY_DIRECTIONS}
    assert model.input_shape == (None, *config.input_shape)
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


@pytest.mark.slow  # two training runs
def test_resume_continues_from_the_last_epoch(digits_dir, tmp_path):
    cfg = tiny_model_config()
    first = train(digits_dir, tmp_path, cfg, TrainConfig(epochs=2, batch=8, seed=1))
    assert first.epochs_run == 2
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 2
    second = train(digits_dir, tmp_path, cfg, TrainConfig(epochs=3, batch=8, seed=1))
    assert second.epochs_run == 3
    assert json.loads((tmp_path / "history.json").read_text())["loss"][:2] == first.history["loss"]


@pytest.mark.slow  # three training runs
def test_interrupt_mid_write_leaves_the_run_usable(digits_dir, tmp_path, monkeypatch):
    from edge_rcnn.core import callbacks

    cfg = tiny_model_config()
    train(digits_dir, tmp_path, cfg, TrainConfig(epochs=1, batch=8))
    before = (tmp_path / "last.keras").read_bytes()
    real_save = callbacks.RunKeeper._save

    def save_then_interrupt(self, path, state=None):
        real_save(self, path.with_name("scratch.keras"), state)
        raise KeyboardInterrupt  # as if Ctrl-C landed while writing

    monkeypatch.setattr(callbacks.RunKeeper, "_save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(digits_dir, tmp_path, cfg, TrainConfig(epochs=2, batch=8))
    assert (tmp_path / "last.keras").read_bytes() == before
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    assert train(digits_dir, tmp_path, cfg, TrainConfig(epochs=2, batch=8)).epochs_run == 2


@pytest.mark.slow  # a training run
def test_gru_with_the_mobilenet_backbone_trains(digits_dir, tmp_path):
    result = train(digits_dir, tmp_path, {"frames": TINY_FRAMES, "backbone": "mobilenet", "width": 4,
                                          "rnn": "gru", "units": 8}, TrainConfig(epochs=1, batch=8))
    assert result.config.rnn.value == "gru" and result.model_path.is_file()


def test_labels_must_match_the_folder(digits_dir, tmp_path):
    with pytest.raises(ConfigError, match="labels: the model config has"):
        train(digits_dir, tmp_path, tiny_model_config(labels=("a", "b")), TrainConfig(epochs=1))


@pytest.mark.slow  # a training run in a TensorFlow process of its own
def test_mirrored_strategy_on_two_logical_cpus(digits_dir, tmp_path):
    code = textwrap.dedent(f"""
        import os
        os.environ["EDGE_RCNN_QUIET"] = "1"
        from edge_rcnn.core._keras import tf
        cpu = tf().config.list_physical_devices("CPU")[0]
        tf().config.set_logical_device_configuration(cpu, [tf().config.LogicalDeviceConfiguration()] * 2)
        from edge_rcnn.core.train import TrainConfig, train
        r = train({str(digits_dir)!r}, {str(tmp_path)!r},
                  {{"frames": {TINY_FRAMES}, "backbone": "tiny", "width": 4, "units": 8}},
                  TrainConfig(epochs=1, batch=8, strategy="mirrored"))
        strategy = tf().distribute.MirroredStrategy(
            devices=[d.name for d in tf().config.list_logical_devices("CPU")])
        print("REPLICAS", strategy.num_replicas_in_sync, r.model_path.is_file())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REPLICAS 2 True" in out.stdout


def test_multiworker_needs_tf_config(digits_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        train(digits_dir, tmp_path, tiny_model_config(), TrainConfig(epochs=1, strategy="multiworker"))


@pytest.mark.parametrize(
    "make_args, words",
    [
        (lambda d, t: ["train", str(t / "nope"), "--out", str(t / "run")], ["nope"]),
        (lambda d, t: ["train", str(d), "--out", str(t / "run"), "--frames", "8", "--backbone", "vgg"], ["backbone", "'vgg'", "tiny"]),
        (lambda d, t: ["train", str(d), "--out", str(t / "run"), "--rnn", "rnn"], ["rnn", "lstm", "gru"]),
        (lambda d, t: ["train", str(d), "--out", str(t / "run"), "--strategy", "tpu"], ["strategy", "mirrored"]),
        (lambda d, t: ["train", str(d), "--out", str(t / "run"), "--epochs", "0"], ["epochs"]),
        (lambda d, t: ["train", str(d), "--out", str(t / "run"), "--frames", "99"], ["99"]),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(digits_dir, tmp_path, capsys, make_args, words):
    code = main(make_args(digits_dir, tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err


def test_cli_single_class_and_empty_folder(tmp_path, capsys):
    import shutil

    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    assert "empty" in capsys.readouterr().err
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    one = make_moving_digits(tmp_path / "one", digits=(3,), directions=("up", "down"), clips_per_class=4,
                             frames=4, size=32, progress=False)
    shutil.rmtree(one / "train" / "3_down")
    shutil.rmtree(one / "val" / "3_down")
    assert main(["train", str(one), "--out", str(tmp_path / "run"), "--frames", "4"]) == 2
    err = capsys.readouterr().err
    assert "class" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # a training run and an export
def test_image_mode_trains_exports_and_predicts(tmp_path):
    """image mode end to end: DATA/<label>/*.png -> rows-as-sequence RCNN -> TFLite -> predict."""
    import cv2
    import numpy as np

    import edge_rcnn
    from converters import export
    from edge_rcnn.core.data import normalize
    from edge_rcnn.core.data.moving_digits import generate_moving_digits

    x, y, labels = generate_moving_digits(12, digits=(0, 1), directions=("right",), frames=2, size=32, seed=3)
    for i, (clip, label) in enumerate(zip(x, y)):
        folder = tmp_path / "images" / labels[label].split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{i:02d}.png"), clip[0][..., ::-1])
    result = train(tmp_path / "images", tmp_path / "run", {"mode": "image", "backbone": "tiny", "width": 4, "units": 8},
                   TrainConfig(epochs=2, batch=8))
    assert result.config.mode.value == "image" and result.config.labels == ("0", "1")
    assert result.temporal_check is None  # no frames to reorder
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["temporal_check"] is None
    export(result.model_path, tmp_path / "out", formats="tflite", mode="float", verify_samples=2, progress=False)
    predictor = edge_rcnn.load(tmp_path / "out" / "model_float.tflite")
    model, config = load_model(result.model_path)
    image = x[0, 0]
    expected = model.predict(normalize(image[None], config), verbose=0)[0]
    np.testing.assert_allclose(predictor.predict(image).probs, expected, atol=1e-4)


def test_early_stopping_waits_while_the_val_loss_still_falls(tmp_path):
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.callbacks import RunKeeper

    k = keras()
    model = k.Sequential([k.Input((2,)), k.layers.Dense(2)])
    config = tiny_model_config()
    keeper = RunKeeper(tmp_path, config, {"patience": 3, "epochs": 30}, None, steps=1)
    keeper.set_model(model)
    epoch = 0

    def end(acc, loss):
        nonlocal epoch
        keeper.on_epoch_begin(epoch)
        keeper.on_epoch_end(epoch, {"loss": loss, "val_accuracy": acc, "val_loss": loss})
        epoch += 1

    end(0.25, 1.40)
    for loss in (1.30, 1.20, 1.10, 1.00, 0.90):  # a plateau in accuracy, but the model is learning
        end(0.25, loss)
    assert not model.stop_training and keeper.wait == 0
    end(0.25, 0.895)  # less than LOSS_PROGRESS better: no progress
    end(0.25, 0.95)
    assert not model.stop_training and keeper.wait == 2
    end(0.25, 0.95)
    assert model.stop_training and keeper.stopped_early
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["best"] == 0.25 and state["best_model_loss"] == 0.895  # the lowest loss among equals


@pytest.mark.slow
def test_in_frame_motion_is_learned_by_the_default_encoder_and_not_by_a_global_average(tmp_path):
    """Data built to make a motion-blind model fail: an object moving right, left, down or up that
    never leaves the frame. The old layout (one global average per frame, no frame pairs) cannot
    tell where the object goes; the default encoder can."""
    from edge_rcnn.core.data.motion import make_motion

    data = make_motion("translate", tmp_path / "translate", clips_per_class=32, frames=8, size=32, progress=False)
    tc = TrainConfig(epochs=12, batch=8, lr=5e-3, seed=0, patience=12)
    small = dict(frames=8, input_size=(32, 32), backbone="mobilenet", width=8, units=16)
    default = train(data, tmp_path / "default", small, tc)
    blind = train(data, tmp_path / "blind", {**small, "motion": "none", "grid": 0}, tc)
    assert default.best_val_accuracy >= 0.85, default.history["val_accuracy"]
    assert blind.best_val_accuracy <= 0.6, blind.history["val_accuracy"]
    assert default.temporal_check.reversed_top1 < 0.5  # reversed clips move the other way
