"""Converters: int8 calibration, TFLite / ONNX / Edge TPU export, verification against the float model.

One module per target with the same shape (``tflite``, ``onnx_export``, ``edgetpu``: each has
``convert(job) -> ExportedFile``), settings as a frozen ``ConvertConfig`` with enums, calibration
clips behind a ``get_next()`` reader, and verification through ``runtimes.load`` in ``verify``.
Importing this package is cheap: TensorFlow, tf2onnx and onnxruntime load inside the functions.
"""

from __future__ import annotations

from converters.api import ExportReport, export, quantize, verify
from converters.config import ConvertConfig, Format, IoType, Mode
from converters.describe import info

__all__ = ["ConvertConfig", "ExportReport", "Format", "IoType", "Mode", "export", "info", "quantize", "verify"]
