"""The metadata inside every exported file: one typed record, read with numpy and a runtime only.

Every file edge-rcnn exports carries one JSON document (``format_version`` 1) under the key
``edge_rcnn``: in a TFLite file a model ``metadata`` entry whose buffer holds the UTF-8 JSON (read
with LiteRT's schema, ``runtimes.tflite_file``); in an ONNX file ``metadata_props["edge_rcnn"]``.
``FileMetadata`` is that document; its fields are the document's keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from runtimes.errors import MetadataError, ModelFileError, first_line
from runtimes.metadata_checks import describe_problems, field_problems
from runtimes.tflite_file import read_file, tflite_metadata_bytes, tflite_ops  # noqa: F401  (tflite_ops: public here)

METADATA_KEY = "edge_rcnn"
FORMAT_VERSION = 1
ONNX_SUFFIXES = (".onnx",)
TFLITE_SUFFIXES = (".tflite",)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, dict):
        return dict(value)
    return list(value) if isinstance(value, tuple) else value


class _Record:
    """JSON object <-> frozen dataclass: lists become tuples, nested objects their records.

    A record built from an unchecked document (``strict=False``) holds its values as found, so
    that ``to_dict()`` gives back what ``field_problems`` needs to name them."""

    NESTED: ClassVar[dict[str, type]] = {}
    WRITE_NULLS: ClassVar[bool] = False  # write ``None`` fields as null (else leave the key out)

    @classmethod
    def build(cls, doc: dict[str, Any]):
        """The record of a JSON object; keys that are not fields are left out."""
        known = {f.name for f in fields(cls)}
        nested = cls.NESTED
        return cls(**{key: nested[key].build(value) if key in nested and isinstance(value, dict) else _tuple(value)
                      for key, value in doc.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        values = ((f.name, getattr(self, f.name)) for f in fields(self))
        return {key: _plain(value) for key, value in values if value is not None or self.WRITE_NULLS}


@dataclass(frozen=True)
class TensorEntry(_Record):
    """The file's ``input``/``output`` tensor as the converter wrote it. ``scale``/``zero_point``
    are ``None`` for float tensors; the runtimes trust the interpreter's own details over them
    (ONNX Runtime exposes none, so the ONNX runtime reads them here)."""

    WRITE_NULLS: ClassVar[bool] = True

    name: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    scale: float | None = None
    zero_point: int | None = None


@dataclass(frozen=True)
class Normalization(_Record):
    """What the model expects of a pixel: ``(px / 255 - mean) / std``; ``name`` a preset
    (``runtimes.preprocess.NORMALIZATIONS``), ``mean``/``std`` a number or one per channel."""

    name: str | None = None
    mean: tuple[float, ...] | float | None = None
    std: tuple[float, ...] | float | None = None


@dataclass(frozen=True)
class StreamPart(_Record):
    """One of the two streaming parts (``stream_encoder``/``stream_head`` files): its ``role``
    (``encoder``/``head``), the ``feature_dim`` between them, ``frames`` (T) and ``steps`` of the
    clip model, its ``motion``, and both parts' file names. A step head (``edge_rcnn.core.stepper``:
    one recurrent step for T staggered windows, states as explicit float inputs and outputs) names
    its tensors in call order: ``inputs`` ``[feature, *states]``, ``outputs`` ``[probs, *states]``."""

    role: str | None = None
    feature_dim: int | None = None
    frames: int | None = None
    steps: int | None = None
    motion: str | None = None
    encoder: str | None = None
    head: str | None = None
    inputs: tuple[str, ...] | None = None
    outputs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FileMetadata(_Record):
    """The ``edge_rcnn`` document of an exported file (JSON ``format_version`` 1).

    - ``kind``: ``clip`` | ``image`` | ``stream_encoder`` | ``stream_head`` (``runtimes.spec.ModelKind``);
    - ``labels``: the class names, one per output; ``frames``: T frames per clip;
    - ``input_size`` ``(height, width)``, ``channels``, ``color_order`` (``rgb``/``bgr``),
      ``normalization``: the frame format the model takes;
    - ``mode``: ``int8`` | ``fp16`` | ``dynamic`` | ``float``; ``quantized_for``: int8 ONNX only,
      the runtime it is fast on (``tensorrt`` | ``cpu``);
    - ``input``/``output``: the first input and output tensor; ``stream``: streaming parts only;
    - ``model_config``: ``ModelConfig.to_dict()``; ``source_sha256``: the .keras file it came from;
      ``edge_rcnn_version``: the package that wrote it.

    Any field may be ``None`` (absent from the document); a caller then supplies it
    (``runtimes.spec``). ``to_json()`` writes ``None`` fields as absent keys, so a document read
    and written again is the same JSON; keys the record does not know are left out.
    """

    NESTED: ClassVar[dict[str, type]] = {"input": TensorEntry, "output": TensorEntry,
                                         "normalization": Normalization, "stream": StreamPart}

    kind: str | None = None
    labels: tuple[str, ...] | None = None
    frames: int | None = None
    input_size: tuple[int, int] | None = None
    channels: int | None = None
    color_order: str | None = None
    normalization: Normalization | None = None
    mode: str | None = None
    input: TensorEntry | None = None
    output: TensorEntry | None = None
    model_config: dict[str, Any] | None = None
    source_sha256: str | None = None
    quantized_for: str | None = None
    edge_rcnn_version: str | None = None
    stream: StreamPart | None = None
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_dict(cls, doc: Any, path: str | Path = "metadata", *, strict: bool = True) -> FileMetadata:
        """The record of a parsed document; ``MetadataError`` for another format, and (``strict``)
        for the first field whose type or value is wrong (``field_problems``)."""
        if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
            raise MetadataError(f"{path}: edge_rcnn metadata of an unknown format (expected format_version {FORMAT_VERSION})")
        problems = field_problems(doc) if strict else []
        if problems:
            raise MetadataError(describe_problems(path, problems))
        return cls.build(doc)

    def to_json(self) -> str:
        """The document as written into a file (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def problems(self) -> list[str]:
        """Every field whose type or value is wrong (``[]`` for a record read with ``strict``)."""
        return field_problems(self.to_dict())

    def io_names(self) -> tuple[list[str], list[str]] | None:
        """``(inputs, outputs)`` tensor names in call order for a file with several (a step head), else None."""
        stream = self.stream
        if not isinstance(stream, StreamPart) or stream.inputs is None or stream.outputs is None:
            return None
        return [str(n) for n in stream.inputs], [str(n) for n in stream.outputs]


def io_names(meta: FileMetadata | None) -> tuple[list[str], list[str]] | None:
    """``meta.io_names()``; ``None`` without metadata."""
    return meta.io_names() if meta is not None else None


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


def read_metadata(path: str | Path, *, strict: bool = True) -> FileMetadata | None:
    """The ``edge_rcnn`` metadata of a .tflite or .onnx file, or ``None`` if it has none.

    ``strict`` (default) also checks every field's type and value (``field_problems``) and
    raises ``MetadataError`` on the first problem; ``strict=False`` returns a readable document
    as it is, for tools that show a damaged file (``FileMetadata.problems()`` names what is wrong).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TFLITE_SUFFIXES:
        raw = tflite_metadata_bytes(path, METADATA_KEY)
        try:
            text = raw.decode("utf-8") if raw is not None else None
        except UnicodeDecodeError:
            raise MetadataError(f"{path}: the edge_rcnn metadata is not UTF-8 text (a damaged file)") from None
    elif suffix in ONNX_SUFFIXES:
        read_file(path)
        text = _onnx_metadata_text(path)
    else:
        raise ModelFileError(f"{path}: unknown model type {suffix!r}; expected one of .tflite, .onnx")
    return parse_metadata(text, path, strict=strict)


def parse_metadata(text: str | None, path: str | Path, *, strict: bool = True) -> FileMetadata | None:
    """The metadata record from its JSON text (``None`` stays ``None``); ``path`` is for messages.

    For callers that already hold the text, e.g. an ONNX Runtime session's
    ``custom_metadata_map[METADATA_KEY]``, so the file is not opened a second time. ``strict``:
    as in ``read_metadata``.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise MetadataError(f"{path}: the edge_rcnn metadata is {type(text).__name__}; expected JSON text")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, over-long integers, absurd nesting
        raise MetadataError(f"{path}: the edge_rcnn metadata is not valid JSON") from None
    return FileMetadata.from_dict(doc, path, strict=strict)
