"""The records passed to and returned by every target module (``tflite``, ``onnx_export``, ``edgetpu``).

Each target module has the same shape: ``convert(job) -> ExportedFile`` writes one file
atomically into ``job.out_dir`` with the metadata inside and checks its own promises (op set,
graph structure); verification against the float model happens afterwards, in ``verify``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from converters.calibration import ClipSet
from converters.config import ConvertConfig, Format, Mode, file_name, parse_formats
from converters.parts import Part
from edge_rcnn.core.config import ModelConfig
from edge_rcnn.core.errors import choices_error


@dataclass(frozen=True)
class ExportJob:
    """One conversion: the loaded float Keras model, its config, the settings, where to write."""

    model: Any  # a tf_keras Model (batch None); targets rebuild it with static shapes
    config: ModelConfig
    settings: ConvertConfig
    out_dir: Path
    source_sha256: str
    calibration: ClipSet | None = None  # real clips; required for int8
    progress: bool = True
    part: Part = Part.CLIP  # the whole model, or a streaming part
    dest_dir: Path | None = None  # where out_dir goes once complete (a staged folder); messages name it

    @property
    def final_dir(self) -> Path:
        return self.dest_dir or self.out_dir

    def path_for(self, fmt: Format) -> Path:
        return self.out_dir / file_name(fmt, self.settings.mode, self.part.value)

    def for_part(self, part: Part) -> "ExportJob":
        return dataclasses.replace(self, part=part)


@dataclass(frozen=True)
class ExportedFile:
    """A written model file and what its converter noticed (float nodes, skipped steps)."""

    path: Path | None  # None when the step was skipped (no edgetpu_compiler here)
    format: Format
    mode: Mode
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    runnable: bool = True  # False: needs hardware this machine lacks (an Edge TPU)
    part: Part = Part.CLIP


Converter = Callable[[ExportJob], ExportedFile]

# One module per target, each with ``convert(job) -> ExportedFile``; importing one is cheap
# (TensorFlow, tf2onnx and onnxruntime load inside ``convert``).
TARGET_MODULES: dict[Format, str] = {
    Format.TFLITE: "converters.tflite",
    Format.ONNX: "converters.onnx_export",
    Format.EDGETPU: "converters.edgetpu",
}


def get_converter(fmt: Format | str) -> Converter:
    """``convert`` of the module for ``fmt``; an unknown format lists the valid ones."""
    import importlib


    (fmt,) = parse_formats([fmt])
    if fmt not in TARGET_MODULES:
        raise choices_error("format", fmt.value, [f.value for f in TARGET_MODULES])
    return importlib.import_module(TARGET_MODULES[fmt]).convert
