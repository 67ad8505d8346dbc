"""edge-rcnn: train a CNN+RNN video model, quantize it, run it on small devices.

Importing this package is cheap (no TensorFlow); the heavy parts load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from edge_rcnn.config import InputMode, ModelConfig, Normalization, RnnType  # noqa: E402
from edge_rcnn.errors import EdgeRcnnError  # noqa: E402

_LAZY = {
    # name: (module, attribute)
    "train": ("edge_rcnn.train", "train"),
    "TrainConfig": ("edge_rcnn.train", "TrainConfig"),
    "build_model": ("edge_rcnn.model", "build_model"),
    "load_model": ("edge_rcnn.model", "load_model"),
    "make_moving_digits": ("edge_rcnn.data.moving_digits", "make_moving_digits"),
    "load": ("runtimes", "load"),
    "list_devices": ("runtimes", "list_devices"),
    "quantize": ("converters", "quantize"),
    "export": ("converters", "export"),
    "verify": ("converters", "verify"),
    "info": ("converters", "info"),
}

__all__ = ["__version__", "EdgeRcnnError", "InputMode", "ModelConfig", "Normalization", "RnnType", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edge_rcnn' has no attribute {name!r}")
