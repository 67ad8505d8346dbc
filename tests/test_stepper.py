"""The step head (edge_rcnn.core.stepper): S staggered windows advanced one step per call equal the
clip model on the last T frames, for every RNN type and depth, with frames or frame pairs as steps."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_model_config


@pytest.mark.parametrize("rnn, layers, motion, grid", [
    ("lstm", 1, "pair", 2), ("gru", 1, "pair", 2), ("lstm", 2, "none", 0), ("gru", 2, "none", 2)])
def test_step_head_equals_the_clip_model_on_every_last_t_window(rnn, layers, motion, grid):
    from edge_rcnn.core.model import build_model
    from edge_rcnn.core.stepper import build_step_head, run_step_head, state_names

    config = tiny_model_config(rnn=rnn, layers=layers, units=6, motion=motion, grid=grid)
    model = build_model(config)
    rng = np.random.default_rng(0)
    for w in model.weights:  # larger than the initializers' weights, so a wrong gate shows
        value = rng.normal(0, 0.5, w.shape).astype(np.float32)
        w.assign(np.abs(value) + 0.5 if "moving_variance" in w.name else value)  # a variance is positive
    head = build_step_head(model, config)
    assert [i.name for i in head.inputs] == ["feature", *state_names(config)]
    T, n = config.frames, 3 * config.frames + 5  # windows across the starts of several slot cycles
    encoder = model.get_layer("frames_cnn").layer
    video = rng.uniform(-1, 1, (n, *config.input_size, config.channels)).astype(np.float32)
    # A pair model's step n reads frame n + 1 stacked with frame n: the stream keeps the previous frame.
    steps = np.concatenate([video[1:], video[:-1]], axis=-1) if motion == "pair" else video
    features = np.asarray(encoder(steps, training=False))
    assert config.steps == (T - 1 if motion == "pair" else T)
    probs, feeds = run_step_head(lambda *a: head(list(a), training=False), features, config)
    windows = np.stack([video[i : i + T] for i in range(n - T + 1)])
    expected = np.asarray(model(windows, training=False))
    assert probs.shape == expected.shape == (n - T + 1, config.num_classes)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    assert len(feeds) == len(steps) and all(f[0].shape == (1, features.shape[1]) for f in feeds)
    assert np.abs(feeds[T + 1][1]).max() > 0  # the states really carry each window's history


def test_state_names_follow_the_rnn_type():
    from edge_rcnn.core.stepper import state_names

    assert state_names(tiny_model_config(rnn="lstm", layers=2)) == ["h0", "c0", "h1", "c1"]
    assert state_names(tiny_model_config(rnn="gru", layers=2)) == ["h0", "h1"]


@pytest.mark.slow  # a model of its own converted to four files with streaming parts, per mode
@pytest.mark.filterwarnings("ignore::runtimes.errors.TensorRtFileOnCpuWarning")  # Jetson files on this CPU, on purpose
@pytest.mark.parametrize("mode", ["float", "int8"])
def test_a_two_layer_gru_streams_through_tflite_and_onnx_like_its_clip_files(tmp_path, digits_dir, mode):
    import warnings

    import runtimes
    from converters import export, quantize
    from edge_rcnn.core.model import build_model, save_model

    config = tiny_model_config(rnn="gru", layers=2)
    path = save_model(build_model(config), config, tmp_path / "gru.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "int8":
            quantize(path, digits_dir, tmp_path / "out", formats="tflite,onnx", streaming=True, progress=False,
                     samples=4, verify_samples=8, max_drop=100.0)
        else:
            export(path, tmp_path / "out", formats="tflite,onnx", streaming=True, progress=False)
    rng = np.random.default_rng(1)
    video = rng.integers(0, 256, (config.frames + 6, 32, 32, 3), dtype=np.uint8)
    for ext in ("tflite", "onnx"):
        clip = runtimes.load(tmp_path / "out" / f"model_{mode}.{ext}")
        s = clip.stream()
        assert len(s.head.inputs) == 3  # feature, h0, h1
        for i, frame in enumerate(video):
            r = s.push(frame)
            if i >= config.frames - 1:
                ref = clip.predict(video[i - config.frames + 1 : i + 1])
                if mode == "float":
                    np.testing.assert_allclose(r.probs, ref.probs, atol=1e-4)
                else:  # int8 parts and int8 clip file are quantized separately: close, not equal
                    assert np.abs(r.probs - ref.probs).max() < 0.1
