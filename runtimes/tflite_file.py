"""A .tflite file read with the schema LiteRT ships (``ai_edge_litert.schema_py_generated``).

Two things the runtimes need before an interpreter loads the file: the ops it uses (an Edge TPU
file is a ``CUSTOM:edgetpu-custom-op``) and the bytes of a metadata entry (``runtimes.metadata``).
The generated reader trusts its input; on a damaged file it raises whatever Python raises on
garbage offsets, so every read here is guarded and ends in one ``ModelFileError`` line.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, TypeVar

from runtimes.errors import ModelFileError, RuntimeUnavailableError

TFLITE_IDENTIFIER = b"TFL3"
INSTALL_HINT = "pip install 'edge-rcnn[pi]'"
T = TypeVar("T")


def schema(path: str | Path = "a .tflite file") -> Any:
    """``ai_edge_litert.schema_py_generated``, or a ``RuntimeUnavailableError`` naming ``path`` with
    the install hint."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise RuntimeUnavailableError(f"{path}: reading it needs ai-edge-litert: {INSTALL_HINT}") from None
    return schema_py_generated


@functools.cache
def builtin_names() -> dict[int, str]:
    """``BuiltinOperator`` code -> name, from the enum class's attributes."""
    ops = schema().BuiltinOperator
    return {code: name for name, code in vars(ops).items() if not name.startswith("_") and isinstance(code, int)}


def read_file(path: Path) -> bytes:
    """The file's bytes; ``ModelFileError`` for a missing or empty file."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty file (expected a .tflite or .onnx model)")
    return data


def _guarded(path: Path, read: Callable[[], T]) -> T:
    """``read()``, with any exception of the generated code on damaged bytes as one ``ModelFileError``."""
    try:
        return read()
    except (ModelFileError, RuntimeUnavailableError):
        raise
    except Exception:  # struct.error, IndexError, ValueError, TypeError, OverflowError, ...
        raise ModelFileError(f"{path}: truncated or corrupt TFLite file") from None


def _model(buf: bytes, path: Path):
    if len(buf) < 8 or buf[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path}: not a TFLite model (no 'TFL3' file identifier)")
    return schema(path).Model.GetRootAs(buf, 0)


def _count(n: int, buf: bytes) -> int:
    """A vector length read from the file; one that cannot fit in the file is damage, not a loop."""
    if not 0 <= n <= len(buf) // 4:
        raise ValueError("a vector longer than the file")
    return n


def _op_name(code, names: dict[int, str]) -> str:
    custom = code.CustomCode()
    if custom:
        return f"CUSTOM:{custom.decode('utf-8', 'replace')}"
    # The real code is the larger of the deprecated int8 field and the int32 one.
    builtin = max(code.DeprecatedBuiltinCode(), code.BuiltinCode())
    return names.get(builtin, f"BUILTIN_{builtin}")


def tflite_ops(path: str | Path) -> list[str]:
    """The op types a TFLite file uses: one entry per op of every subgraph, in order
    (builtins by their ``BuiltinOperator`` name, custom ops as ``CUSTOM:<name>``)."""
    path = Path(path)
    buf = read_file(path)
    schema(path)
    names = builtin_names()

    def read() -> list[str]:
        model = _model(buf, path)
        codes = [_op_name(model.OperatorCodes(i), names) for i in range(_count(model.OperatorCodesLength(), buf))]
        ops = []
        for s in range(_count(model.SubgraphsLength(), buf)):
            sub = model.Subgraphs(s)
            ops += [codes[sub.Operators(i).OpcodeIndex()] for i in range(_count(sub.OperatorsLength(), buf))]
        return ops

    return _guarded(path, read)


def tflite_metadata_bytes(path: str | Path, name: str) -> bytes | None:
    """The buffer of the model's metadata entry ``name``, or ``None`` when there is none.

    Models over 2 GB keep their buffers after the flatbuffer: the entry's buffer then holds
    ``offset`` and ``size`` into the file instead of ``data``."""
    path = Path(path)
    buf, key = read_file(path), name.encode("utf-8")

    def read() -> bytes | None:
        model = _model(buf, path)
        for i in range(_count(model.MetadataLength(), buf)):
            entry = model.Metadata(i)
            if entry.Name() != key:
                continue
            index = entry.Buffer()
            if index >= _count(model.BuffersLength(), buf):
                raise IndexError(f"metadata buffer {index} out of range")
            buffer = model.Buffers(index)
            data = bytes(buffer.DataAsNumpy()) if buffer.DataLength() else b""
            if not data and buffer.Offset() > 1:
                offset, size = buffer.Offset(), buffer.Size()
                if offset + size > len(buf):
                    raise ValueError("a metadata buffer past the end of the file")
                data = buf[offset : offset + size]
            return data
        return None

    return _guarded(path, read)
