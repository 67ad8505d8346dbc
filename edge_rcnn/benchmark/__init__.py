"""``edge-rcnn benchmark``: every format of one model measured side by side on this machine.

``benchmark(model, data, out)`` exports what is missing (through ``converters``), measures each
format in a fresh worker process (``python -m edge_rcnn.benchmark.worker``) and writes
``out/benchmark.json``, ``.csv`` and ``.png``. ``count_macs`` counts a Keras model's
multiply-accumulates. Importing this package is cheap: TensorFlow loads only to export or to run
the Keras row.
"""

from __future__ import annotations

from edge_rcnn.benchmark.formats import DEFAULT_FORMATS, FORMATS, BenchFormat, Measure, parse_formats

__all__ = ["DEFAULT_FORMATS", "FORMATS", "BenchFormat", "BenchReport", "MacCount", "Measure", "Row", "benchmark",
           "count_macs", "machine_info", "parse_formats", "peak_int8_macs", "split_clip_macs"]

_LAZY = {
    "benchmark": "edge_rcnn.benchmark.run",
    "BenchReport": "edge_rcnn.benchmark.report",
    "Row": "edge_rcnn.benchmark.report",
    "count_macs": "edge_rcnn.benchmark.macs",
    "split_clip_macs": "edge_rcnn.benchmark.macs",
    "MacCount": "edge_rcnn.benchmark.macs",
    "machine_info": "edge_rcnn.benchmark.machine",
    "peak_int8_macs": "edge_rcnn.benchmark.machine",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edge_rcnn.benchmark' has no attribute {name!r}")
