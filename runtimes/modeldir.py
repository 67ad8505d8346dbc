"""An export folder: which model files it holds, which one to run here, which parts stream.

``edge-rcnn quantize`` / ``export`` write ``OUT/manifest.json`` next to the files::

    {"format_version": 1,
     "files": [{"file": "model_int8.tflite", "format": "tflite", "mode": "int8", "kind": "clip",
                "source_sha256": "..."},
               {"file": "stream_encoder_int8.tflite", "format": "tflite", "mode": "int8",
                "kind": "stream_encoder", ...}, ...]}

``format`` is ``tflite``, ``onnx`` or ``edgetpu`` (a .tflite compiled for the Edge TPU); ``kind``
is the metadata kind (``clip``, ``image``, ``stream_encoder``, ``stream_head``). Without a
manifest the folder's .tflite/.onnx files are read one by one (their embedded metadata).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from runtimes.base import Device, DeviceKind
from runtimes.errors import MetadataError, ModelFileError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
MODE_PREFERENCE = ("int8", "fp16", "dynamic", "float", None)  # smallest and fastest on a device first
CLIP_KINDS = ("clip", "image")


@dataclass(frozen=True)
class ModelEntry:
    """One model file of an export folder."""

    path: Path
    format: str  # tflite | onnx | edgetpu
    mode: str | None  # int8 | fp16 | dynamic | float; None for files without metadata
    kind: str | None  # clip | image | stream_encoder | stream_head; None: unknown
    source_sha256: str | None = None

    def to_dict(self) -> dict:
        return {"file": self.path.name, "format": self.format, "mode": self.mode, "kind": self.kind,
                "source_sha256": self.source_sha256}


def file_format(path: Path) -> str:
    """``edgetpu`` for ``*_edgetpu.tflite`` (edgetpu_compiler's naming), else the suffix."""
    name = path.name.lower()
    return "edgetpu" if name.endswith("_edgetpu.tflite") else path.suffix.lower().lstrip(".")


def describe_file(path: str | Path) -> ModelEntry:
    """The entry for one file, from its embedded metadata (kind ``None`` without metadata)."""
    from runtimes.metadata import read_metadata

    path = Path(path)
    meta = read_metadata(path) or {}
    return ModelEntry(path, file_format(path), meta.get("mode"), meta.get("kind"), meta.get("source_sha256"))


def read_manifest(directory: Path) -> tuple[ModelEntry, ...] | None:
    """The manifest's entries whose files exist, or ``None`` when there is no manifest."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        rows = doc["files"] if doc.get("format_version") == MANIFEST_VERSION else None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        rows = None
    if not isinstance(rows, list):
        raise MetadataError(f"{path}: not an edge-rcnn manifest (expected format_version {MANIFEST_VERSION} and a files list)")
    entries = []
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("file"), str) and (directory / row["file"]).is_file():
            file = directory / row["file"]
            entries.append(ModelEntry(file, row.get("format") or file_format(file), row.get("mode"), row.get("kind"),
                                      row.get("source_sha256")))
    return tuple(entries)


def list_models(directory: str | Path) -> tuple[ModelEntry, ...]:
    """Every model file of an export folder: from ``manifest.json``, else from the files' metadata."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: no such folder")
    entries = read_manifest(directory)
    if entries is None:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".tflite", ".onnx") and p.is_file())
        entries = tuple(describe_file(p) for p in files)
    return entries


def _formats_for(device: Device, entries: tuple[ModelEntry, ...]) -> tuple[str, ...]:
    if device.kind is DeviceKind.EDGETPU:
        return ("edgetpu",)
    if device.kind in (DeviceKind.CUDA, DeviceKind.TENSORRT):
        return ("onnx",)
    if device.kind is DeviceKind.CPU:
        return ("tflite", "onnx")
    order = []
    compiled = [e for e in entries if e.format == "edgetpu"]
    if compiled:
        from runtimes.devices import choose_device

        if choose_device(compiled[0].path, "auto").kind is DeviceKind.EDGETPU:
            order.append("edgetpu")
    if any(e.format == "onnx" for e in entries):
        from runtimes.devices import onnx_providers

        if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(onnx_providers()):
            order.append("onnx")
    return tuple(dict.fromkeys([*order, "tflite", "onnx"]))


def pick_model(directory: str | Path, device: Device, entries: tuple[ModelEntry, ...] | None = None) -> ModelEntry:
    """The clip (or image) model to run on ``device``: format by device, then int8 > fp16 > dynamic > float."""
    entries = list_models(directory) if entries is None else entries
    clips = [e for e in entries if e.kind in CLIP_KINDS or e.kind is None]
    for fmt in _formats_for(device, entries):
        found = [e for e in clips if e.format == fmt]
        if found:
            return min(found, key=lambda e: MODE_PREFERENCE.index(e.mode) if e.mode in MODE_PREFERENCE else 99)
    names = ", ".join(e.path.name for e in entries) or "no .tflite/.onnx files"
    raise ModelFileError(f"{directory}: no clip model to run on {device} (found: {names}); "
                         "pass a file, or runtimes.open_stream(encoder, head) for streaming parts")


def find_stream_parts(path: str | Path, entries: tuple[ModelEntry, ...] | None = None) -> tuple[Path, Path] | None:
    """``(encoder, head)`` beside a clip model file: same format, mode and source model; else ``None``.

    For an Edge TPU clip model: the compiled encoder (``stream_encoder_int8_edgetpu.tflite``) and the
    int8 TFLite head, which runs on the CPU."""
    path = Path(path)
    if entries is None:
        try:
            entries = list_models(path.parent)
        except (ModelFileError, OSError):
            return None
    like = next((e for e in entries if e.path.name == path.name), None)
    if like is None:
        like = describe_file(path)
    if like.kind not in CLIP_KINDS:
        return None

    def part(kind: str, fmt: str) -> Path | None:
        return next((e.path for e in entries if e.kind == kind and e.format == fmt and e.mode == like.mode
                     and (like.source_sha256 is None or e.source_sha256 in (None, like.source_sha256))), None)

    # An Edge TPU clip model streams with the compiled encoder and the int8 head on the CPU.
    head_format = "tflite" if like.format == "edgetpu" else like.format
    encoder, head = part("stream_encoder", like.format), part("stream_head", head_format)
    return (encoder, head) if encoder and head else None
