"""Files to benchmark: reuse what an earlier run exported from the same model, export the rest.

Each format gets its own folder ``BENCH/models/<format>/`` (its file(s) and the converters'
``report.json``), so one format's failed export leaves the others alone. A file is reused when
its embedded metadata says it was exported from this very ``model.keras`` (same sha256).
Exports go through the public ``converters.quantize``/``export``; int8 calibrates on the data
folder's ``train`` split, so the val clips the benchmark measures on were never calibrated on.
The converters' own verification runs on a few clips with ``max_drop=100``: the benchmark
reports accuracy itself, and a verification failure becomes a note, not a lost row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from edge_rcnn.benchmark.formats import BenchFormat, Measure

CALIBRATION_SPLIT = "train"
CALIBRATION_SAMPLES = 200
VERIFY_SAMPLES = 32
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
    from converters.config import Format, Mode, file_name

    folder = models_dir / fmt.name
    if fmt.measure is Measure.STREAM:
        encoder, head = (folder / name.format(mode=fmt.mode) for name in STREAM_FILES)
        return {"encoder": encoder, "head": head, "window": folder / file_name(Format(fmt.target), Mode(fmt.mode))}
    return {"model": folder / file_name(Format(fmt.target), Mode(fmt.mode))}


def exported_from(path: Path, sha256: str) -> bool:
    """True when ``path`` exists and its metadata names ``sha256`` as its source."""
    from runtimes.metadata import read_metadata

    if not path.is_file():
        return False
    try:
        meta = read_metadata(path) or {}
    except Exception:  # a truncated or foreign file: export again
        return False
    return meta.get("source_sha256") == sha256


def prepare_format(fmt: BenchFormat, model: Path, data: Path, models_dir: Path, sha256: str,
                   progress: bool = True) -> Prepared:
    """The files for ``fmt``, exported now unless an earlier export of the same model is there."""
    files = expected_files(fmt, model, models_dir)
    if fmt.measure is Measure.KERAS or all(exported_from(p, sha256) for p in files.values()):
        return Prepared(files, exported=False)
    notes = _export(fmt, model, data, files, progress)
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        from edge_rcnn.errors import ConversionError

        raise ConversionError(f"{fmt.name}: the export wrote no {', '.join(missing)} (in {files[next(iter(files))].parent})")
    return Prepared(files, exported=True, notes=notes)


def _export(fmt: BenchFormat, model: Path, data: Path, files: dict[str, Path], progress: bool) -> tuple[str, ...]:
    from converters import export, quantize
    from edge_rcnn.errors import ValidationError

    out = next(iter(files.values())).parent
    common = dict(formats=[fmt.target], mode=fmt.mode, verify_samples=VERIFY_SAMPLES, max_drop=100.0)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if fmt.calibrated:
                extra = {"streaming": True} if fmt.measure is Measure.STREAM else {}
                quantize(model, data, out, samples=CALIBRATION_SAMPLES, split=CALIBRATION_SPLIT,
                         progress=progress, **common, **extra)
            else:
                export(model, out, data=data, split="val", progress=progress, **common)
        except ValidationError as exc:  # the file is written; the benchmark measures it anyway
            notes.append(f"converter verification: {exc}")
    notes += [f"{w.category.__name__}: {w.message}" for w in caught]
    return tuple(notes)
