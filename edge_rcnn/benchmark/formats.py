"""The formats a benchmark can measure, registered by name (``keras``, ``tflite-int8``, ``stream-int8``, ...).

A name is ``<target>-<precision>``: the target is a converters ``Format`` (``tflite``, ``onnx``)
and the precision a converters ``Mode`` (``fp32`` is ``Mode.FLOAT``). ``keras`` is the float
model in TensorFlow (the reference every other row is compared with); ``stream-int8`` is the
int8 frame encoder + temporal head pair run frame by frame through the runtimes' stream.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edge_rcnn.errors import choices_error


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


register_format(BenchFormat("keras", Measure.KERAS))
for _target in ("tflite", "onnx"):
    for _precision, _mode in PRECISIONS.items():
        register_format(BenchFormat(f"{_target}-{_precision}", Measure.CLIP, _target, _mode))
register_format(BenchFormat("stream-int8", Measure.STREAM, "tflite", "int8"))


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
