"""LiteRT (TensorFlow Lite) backend for .tflite files on a CPU: Raspberry Pi, any Linux, macOS.

The interpreter, and the flatbuffer schema the file's metadata is read with
(``runtimes.tflite_file``), come from ``ai_edge_litert``. Its predecessor ``tflite_runtime`` is not
used: its last release (2.14) fails under numpy 2 and ships no schema; and ``tensorflow.lite`` would
bring TensorFlow onto the device. The default op resolver applies XNNPACK; ``num_threads`` sets
its thread pool (default: every core).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runtimes.base import (
    Device,
    DeviceKind,
    Runtime,
    TensorInfo,
    check_threads,
    order_io,
    package_version,
    register_runtime,
)
from runtimes.errors import ModelFileError, RuntimeUnavailableError, first_line
from runtimes.metadata import io_names, read_metadata, tflite_ops
from runtimes.quiet import XNNPACK_BANNER, dropping_stderr_lines

EDGETPU_OP = "CUSTOM:edgetpu-custom-op"
INSTALL_HINT = "pip install ai-edge-litert"


@dataclass(frozen=True)
class LiteRtModule:
    """Where the interpreter came from: the package name, its version, and the two entry points."""

    package: str
    version: str
    Interpreter: Callable[..., Any]
    load_delegate: Callable[..., Any]


def import_litert() -> LiteRtModule:
    """LiteRT's interpreter and delegate loader; ``RuntimeUnavailableError`` with the install hint."""
    try:
        import ai_edge_litert.interpreter as interpreter
    except (ImportError, SystemError) as exc:  # SystemError: a wheel built against another numpy
        raise RuntimeUnavailableError(f"running .tflite files needs LiteRT: {INSTALL_HINT} "
                                      f"({first_line(exc, 120)})") from None
    version = package_version("ai-edge-litert") or "unknown"
    return LiteRtModule("ai-edge-litert", version, interpreter.Interpreter, interpreter.load_delegate)


def _tensor_info(detail: dict[str, Any]) -> TensorInfo:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"]).name
    quantized = np.dtype(dtype).kind in "iu" and scale
    signature = detail.get("shape_signature", detail["shape"])  # -1 marks a dynamic axis
    return TensorInfo(
        name=str(detail["name"]),
        shape=tuple(int(s) if s >= 0 else None for s in signature),
        dtype=dtype,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


@register_runtime
class LiteRtRuntime(Runtime):
    """A .tflite file in the LiteRT interpreter on the CPU (XNNPACK)."""

    name = "litert"
    suffixes = (".tflite",)
    devices = (DeviceKind.CPU,)
    package = "ai-edge-litert"

    def __init__(self, path: str | Path, device: Device | None = None, *, num_threads: int | None = None):
        self.path = Path(path)
        self.device = device or Device(self.devices[0])
        check_threads(num_threads)
        self.num_threads = num_threads or os.cpu_count() or 1
        # The flatbuffer read with LiteRT's schema first: a truncated or foreign file fails here, in Python.
        self.ops = tflite_ops(self.path)
        self.metadata = read_metadata(self.path)
        self.lite = import_litert()
        delegates = self.make_delegates()
        try:
            with dropping_stderr_lines(XNNPACK_BANNER):
                self.interpreter = self.lite.Interpreter(
                    model_path=str(self.path), num_threads=self.num_threads, experimental_delegates=delegates or None,
                )
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            if EDGETPU_OP in self.ops and not delegates:
                raise RuntimeUnavailableError(
                    f"{self.path}: compiled for the Edge TPU ({self.ops.count(EDGETPU_OP)} edgetpu-custom-op); "
                    "run it with device='edgetpu' on a Coral, or use the uncompiled .tflite on the CPU"
                ) from None
            raise ModelFileError(f"{self.path}: LiteRT cannot load it ({first_line(exc)})") from None
        names = io_names(self.metadata)
        by_name = lambda d: d["name"]  # noqa: E731
        inputs = order_io(self.interpreter.get_input_details(), names and names[0], by_name, self.path, "input")
        outputs = order_io(self.interpreter.get_output_details(), names and names[1], by_name, self.path, "output")
        self._in_indices, self._out_indices = [d["index"] for d in inputs], [d["index"] for d in outputs]
        self._in_index, self._out_index = self._in_indices[0], self._out_indices[0]
        self._allocated_shape = tuple(int(s) for s in inputs[0]["shape"])
        self.inputs, self.outputs = tuple(map(_tensor_info, inputs)), tuple(map(_tensor_info, outputs))
        self.input, self.output = self.inputs[0], self.outputs[0]

    def make_delegates(self) -> list[Any]:
        """Delegates for the interpreter; none on the CPU (XNNPACK comes with the op resolver)."""
        return []

    def reset(self) -> None:
        # The fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps its hidden state in variable tensors
        # between invoke() calls; without this the second clip starts from the first one's state.
        self.interpreter.reset_all_variables()

    def run(self, x: np.ndarray) -> np.ndarray:
        # The allocated shape is cached: asking the interpreter for its input details costs
        # several microseconds, a sizeable part of one streaming push.
        if x.shape != self._allocated_shape:  # dynamic axes (T, size)
            self.interpreter.resize_tensor_input(self._in_index, list(x.shape))
            self.interpreter.allocate_tensors()
            self._allocated_shape = x.shape
        self.interpreter.set_tensor(self._in_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out_index)  # get_tensor returns a copy

    def run_all(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        set_tensor, get_tensor = self.interpreter.set_tensor, self.interpreter.get_tensor
        for index, x in zip(self._in_indices, arrays):
            set_tensor(index, x)
        self.interpreter.invoke()
        return [get_tensor(index) for index in self._out_indices]  # copies

    def op_split(self) -> dict[str, int]:
        """How many ops of the main graph run inside the Edge TPU custom op and how many outside."""
        on_tpu = self.ops.count(EDGETPU_OP)
        return {"edgetpu": on_tpu, "cpu": len(self.ops) - on_tpu}

    def details(self) -> dict[str, Any]:
        return {
            "package": f"{self.lite.package} {self.lite.version}",
            "num_threads": self.num_threads,
            "xnnpack": True,
            "ops": self.op_split(),
        }
