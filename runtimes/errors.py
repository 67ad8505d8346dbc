"""The error hierarchy shared by every edge-rcnn package.

It lives in ``runtimes`` because that package must stand alone on a device (numpy and a runtime,
nothing else); ``edge_rcnn.core.errors`` and ``converters`` re-export and extend it. Every error is
one line that names the file or argument and what was expected; the CLI prints ``str(err)`` and
exits with ``err.exit_code``.
"""

from __future__ import annotations


class EdgeRcnnError(Exception):
    """Base of all errors edge-rcnn raises on purpose. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class InputError(EdgeRcnnError, ValueError):
    """Bad input from the caller: wrong shape, dtype, values, arguments."""


class ModelFileError(EdgeRcnnError, ValueError):
    """A path that is not a model the runtimes can read (missing, truncated, wrong format)."""


class MetadataError(ModelFileError):
    """A model file without the facts needed to run it (labels, normalization, ...)."""


class ModelOutputError(EdgeRcnnError, RuntimeError):
    """A model that answered with something that is not a score per class (NaN or infinity):
    damaged weights, or a model that overflows on this input."""


class RuntimeUnavailableError(EdgeRcnnError, RuntimeError):
    """A runtime, delegate or device that is not installed or not present; says how to get it."""


class SourceError(EdgeRcnnError, OSError):
    """A camera, stream, video file or frame folder that cannot be opened or read."""


class TensorRtFileOnCpuWarning(RuntimeWarning):
    """An int8 ONNX file quantized for TensorRT, loaded where ONNX Runtime's CPU kernels run it."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name if empty), cut to ``limit`` chars.

    Libraries underneath (TensorFlow, LiteRT, ONNX Runtime) raise pages of text; our errors quote
    only this line so they stay one line.
    """
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]
