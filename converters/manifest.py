"""``OUT/manifest.json``: the files of an export folder (the record: ``runtimes.manifest.Manifest``),
read by ``runtimes.modeldir`` on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.job import ExportedFile
from converters.parts import Part
from edge_rcnn.core._util import write_json_atomic
from edge_rcnn.core.model import file_sha256
from runtimes.manifest import MANIFEST_NAME, Manifest, ManifestFile


def build_manifest(files: list[ExportedFile], entries: list[dict[str, Any]], config, sha256: str) -> Manifest:
    """The manifest of exactly the model files of this run.

    Each row holds the file's own sha256 (a changed byte is caught at load), the source model's
    sha256 (the file's embedded metadata must agree) and its verification status from
    ``entries`` (the report's rows): a file that failed verification is listed with
    ``passed: false`` and never chosen by ``runtimes.load(OUT)``.
    """
    rows = []
    for f, entry in zip(files, entries):
        if f.path is None:
            continue
        kind = config.mode.value if f.part is Part.CLIP else f.part.value
        rows.append(ManifestFile(f.path.name, f.format.value, f.mode.value, kind, sha256, file_sha256(f.path),
                                 f.path.stat().st_size, entry["verified"], entry["passed"]))
    return Manifest(sha256, tuple(rows))


def write_manifest(out: Path, files: list[ExportedFile], entries: list[dict[str, Any]], config, sha256: str) -> Path:
    """``OUT/manifest.json`` for exactly the model files of this run (``build_manifest``)."""
    return write_json_atomic(out / MANIFEST_NAME, build_manifest(files, entries, config, sha256).to_dict())
