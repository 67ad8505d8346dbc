"""The formats a benchmark can measure, registered by name (``keras``, ``tflite-int8``, ``stream-int8``, ...).

A name is ``<target>-<precision>[-<variant>]``: the target is a converters ``Format`` (``tflite``, ``onnx``)
and the precision a converters ``Mode`` (``fp32`` is ``Mode.FLOAT``). ``keras`` is the float
model in TensorFlow (the reference every other row is compared with); ``stream-int8`` is the
int8 frame encoder + step head pair run frame by frame through the runtimes' stream.

Some rows pin a converters setting (``options``), because the choice decides what is measured:

- ``onnx-int8``: ``onnx_int8="cpu"`` -- uint8 activations x int8 weights, the file one deploys
  on ONNX Runtime's CPU provider (the converters' default is ``tensorrt``);
- ``onnx-int8-trt``: ``onnx_int8="tensorrt"`` -- symmetric int8 activations, the file for
  TensorRT on a Jetson, measured here on ONNX Runtime's CPU provider like the others;
- ``tflite-int8`` keeps the converters' default LSTM layout (unrolled for int8);
  ``tflite-int8-fused`` is ``--tflite-lstm fused``, the smallest int8 file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from edge_rcnn.core.errors import choices_error


class Measure(str, enum.Enum):
    """How a worker process runs a format."""

    KERAS = "keras"  # tf_keras load_model + model(x)
    CLIP = "clip"  # one exported file through runtimes.load: one call per clip
    STREAM = "stream"  # encoder + head through the runtimes stream: one push per frame


@dataclass(frozen=True)
class BenchFormat:
    """One row of the benchmark: what to export and how to run it."""

    name: str
    measure: Measure
    target: str | None = None  # converters Format value; None for keras
    mode: str | None = None  # converters Mode value ("float", "int8", ...)
    options: tuple[tuple[str, Any], ...] = ()  # further ConvertConfig fields, e.g. (("onnx_int8", "cpu"),)
    about: str = ""  # what the row is, for the notes of the table

    @property
    def runtime(self) -> str:
        """The runtime that runs it, as printed in the table."""
        if self.measure is Measure.KERAS:
            return "tensorflow"
        return "onnxruntime" if self.target == "onnx" else "litert"

    @property
    def calibrated(self) -> bool:
        return self.mode == "int8"


FORMATS: dict[str, BenchFormat] = {}
PRECISIONS = {"fp32": "float", "fp16": "fp16", "dynamic": "dynamic", "int8": "int8"}
DEFAULT_FORMATS = ("keras", "tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8", "stream-int8")


def register_format(fmt: BenchFormat) -> BenchFormat:
    if fmt.name in FORMATS:
        raise ValueError(f"benchmark format {fmt.name!r} is registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


_ABOUT = {
    "tflite-int8": "full int8, LSTM unrolled into int8 builtins (the converters' default for int8)",
    "onnx-int8": "QDQ, uint8 activations x int8 weights (--onnx-int8 cpu): ONNX Runtime's CPU path",
}
_OPTIONS = {"onnx-int8": (("onnx_int8", "cpu"),)}

register_format(BenchFormat("keras", Measure.KERAS, about="float32 Keras model in TensorFlow: the reference"))
for _target in ("tflite", "onnx"):
    for _precision, _mode in PRECISIONS.items():
        _name = f"{_target}-{_precision}"
        register_format(BenchFormat(_name, Measure.CLIP, _target, _mode, _OPTIONS.get(_name, ()), _ABOUT.get(_name, "")))
register_format(BenchFormat("tflite-int8-fused", Measure.CLIP, "tflite", "int8", (("lstm_kernel", "fused"),),
                            "full int8, LSTM as the fused UNIDIRECTIONAL_SEQUENCE_LSTM op (--tflite-lstm fused): smallest file"))
register_format(BenchFormat("onnx-int8-trt", Measure.CLIP, "onnx", "int8", (("onnx_int8", "tensorrt"),),
                            "QDQ, symmetric int8 activations (--onnx-int8 tensorrt): the TensorRT file, run on the CPU here"))
register_format(BenchFormat("stream-int8", Measure.STREAM, "tflite", "int8",
                            about="int8 frame encoder + step head (T windows in flight), one push per frame (runtimes.open_stream)"))


def parse_formats(value) -> tuple[BenchFormat, ...]:
    """``"keras,tflite-int8"`` or a list of names -> unique formats in the order given."""
    names = value.split(",") if isinstance(value, str) else list(value or ())
    out: list[BenchFormat] = []
    for name in (str(n).strip().lower() for n in names):
        if not name:
            continue
        if name not in FORMATS:
            raise choices_error("formats", name, list(FORMATS))
        if FORMATS[name] not in out:
            out.append(FORMATS[name])
    if not out:
        raise choices_error("formats", value, list(FORMATS))
    return tuple(out)
