"""``OUT/manifest.json``: the model files of an export folder, as one typed record.

Written by ``converters.manifest`` next to the files, read by ``runtimes.modeldir`` on a device::

    {"format_version": 2, "source_sha256": "...",
     "files": [{"file": "model_int8.tflite", "format": "tflite", "mode": "int8", "kind": "clip",
                "source_sha256": "...", "sha256": "...", "size_bytes": ..., "verified": true, "passed": true},
               ...]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.errors import MetadataError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no per-file sha256


@dataclass(frozen=True)
class ManifestFile:
    """One model file of the folder.

    ``format``: ``tflite``, ``onnx`` or ``edgetpu`` (a .tflite compiled for the Edge TPU); ``kind``:
    the metadata kind (``clip``, ``image``, ``stream_encoder``, ``stream_head``); ``sha256``: of the
    file itself; ``source_sha256``: of the .keras file it came from; ``passed``: the verification
    result (``False``: never chosen; ``None``: not verified, e.g. an Edge TPU file).
    """

    file: str
    format: str | None = None
    mode: str | None = None
    kind: str | None = None
    source_sha256: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    verified: bool | None = None
    passed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "mode": self.mode, "kind": self.kind,
                "source_sha256": self.source_sha256, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "verified": self.verified, "passed": self.passed}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ManifestFile:
        """The row as found; a ``passed`` or ``verified`` that is not a bool is ``None`` (unknown)."""
        flag = lambda key: row.get(key) if isinstance(row.get(key), bool) else None  # noqa: E731
        return cls(row["file"], row.get("format"), row.get("mode"), row.get("kind"), row.get("source_sha256"),
                   row.get("sha256"), row.get("size_bytes"), flag("verified"), flag("passed"))


@dataclass(frozen=True)
class Manifest:
    """The files of one export, all from the model whose .keras file has ``source_sha256``."""

    source_sha256: str | None
    files: tuple[ManifestFile, ...]
    format_version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": self.format_version, "source_sha256": self.source_sha256,
                "files": [f.to_dict() for f in self.files]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, doc: Any, path: str | Path = MANIFEST_NAME) -> Manifest:
        """The record of a parsed manifest (version 1 or 2); rows without a file name are left out.
        ``MetadataError`` for a document that is not an edge-rcnn manifest."""
        try:
            rows = doc["files"] if doc.get("format_version") in READABLE_VERSIONS else None
        except (KeyError, TypeError, AttributeError):
            rows = None
        if not isinstance(rows, list):
            raise MetadataError(f"{path}: not an edge-rcnn manifest (expected format_version {MANIFEST_VERSION} "
                                "and a files list)")
        files = tuple(ManifestFile.from_dict(r) for r in rows if isinstance(r, dict) and isinstance(r.get("file"), str))
        return cls(doc.get("source_sha256"), files, doc["format_version"])

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """The manifest in the file ``path``; ``MetadataError`` for one that is not ours."""
        try:
            doc = json.loads(Path(path).read_text())
        except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, not text, absurd nesting
            doc = None
        return cls.from_dict(doc, path)
