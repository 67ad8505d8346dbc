"""The public functions: ``quantize``, ``export``, ``verify`` (``info`` lives in ``describe``).

Every export ends in verification against the float Keras model, ``manifest.json`` and
``report.json``; a failed check raises a typed error (``AccuracyDropError``: CLI exit 3) after
the files and the report are written (the manifest marks the failed files, so loading the
folder never picks them), with the report attached as ``error.report``. Inputs are checked
cheaply first (output folder writable, model file, data folder) so bad input fails before
TensorFlow loads and before anything is written.

The output folder is replaced as a whole (``converters.outdir``): the run writes into a
temporary sibling and swaps it in at the end, so ``OUT`` never mixes two runs, and files of
an earlier run that this one does not write are gone afterwards.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.calibration import (
    ClipSet,
    describe,
    load_clips,
    random_clips,
    split_calibration,
    warn_coarse_verification,
    warn_label_coverage,
)
from converters.config import ATOL, ConvertConfig, Format, Mode
from converters.job import ExportedFile, ExportJob, get_converter
from converters.manifest import write_manifest
from converters.outdir import check_writable_out, check_writable_parent, staged_output
from converters.parts import STREAM_PARTS, Part, check_streamable
from converters.verify import Comparison, compare_file, compare_stream, format_table, raise_failures, reference_probs
from edge_rcnn.core._util import kill_point, write_json_atomic
from edge_rcnn.core.config import parse_enum
from edge_rcnn.core.errors import ConfigError, InputError, MetadataError
from edge_rcnn.core.model import file_sha256, load_model, read_config
from runtimes.metadata import read_metadata
from runtimes.modeldir import check_listed_file

REPORT_NAME = "report.json"
RANDOM_VERIFY_CLIPS = 16  # export without --data: compare outputs on synthetic clips


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how each file compared with the float model."""

    out_dir: Path
    report_path: Path | None
    files: tuple[ExportedFile, ...]
    comparisons: tuple[Comparison, ...]
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def paths(self) -> dict[str, Path]:
        """``{file name: path}`` of every file written."""
        return {f.path.name: f.path for f in self.files if f.path is not None}

    def table(self) -> str:
        skipped = [(f.path.name if f.path else f.format.value, f.details.get("summary") or (f.notes[0] if f.notes else ""))
                   for f in self.files if not f.runnable]
        return format_table(list(self.comparisons), skipped)


def quantize(model: str | os.PathLike, calib: str | os.PathLike, out_dir: str | os.PathLike,
             config: ConvertConfig | None = None, *, progress: bool = True, **settings: Any) -> ExportReport:
    """Convert ``model`` (a ``model.keras``) to every format in ``config.formats`` at ``config.mode``.

    int8 calibrates on ``samples`` real clips of the ``split`` of the data folder ``calib``;
    the other clips of that split (up to ``verify_samples``) verify every file. Settings come
    as a ``ConvertConfig`` or as its fields (``mode="int8", formats="tflite,onnx", ...``).
    ``out_dir`` is replaced whole once the run ends (see the module docstring).
    """
    settings_ = _settings(config, settings)
    out = check_writable_out(out_dir, model=model, data=calib)
    model_config = _read_config(model)
    if settings_.streaming:
        check_streamable(model_config)
    limit = settings_.samples + settings_.verify_samples if settings_.needs_calibration else settings_.verify_samples
    clips = load_clips(calib, model_config, split=settings_.split, limit=limit, seed=settings_.seed, progress=progress)
    calibration, held, overlap = (split_calibration(clips, settings_.samples, settings_.seed) if settings_.needs_calibration
                                  else (None, clips, False))
    if not overlap:
        warn_coarse_verification(held, settings_.max_drop)
    warn_label_coverage(model_config, calibration, held)
    return _run(model, out, settings_, calibration, held, progress, extra={"overlap": overlap})


def export(model: str | os.PathLike, out_dir: str | os.PathLike, config: ConvertConfig | None = None, *,
           data: str | os.PathLike | None = None, progress: bool = True, **settings: Any) -> ExportReport:
    """Export without calibration (``mode`` float by default; fp16 and dynamic also need none).

    With ``data`` the files are verified on real clips (accuracy, agreement); without it, on
    synthetic clips (outputs vs the float model within the mode's tolerance). ``out_dir`` is
    replaced whole once the run ends (see the module docstring).
    """
    settings.setdefault("mode", Mode.FLOAT)
    settings_ = _settings(config, settings)
    if settings_.needs_calibration:
        raise ConfigError(f"mode: {settings_.mode.value} needs calibration clips; use quantize with --calib DATA")
    out = check_writable_out(out_dir, model=model, data=data)
    model_config = _read_config(model)
    if settings_.streaming:
        check_streamable(model_config)
    if data is None:
        held = random_clips(model_config, min(RANDOM_VERIFY_CLIPS, settings_.verify_samples), settings_.seed)
    else:
        held = load_clips(data, model_config, split=settings_.split, limit=settings_.verify_samples,
                          seed=settings_.seed, progress=progress)
        warn_label_coverage(model_config, None, held)
    return _run(model, out, settings_, None, held, progress, extra={})


def verify(path: str | os.PathLike, reference: str | os.PathLike, data: str | os.PathLike, *, split: str = "val",
           samples: int = 200, max_drop: float = 1.0, seed: int = 0, device: str = "auto",
           report: str | os.PathLike | None = None, progress: bool = True, min_top1: float = 0.0) -> Comparison:
    """Compare an exported file with its float Keras model on ``samples`` clips of ``data``.

    ``device`` is passed to ``runtimes.load`` ("auto": an Edge TPU file runs on the TPU). A file
    listed in a ``manifest.json`` beside it must match its sha256 there (a changed byte is refused).
    """
    path = Path(path)
    if report is not None:
        report = check_report_path(report)
    check_listed_file(path)
    meta = read_metadata(path)
    if meta is None:
        raise MetadataError(f"{path}: no edge_rcnn metadata (expected a file written by edge-rcnn quantize/export)")
    mode = parse_enum(Mode, meta.mode, f"{path.name} metadata mode")
    checked = ConvertConfig(formats=("tflite",), mode=Mode.FLOAT, samples=1, verify_samples=samples,
                            max_drop=max_drop, min_top1=min_top1, split=split, seed=seed)  # validates the numbers
    model_config = _read_config(reference)
    clips = load_clips(data, model_config, split=checked.split, limit=checked.verify_samples, seed=seed, progress=progress)
    warn_coarse_verification(clips, checked.max_drop)
    warn_label_coverage(model_config, None, clips)
    keras_model, _ = load_model(reference)
    notes = ()
    if meta.source_sha256 and meta.source_sha256 != file_sha256(reference):
        notes = (f"{Path(reference).name} is not the model {path.name} was exported from (sha256 differs)",)
    fmt = "edgetpu" if path.name.endswith("_edgetpu.tflite") else path.suffix.lstrip(".")
    comparison = compare_file(path, reference_probs(keras_model, model_config, clips), clips, fmt=fmt, mode=mode.value,
                              atol=ATOL[mode], max_drop=checked.max_drop, device=device, progress=progress, notes=notes,
                              min_top1=checked.min_top1)
    result = ExportReport(path.parent, None, (), (comparison,))
    if report is not None:
        doc = {"file": str(path), "reference": str(reference), "data": describe(clips), "comparison": comparison.to_dict(),
               "passed": comparison.passed}
        result = ExportReport(path.parent, write_json_atomic(report, doc), (), (comparison,), doc)
    raise_failures([comparison], result)
    return comparison


def _run(model_path, out: Path, settings: ConvertConfig, calibration: ClipSet | None, held: ClipSet,
         progress: bool, extra: dict[str, Any]) -> ExportReport:
    keras_model, model_config = load_model(model_path)  # a config that disagrees with the weights fails here
    source_sha256 = file_sha256(model_path)
    reference = reference_probs(keras_model, model_config, held)
    with staged_output(out) as staged:
        job = ExportJob(keras_model, model_config, settings, staged.path, source_sha256, calibration, progress,
                        dest_dir=out)
        files = export_files(job)
        comparisons = tuple(verify_files(files, reference, held, settings, progress))
        entries = [_file_entry(f, comparisons) for f in files]
        write_manifest(staged.path, files, entries, model_config, source_sha256)
        doc = {
            "source": str(model_path), "source_sha256": source_sha256, "settings": settings.to_dict(),
            "model_config": model_config.to_dict(),
            "calibration": describe(calibration) if calibration is not None else None,
            "verification": {**describe(held), "reuses_calibration_clips": bool(extra.get("overlap"))},
            "files": entries,
            "passed": all(c.passed for c in comparisons),
        }
        write_json_atomic(staged.path / REPORT_NAME, doc)
        kill_point("staged")
        staged.commit()
    files = [dataclasses.replace(f, path=out / f.path.name) if f.path is not None else f for f in files]
    report = ExportReport(out, out / REPORT_NAME, tuple(files), comparisons, doc)
    raise_failures(list(comparisons), report)
    return report


def export_files(job: ExportJob) -> list[ExportedFile]:
    """Every file of ``job.settings``: each format's clip model, then its streaming parts if asked."""
    files = []
    for fmt in _formats_to_run(job.settings):
        convert = get_converter(fmt)
        parts = (Part.CLIP,)
        if job.settings.streaming:
            parts = (Part.CLIP, Part.STREAM_ENCODER) if fmt is Format.EDGETPU else (Part.CLIP, *STREAM_PARTS)
        for part in parts:
            files.append(convert(job.for_part(part)))
            kill_point("file_written")
    return files


def verify_files(files: list[ExportedFile], reference, held: ClipSet, settings: ConvertConfig, progress: bool):
    """A ``Comparison`` per runnable clip model and per streaming pair (pushed frame by frame)."""
    common = dict(mode=settings.mode.value, atol=settings.atol, max_drop=settings.max_drop, progress=progress,
                  min_top1=settings.min_top1)
    for f in files:
        if not f.runnable or f.part is Part.STREAM_HEAD:
            continue
        if f.part is Part.CLIP:
            yield compare_file(f.path, reference, held, fmt=f.format.value, notes=f.notes, **common)
            continue
        head = next(h for h in files if h.part is Part.STREAM_HEAD and h.format is f.format)
        yield compare_stream(f.path, head.path, reference, held, fmt=f.format.value, notes=f.notes + head.notes, **common)


def _formats_to_run(settings: ConvertConfig) -> list[Format]:
    """Formats in order; an Edge TPU file is compiled from the int8 TFLite file, so that comes first."""
    formats = list(settings.formats)
    if Format.EDGETPU in formats:
        formats.remove(Format.EDGETPU)
        if Format.TFLITE not in formats:
            formats.append(Format.TFLITE)
        formats.append(Format.EDGETPU)
    return formats


def _file_entry(exported: ExportedFile, comparisons: tuple[Comparison, ...]) -> dict[str, Any]:
    name = exported.path.name if exported.path else None
    match = next((c for c in comparisons if name in c.file.split(" + ")), None)
    return {
        "file": name, "format": exported.format.value, "mode": exported.mode.value, "part": exported.part.value,
        "size_bytes": exported.path.stat().st_size if exported.path else None,
        "verified": match is not None, "passed": match.passed if match else None,
        "comparison": match.to_dict() if match else None, "notes": list(exported.notes), **exported.details,
    }


def _settings(config: ConvertConfig | None, settings: dict[str, Any]) -> ConvertConfig:
    if config is not None and settings:
        raise ConfigError(f"pass either config or settings ({sorted(settings)}), not both")
    if config is not None:
        return config
    known = set(ConvertConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; expected some of {sorted(known)}")
    return ConvertConfig(**settings)


def check_report_path(report: str | os.PathLike) -> Path:
    """A ``--report`` path that can be written: not a folder, its folder writable (InputError)."""
    report = Path(report)
    if report.is_dir():
        raise InputError(f"--report {report}: is a folder; expected the path of a JSON file to write")
    check_writable_parent(report, "report")
    return report


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """A folder created in place (the benchmark's); InputError if the path is a file or cannot be created.
    ``quantize``/``export`` use ``check_writable_out`` instead: they create nothing before the input is checked."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; expected an output folder (-o OUT/)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    return out


def _read_config(model: str | os.PathLike):
    return read_config(model)
