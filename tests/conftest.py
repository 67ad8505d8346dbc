"""Shared fixtures: tiny configs, models and data folders made at test time (seconds each)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("EDGE_RCNN_QUIET", "1")  # no progress bars in test logs

# Tiny built-in data: 2 digits x 2 directions = 4 classes, 8 frames of 32x32.
TINY_DIGITS = (0, 1)
TINY_DIRECTIONS = ("right", "left")
TINY_FRAMES = 8


def tiny_model_config(**overrides):
    from edge_rcnn.core.config import ModelConfig

    kwargs = dict(
        labels=tuple(f"{d}_{m}" for d in TINY_DIGITS for m in TINY_DIRECTIONS),
        frames=TINY_FRAMES, input_size=(32, 32), channels=3, backbone="tiny", width=4, units=8,
    )
    kwargs.update(overrides)
    return ModelConfig(**kwargs)


@pytest.fixture
def tiny_config():
    return tiny_model_config()


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory):
    """An untrained tiny clip model (tiny backbone, LSTM) saved as model.keras; returns the path."""
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import build_model, save_model

    keras().utils.set_random_seed(0)
    config = tiny_model_config()
    path = tmp_path_factory.mktemp("tiny_model") / "model.keras"
    save_model(build_model(config), config, path)
    return path


def tiny_model_files(out, metadata):
    """The tiny clip model (untrained, batch 1) as ``raw``/``float``/``int8`` .tflite and
    ``raw``/``float`` .onnx in ``out``; ``metadata(config, mode)`` is what the non-raw files embed.

    Built with the converters' own APIs underneath ours, so runtime tests see plain LiteRT / tf2onnx
    files. Returns ``(model, config, calibration inputs, float TFLite bytes without metadata,
    ONNX proto without metadata, int8 TFLite bytes with metadata)``.
    """
    import onnx
    import tf2onnx

    from converters.metadata import embed_onnx_metadata, embed_tflite_metadata
    from edge_rcnn.core._keras import keras, tf
    from edge_rcnn.core.model import build_model

    tf_, k = tf(), keras()
    k.utils.set_random_seed(0)
    config = tiny_model_config()
    model = build_model(config, batch_size=1)
    rng = np.random.default_rng(0)
    calib = [rng.uniform(-1, 1, (1, *config.input_shape)).astype(np.float32) for _ in range(4)]

    raw = tf_.lite.TFLiteConverter.from_keras_model(model).convert()
    (out / "raw.tflite").write_bytes(raw)
    (out / "float.tflite").write_bytes(embed_tflite_metadata(raw, metadata(config, "float")))
    conv = tf_.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf_.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c] for c in calib)
    conv.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf_.int8
    int8 = embed_tflite_metadata(conv.convert(), metadata(config, "int8"))
    (out / "int8.tflite").write_bytes(int8)
    sig = (tf_.TensorSpec((1, *config.input_shape), tf_.float32, name="frames"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=17)
    onnx.save(proto, out / "raw.onnx")
    onnx.save(embed_onnx_metadata(proto, metadata(config, "float")), out / "float.onnx")
    return model, config, calib, raw, proto, int8


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """A tiny moving-digits folder of .mp4 clips: DATA/{train,val}/<label>/*.mp4."""
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    out = tmp_path_factory.mktemp("digits")
    return make_moving_digits(
        out, digits=TINY_DIGITS, directions=TINY_DIRECTIONS, clips_per_class=24,
        frames=TINY_FRAMES, size=32, seed=0, progress=False,
    )


@pytest.fixture(scope="session")
def trained_model_file(tmp_path_factory, digits_dir):
    """A small model trained on ``digits_dir`` for a few epochs (well above chance); its model.keras.

    mobilenet at width 8: the tiny backbone's global pooling sees too little of where the digit is
    to learn the direction in a dozen epochs (~40% val, measured); this one reaches 100% on
    held-out handwriting in 20 epochs, so parity tests measure quantization, not coin flips.
    """
    from edge_rcnn.core.train import TrainConfig, train

    run = tmp_path_factory.mktemp("trained_run")
    config = tiny_model_config(backbone="mobilenet", width=8, units=16)
    result = train(digits_dir, run, config, TrainConfig(epochs=20, batch=8, lr=5e-3, seed=0))
    return result.model_path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
