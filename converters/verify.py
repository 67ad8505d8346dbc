"""Compare an exported file with the float Keras model, the way a device runs it.

Each clip goes through ``runtimes.load(path).predict(clip)`` one after another (uint8 pixels in;
the runtime normalizes/quantizes from the file's metadata and resets recurrent state per clip),
so a state carried from clip to clip shows up as the accuracy loss it is. The reference is the
float Keras model on the same clips. Like Optimum's ``validate_model_outputs``, every mismatch is
collected and reported at once with a typed error: ``ShapeError``, ``AtolError`` (float ~1e-4,
fp16 ~1e-2; int8 and dynamic are judged by agreement and accuracy, not atol) and
``AccuracyDropError`` when top-1 accuracy falls more than ``max_drop`` percentage points.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import runtimes
from converters.calibration import ClipSet
from edge_rcnn.core._util import progress as bar
from edge_rcnn.core.data import normalize
from edge_rcnn.core.errors import AccuracyDropError, AtolError, ShapeError, ValidationError
from runtimes.errors import TensorRtFileOnCpuWarning


@dataclass(frozen=True)
class Comparison:
    """One exported file against the float model on the same clips (accuracies in %)."""

    file: str
    format: str
    mode: str
    size_bytes: int
    clips: int
    reference_accuracy: float | None  # None: synthetic clips without labels
    accuracy: float | None
    accuracy_drop: float | None  # percentage points, reference - exported
    agreement: float  # % of clips where both pick the same class
    max_abs_diff: float  # of the probabilities
    atol: float | None
    max_drop: float
    problems: tuple[str, ...] = ()
    min_top1: float = 0.0  # percent: the least top-1 the exported file must reach on labelled clips
    error: str | None = None  # the error class a failure maps to (ShapeError, AtolError, AccuracyDropError)
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": list(self.problems), "notes": list(self.notes), "passed": self.passed}


def validate_model_outputs(reference: np.ndarray, exported: np.ndarray, atol: float | None) -> None:
    """Raise ``ShapeError``/``AtolError`` naming every mismatching clip; ``atol=None`` checks shapes only."""
    reference, exported = np.asarray(reference), np.asarray(exported)
    if reference.shape != exported.shape:
        raise ShapeError(f"outputs have shape {exported.shape}, the float model gives {reference.shape}")
    if atol is None:
        return
    per_clip = np.abs(reference.astype(np.float64) - exported.astype(np.float64)).reshape(len(reference), -1).max(axis=1)
    bad = np.flatnonzero(per_clip > atol)
    if bad.size:
        shown = ", ".join(f"clip {i}: {per_clip[i]:.2e}" for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise AtolError(f"{bad.size} of {len(per_clip)} clips differ from the float model by more than atol={atol:g} ({shown})")


def reference_probs(model, config, clips: ClipSet, batch: int = 16) -> np.ndarray:
    """The float Keras model's probabilities for ``clips`` (batched; the model has no carried state)."""
    out = []
    for start in range(0, len(clips), batch):
        x = normalize(clips.clips[start : start + batch], config)
        out.append(np.asarray(model(x, training=False), dtype=np.float32))
    return np.concatenate(out, axis=0)


@contextlib.contextmanager
def _jetson_files_on_purpose() -> Iterator[None]:
    """Checking a file made for TensorRT on this CPU is the point of verification, not the mistake
    ``runtimes.onnxrt`` warns about: that warning is left out here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TensorRtFileOnCpuWarning)
        yield


def predict_file(path: str | Path, clips: ClipSet, *, device: str = "cpu", progress: bool = True) -> np.ndarray:
    """Probabilities from ``runtimes.load(path, device)``, one clip per ``predict`` call, as on a device."""
    with _jetson_files_on_purpose():
        runtime = runtimes.load(path, device=device)
    probs = []
    items = bar(clips.clips, total=len(clips), desc=f"verifying {Path(path).name}", unit="clip") if progress else clips.clips
    for clip in items:
        probs.append(np.asarray(runtime.predict(clip).probs, dtype=np.float32))
    return np.stack(probs)


def predict_stream(encoder: str | Path, head: str | Path, clips: ClipSet, *, device: str = "cpu",
                   progress: bool = True) -> np.ndarray:
    """Probabilities of a streaming pair: each clip pushed frame by frame (``runtimes.open_stream``),
    the prediction after its last frame; the stream is reset between clips."""
    with _jetson_files_on_purpose():
        stream = runtimes.open_stream(encoder, head, device)
    probs = []
    items = bar(clips.clips, total=len(clips), desc=f"verifying {Path(encoder).name}", unit="clip") if progress else clips.clips
    for clip in items:
        stream.reset()
        for frame in clip:
            result = stream.push(frame)
        probs.append(np.asarray(result.probs, dtype=np.float32))
    return np.stack(probs)


def compare_file(path: str | Path, reference: np.ndarray, clips: ClipSet, *, fmt: str, mode: str,
                 atol: float | None, max_drop: float, device: str = "cpu", progress: bool = True,
                 notes: tuple[str, ...] = (), min_top1: float = 0.0) -> Comparison:
    """Run ``path`` on ``clips`` and compare with ``reference`` (the float model's probabilities)."""
    path = Path(path)
    exported = predict_file(path, clips, device=device, progress=progress)
    return compare_probs(path.name, path.stat().st_size, exported, reference, clips, fmt=fmt, mode=mode, atol=atol,
                         max_drop=max_drop, notes=notes, min_top1=min_top1)


def compare_stream(encoder: Path, head: Path, reference: np.ndarray, clips: ClipSet, *, fmt: str, mode: str,
                   atol: float | None, max_drop: float, device: str = "cpu", progress: bool = True,
                   notes: tuple[str, ...] = (), min_top1: float = 0.0) -> Comparison:
    """The streaming pair pushed frame by frame against the float clip model on the same clips."""
    exported = predict_stream(encoder, head, clips, device=device, progress=progress)
    return compare_probs(f"{encoder.name} + {head.name}", encoder.stat().st_size + head.stat().st_size, exported,
                         reference, clips, fmt=fmt, mode=mode, atol=atol, max_drop=max_drop, notes=notes,
                         min_top1=min_top1)


def compare_probs(name: str, size_bytes: int, exported: np.ndarray, reference: np.ndarray, clips: ClipSet, *,
                  fmt: str, mode: str, atol: float | None, max_drop: float, notes: tuple[str, ...] = (),
                  min_top1: float = 0.0) -> Comparison:
    """Every check of ``exported`` against ``reference`` probabilities, as one ``Comparison``.

    ``min_top1`` (percent) is a floor for the file's own top-1 on labelled clips: the drop check
    alone passes a model that was useless in float too (a motion-blind model on motion data)."""
    problems, error = [], None
    try:
        validate_model_outputs(reference, exported, atol)
    except ValidationError as exc:
        problems.append(str(exc))
        error = type(exc).__name__
    same_shape = reference.shape == exported.shape
    agreement = float(np.mean(reference.argmax(-1) == exported.argmax(-1)) * 100) if same_shape else 0.0
    max_abs = float(np.abs(reference - exported).max()) if same_shape else float("inf")
    ref_acc = acc = drop = None
    if clips.labels is not None:
        ref_acc = float(np.mean(reference.argmax(-1) == clips.labels) * 100)
        acc = float(np.mean(exported.argmax(-1) == clips.labels) * 100) if same_shape else 0.0
        drop = ref_acc - acc
        if drop > max_drop + 1e-9:
            problems.append(f"top-1 accuracy dropped {drop:.1f} points ({ref_acc:.1f}% -> {acc:.1f}%), more than --max-drop {max_drop:g}")
            error = error or AccuracyDropError.__name__
        if acc < min_top1 - 1e-9:
            problems.append(f"top-1 accuracy {acc:.1f}% on {len(clips)} held-out clips is below --min-top1 {min_top1:g}")
            error = error or AccuracyDropError.__name__
    return Comparison(
        file=name, format=fmt, mode=mode, size_bytes=size_bytes, clips=len(clips),
        reference_accuracy=ref_acc, accuracy=acc, accuracy_drop=drop, agreement=agreement,
        max_abs_diff=max_abs, atol=atol, max_drop=max_drop, problems=tuple(problems), error=error, notes=notes,
        min_top1=min_top1,
    )


def raise_failures(comparisons: list[Comparison], report=None) -> None:
    """One typed error naming every failed file (shape/atol errors before accuracy drops); none if all passed."""
    failed = [c for c in comparisons if not c.passed]
    if not failed:
        return
    order = {ShapeError.__name__: ShapeError, AtolError.__name__: AtolError}
    cls = next((order[c.error] for c in failed if c.error in order), AccuracyDropError)
    where = f"; the files are kept, see {report.report_path}" if report is not None and report.report_path else ""
    exc = cls("; ".join(f"{c.file}: {p}" for c in failed for p in c.problems) + where)
    exc.report = report
    raise exc


def format_table(comparisons: list[Comparison], skipped: list[tuple[str, str]] = ()) -> str:
    """A fixed-width table of the comparisons, and one line per file that could not be verified."""
    pct = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    header = ("file", "size", "ref acc%", "acc%", "drop", "agree%", "max|dp|", "status")
    rows = [header]
    for c in comparisons:
        rows.append((c.file, _size(c.size_bytes), pct(c.reference_accuracy), pct(c.accuracy), pct(c.accuracy_drop),
                     f"{c.agreement:.1f}", f"{c.max_abs_diff:.2e}", "ok" if c.passed else f"FAILED ({c.error})"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{name}: not verified ({why})" for name, why in skipped]
    if comparisons:
        lines.append(f"{comparisons[0].clips} clips through runtimes: clip models one predict() per clip, "
                     "streaming pairs (a + b) pushed frame by frame")
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"
