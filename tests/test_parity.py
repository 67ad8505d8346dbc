"""Parity across formats on a trained model: Keras float, TFLite int8, ONNX fp32 and int8.

The same held-out clips (handwriting the model never saw, generated here) through every file
give the same top-1 on >= 98% of clips, each clip predicted one after another through
``runtimes.load(...).predict`` as a device would (clean recurrent state per clip).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import TINY_DIGITS, TINY_DIRECTIONS, TINY_FRAMES

HELD_OUT_PER_CLASS = 25  # 100 clips: one disagreement is 1 point

pytestmark = pytest.mark.slow  # a training run, then four conversions of the trained model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, trained_model_file, digits_dir):
    from converters import export, quantize

    out = tmp_path_factory.mktemp("parity")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration clips in the tiny folder: warned on purpose
        quantize(trained_model_file, digits_dir, out, formats="tflite,onnx", mode="int8", split="train",
                 samples=76, verify_samples=8, max_drop=100, progress=False)
        quantize(trained_model_file, digits_dir, out / "cpu", formats="onnx", mode="int8", onnx_int8="cpu",
                 split="train", samples=76, verify_samples=8, max_drop=100, progress=False)
        quantize(trained_model_file, digits_dir, out / "fused", formats="tflite", mode="int8", lstm_kernel="fused",
                 split="train", samples=76, verify_samples=8, max_drop=100, progress=False)
        export(trained_model_file, out / "float", formats="onnx", mode="float", verify_samples=4, progress=False)
    return out


@pytest.fixture(scope="module")
def held_out():
    from edge_rcnn.core.data.moving_digits import generate_moving_digits

    x, y, labels = generate_moving_digits(HELD_OUT_PER_CLASS, digits=TINY_DIGITS, directions=TINY_DIRECTIONS,
                                          frames=TINY_FRAMES, size=32, seed=1234, split="val")
    return x, y, labels


@pytest.mark.filterwarnings("ignore::runtimes.errors.TensorRtFileOnCpuWarning")  # Jetson files on this CPU, on purpose
def test_every_format_agrees_with_keras_on_held_out_clips(exported, trained_model_file, held_out):
    import edge_rcnn
    from edge_rcnn.core.data import normalize
    from edge_rcnn.core.model import load_model

    x, y, labels = held_out
    model, config = load_model(trained_model_file)
    keras_probs = model.predict(normalize(x, config), verbose=0)
    keras_top1 = keras_probs.argmax(-1)  # indices into config.labels, as every exported file's
    truth = np.array([config.labels.index(labels[i]) for i in y])  # generator order -> model order
    assert (keras_top1 == truth).mean() >= 0.7  # the model is trained: parity on noise would prove nothing
    files = {
        "tflite-int8": exported / "model_int8.tflite",
        "tflite-int8-fused": exported / "fused" / "model_int8.tflite",
        "onnx-int8-tensorrt": exported / "model_int8.onnx",
        "onnx-int8-cpu": exported / "cpu" / "model_int8.onnx",
        "onnx-fp32": exported / "float" / "model_float.onnx",
    }
    agreement = {}
    for name, path in files.items():
        predictor = edge_rcnn.load(path, device="cpu")
        top1 = np.array([predictor.predict(clip).index for clip in x])  # one clip after another
        agreement[name] = float((top1 == keras_top1).mean())
    assert agreement["onnx-fp32"] == 1.0, agreement
    assert min(agreement.values()) >= 0.98, agreement
