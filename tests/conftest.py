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


@pytest.fixture(scope="session")
def tiny_converted():
    """The tiny clip model (untrained, batch 1) converted once per session with the converters'
    own APIs underneath ours, so runtime tests see plain LiteRT / tf2onnx files:
    ``(model, config, calibration inputs, float TFLite bytes, int8 TFLite bytes, ONNX proto)``,
    none with metadata. Read only: ``tiny_model_files`` writes copies."""
    import tf2onnx

    from edge_rcnn.core._keras import keras, tf
    from edge_rcnn.core.model import build_model

    tf_, k = tf(), keras()
    k.utils.set_random_seed(0)
    config = tiny_model_config()
    model = build_model(config, batch_size=1)
    rng = np.random.default_rng(0)
    calib = [rng.uniform(-1, 1, (1, *config.input_shape)).astype(np.float32) for _ in range(4)]

    raw = tf_.lite.TFLiteConverter.from_keras_model(model).convert()
    conv = tf_.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf_.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c] for c in calib)
    conv.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf_.int8
    int8 = conv.convert()
    sig = (tf_.TensorSpec((1, *config.input_shape), tf_.float32, name="frames"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=17)
    return model, config, calib, raw, int8, proto


def tiny_model_files(out, metadata, converted):
    """``converted`` (the ``tiny_converted`` fixture) as ``raw``/``float``/``int8`` .tflite and
    ``raw``/``float`` .onnx in ``out``; ``metadata(config, mode)`` is what the non-raw files embed.

    Returns ``(model, config, calibration inputs, float TFLite bytes without metadata,
    ONNX proto without metadata, int8 TFLite bytes with metadata)``.
    """
    import onnx

    from converters.metadata import embed_onnx_metadata, embed_tflite_metadata

    model, config, calib, raw, int8_bare, shared_proto = converted
    (out / "raw.tflite").write_bytes(raw)
    (out / "float.tflite").write_bytes(embed_tflite_metadata(raw, metadata(config, "float")))
    int8 = embed_tflite_metadata(int8_bare, metadata(config, "int8"))
    (out / "int8.tflite").write_bytes(int8)
    proto = onnx.ModelProto()
    proto.CopyFrom(shared_proto)  # embedding sets metadata in place: the session's proto stays bare
    onnx.save(proto, out / "raw.onnx")
    with_meta = onnx.ModelProto()
    with_meta.CopyFrom(shared_proto)
    onnx.save(embed_onnx_metadata(with_meta, metadata(config, "float")), out / "float.onnx")
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


# Export folders shared by every test file that needs the same export (read only: a test that
# writes into one, or tampers with it, copies it to its own tmp_path first).

@pytest.fixture(scope="session")
def tiny_float_stream_dir(tmp_path_factory, tiny_model_file):
    """``tiny_model_file`` exported in float as TFLite and ONNX with their streaming parts:
    ``model_float.*``, ``stream_encoder_float.*``, ``stream_head_float.*`` and the manifest."""
    from converters import export

    out = tmp_path_factory.mktemp("tiny_float_stream") / "out"
    export(tiny_model_file, out, mode="float", formats="tflite,onnx", streaming=True, verify_samples=2, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_int8_stream_dir(tmp_path_factory, tiny_model_file, digits_dir):
    """``tiny_model_file`` quantized to int8 TFLite and ONNX (for ONNX Runtime's CPU kernels) with
    their streaming parts, calibrated on the train split of ``digits_dir``."""
    import warnings

    from converters import quantize

    out = tmp_path_factory.mktemp("tiny_int8_stream") / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration clips: a warning, on purpose
        quantize(tiny_model_file, digits_dir, out, formats="tflite,onnx", mode="int8", streaming=True, split="train",
                 samples=8, verify_samples=4, max_drop=100, onnx_int8="cpu", progress=False)
    return out


class CostClock:
    """A clock that moves only when a fake spends time on it: timing code reads ``perf_counter``
    (patch it in as that module's ``time``), fakes call ``spend(seconds)``. Which candidate is
    faster is then decided by the costs the test gives, never by how loaded the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds
