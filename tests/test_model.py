"""Every backbone x RNN type builds, trains a step, and round-trips through model.keras."""

from __future__ import annotations

import numpy as np
import pytest

from edge_rcnn.backbones import BACKBONES
from edge_rcnn.errors import ModelFileError
from edge_rcnn.model import build_model, load_model, read_config, save_model, split_for_streaming
from conftest import tiny_model_config


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
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


def test_streaming_split_matches_the_clip_model():
    cfg = tiny_model_config(rnn="lstm")
    model = build_model(cfg)
    x = np.random.default_rng(2).normal(size=(1, *cfg.input_shape)).astype("float32")
    encoder, head = split_for_streaming(model, cfg)
    feats = np.concatenate([encoder(x[:, t]).numpy() for t in range(cfg.frames)])[None]
    np.testing.assert_allclose(head(feats).numpy(), model(x).numpy(), atol=1e-5)


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        read_config(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a zip")
    with pytest.raises(ModelFileError, match="junk.keras: not a Keras model"):
        load_model(junk)
