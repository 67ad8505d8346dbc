"""Edge TPU backend (Coral USB / M.2 / PCIe / Dev Board): LiteRT with the libedgetpu delegate.

The delegate library is found by a plain platform lookup, as pycoral does; the TPU is chosen
with pycoral's device strings, passed to the delegate as ``{"device": ...}``: ``""`` (first
found), ``":0"`` (first, any bus), ``"usb"``, ``"usb:0"``, ``"pci"``, ``"pci:0"``. Only the ops
inside ``edgetpu-custom-op`` run on the TPU; ``op_split()`` says how many, the rest run on the CPU.
"""

from __future__ import annotations

import warnings
from typing import Any

from runtimes.base import DeviceKind, register_runtime
from runtimes.devices import describe_found, edgetpu_library, library_loadable
from runtimes.errors import RuntimeUnavailableError, first_line
from runtimes.litert import LiteRtModule, LiteRtRuntime, import_litert

INSTALL_HINT = "install the Edge TPU runtime: apt install libedgetpu1-std, see coral.ai/docs/accelerator/get-started"


def load_edgetpu_delegate(device: str = "", lite: LiteRtModule | None = None) -> Any:
    """The Edge TPU delegate for one TPU (pycoral device string), or ``RuntimeUnavailableError``."""
    lite = lite or import_litert()
    library = edgetpu_library()
    asked = f"edgetpu:{device}" if device else "edgetpu"
    if not library_loadable(library):
        raise RuntimeUnavailableError(
            f"device {asked}: {library} is not installed ({INSTALL_HINT}); found: {describe_found()}"
        )
    options = {"device": device} if device else {}
    try:
        return lite.load_delegate(library, options)
    except (ValueError, OSError, RuntimeError) as exc:
        reason = first_line(exc, 160) or "no such device"
        raise RuntimeUnavailableError(
            f"device {asked}: no Edge TPU opened through {library} ({reason}); found: {describe_found()}"
        ) from None


@register_runtime
class EdgeTpuRuntime(LiteRtRuntime):
    """A .tflite file compiled by ``edgetpu_compiler``, on a Coral Edge TPU."""

    name = "edgetpu"
    suffixes = (".tflite",)
    devices = (DeviceKind.EDGETPU,)
    package = "ai-edge-litert + libedgetpu"

    def make_delegates(self) -> list[Any]:
        delegates = [load_edgetpu_delegate(self.device.selector, self.lite)]
        split = self.op_split()
        if split["edgetpu"] == 0:
            warnings.warn(
                f"{self.path.name}: not compiled for the Edge TPU, so all {split['cpu']} ops run on the CPU; "
                "compile the int8 file with edgetpu_compiler (x86-64 Linux) first",
                RuntimeWarning, stacklevel=5,
            )
        return delegates

    def details(self) -> dict[str, Any]:
        return super().details() | {"delegate": edgetpu_library(), "tpu": self.device.selector or "first found"}
