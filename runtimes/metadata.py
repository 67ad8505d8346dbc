"""Metadata inside exported files, read with numpy and the standard library only.

Every file edge-rcnn exports carries one JSON document under the key ``edge_rcnn``:
- TFLite: a model ``metadata`` entry named ``edge_rcnn`` whose buffer holds the UTF-8 JSON
  (read here with a small flatbuffer reader, so a device needs no TensorFlow);
- ONNX: ``model.metadata_props["edge_rcnn"]``.

The document (``format_version`` 1)::

    {
      "format_version": 1,
      "edge_rcnn_version": "0.1.0",
      "kind": "clip" | "image" | "stream_encoder" | "stream_head",
      "labels": ["0_right", ...],
      "frames": 16, "input_size": [32, 32], "channels": 3, "color_order": "rgb",
      "normalization": {"name": "symmetric", "mean": [..], "std": [..]},   # (px/255 - mean) / std
      "mode": "int8" | "fp16" | "dynamic" | "float",
      "input":  {"name": str, "shape": [..], "dtype": "int8", "scale": float, "zero_point": int},
      "output": {"name": str, "shape": [..], "dtype": "int8", "scale": float, "zero_point": int},
      "model_config": {...ModelConfig.to_dict()...},
      "source_sha256": "<sha256 of the .keras file>",
      "quantized_for": "tensorrt" | "cpu",   # int8 ONNX only: --onnx-int8 (which runtime it is fast on)
      "stream": {"role": "encoder" | "head", "feature_dim": F, "frames": T,
                 "encoder": "<file name>", "head": "<file name>",      # streaming parts only
                 "inputs": [..], "outputs": [..]}   # head: tensor names, [feature, *states] -> [probs, *states]
    }

The streaming head is a step head (``edge_rcnn.core.stepper``): one recurrent step for T staggered
windows, with the states as explicit float inputs and outputs, named in ``stream.inputs`` and
``stream.outputs`` in call order (``input``/``output`` above are the feature and the probabilities).

``scale``/``zero_point`` are null for float tensors. The runtimes never trust them over the
interpreter's own tensor details; they are there for people and tools reading the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from runtimes._tflite_ops import BUILTIN_OPS
from runtimes.errors import MetadataError, ModelFileError, first_line
from runtimes.metadata_checks import describe_problems, field_problems

METADATA_KEY = "edge_rcnn"
FORMAT_VERSION = 1
TFLITE_IDENTIFIER = b"TFL3"
ONNX_SUFFIXES = (".onnx",)
TFLITE_SUFFIXES = (".tflite",)


class _Table:
    """A flatbuffer table: enough of the format to walk a TFLite model (little-endian)."""

    def __init__(self, buf: bytes, pos: int):
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_size = struct.unpack_from("<H", buf, vtable)[0]
        self.vtable = vtable

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot >= self.vt_size:
            return 0
        off = struct.unpack_from("<H", self.buf, self.vtable + slot)[0]
        return self.pos + off if off else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, at)[0] if at else default

    def _indirect(self, at: int) -> int:
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def string(self, index: int) -> str | None:
        at = self._field(index)
        if not at:
            return None
        start = self._indirect(at)
        length = struct.unpack_from("<I", self.buf, start)[0]
        return self.buf[start + 4 : start + 4 + length].decode("utf-8", "replace")

    def _vector(self, index: int) -> tuple[int, int]:
        at = self._field(index)
        if not at:
            return 0, 0
        start = self._indirect(at)
        return start + 4, struct.unpack_from("<I", self.buf, start)[0]

    def tables(self, index: int) -> list["_Table"]:
        start, n = self._vector(index)
        return [_Table(self.buf, self._indirect(start + 4 * i)) for i in range(n)]

    def bytes_(self, index: int) -> bytes:
        start, n = self._vector(index)
        return self.buf[start : start + n]


def _tflite_root(buf: bytes, path: Path) -> _Table:
    if len(buf) < 8 or buf[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path}: not a TFLite model (no 'TFL3' file identifier)")
    try:
        return _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    except struct.error:
        raise ModelFileError(f"{path}: truncated or corrupt TFLite file") from None


def _tflite_metadata_bytes(buf: bytes, path: Path, name: str) -> bytes | None:
    try:
        model = _tflite_root(buf, path)
        buffers = model.tables(4)
        for entry in model.tables(6):
            if entry.string(0) == name:
                buffer = buffers[entry.scalar(1, "I")]
                data = buffer.bytes_(0)
                if not data:  # large models keep buffers after the flatbuffer: offset, size
                    offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
                    data = buf[offset : offset + size]
                return data
    except (struct.error, IndexError):
        raise ModelFileError(f"{path}: truncated or corrupt TFLite file") from None
    return None


def tflite_ops(path: str | Path) -> list[str]:
    """The op types a TFLite file uses, one entry per op in the main subgraph, in order."""
    path = Path(path)
    buf = _read(path)
    try:
        model = _tflite_root(buf, path)
        names = []
        for code in model.tables(1):
            # The real code is the larger of the deprecated int8 field and the int32 one.
            builtin = max(code.scalar(0, "b"), code.scalar(3, "i"))
            custom = code.string(1)
            if custom:
                names.append(f"CUSTOM:{custom}")
            else:
                names.append(BUILTIN_OPS[builtin] if builtin < len(BUILTIN_OPS) else f"BUILTIN_{builtin}")
        ops = []
        for sub in model.tables(2):
            for op in sub.tables(3):  # SubGraph.operators; Operator.opcode_index is field 0
                ops.append(names[op.scalar(0, "I")])
        return ops
    except (struct.error, IndexError):
        raise ModelFileError(f"{path}: truncated or corrupt TFLite file") from None


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty file (expected a .tflite or .onnx model)")
    return data


def _onnx_metadata_text(path: Path) -> str | None:
    """``metadata_props['edge_rcnn']`` through onnxruntime (the runtime that runs the file)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelFileError(f"{path}: reading ONNX needs onnxruntime: pip install 'edge-rcnn[onnxruntime]'") from None
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelFileError(f"{path}: not a loadable ONNX model ({first_line(exc, 160)})") from None
    return onnx_session_metadata(sess, path)


def onnx_session_metadata(session, path: str | Path) -> str | None:
    """The ``edge_rcnn`` text of an ONNX Runtime session; damaged (non-UTF-8) text is a ``MetadataError``
    (ONNX Runtime hands the protobuf string over unchecked and Python fails to decode it)."""
    try:
        return session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: the ONNX metadata is not UTF-8 text (a damaged file)") from None


def read_metadata(path: str | Path, *, strict: bool = True) -> dict[str, Any] | None:
    """The ``edge_rcnn`` metadata of a .tflite or .onnx file, or ``None`` if it has none.

    ``strict`` (default) also checks every field's type and value (``field_problems``) and
    raises ``MetadataError`` on the first problem; ``strict=False`` returns a readable document
    as it is, for tools that show a damaged file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TFLITE_SUFFIXES:
        raw = _tflite_metadata_bytes(_read(path), path, METADATA_KEY)
        try:
            text = raw.decode("utf-8") if raw is not None else None
        except UnicodeDecodeError:
            raise MetadataError(f"{path}: the edge_rcnn metadata is not UTF-8 text (a damaged file)") from None
    elif suffix in ONNX_SUFFIXES:
        _read(path)
        text = _onnx_metadata_text(path)
    else:
        raise ModelFileError(f"{path}: unknown model type {suffix!r}; expected one of .tflite, .onnx")
    return parse_metadata(text, path, strict=strict)


def parse_metadata(text: str | None, path: str | Path, *, strict: bool = True) -> dict[str, Any] | None:
    """The metadata document from its JSON text (``None`` stays ``None``); ``path`` is for messages.

    For callers that already hold the text, e.g. an ONNX Runtime session's
    ``custom_metadata_map[METADATA_KEY]``, so the file is not opened a second time. ``strict``:
    as in ``read_metadata``.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise MetadataError(f"{path}: the edge_rcnn metadata is {type(text).__name__}; expected JSON text")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, over-long integers, absurd nesting
        raise MetadataError(f"{path}: the edge_rcnn metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise MetadataError(f"{path}: edge_rcnn metadata of an unknown format (expected format_version {FORMAT_VERSION})")
    problems = field_problems(meta) if strict else []
    if problems:
        raise MetadataError(describe_problems(path, problems))
    return meta


def io_names(meta: dict[str, Any] | None) -> tuple[list[str], list[str]] | None:
    """``(inputs, outputs)`` tensor names in call order for a file with several (a step head), else None."""
    stream = (meta or {}).get("stream") or {}
    if not isinstance(stream, dict) or "inputs" not in stream or "outputs" not in stream:
        return None
    return [str(n) for n in stream["inputs"]], [str(n) for n in stream["outputs"]]
