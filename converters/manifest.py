"""``OUT/manifest.json``: the files of an export folder, read by ``runtimes.modeldir`` on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.job import ExportedFile
from converters.parts import Part
from edge_rcnn.core._util import write_json_atomic
from edge_rcnn.core.model import file_sha256
from runtimes.modeldir import MANIFEST_NAME, MANIFEST_VERSION


def write_manifest(out: Path, files: list[ExportedFile], entries: list[dict[str, Any]], config, sha256: str) -> Path:
    """``OUT/manifest.json`` (schema: ``runtimes.modeldir``) for exactly the model files of this run.

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
        rows.append({"file": f.path.name, "format": f.format.value, "mode": f.mode.value, "kind": kind,
                     "source_sha256": sha256, "sha256": file_sha256(f.path), "size_bytes": f.path.stat().st_size,
                     "verified": entry["verified"], "passed": entry["passed"]})
    doc = {"format_version": MANIFEST_VERSION, "source_sha256": sha256, "files": rows}
    return write_json_atomic(out / MANIFEST_NAME, doc)
