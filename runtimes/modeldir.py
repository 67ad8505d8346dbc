"""An export folder: which model files it holds, which one to run here, which parts stream.

``edge-rcnn quantize`` / ``export`` write ``OUT/manifest.json`` next to the files (the record:
``runtimes.manifest.Manifest``). Without a manifest the folder's .tflite/.onnx files are read one
by one (their embedded metadata).

What a folder load trusts: a manifest path must stay inside the folder; every file chosen to
run is checked before it loads: its sha256 against the manifest (a changed or swapped file) and
its embedded ``source_sha256`` against the manifest's (a file of another model). Version 1
manifests (no per-file sha256) get the source check only.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from runtimes.base import Device, DeviceKind
from runtimes.devices import choose_device, onnx_providers
from runtimes.errors import MetadataError, ModelFileError
from runtimes.manifest import MANIFEST_NAME, Manifest
from runtimes.metadata import read_metadata

# A folder a converter is still writing, or the old folder it replaces (``converters.outdir``).
UNFINISHED_FOLDER = re.compile(r"^\..+\.(tmp|old)-\d+-[A-Za-z0-9_]+$")
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
    sha256: str | None = None  # of the file itself, from the manifest
    passed: bool | None = None  # verification result from the manifest; None: not verified or unknown

    def to_dict(self) -> dict:
        return {"file": self.path.name, "format": self.format, "mode": self.mode, "kind": self.kind,
                "source_sha256": self.source_sha256, "sha256": self.sha256, "passed": self.passed}


def file_format(path: Path) -> str:
    """``edgetpu`` for ``*_edgetpu.tflite`` (edgetpu_compiler's naming), else the suffix."""
    name = path.name.lower()
    return "edgetpu" if name.endswith("_edgetpu.tflite") else path.suffix.lower().lstrip(".")


def describe_file(path: str | Path) -> ModelEntry:
    """The entry for one file, from its embedded metadata (kind ``None`` without metadata)."""
    path = Path(path)
    meta = read_metadata(path)
    if meta is None:
        return ModelEntry(path, file_format(path), None, None)
    return ModelEntry(path, file_format(path), meta.mode, meta.kind, meta.source_sha256)


def read_manifest(directory: Path) -> tuple[ModelEntry, ...] | None:
    """The manifest's entries whose files exist, or ``None`` when there is no manifest.

    ModelFileError for a path that is absolute or leads out of the folder; MetadataError for a
    manifest that is not ours or lists files of two source models."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    manifest = Manifest.read(path)
    source = manifest.source_sha256
    entries = []
    for row in manifest.files:
        file = inside(directory, row.file, path)
        if row.source_sha256 and source and row.source_sha256 != source:
            raise MetadataError(f"{path}: {row.file} comes from another model than the manifest's "
                                "(source_sha256 differs); export the folder again")
        if file.is_file():
            entries.append(ModelEntry(file, row.format or file_format(file), row.mode, row.kind,
                                      row.source_sha256 or source, row.sha256, row.passed))
    return tuple(entries)


def inside(directory: Path, name: str, manifest: Path) -> Path:
    """``directory / name``, refused (ModelFileError) when ``name`` is absolute or leaves ``directory``."""
    base = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(base, name))
    if os.path.isabs(name) or not name or os.path.commonpath([base, target]) != base or target == base:
        raise ModelFileError(f"{manifest}: file entry {name!r} is outside the folder "
                             "(expected a file name inside it)")
    return directory / name


def list_models(directory: str | Path) -> tuple[ModelEntry, ...]:
    """Every model file of an export folder: from ``manifest.json``, else from the files' metadata."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: no such folder")
    if UNFINISHED_FOLDER.match(Path(os.path.abspath(directory)).name):
        raise ModelFileError(f"{directory}: an unfinished or replaced export folder (being written, or left by a "
                             "killed run); load the folder it sits beside")
    entries = read_manifest(directory)
    if entries is None:
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".tflite", ".onnx") and p.is_file())
        entries = tuple(describe_file(p) for p in files)
    return entries


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_entry(entry: ModelEntry) -> ModelEntry:
    """``entry`` if its file is the one the manifest lists: same sha256, same source model in its
    embedded metadata; ModelFileError naming the file otherwise (a changed, swapped or stale file)."""

    where = f"{entry.path}: "
    if entry.sha256 is not None and file_sha256(entry.path) != entry.sha256:
        raise ModelFileError(f"{where}its sha256 differs from {MANIFEST_NAME} (changed or replaced after export); "
                             "export the folder again")
    if entry.source_sha256 is not None:
        meta = read_metadata(entry.path)
        embedded = meta.source_sha256 if meta is not None else None
        if embedded != entry.source_sha256:
            raise ModelFileError(f"{where}exported from another model than {MANIFEST_NAME} lists "
                                 "(embedded source_sha256 differs); export the folder again")
    return entry


def check_listed_file(path: str | Path) -> None:
    """For a single file inside an export folder: if the folder's manifest lists it, ``check_entry``."""
    path = Path(path)
    if not (path.parent / MANIFEST_NAME).is_file():
        return
    entries = read_manifest(path.parent) or ()
    entry = next((e for e in entries if e.path.name == path.name and e.path.parent == path.parent), None)
    if entry is not None:
        check_entry(entry)


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

        if choose_device(compiled[0].path, "auto").kind is DeviceKind.EDGETPU:
            order.append("edgetpu")
    if any(e.format == "onnx" for e in entries):

        if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(onnx_providers()):
            order.append("onnx")
    return tuple(dict.fromkeys([*order, "tflite", "onnx"]))


def pick_model(directory: str | Path, device: Device, entries: tuple[ModelEntry, ...] | None = None) -> ModelEntry:
    """The clip (or image) model to run on ``device``: format by device, then int8 > fp16 > dynamic > float.

    A file the manifest marks as failed verification is never chosen; the chosen one is checked
    against the manifest (``check_entry``)."""
    entries = list_models(directory) if entries is None else entries
    clips = [e for e in entries if e.kind in CLIP_KINDS or e.kind is None]
    runnable = [e for e in clips if e.passed is not False]
    for fmt in _formats_for(device, entries):
        found = [e for e in runnable if e.format == fmt]
        if found:
            return check_entry(min(found, key=lambda e: MODE_PREFERENCE.index(e.mode) if e.mode in MODE_PREFERENCE else 99))
    failed = [e.path.name for e in clips if e.passed is False]
    if failed:
        raise ModelFileError(f"{directory}: no clip model that passed verification to run on {device} "
                             f"(failed: {', '.join(failed)}; see report.json); pass a file to load it anyway")
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

    def part(kind: str, fmt: str) -> ModelEntry | None:
        return next((e for e in entries if e.kind == kind and e.format == fmt and e.mode == like.mode
                     and e.passed is not False
                     and (like.source_sha256 is None or e.source_sha256 in (None, like.source_sha256))), None)

    # An Edge TPU clip model streams with the compiled encoder and the int8 head on the CPU.
    head_format = "tflite" if like.format == "edgetpu" else like.format
    encoder, head = part("stream_encoder", like.format), part("stream_head", head_format)
    if encoder is None or head is None:
        return None
    return check_entry(encoder).path, check_entry(head).path
