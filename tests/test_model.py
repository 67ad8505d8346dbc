"""Every backbone x RNN type builds, trains a step, and round-trips through model.keras."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import tiny_model_config

from edge_rcnn.core.backbones import scratch_backbones
from edge_rcnn.core.errors import ModelFileError
from edge_rcnn.core.model import build_model, load_model, read_config, save_model


@pytest.mark.parametrize("backbone, rnn", [  # the ImageNet ones: tests/test_pretrained.py
    pytest.param(b, r, marks=() if (b, r) == ("tiny", "lstm") else pytest.mark.slow)  # one pair in the fast loop
    for b in scratch_backbones() for r in ("lstm", "gru")])
def test_each_backbone_and_rnn_builds_and_trains_a_step(backbone, rnn):
    cfg = tiny_model_config(backbone=backbone, rnn=rnn, frames=4)
    model = build_model(cfg)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(2, *cfg.input_shape)).astype("float32")
    y = np.array([0, 1])
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    probs = model(x).numpy()
    assert probs.shape == (2, cfg.num_classes)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert [l.name for l in model.layers if l.name.startswith("rnn_")] == ["rnn_0"]


def test_image_mode_reads_feature_rows_as_a_sequence():
    cfg = tiny_model_config(mode="image", rnn="gru", layers=2)
    model = build_model(cfg)
    rows = model.get_layer("rows").output_shape
    assert rows[1] == 8  # 32 px -> two 2x pools -> 8 rows, each a time step
    assert model(np.zeros((1, 32, 32, 3), "float32")).shape == (1, cfg.num_classes)


def test_save_load_roundtrip_keeps_config_and_outputs(tmp_path):
    cfg = tiny_model_config(backbone="mobilenet", dropout=0.2)
    model = build_model(cfg)
    path = save_model(model, cfg, tmp_path / "m.keras")
    assert read_config(path) == cfg
    loaded, loaded_cfg = load_model(path)
    x = np.random.default_rng(1).normal(size=(1, *cfg.input_shape)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    assert loaded_cfg == cfg
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_pair_model_reads_t_minus_1_steps_of_stacked_frames():
    cfg = tiny_model_config(motion="pair", frames=5)
    model = build_model(cfg)
    assert model.input_shape == (None, 5, 32, 32, 3)
    assert model.get_layer("frames_cnn").layer.input_shape == (None, 32, 32, 6)
    assert model.get_layer("rnn_0").input_shape[1] == 4 == cfg.steps


def test_the_grid_keeps_where_things_are_and_the_global_average_does_not():
    blob = np.zeros((2, 32, 32, 3), np.float32) - 1.0
    blob[0, 4:12, 4:12] = 1.0  # the same square, top left ...
    blob[1, 20:28, 20:28] = 1.0  # ... and bottom right
    outputs = {}
    for grid in (0, 4):
        cfg = tiny_model_config(motion="none", grid=grid)
        encoder = build_model(cfg).get_layer("frames_cnn").layer
        outputs[grid] = encoder(blob, training=False).numpy()
    assert outputs[4].shape[-1] == 16 * tiny_model_config().projection
    assert np.abs(outputs[4][0] - outputs[4][1]).max() > 10 * np.abs(outputs[0][0] - outputs[0][1]).max()


def _cue_terms(cfg, cur, prev):
    from tf_keras import Model

    encoder = build_model(cfg).get_layer("frames_cnn").layer
    terms = Model(encoder.input, encoder.get_layer("cue_terms2").output)
    return terms(np.concatenate([cur, prev], -1)[None], training=False).numpy()[0].mean((0, 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_cues_tell_left_from_right_whatever_the_texture(seed):
    import cv2

    cfg = tiny_model_config(motion="gradient", input_size=(64, 64))
    rng = np.random.default_rng(seed)
    sigma, contrast = rng.uniform(1.0, 3.0), rng.uniform(0.2, 1.0)
    texture = contrast * cv2.GaussianBlur(rng.uniform(-1, 1, (80, 80, 3)).astype(np.float32), (0, 0), sigma)
    still = texture[8:72, 8:72]
    left = _cue_terms(cfg, texture[8:72, 9:73], still)  # the new frame shows content one pixel further left
    right = _cue_terms(cfg, texture[8:72, 7:71], still)
    # terms: Ix+It+, Ix+It-, Ix-It+, Ix-It-, then Iy.., then the parts themselves
    assert left[0] > 3 * left[1] and left[3] > 3 * left[2]  # Ix and It agree: content moves left
    assert right[1] > 3 * right[0] and right[2] > 3 * right[3]
    nothing = _cue_terms(cfg, still, still)
    assert nothing[:8].max() < 0.05 * left[:8].max()


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        read_config(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a zip")
    with pytest.raises(ModelFileError, match="junk.keras: not a Keras model"):
        load_model(junk)


@pytest.mark.parametrize("size, cells", [(16, 2), (40, 3), (72, 3), (100, 4)])
def test_the_cues_cut_into_the_same_cells_as_the_appearance_at_any_input_size(size, cells):
    cfg = tiny_model_config(backbone="mobilenet", input_size=(size, size))  # stride 8: map of ceil(size / 8)
    encoder = build_model(cfg).get_layer("frames_cnn").layer
    assert encoder.output_shape == (None, cells * cells * cfg.projection)
    scales = [l for l in encoder.layers if l.name.startswith("cue_gradients")]
    assert scales and all(encoder.get_layer(l.name.replace("gradients", "cells")).output_shape[1:3] == (cells, cells)
                          for l in scales)
