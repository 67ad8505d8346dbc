"""ONNX Runtime backend for .onnx files: TensorRT -> CUDA -> CPU on a Jetson, CPU anywhere.

``device="auto"`` gives ONNX Runtime every available provider in that priority (nodes TensorRT
cannot take fall to CUDA, then CPU); ``device="tensorrt" | "cuda" | "cpu"`` gives it exactly
that one, and a provider that is missing, or that ONNX Runtime silently dropped when the session
started, is a ``RuntimeUnavailableError`` naming what was found. TensorRT builds fp16 engines
and caches them on disk, so only the first start on a Jetson takes minutes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtimes.base import Device, DeviceKind, Runtime, TensorInfo, check_threads, order_io, register_runtime
from runtimes.errors import InputError, ModelFileError, RuntimeUnavailableError, TensorRtFileOnCpuWarning, first_line
from runtimes.metadata import FileMetadata, TensorEntry, io_names, onnx_session_metadata, parse_metadata

PROVIDERS = {
    DeviceKind.TENSORRT: "TensorrtExecutionProvider",
    DeviceKind.CUDA: "CUDAExecutionProvider",
    DeviceKind.CPU: "CPUExecutionProvider",
}
PRIORITY = (DeviceKind.TENSORRT, DeviceKind.CUDA, DeviceKind.CPU)
INSTALL_HINT = "pip install onnxruntime; on a Jetson, the onnxruntime-gpu wheel for your JetPack"
_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
           "tensor(int8)": "int8", "tensor(uint8)": "uint8"}


# ONNX Runtime's CPU kernels run a symmetric-activation (TensorRT) int8 file slower than float32
# (the onnx-int8-trt row in benchmarks/results/): loading one on a CPU says so.
TENSORRT_FILE_ON_CPU = ("{name}: int8 quantized for TensorRT (symmetric activations), which ONNX Runtime's CPU kernels "
                        "run slower than float; for a CPU, quantize with --onnx-int8 cpu")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailableError(f"running .onnx files needs ONNX Runtime: {INSTALL_HINT}") from None
    return onnxruntime


def default_cache_dir() -> Path:
    """Where TensorRT engines are cached: ``$XDG_CACHE_HOME/edge-rcnn/tensorrt``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edge-rcnn" / "tensorrt"


def provider_options(kind: DeviceKind, gpu: int, cache_dir: Path) -> dict[str, Any]:
    if kind is DeviceKind.TENSORRT:
        return {
            "device_id": gpu,
            "trt_fp16_enable": True,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir),
        }
    if kind is DeviceKind.CUDA:
        return {"device_id": gpu}
    return {}


def select_providers(device: Device, available: Sequence[str], cache_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """``[(provider, options), ...]`` for ``device`` given ONNX Runtime's available providers."""
    gpu = int(device.selector) if device.selector else 0
    if device.kind is DeviceKind.AUTO:
        kinds = [k for k in PRIORITY if PROVIDERS[k] in available]
    elif device.kind in PROVIDERS:
        if PROVIDERS[device.kind] not in available:
            raise RuntimeUnavailableError(
                f"device {device}: ONNX Runtime has no {PROVIDERS[device.kind]}; "
                f"found: {', '.join(available) or 'no providers'}; {INSTALL_HINT}"
            )
        kinds = [device.kind]
    else:
        raise InputError(f"device {device}: ONNX Runtime runs on one of: auto, {', '.join(k.value for k in PRIORITY)}")
    if not kinds:
        raise RuntimeUnavailableError(f"ONNX Runtime has none of {', '.join(PROVIDERS.values())}; found: {', '.join(available)}")
    return [(PROVIDERS[k], provider_options(k, gpu, cache_dir)) for k in kinds]


def _tensor_info(node, meta: TensorEntry | None) -> TensorInfo:
    if node.type not in _DTYPES:
        raise ModelFileError(f"tensor {node.name!r}: type {node.type}; expected one of {', '.join(_DTYPES)}")
    dtype = _DTYPES[node.type]
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    scale = zero_point = None
    if np.dtype(dtype).kind in "iu" and meta:  # ORT does not expose IO quantization: the metadata does
        scale, zero_point = meta.scale, meta.zero_point
    return TensorInfo(node.name, shape, dtype, scale, zero_point)


@register_runtime
class OnnxRuntime(Runtime):
    """A .onnx file in an ONNX Runtime session."""

    name = "onnxruntime"
    suffixes = (".onnx",)
    devices = (DeviceKind.AUTO, DeviceKind.CPU, DeviceKind.CUDA, DeviceKind.TENSORRT)
    package = "onnxruntime"
    # InferenceSession.run is documented as safe to call concurrently, and our files keep no
    # state between calls (recurrent states are inputs and outputs): no lock needed.
    concurrent_run = True

    def __init__(self, path: str | Path, device: Device | None = None, *, num_threads: int | None = None,
                 cache_dir: str | Path | None = None):
        self.path = Path(path)
        self.device = device or Device(DeviceKind.CPU)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such model file")
        if self.path.stat().st_size == 0:
            raise ModelFileError(f"{self.path}: empty file (expected a .onnx model)")
        self.num_threads = check_threads(num_threads)  # None: ONNX Runtime's default, one per physical core
        ort = import_onnxruntime()
        self.version = ort.__version__
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        chosen = select_providers(self.device, ort.get_available_providers(), self.cache_dir)
        if any(name == PROVIDERS[DeviceKind.TENSORRT] for name, _ in chosen):
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if num_threads:
            opts.intra_op_num_threads = num_threads
        names = [name for name, _ in chosen]
        try:
            self.session = ort.InferenceSession(
                str(self.path), opts, providers=names, provider_options=[o for _, o in chosen],
            )
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf/RuntimeException types
            first = first_line(exc)
            raise ModelFileError(f"{self.path}: ONNX Runtime cannot load it ({first})") from None
        self.providers = tuple(self.session.get_providers())
        if self.device.kind is not DeviceKind.AUTO and names[0] not in self.providers:
            raise RuntimeUnavailableError(
                f"device {self.device}: ONNX Runtime could not start {names[0]} "
                f"(the session got {', '.join(self.providers)}); check the CUDA/TensorRT libraries"
            )
        if self.device.kind is DeviceKind.AUTO:  # report where it really runs
            kind = next(k for k in PRIORITY if PROVIDERS[k] == self.providers[0])
            self.device = Device(kind, "" if kind is DeviceKind.CPU else self.device.selector)
        self.metadata = parse_metadata(onnx_session_metadata(self.session, self.path), self.path)
        if self.device.kind is DeviceKind.CPU and self.metadata and self.metadata.quantized_for == "tensorrt":
            warnings.warn(TENSORRT_FILE_ON_CPU.format(name=self.path.name), TensorRtFileOnCpuWarning, stacklevel=4)
        names = io_names(self.metadata)
        by_name = lambda node: node.name  # noqa: E731
        inputs = order_io(self.session.get_inputs(), names and names[0], by_name, self.path, "input")
        outputs = order_io(self.session.get_outputs(), names and names[1], by_name, self.path, "output")
        meta = self.metadata or FileMetadata()
        # Quantization parameters of integer IO come from the metadata: the first input and output.
        self.inputs = tuple(_tensor_info(n, meta.input if i == 0 else None) for i, n in enumerate(inputs))
        self.outputs = tuple(_tensor_info(n, meta.output if i == 0 else None) for i, n in enumerate(outputs))
        self.input, self.output = self.inputs[0], self.outputs[0]
        self._in_names, self._out_names = [t.name for t in self.inputs], [t.name for t in self.outputs]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._run([self.output.name], {self.input.name: x})[0]

    def run_all(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self._run(self._out_names, dict(zip(self._in_names, arrays)))

    def _run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(names, feeds)
        except Exception as exc:  # ORT's own Fail/RuntimeException types: a graph that loads but cannot run
            raise ModelFileError(f"{self.path}: ONNX Runtime failed running it ({first_line(exc)})") from None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"package": f"onnxruntime {self.version}", "providers": list(self.providers),
                               "num_threads": self.num_threads or "default (one per physical core)"}
        if PROVIDERS[DeviceKind.TENSORRT] in self.providers:
            out["tensorrt_cache"] = str(self.cache_dir)
        return out
