"""Every backend, imported so it registers, and ``load_runtime``: one model file opened with the
runtime its suffix and device call for (``runtimes.base``'s registry)."""

from __future__ import annotations

import inspect
from pathlib import Path

from runtimes import edgetpu as _edgetpu  # noqa: F401  (registers "edgetpu")
from runtimes import litert as _litert  # noqa: F401  (registers "litert")
from runtimes import onnxrt as _onnxrt  # noqa: F401  (registers "onnxruntime")
from runtimes.base import Device, DeviceKind, Runtime, get_runtime, parse_device, runtime_for
from runtimes.devices import choose_device
from runtimes.errors import InputError


def load_runtime(path: str | Path, device: str | Device = "auto", *, num_threads: int | None = None,
                 runtime: str | None = None, **options) -> Runtime:
    """One model file on one device, without labels or preprocessing (``Runtime.invoke(x)``).

    ``runtime`` forces a backend by registry name; ``options`` go to the backend
    (``cache_dir=`` for ONNX Runtime's TensorRT engine cache).
    """
    path = Path(path)
    if runtime:
        cls = get_runtime(runtime)
        device = parse_device(device)
        if device.kind is DeviceKind.AUTO and device.kind not in cls.devices:
            device = Device(cls.devices[0])
    else:
        device = choose_device(path, device)
        cls = runtime_for(path, device)
    if device.kind not in cls.devices:
        valid = ", ".join(d.value for d in cls.devices)
        raise InputError(f"device {device}: the {cls.name} runtime runs on one of: {valid}")
    accepted = [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind is p.KEYWORD_ONLY and name != "num_threads"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"{', '.join(unknown)}: not an option of the {cls.name} runtime; "
                         f"it takes: {', '.join(accepted) or 'no options'}")
    return cls(path, device, num_threads=num_threads, **options)
