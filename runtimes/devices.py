"""What this machine can run on: runtimes installed, Edge TPUs attached, ONNX Runtime providers.

Edge TPUs are listed by the delegate library itself (``edgetpu_list_devices`` from libedgetpu,
through ctypes) when it is installed; otherwise from the system: ``/dev/apex_*`` for PCIe/M.2,
and USB ids ``1a6e:089a`` (Coral before its firmware loads) or ``18d1:9302`` (after) under
``/sys/bus/usb/devices``. ``choose_device`` resolves ``device="auto"`` for a file.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtimes.base import Device, DeviceKind, package_version, parse_device

CORAL_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))
# pip distribution -> what it runs; the first one installed per row is the one used.
RUNTIME_PACKAGES = (
    ("litert", ("ai-edge-litert", "tflite-runtime", "tensorflow")),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
)


@dataclass(frozen=True)
class RuntimeInfo:
    name: str  # registry name: litert, onnxruntime
    package: str | None  # the pip distribution found, None if none
    version: str | None


@dataclass(frozen=True)
class EdgeTpuInfo:
    type: str  # "usb" or "pci"
    path: str  # the delegate's device path, or the sysfs/dev entry


@dataclass(frozen=True)
class DeviceReport:
    """Everything ``edge-rcnn devices`` prints."""

    platform: str
    machine: str
    cpu_threads: int
    runtimes: tuple[RuntimeInfo, ...]
    edgetpu_library: str | None
    edgetpu_library_loaded: bool
    edgetpus: tuple[EdgeTpuInfo, ...]
    onnx_providers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    def summary(self) -> str:
        """One line, for error messages: what is here instead of what was asked for."""
        parts = [f"cpu ({self.cpu_threads} threads)"]
        parts += [f"{r.package} {r.version}" for r in self.runtimes if r.package]
        if self.onnx_providers:
            parts.append("ONNX Runtime providers " + "/".join(self.onnx_providers))
        if self.edgetpus:
            parts.append("Edge TPU " + ", ".join(f"{t.type}:{t.path}" for t in self.edgetpus))
        else:
            lib = self.edgetpu_library or "libedgetpu"
            parts.append(f"no Edge TPU ({lib} {'loaded' if self.edgetpu_library_loaded else 'not installed'})")
        return "; ".join(parts)


def _runtimes() -> tuple[RuntimeInfo, ...]:
    found = []
    for name, dists in RUNTIME_PACKAGES:
        hit = next(((d, v) for d in dists if (v := package_version(d))), (None, None))
        found.append(RuntimeInfo(name, *hit))
    return tuple(found)


def onnx_providers() -> tuple[str, ...]:
    try:
        import onnxruntime
    except ImportError:
        return ()
    return tuple(onnxruntime.get_available_providers())


class _EdgeTpuDevice(ctypes.Structure):  # edgetpu_c.h: struct edgetpu_device
    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def _library_tpus(library: str) -> tuple[EdgeTpuInfo, ...] | None:
    """TPUs the delegate library sees, or ``None`` when the library cannot be loaded."""
    try:
        lib = ctypes.CDLL(library)
        list_devices = lib.edgetpu_list_devices
    except (OSError, AttributeError):
        return None
    list_devices.restype = ctypes.POINTER(_EdgeTpuDevice)
    list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    count = ctypes.c_size_t(0)
    devices = list_devices(ctypes.byref(count))
    tpus = tuple(
        EdgeTpuInfo("pci" if devices[i].type == 0 else "usb", (devices[i].path or b"").decode())
        for i in range(count.value)
    )
    if devices:
        lib.edgetpu_free_devices(devices)
    return tpus


def scan_edgetpus(usb_root: str | Path = "/sys/bus/usb/devices", dev_root: str | Path = "/dev") -> tuple[EdgeTpuInfo, ...]:
    """Coral devices the operating system shows, without the delegate library."""
    found = [EdgeTpuInfo("pci", str(p)) for p in sorted(Path(dev_root).glob("apex_*"))]
    usb = Path(usb_root)
    if usb.is_dir():
        for entry in sorted(usb.iterdir()):
            try:
                ids = ((entry / "idVendor").read_text().strip(), (entry / "idProduct").read_text().strip())
            except OSError:
                continue
            if ids in CORAL_USB_IDS:
                found.append(EdgeTpuInfo("usb", str(entry)))
    return tuple(found)


def list_devices() -> DeviceReport:
    """What is present: runtimes with versions, Edge TPUs, ONNX Runtime providers, CPU threads."""
    from runtimes.edgetpu import EDGETPU_LIBRARY

    library = EDGETPU_LIBRARY.get(platform.system())
    listed = _library_tpus(library) if library else None
    return DeviceReport(
        platform=platform.system(),
        machine=platform.machine(),
        cpu_threads=os.cpu_count() or 1,
        runtimes=_runtimes(),
        edgetpu_library=library,
        edgetpu_library_loaded=listed is not None,
        edgetpus=listed if listed is not None else scan_edgetpus(),
        onnx_providers=onnx_providers(),
    )


def describe_found() -> str:
    return list_devices().summary()


def choose_device(path: str | Path, device: str | Device = "auto") -> Device:
    """``auto`` -> a concrete device for a .tflite file (``edgetpu`` when the file is compiled for
    it and the delegate sees a TPU, else ``cpu``); .onnx keeps ``auto`` (ONNX Runtime's provider
    chain TensorRT -> CUDA -> CPU); explicit devices pass through."""
    device = parse_device(device)
    if device.kind is not DeviceKind.AUTO or Path(path).suffix.lower() != ".tflite":
        return device
    from runtimes.edgetpu import EDGETPU_LIBRARY
    from runtimes.litert import EDGETPU_OP
    from runtimes.metadata import tflite_ops

    if EDGETPU_OP in tflite_ops(path):
        library = EDGETPU_LIBRARY.get(platform.system())
        if library and _library_tpus(library):
            return Device(DeviceKind.EDGETPU)
    return Device(DeviceKind.CPU)
