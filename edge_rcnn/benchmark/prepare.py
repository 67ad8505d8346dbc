"""Files to benchmark: reuse what an earlier run exported with the same model and settings, export the rest.

Each format gets its own folder ``BENCH/models/<format>/`` (its file(s) and the converters'
``report.json``), so one format's failed export leaves the others alone. A folder is reused
only when its ``report.json`` names this very ``model.keras`` (same sha256) AND the conversion
settings this format asks for now (``ConvertConfig.to_dict()``, defaults resolved: e.g. the
int8 LSTM layout, the ONNX int8 flavour), and every file's embedded metadata names the same
model. Anything else -- a file from before a converters default changed, another model, a
missing or unreadable report -- is exported again, with the reason in the row's notes. The old
report is removed before exporting, so an export that dies half way is never mistaken for a
finished one.

Exports go through the public ``converters.quantize``/``export``; int8 calibrates on the data
folder's ``train`` split, so the val clips the benchmark measures on were never calibrated on.
The converters' own verification runs on a few clips with ``max_drop=100``: the benchmark
reports accuracy itself, and a verification failure becomes a note, not a lost row.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters import export, quantize
from converters.config import ConvertConfig, Format, Mode, file_name
from edge_rcnn.benchmark.formats import BenchFormat, Measure
from edge_rcnn.core.errors import ConversionError, ValidationError
from runtimes.metadata import read_metadata

log = logging.getLogger(__name__)
CALIBRATION_SPLIT = "train"
CALIBRATION_SAMPLES = 200
VERIFY_SAMPLES = 32
REPORT_NAME = "report.json"  # written by converters next to the files
STREAM_FILES = ("stream_encoder_{mode}.tflite", "stream_head_{mode}.tflite")


@dataclass(frozen=True)
class Prepared:
    """The files a worker loads (``model``, or ``encoder`` and ``head``) and what exporting noticed."""

    files: dict[str, Path]
    exported: bool
    notes: tuple[str, ...] = ()

    @property
    def measured(self) -> dict[str, Path]:
        """The files of the row itself (the stream's ``window`` clip model is only its comparison)."""
        return {k: v for k, v in self.files.items() if k != "window"}

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.measured.values())


def expected_files(fmt: BenchFormat, model: Path, models_dir: Path) -> dict[str, Path]:
    if fmt.measure is Measure.KERAS:
        return {"model": model}

    folder = models_dir / fmt.name
    if fmt.measure is Measure.STREAM:
        encoder, head = (folder / name.format(mode=fmt.mode) for name in STREAM_FILES)
        return {"encoder": encoder, "head": head, "window": folder / file_name(Format(fmt.target), Mode(fmt.mode))}
    return {"model": folder / file_name(Format(fmt.target), Mode(fmt.mode))}


def convert_settings(fmt: BenchFormat) -> dict[str, Any]:
    """The ``ConvertConfig`` fields the benchmark exports ``fmt`` with (``quantize``/``export`` keywords)."""
    settings: dict[str, Any] = dict(formats=[fmt.target], mode=fmt.mode, verify_samples=VERIFY_SAMPLES, max_drop=100.0)
    settings.update(dict(fmt.options))
    if fmt.calibrated:
        settings.update(samples=CALIBRATION_SAMPLES, split=CALIBRATION_SPLIT)
    else:
        settings["split"] = "val"
    if fmt.measure is Measure.STREAM:
        settings["streaming"] = True
    return settings


def expected_report_settings(fmt: BenchFormat) -> dict[str, Any]:
    """What ``report.json["settings"]`` of an up-to-date export of ``fmt`` says (defaults resolved)."""
    return json.loads(json.dumps(ConvertConfig(**convert_settings(fmt)).to_dict()))


def exported_from(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and its metadata names ``sha256`` as its source."""
    if not path.is_file():
        return False
    try:
        meta = read_metadata(path)
    except Exception:  # a truncated or foreign file: export again
        return False
    return meta is not None and meta.source_sha256 == sha256


def stale_reason(fmt: BenchFormat, files: dict[str, Path], sha256: str) -> str | None:
    """Why the files in ``fmt``'s folder cannot be reused (one line), or None when they can."""
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        return f"no {', '.join(missing)} yet"
    report_path = next(iter(files.values())).parent / REPORT_NAME
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        return f"no readable {REPORT_NAME} beside the files"
    if not isinstance(report, dict) or report.get("source_sha256") != sha256:
        return f"{REPORT_NAME} names another model.keras (sha256 differs)"
    want, have = expected_report_settings(fmt), report.get("settings")
    if want != have:
        have = have if isinstance(have, dict) else {}
        changed = [f"{k}: {have.get(k, '<absent>')!r} -> {want.get(k, '<absent>')!r}"
                   for k in sorted(set(want) | set(have)) if want.get(k, "<absent>") != have.get(k, "<absent>")]
        return f"conversion settings changed ({'; '.join(changed)})"
    other = [p.name for p in files.values() if not exported_from(p, sha256)]
    if other:
        return f"the metadata of {', '.join(other)} names another model"
    return None


def prepare_format(fmt: BenchFormat, model: Path, data: Path, models_dir: Path, sha256: str,
                   progress: bool = True) -> Prepared:
    """The files for ``fmt``, exported now unless an earlier export of the same model and settings is there."""
    files = expected_files(fmt, model, models_dir)
    if fmt.measure is Measure.KERAS:
        return Prepared(files, exported=False)
    reason = stale_reason(fmt, files, sha256)
    if reason is None:
        return Prepared(files, exported=False)
    log.info("%s: exporting (%s)", fmt.name, reason)
    folder = next(iter(files.values())).parent
    (folder / REPORT_NAME).unlink(missing_ok=True)  # a half-finished export must not look finished next time
    notes = (f"exported in this run: {reason}", *_export(fmt, model, data, folder, progress))
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise ConversionError(f"{fmt.name}: the export wrote no {', '.join(missing)} (in {folder})")
    return Prepared(files, exported=True, notes=notes)


def _export(fmt: BenchFormat, model: Path, data: Path, out: Path, progress: bool) -> tuple[str, ...]:
    settings = convert_settings(fmt)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if fmt.calibrated:
                quantize(model, data, out, progress=progress, **settings)
            else:
                export(model, out, data=data, progress=progress, **settings)
        except ValidationError as exc:  # the file is written; the benchmark measures it anyway
            notes.append(f"converter verification: {exc}")
    notes += [f"{w.category.__name__}: {w.message}" for w in caught]
    return tuple(notes)
