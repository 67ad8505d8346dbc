"""A data folder: one sub-folder per class, scanned into a :class:`DatasetIndex`.

Layout (``clip`` mode)::

    DATA/<label>/*.mp4|avi|mov|mkv          videos, decoded with OpenCV
    DATA/<label>/<clip>/*.png|jpg|...       frame folders, frames sorted by name (runtimes.decode.frame_files)

In ``image`` mode: ``DATA/<label>/*.png|jpg|...``. ``DATA/train`` and ``DATA/val`` are used when
``DATA/train`` exists, else a seeded stratified split. Hidden files and folders and
``dataset.json`` are ignored; ``dataset.json`` may set the label order, ``flip_invariant`` (true:
every label survives a horizontal mirror) and ``flip_pairs`` (``[["left", "right"], ...]``: the
label a mirror turns each into). Without either, training does not mirror clips.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_rcnn.core.config import InputMode, ModelConfig, parse_enum
from edge_rcnn.core.data.clips import (  # noqa: F401  (re-exported: the folder API in one place)
    CLIP_LAYOUT,
    IMAGE_PATTERN,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    ClipError,
    ClipKind,
    ClipRef,
    DataWarning,
    read_clip,
    read_image,
)
from edge_rcnn.core.data.pipeline import FlipPairs, check_flip_pairs
from edge_rcnn.core.data.probe import probe_clip
from edge_rcnn.core.errors import DataError, choices_error

SPLIT_CHOICES = ("train", "val", "all")


@dataclass(frozen=True)
class DatasetIndex:
    """The usable samples of a data folder, split into train and val, and what was skipped."""

    root: Path
    labels: tuple[str, ...]
    train: tuple[ClipRef, ...]
    val: tuple[ClipRef, ...]
    skipped: tuple[tuple[Path, str], ...]
    flip_invariant: bool  # dataset.json says a mirrored clip keeps its label (false without one)
    flip_pairs: FlipPairs = ()  # dataset.json's pairs of labels that a mirror swaps

    def refs(self, split: str) -> tuple[ClipRef, ...]:
        """The samples of ``split``: "train", "val" or "all"."""
        if split not in SPLIT_CHOICES:
            raise choices_error("split", split, SPLIT_CHOICES)
        return {"train": self.train, "val": self.val, "all": self.train + self.val}[split]


def read_dataset_json(root) -> dict:
    """``root/dataset.json`` as a dict ({} when absent)."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: expected a JSON object describing the dataset ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object describing the dataset, got {type(data).__name__}")
    return data


def scan_folder(root, *, frames: int, mode="clip", val_fraction: float = 0.2, seed: int = 0) -> DatasetIndex:
    """Find and probe every sample under ``root``; skip unusable ones (with a warning).

    Raises ``DataError`` naming the path for a missing or empty folder, a class folder without
    usable clips, a single class, or frame folders whose images differ in size.
    """
    root = Path(root)
    mode = parse_enum(InputMode, mode, "mode")
    if mode is InputMode.CLIP and (isinstance(frames, bool) or not isinstance(frames, (int, np.integer))
                                   or frames < 1):
        raise DataError(f"frames: expected a positive integer, got {frames!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise DataError(f"val_fraction: expected a number in [0, 1), got {val_fraction!r}")
    if not root.exists():
        raise DataError(f"{root}: data folder not found; expected DATA/<label>/ with {CLIP_LAYOUT}")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected DATA/<label>/ with {CLIP_LAYOUT}")
    need = frames if mode is InputMode.CLIP else 1
    skipped: list[tuple[Path, str]] = []
    if (root / "train").is_dir():
        train = _scan_split(root / "train", mode, need, skipped)
        val = _scan_split(root / "val", mode, need, skipped) if (root / "val").is_dir() else {}
        extra = sorted(set(val) - set(train))
        if extra:
            raise DataError(f"{root / 'val'}: classes {extra} are not in {root / 'train'} ({sorted(train)})")
        if not val:
            train, val = _split(train, val_fraction, seed)
    else:
        train, val = _split(_scan_split(root, mode, need, skipped), val_fraction, seed)
    if len(train) < 2:
        folder = root / "train" if (root / "train").is_dir() else root
        raise DataError(f"{folder}: only one class ({next(iter(train))!r}); expected at least 2 class folders")
    meta = read_dataset_json(root)
    labels = sorted(train)
    flip_invariant = meta.get("flip_invariant", False)
    if not isinstance(flip_invariant, bool):
        raise DataError(f"{root / 'dataset.json'}: flip_invariant: expected true or false, got {flip_invariant!r}")
    flip_pairs = check_flip_pairs(meta.get("flip_pairs", []), labels, source=f"{root / 'dataset.json'}: flip_pairs",
                                  error=DataError)
    if sorted(meta.get("labels") or []) == labels:
        labels = list(meta["labels"])  # keep the generator's order (e.g. digit-major)
    if skipped:
        counts = Counter(reason.split(" (")[0] for _, reason in skipped)  # "too short (4 frames...)"
        reasons = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
        warnings.warn(f"{root}: skipped {len(skipped)} unusable samples ({reasons}); see DatasetIndex.skipped",
                      DataWarning, stacklevel=2)
    return DatasetIndex(
        root=root, labels=tuple(labels),
        train=tuple(r for label in labels for r in train[label]),
        val=tuple(r for label in labels for r in val.get(label, ())),
        skipped=tuple(skipped), flip_invariant=flip_invariant, flip_pairs=flip_pairs,
    )


def _scan_split(folder: Path, mode: InputMode, need: int, skipped: list) -> dict[str, list[ClipRef]]:
    """``{label: usable refs}`` for the class folders under ``folder``."""
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{folder}: no class folders; expected {folder}/<label>/ with {_layout(mode)}")
    candidates = {d: _candidates(d, mode) for d in class_dirs}
    if not any(candidates.values()):
        raise DataError(f"{folder}: no clips in any class folder; expected {folder}/<label>/ with {_layout(mode)}")
    found = {}
    for class_dir, refs in candidates.items():
        if not refs:
            raise DataError(f"{class_dir}: no clips; expected {_layout(mode)}")
        usable, bad = [], Counter()
        for ref in refs:
            try:
                probe_clip(ref, need)
            except ClipError as exc:
                skipped.append((ref.path, str(exc).removeprefix(f"{ref.path}: ")))
                bad[exc.reason] += 1
            else:
                usable.append(ref)
        if not usable:
            why = ", ".join(f"{n} {reason}" for reason, n in bad.most_common())
            raise DataError(f"{class_dir}: no usable clips ({len(refs)} skipped: {why}); expected {_layout(mode)}"
                            + (f" with at least {need} frames" if mode is InputMode.CLIP else ""))
        found[class_dir.name] = usable
    return found


def _candidates(class_dir: Path, mode: InputMode) -> list[ClipRef]:
    label, refs = class_dir.name, []
    for entry in sorted(class_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        suffix = entry.suffix.lower()
        if mode is InputMode.IMAGE:
            if entry.is_file() and suffix in IMAGE_SUFFIXES:
                refs.append(ClipRef(entry, label, ClipKind.IMAGE.value))
        elif entry.is_dir():
            refs.append(ClipRef(entry, label, ClipKind.FRAMES.value))
        elif entry.is_file() and suffix in VIDEO_SUFFIXES:
            refs.append(ClipRef(entry, label, ClipKind.VIDEO.value))
    return refs


def _layout(mode: InputMode) -> str:
    return CLIP_LAYOUT if mode is InputMode.CLIP else f"images ({IMAGE_PATTERN})"


def _split(by_label: dict, val_fraction: float, seed: int) -> tuple[dict, dict]:
    """Seeded stratified split: about ``val_fraction`` of each class (>= 1 when it has 2+) to val."""
    rng = np.random.default_rng(seed)
    train, val = {}, {}
    for label in sorted(by_label):
        refs = by_label[label]
        n_val = round(len(refs) * val_fraction)
        if val_fraction > 0 and len(refs) >= 2:
            n_val = min(max(n_val, 1), len(refs) - 1)
        order = rng.permutation(len(refs))
        val[label] = sorted((refs[i] for i in order[:n_val]), key=lambda r: r.path)
        train[label] = sorted((refs[i] for i in order[n_val:]), key=lambda r: r.path)
    return train, val


def normalize(x_uint8: np.ndarray, config: ModelConfig) -> np.ndarray:
    """uint8 pixels -> float32 model inputs: ``(x / 255 - mean) / std`` per channel (last axis)."""
    mean, std = (np.asarray(v, np.float32) for v in config.mean_std)
    return ((np.asarray(x_uint8, np.float32) / 255.0 - mean) / std).astype(np.float32)
