"""What this machine can run on: runtimes installed, Edge TPUs attached, ONNX Runtime providers.

Edge TPUs are listed by the delegate library itself (``edgetpu_list_devices`` from libedgetpu,
through ctypes) when it is installed; otherwise from the system: ``/dev/apex_*`` for PCIe/M.2,
and USB ids ``1a6e:089a`` (Coral before its firmware loads) or ``18d1:9302`` (after) under
``/sys/bus/usb/devices``. ``choose_device`` resolves ``device="auto"`` for a file.

The CPU is named from ``/proc/cpuinfo`` (on ARM its "CPU part": a Raspberry Pi 4 has Cortex-A72
cores, a Pi 5 Cortex-A76) with the vector features the int8 kernels choose between (NEON, the
dot-product instructions), and the board from ``/proc/device-tree/model`` when there is one.
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
from runtimes.errors import RuntimeUnavailableError
from runtimes.litert import EDGETPU_OP
from runtimes.metadata import tflite_ops
from runtimes.onnxrt import PROVIDERS

CORAL_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))
# pip distribution -> what it runs; the first one installed per row is the one used.
RUNTIME_PACKAGES = (
    ("litert", ("ai-edge-litert",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
)


# ("CPU implementer", "CPU part") -> core name, for the ARM cores of the boards we run on.
ARM_CORES = {
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd04"): "Cortex-A35", ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd07"): "Cortex-A57", ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd09"): "Cortex-A73",
    ("0x41", "0xd0a"): "Cortex-A75", ("0x41", "0xd0b"): "Cortex-A76", ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd41"): "Cortex-A78", ("0x41", "0xd42"): "Cortex-A78AE",
    ("0x41", "0xd4b"): "Cortex-A78C", ("0x41", "0xd44"): "Cortex-X1", ("0x41", "0xd46"): "Cortex-A510",
    ("0x41", "0xd47"): "Cortex-A710", ("0x41", "0xd40"): "Neoverse-V1", ("0x41", "0xd4f"): "Neoverse-V2",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}
# cpuinfo "Features" flag -> what it gives the int8 kernels (ARM64 names; ARMv7 says "neon").
ARM_FEATURES = (("asimd", "neon"), ("neon", "neon"), ("asimddp", "dotprod"), ("i8mm", "i8mm"),
                ("asimdhp", "fp16"), ("sve", "sve"))


EDGETPU_LIBRARY = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}


def edgetpu_library(system: str | None = None) -> str:
    """The delegate's shared library name on this (or the given) operating system."""
    system = system or platform.system()
    try:
        return EDGETPU_LIBRARY[system]
    except KeyError:
        raise RuntimeUnavailableError(
            f"Edge TPU: no libedgetpu for {system}; supported systems: {', '.join(EDGETPU_LIBRARY)}"
        ) from None


def library_loadable(library: str) -> bool:
    """Whether the shared library loads (checked first: LiteRT's ``Delegate`` prints a traceback
    from its ``__del__`` when the library itself is missing)."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class CpuInfo:
    name: str  # "Cortex-A72", "4x Cortex-A55 + 4x Cortex-A76", or the x86 model name; "" if unknown
    features: tuple[str, ...]  # neon, dotprod, i8mm, fp16, sve (ARM); empty elsewhere
    board: str | None  # "Raspberry Pi 4 Model B Rev 1.4" (device tree or cpuinfo "Model"), None if not said

    def line(self) -> str:
        parts = [self.name or "unknown CPU"]
        if self.features:
            parts.append("with " + ", ".join(self.features))
        if self.board:
            parts.append(f"on a {self.board}")
        return " ".join(parts)


def parse_cpuinfo(text: str, model: str | None = None) -> CpuInfo:
    """``/proc/cpuinfo`` (and the device tree's ``model``, NUL-terminated) -> ``CpuInfo``.

    Every block is one core; cores of several kinds (big.LITTLE) are counted and named in order.
    """
    cores: list[str] = []
    flags: list[str] = []
    board = None
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields.setdefault(name.strip().lower(), value.strip())
        if "cpu part" in fields:
            ident = (fields.get("cpu implementer", "").lower(), fields["cpu part"].lower())
            cores.append(ARM_CORES.get(ident, f"ARM core {ident[0]}:{ident[1]}"))
        elif "model name" in fields:
            cores.append(fields["model name"])
        flags = flags or fields.get("features", "").split()
        if "processor" not in fields:  # the Pi kernel's board block; x86's per-core "model" is a number
            board = board or fields.get("model")
    counts = {c: cores.count(c) for c in cores}
    if len(counts) > 1:
        name = " + ".join(f"{n}x {c}" for c, n in counts.items())
    else:
        name = next(iter(counts), "")
    features = tuple(dict.fromkeys(label for flag, label in ARM_FEATURES if flag in flags))
    model = (model or "").strip("\x00\n ")
    return CpuInfo(name, features, model or board)


def read_cpu(cpuinfo: str | Path = "/proc/cpuinfo", model: str | Path = "/proc/device-tree/model") -> CpuInfo:
    """This machine's ``CpuInfo``; a file that cannot be read counts as empty."""
    texts = []
    for path in (cpuinfo, model):
        try:
            texts.append(Path(path).read_text(errors="replace"))
        except OSError:
            texts.append("")
    return parse_cpuinfo(texts[0], texts[1] or None)


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
    cpu: CpuInfo
    uses: tuple[str, ...]  # per file type, what ``load(path)`` will run it with here

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples)."""
        return json.loads(json.dumps(asdict(self)))

    def summary(self) -> str:
        """One line, for error messages: what is here instead of what was asked for."""
        parts = [f"cpu ({self.cpu_threads} threads{', ' + self.cpu.line() if self.cpu.name else ''})"]
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


def runtime_uses(runtimes: tuple[RuntimeInfo, ...], providers: tuple[str, ...], edgetpus: tuple) -> tuple[str, ...]:
    """What ``load(path, device="auto")`` runs each file type with: ".tflite: ai-edge-litert 2.3.0 (XNNPACK, CPU)"."""
    found = {r.name: r for r in runtimes}
    uses = []
    lite = found.get("litert")
    if lite and lite.package:
        where = "XNNPACK, CPU" + ("; Edge TPU for compiled files" if edgetpus else "")
        uses.append(f".tflite: {lite.package} {lite.version} ({where})")
    ort = found.get("onnxruntime")
    if ort and ort.package:
        chain = [p for p in PROVIDERS.values() if p in providers] or ["CPUExecutionProvider"]
        uses.append(f".onnx: {ort.package} {ort.version} ({chain[0]})")
    return tuple(uses)


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
    library = EDGETPU_LIBRARY.get(platform.system())
    listed = _library_tpus(library) if library else None
    tpus = listed if listed is not None else scan_edgetpus()
    found, providers = _runtimes(), onnx_providers()
    return DeviceReport(
        platform=platform.system(),
        machine=platform.machine(),
        cpu_threads=os.cpu_count() or 1,
        runtimes=found,
        edgetpu_library=library,
        edgetpu_library_loaded=listed is not None,
        edgetpus=tpus,
        onnx_providers=providers,
        cpu=read_cpu(),
        uses=runtime_uses(found, providers, tpus),
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
    if EDGETPU_OP in tflite_ops(path):
        library = EDGETPU_LIBRARY.get(platform.system())
        if library and _library_tpus(library):
            return Device(DeviceKind.EDGETPU)
    return Device(DeviceKind.CPU)
