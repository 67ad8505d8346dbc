"""Calibration and verification clips, and the one-method reader that feeds them to converters.

A reader follows ONNX Runtime's ``CalibrationDataReader`` protocol: ``get_next()`` returns
``{input_name: float32 batch-1 clip}`` until it returns ``None``. The same reader feeds TFLite's
``representative_dataset`` and ORT's ``quantize_static``. Clips are real clips from a data
folder (``edge_rcnn.core.data.load_arrays``), kept as uint8 and normalized one at a time with the
model's own normalization (``edge_rcnn.core.data.normalize``), so memory stays at uint8 size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from converters.config import FEW_CALIBRATION_CLIPS
from edge_rcnn.core._util import _NoBar, kill_point, progress
from edge_rcnn.core.config import ModelConfig
from edge_rcnn.core.data import load_arrays, normalize
from edge_rcnn.core.errors import DataError


class CalibrationDataReader(Protocol):
    """ONNX Runtime's calibration protocol: the next input feed, or ``None`` when done."""

    def get_next(self) -> dict[str, np.ndarray] | None: ...


@dataclass(frozen=True)
class ClipSet:
    """uint8 clips ``[N, T, H, W, C]`` with their label indices (``None`` for synthetic clips)."""

    clips: np.ndarray
    labels: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return int(self.clips.shape[0])

    def take(self, start: int, stop: int | None = None) -> "ClipSet":
        labels = None if self.labels is None else self.labels[start:stop]
        return ClipSet(self.clips[start:stop], labels, self.source)


class _Reader:
    """The reader protocol over ``len(self)`` items: ``get_next()`` gives ``self.feed(i)`` for
    each in turn, then ``None``; ``rewind()`` starts over; iterating rewinds first."""

    input_name: str | None
    _next = 0  # the next item's index (set per instance once reading starts)

    def __len__(self) -> int:
        raise NotImplementedError

    def feed(self, i: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def get_next(self) -> dict[str, np.ndarray] | None:
        i = self._next
        if i >= len(self):
            return None
        self._next = i + 1
        return self.feed(i)

    def rewind(self) -> None:
        self._next = 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        self.rewind()
        return iter(self.get_next, None)


class ClipReader(_Reader):
    """``get_next()`` -> ``{input_name: normalized float32 [1, ...]}`` per clip, then ``None``."""

    def __init__(self, clips: ClipSet, config: ModelConfig, input_name: str = "frames"):
        self.clips, self.config, self.input_name = clips, config, input_name

    def __len__(self) -> int:
        return len(self.clips)

    def feed(self, i: int) -> dict[str, np.ndarray]:
        return {self.input_name: normalize(self.clips.clips[i : i + 1], self.config)}


class ArrayReader(_Reader):
    """``get_next()`` -> ``{input_name: x[i:i+1]}`` over float32 samples already in model space."""

    def __init__(self, samples: np.ndarray, input_name: str):
        self.samples, self.input_name = np.asarray(samples, dtype=np.float32), input_name

    def __len__(self) -> int:
        return len(self.samples)

    def feed(self, i: int) -> dict[str, np.ndarray]:
        return {self.input_name: self.samples[i : i + 1]}


class FeedReader(_Reader):
    """``get_next()`` -> each of a list of ready feeds (several named inputs: the step head)."""

    input_name = None  # several inputs: the feeds are yielded whole

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.feeds = feeds

    def __len__(self) -> int:
        return len(self.feeds)

    def feed(self, i: int) -> dict[str, np.ndarray]:
        return self.feeds[i]


class ProgressReader:
    """A reader that moves a progress bar as it is consumed (same protocol, closes the bar at the end)."""

    def __init__(self, reader: ClipReader | ArrayReader | FeedReader, desc: str, enabled: bool = True):
        self.reader, self.input_name = reader, reader.input_name
        self._bar = progress(total=len(reader), desc=desc, unit="sample") if enabled else _NoBar()

    def __len__(self) -> int:
        return len(self.reader)

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = self.reader.get_next()
        if feed is None:
            self._bar.close()
        else:
            self._bar.update(1)
        return feed


def representative_dataset(reader: ClipReader | ArrayReader | FeedReader, desc: str = "calibrating", progress: bool = True):
    """A TFLite ``representative_dataset`` (a generator function) over ``reader``, with a bar."""

    def generate() -> Iterator[list[np.ndarray]]:
        reader.rewind()
        with_bar = ProgressReader(reader, desc, progress)
        for feed in iter(with_bar.get_next, None):
            kill_point("calibrating")
            # One input: by position. Several: by signature input name (TFLite orders them its own way).
            yield feed if reader.input_name is None else [feed[reader.input_name]]

    return generate


def load_clips(data: str | Path, config: ModelConfig, *, split: str, limit: int | None, seed: int,
               progress: bool = True) -> ClipSet:
    """Real clips of one split of a data folder, labelled by ``config.labels`` (DataError if none)."""
    x, y = load_arrays(data, config, split=split, limit=limit, seed=seed, progress=progress)
    if len(x) == 0:
        raise DataError(f"{data}: no clips in the {split!r} split (expected {split}/<label>/<clips>)")
    return ClipSet(np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64), f"{data} ({split})")


def split_calibration(clips: ClipSet, samples: int, seed: int = 0) -> tuple[ClipSet, ClipSet, bool]:
    """``(calibration, verification, overlap)``: ``samples`` clips calibrate, the others verify.

    Clips are dealt class by class (round robin over seeded per-class shuffles), so both parts
    cover every class. When the split holds no more than ``samples`` clips, verification reuses
    the calibration clips (``overlap`` is True and the report says so).
    """
    clips = interleave_classes(clips, seed)
    calib = clips.take(0, samples)
    if len(calib) < FEW_CALIBRATION_CLIPS:
        warnings.warn(
            f"calibrating on {len(calib)} clips from {clips.source}; {FEW_CALIBRATION_CLIPS}+ give steadier int8 ranges",
            UserWarning, stacklevel=3,
        )
    held = clips.take(samples)
    if len(held) == 0:
        warnings.warn(
            f"{clips.source}: only {len(clips)} clips, so verification reuses the calibration clips; "
            "lower --samples to keep some aside", UserWarning, stacklevel=3,
        )
        return calib, calib, True
    return calib, held, False


def warn_coarse_verification(held: ClipSet, max_drop: float) -> None:
    """Warn when one verification clip is worth more accuracy points than ``max_drop``: then a
    single clip that quantization tips the other way fails the export (exit 3)."""
    if len(held) and 100.0 / len(held) > max_drop:
        warnings.warn(
            f"verifying on {len(held)} held-out clips of {held.source}: one clip is {100.0 / len(held):.1f} points, more "
            f"than --max-drop {max_drop:g}, so a single changed clip fails the check; lower --samples or add clips",
            UserWarning, stacklevel=3,
        )


def warn_label_coverage(config: ModelConfig, calibration: ClipSet | None, held: ClipSet) -> None:
    """One warning when the calibration or verification clips hold only some of the model's labels:
    int8 ranges then never saw the others, and the accuracy check says nothing about them."""
    labels = config.labels

    def covered(clips: ClipSet | None) -> set[int] | None:
        return None if clips is None or clips.labels is None else {int(i) for i in np.unique(clips.labels)}

    calib, verify = covered(calibration), covered(held)
    seen = [s for s in (calib, verify) if s is not None]
    if not seen or all(len(s) == len(labels) for s in seen):
        return
    missing = sorted(set(range(len(labels))) - set.intersection(*seen))
    parts = [f"{name} clips cover {len(s)} of {len(labels)} labels"
             for name, s in (("calibration", calib), ("verification", verify)) if s is not None]
    shown = ", ".join(labels[i] for i in missing[:8]) + (", ..." if len(missing) > 8 else "")
    warnings.warn(f"{held.source}: {' and '.join(parts)} (missing: {shown}); the result says nothing about the "
                  "missing labels", UserWarning, stacklevel=3)


def interleave_classes(clips: ClipSet, seed: int = 0) -> ClipSet:
    """The same clips reordered one class after another (round robin), each class shuffled by ``seed``."""
    if clips.labels is None:
        return clips
    rng = np.random.default_rng(seed)
    groups = [rng.permutation(np.flatnonzero(clips.labels == c)) for c in np.unique(clips.labels)]
    order = np.array([g[i] for i in range(max(len(g) for g in groups)) for g in groups if i < len(g)], dtype=np.int64)
    return ClipSet(clips.clips[order], clips.labels[order], clips.source)


def random_clips(config: ModelConfig, count: int, seed: int = 0) -> ClipSet:
    """Synthetic uint8 clips (no labels): outputs can be compared, accuracy cannot."""
    rng = np.random.default_rng(seed)
    clips = rng.integers(0, 256, size=(count, *config.input_shape), dtype=np.uint8)
    return ClipSet(clips, None, f"{count} random clips")


def describe(clips: ClipSet) -> dict[str, Any]:
    return {"source": clips.source, "clips": len(clips), "labelled": clips.labels is not None}
