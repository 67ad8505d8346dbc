"""edge-rcnn: train a CNN+RNN video model, quantize it, run it on small devices.

This module is the facade: the public functions of the three layers below it, by name. Importing
it does not import TensorFlow (the functions that build, train or convert a model do).

    edge_rcnn.core   config, backbones, the model builder, data, training
    converters       calibration, int8 quantization, TFLite / ONNX / Edge TPU export, verification
    runtimes         load(path).predict(clip) on LiteRT, the Edge TPU and ONNX Runtime
"""

from __future__ import annotations

from edge_rcnn.core.config import InputMode, ModelConfig, Normalization, RnnType
from edge_rcnn.core.data.moving_digits import make_moving_digits
from edge_rcnn.core.errors import EdgeRcnnError
from edge_rcnn.core.model import build_model, load_model
from edge_rcnn.core.train import TrainConfig, train
from edge_rcnn.core.version import __version__
from runtimes import list_devices, load

_CONVERTERS = ("export", "info", "quantize", "verify")

__all__ = [
    "EdgeRcnnError", "InputMode", "ModelConfig", "Normalization", "RnnType", "TrainConfig", "__version__",
    "build_model", "list_devices", "load", "load_model", "make_moving_digits", "train", *_CONVERTERS,
]


def __getattr__(name: str):
    # converters sits above edge_rcnn.core, which lives inside this package: importing any
    # edge_rcnn.core module runs this file first, so importing converters here would be a cycle
    # (converters -> edge_rcnn.core -> edge_rcnn -> converters). It is imported on first use.
    if name in _CONVERTERS:
        import converters

        value = getattr(converters, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edge_rcnn' has no attribute {name!r}")
