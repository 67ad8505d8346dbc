"""One ``Runtime`` base class for every backend, the registry, devices, tensors and quantization.

A backend subclasses ``Runtime`` and registers itself with ``@register_runtime``; it is then
found by name (``get_runtime("litert")``) or by file suffix and device
(``runtime_for(path, device)``), and tests are parametrized over ``RUNTIMES``, so a backend
cannot land untested. A ``Runtime`` is one model file on one device with one input and one
output: ``invoke(x)`` takes the model input (float, or the file's own integer type), starts
from a clean recurrent state, and returns the float output. Everything about frames, labels
and normalization lives above it, in ``runtimes.predictor``.
"""

from __future__ import annotations

import contextlib
import enum
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from runtimes.errors import InputError, ModelFileError


class DeviceKind(str, enum.Enum):
    """Where a model runs. ``AUTO`` picks the fastest one present for the file."""

    AUTO = "auto"
    CPU = "cpu"  # LiteRT (XNNPACK) for .tflite, ONNX Runtime's CPU provider for .onnx
    EDGETPU = "edgetpu"  # Coral, through the libedgetpu delegate
    CUDA = "cuda"  # ONNX Runtime's CUDA provider
    TENSORRT = "tensorrt"  # ONNX Runtime's TensorRT provider (Jetson)


DEVICE_FORMS = "auto, cpu, edgetpu[:usb|:pci|:N|:usb:N|:pci:N], cuda[:N], tensorrt[:N]"
_EDGETPU_SELECTOR = re.compile(r"^(usb|pci)?(:\d+)?$")


@dataclass(frozen=True)
class Device:
    """A parsed device string. ``selector`` is the Edge TPU selector pycoral uses (``:0``, ``usb``,
    ``usb:0``, ``pci``, ``pci:0``) or the GPU index for cuda/tensorrt; empty for the default."""

    kind: DeviceKind
    selector: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.selector}" if self.selector else self.kind.value


def parse_device(device: str | Device) -> Device:
    """``"edgetpu:usb:0"`` -> ``Device(EDGETPU, "usb:0")``; unknown forms fail listing the valid ones."""
    if isinstance(device, Device):
        return device
    text = str(device).strip().lower()
    name, _, selector = text.partition(":")
    try:
        kind = DeviceKind(name)
    except ValueError:
        raise InputError(f"device: unknown value {device!r}; expected one of: {DEVICE_FORMS}") from None
    if kind is DeviceKind.EDGETPU:
        selector = f":{selector}" if selector.isdigit() else selector  # "edgetpu:0" means the first TPU, ":0"
        ok = _EDGETPU_SELECTOR.match(selector) is not None
    elif kind in (DeviceKind.CUDA, DeviceKind.TENSORRT):
        ok = selector == "" or selector.isdigit()
    else:
        ok = selector == ""
    if not ok:
        raise InputError(f"device: unknown value {device!r}; expected one of: {DEVICE_FORMS}")
    return Device(kind, selector)


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output. ``shape`` has ``None`` for dynamic axes; ``scale`` and
    ``zero_point`` are set for integer (quantized) tensors, ``None`` for float ones."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str  # numpy name: "float32", "float16", "int8", "uint8"
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return np.dtype(self.dtype).kind in "iu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape)}


def quantize_array(x: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Float values -> the tensor's integer type: ``q = round(x / scale) + zero_point``, clipped.

    Rounds half away from zero, as TFLite's own QUANTIZE kernel does.
    """
    if not tensor.scale:
        raise ModelFileError(f"tensor {tensor.name!r}: {tensor.dtype} without a quantization scale")
    scaled = np.asarray(x, dtype=np.float32) / np.float32(tensor.scale)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + tensor.zero_point
    info = np.iinfo(tensor.dtype)
    return np.clip(q, info.min, info.max).astype(tensor.dtype)


def dequantize_array(q: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Integer tensor values -> float32: ``(q - zero_point) * scale``."""
    if not tensor.scale:
        raise ModelFileError(f"tensor {tensor.name!r}: {tensor.dtype} without a quantization scale")
    return (q.astype(np.float32) - np.float32(tensor.zero_point)) * np.float32(tensor.scale)


class Runtime:
    """Base of all backends: one model file on one device, one input and one output tensor.

    Subclasses set the class attributes, fill ``metadata``, ``input`` and ``output`` in
    ``__init__``, and implement ``run`` (raw in, raw out) and, if the model can hold state
    between calls, ``reset``.

    Threads: ``invoke`` is safe to call from several threads at once. ``run``, ``run_all`` and
    ``reset`` are the raw calls underneath and are not: an interpreter that keeps tensors and
    recurrent state between calls (LiteRT) mixes two callers' inputs, states and outputs. Code
    that calls them on a runtime other threads may use holds ``lock`` around the whole sequence
    (``reset`` then ``run``). ``lock`` is a real lock unless the backend's raw calls are safe to
    overlap (``concurrent_run``), where it costs nothing and calls run in parallel.
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    devices: ClassVar[tuple[DeviceKind, ...]]
    package: ClassVar[str]  # the pip package it needs, for install hints
    # Whether run/run_all may overlap on one loaded file (stateless sessions that document it).
    concurrent_run: ClassVar[bool] = False

    def __new__(cls, *args, **kwargs):
        # Made here, not in __init__, so that every backend has it whether or not its
        # __init__ calls ours (they fill their own fields and do not).
        runtime = super().__new__(cls)
        runtime.lock = contextlib.nullcontext() if cls.concurrent_run else threading.RLock()
        return runtime

    path: Path
    device: Device
    metadata: Any  # a runtimes.metadata.FileMetadata, or None for a file without edge-rcnn metadata
    input: TensorInfo
    output: TensorInfo

    # Every input and output in the file's documented order. One of each, except for a
    # streaming step head: [feature, *states] in, [probs, *states] out (``run_all``).
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def reset(self) -> None:
        """Clear any recurrent state, so the next call starts a fresh clip. Stateless: no-op."""

    def run(self, x: np.ndarray) -> np.ndarray:
        """One raw call: ``x`` already in the input tensor's dtype and shape; raw output back."""
        raise NotImplementedError

    def run_all(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One raw call of a model with several inputs: ``arrays`` in ``inputs`` order, raw outputs
        in ``outputs`` order."""
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        """Backend facts for ``Predictor.info`` (versions, threads, delegates, providers, ...)."""
        return {}

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """The model on one input array, from a clean state; returns the float32 output.

        ``x`` is float (quantized here with the input's scale and zero point when the file
        takes integers) or already in the input tensor's integer dtype.
        """
        x = self.to_input(x)
        with self.lock:  # reset + run as one step: another thread's clip cannot come between
            self.reset()
            out = self.run(x)
        return dequantize_array(out, self.output) if self.output.quantized else out.astype(np.float32)

    def to_input(self, x: np.ndarray) -> np.ndarray:
        """Check ``x`` against the input tensor and convert it to the tensor's dtype."""
        x = np.asarray(x)
        want = self.input
        fixed = tuple(want.shape)
        if x.ndim != len(fixed) or any(s is not None and s != d for s, d in zip(fixed, x.shape)):
            shown = [s if s is not None else "?" for s in fixed]
            raise InputError(f"{self.path.name}: input of shape {list(x.shape)}; the model takes {shown}")
        if x.size == 0:
            raise InputError(f"{self.path.name}: empty input array")
        if x.dtype.kind == "f":
            if not np.isfinite(x).all():
                raise InputError(f"{self.path.name}: input contains NaN or infinity")
            return quantize_array(x, want) if want.quantized else x.astype(want.dtype)
        if x.dtype == np.dtype(want.dtype):
            return x
        raise InputError(f"{self.path.name}: input of dtype {x.dtype}; expected float or {want.dtype}")


def check_threads(num_threads: int | None) -> int | None:
    """``None`` (the runtime's default) or a positive integer; anything else is an ``InputError``."""
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1):
        raise InputError(f"num_threads: expected a positive integer, got {num_threads!r}")
    return num_threads


RUNTIMES: dict[str, type[Runtime]] = {}


def register_runtime(cls: type[Runtime]) -> type[Runtime]:
    """Class decorator: add a backend to ``RUNTIMES`` under ``cls.name``."""
    if cls.name in RUNTIMES:
        raise ValueError(f"runtime {cls.name!r} is already registered")
    RUNTIMES[cls.name] = cls
    return cls


def get_runtime(name: str) -> type[Runtime]:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise InputError(f"runtime: unknown value {name!r}; expected one of: {', '.join(sorted(RUNTIMES))}") from None


def runtime_for(path: str | Path, device: Device) -> type[Runtime]:
    """The backend for a file suffix on a device (``auto`` already resolved for .tflite)."""
    suffix = Path(path).suffix.lower()
    by_suffix = [cls for cls in RUNTIMES.values() if suffix in cls.suffixes]
    if not by_suffix:
        known = sorted({s for cls in RUNTIMES.values() for s in cls.suffixes})
        raise ModelFileError(f"{path}: unknown model type {suffix!r}; expected one of: {', '.join(known)}")
    for cls in by_suffix:
        if device.kind in cls.devices:
            return cls
    valid = sorted({d.value for cls in by_suffix for d in cls.devices})
    raise InputError(f"device {device}: cannot run {suffix} files; for {suffix} use one of: {', '.join(valid)}")


def package_version(dist: str) -> str | None:
    """The installed version of a distribution (``"ai-edge-litert"``), or ``None`` if absent."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def order_io(found: Sequence[Any], names: Sequence[str] | None, name_of, path: Path, what: str) -> list[Any]:
    """The tensors ``found`` in the order of ``names`` (the metadata's); one tensor if ``names`` is None.

    ``name_of(tensor)`` gives a found tensor's name. ModelFileError when the file does not hold
    exactly the named tensors (or, without names, more than one).
    """
    if names is None:
        if len(found) != 1:
            raise ModelFileError(f"{path}: {len(found)} {what}s; expected one")
        return list(found)
    by_name = {name_of(t): t for t in found}
    if sorted(by_name) != sorted(names):
        raise ModelFileError(f"{path}: {what}s {sorted(by_name)}; its metadata names {list(names)}")
    return [by_name[n] for n in names]
