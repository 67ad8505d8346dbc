"""The streaming measurement (worker side): int8 frame encoder + temporal head, one push per frame."""

from __future__ import annotations

from typing import Any


def measure_stream(spec: dict[str, Any]) -> dict[str, Any]:
    import runtimes

    if not hasattr(runtimes, "open_stream"):
        raise RuntimeError("this runtimes package has no open_stream (streaming is not available)")
    raise NotImplementedError("streaming measurement")
