"""``OUT/manifest.json``: the files of an export folder, read by ``runtimes.modeldir`` on a device."""

from __future__ import annotations

import json
from pathlib import Path

from converters.job import ExportedFile
from converters.parts import Part


def write_manifest(out: Path, files: list[ExportedFile], config, sha256: str) -> Path:
    """``OUT/manifest.json`` (schema: ``runtimes.modeldir``): these files plus earlier ones still there."""
    from edge_rcnn._util import write_json_atomic
    from runtimes.modeldir import MANIFEST_NAME, MANIFEST_VERSION

    rows = {}
    try:
        old = json.loads((out / MANIFEST_NAME).read_text())
        if old.get("format_version") == MANIFEST_VERSION:
            rows = {r["file"]: r for r in old["files"] if isinstance(r, dict) and (out / str(r.get("file"))).is_file()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # no manifest yet, or not ours: write a fresh one
    for f in files:
        if f.path is not None:
            kind = config.mode.value if f.part is Part.CLIP else f.part.value
            rows[f.path.name] = {"file": f.path.name, "format": f.format.value, "mode": f.mode.value, "kind": kind,
                                 "source_sha256": sha256}
    return write_json_atomic(out / MANIFEST_NAME, {"format_version": MANIFEST_VERSION, "files": list(rows.values())})
