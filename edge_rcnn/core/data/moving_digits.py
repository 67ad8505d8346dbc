"""The built-in dataset: real handwritten digits moving across the frame.

Each clip shows one of the 8x8 handwritten digits scikit-learn ships (``load_digits``: 1,797
scans, 16 grey levels), upscaled and moved across a dark, lightly noisy frame, partly entering
or leaving it at the ends (at most half the digit outside). The label is
``f"{digit}_{direction}"``: it depends on WHICH digit and HOW it moves, so neither one frame nor an
order-less bag of frames solves it; a CNN+RNN does. Train and val clips are drawn from disjoint
digit scans, so val accuracy measures generalisation to unseen handwriting.

Everything is deterministic from ``seed``: the same seed gives identical pixels.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from edge_rcnn.core._util import check_writable_folder, kill_point, replace_folder, write_json_atomic
from edge_rcnn.core._util import progress as progress_bar
from edge_rcnn.core.data.folder import read_dataset_json
from edge_rcnn.core.errors import ConfigError, DataError, choices_error

DIRECTIONS = ("right", "left", "down", "up")
SPLITS = ("train", "val")
DATASET_NAME = "moving-digits"
# Share of each digit's scans reserved for val clips. Fixed (not seeded), so clips generated with
# any seeds keep train and val handwriting disjoint.
VAL_SAMPLE_FRACTION = 0.3
_POOL_SEED = 20_240_601
_NOISE_LEVEL = 24  # background noise amplitude, in grey levels (0..255)
_JITTER_PX = 0.3  # per-frame position jitter (std, pixels)
_OUTSIDE = 0.5  # at most this share of the digit's side leaves the frame


@functools.lru_cache(maxsize=1)
def digit_scans() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits as float images in 0..1, and their digits."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the install
        raise DataError(
            "moving-digits: needs scikit-learn for its handwritten digits; pip install 'edge-rcnn[train]'"
        ) from None
    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def digit_samples(digit: int, split: str) -> np.ndarray:
    """Indices into ``sklearn.datasets.load_digits()`` of the scans ``split`` clips of ``digit`` use.

    The ``train`` and ``val`` pools of a digit are disjoint and fixed (independent of any seed).
    """
    if split not in SPLITS:
        raise choices_error("split", split, SPLITS)
    _, targets = digit_scans()
    indices = np.flatnonzero(targets == digit)
    indices = np.random.default_rng([_POOL_SEED, int(digit)]).permutation(indices)
    n_val = int(np.ceil(len(indices) * VAL_SAMPLE_FRACTION))
    return np.sort(indices[:n_val] if split == "val" else indices[n_val:])


def check_arguments(*, digits, directions, frames, size, channels) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Validate the generator's arguments; return ``(digits, directions)`` as tuples."""
    if isinstance(digits, (str, bytes)) or not isinstance(digits, Sequence) or not digits:
        raise ConfigError(f"digits: expected a non-empty list of digits 0..9, got {digits!r}")
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= 9 for d in digits):
        raise ConfigError(f"digits: expected integers in 0..9, got {list(digits)}")
    if len(set(digits)) != len(digits):
        raise ConfigError(f"digits: expected unique digits, got {list(digits)}")
    if isinstance(directions, str) or not isinstance(directions, Sequence) or not directions:
        raise ConfigError(f"directions: expected a non-empty list out of {list(DIRECTIONS)}, got {directions!r}")
    for direction in directions:
        if direction not in DIRECTIONS:
            raise choices_error("directions", direction, DIRECTIONS)
    if len(set(directions)) != len(directions):
        raise ConfigError(f"directions: expected unique directions, got {list(directions)}")
    if len(digits) * len(directions) < 2:
        raise ConfigError(
            f"digits x directions: expected at least 2 classes, got {len(digits)} x {len(directions)}"
        )
    _check_int("frames", frames, 2, 512)
    _check_int("size", size, 16, 1024)  # the digit is drawn at 8 * (size // 16) pixels
    if channels not in (1, 3):
        raise ConfigError(f"channels: expected 1 (grayscale) or 3 (colour), got {channels!r}")
    return tuple(int(d) for d in digits), tuple(directions)


def check_seed(seed) -> int:
    """``seed`` if it is an integer >= 0 (what NumPy's generators take), else ``ConfigError``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: expected an integer >= 0, got {seed!r}")
    return int(seed)


def _check_int(name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ConfigError(f"{name}: expected an integer in {low}..{high}, got {value!r}")


def render_clip(
    digit_image: np.ndarray, direction: str, rng: np.random.Generator, *, frames: int, size: int
) -> np.ndarray:
    """One grey clip ``uint8 (frames, size, size)``: ``digit_image`` (8x8 in [0, 1]) moving in ``direction``."""
    import cv2

    scale = size // 16
    side = 8 * scale
    digit = cv2.resize(digit_image, (side, side), interpolation=cv2.INTER_LINEAR) * 255.0
    digit *= rng.uniform(0.75, 1.0)  # ink brightness
    room = float(size - side)  # free travel across the motion, digit fully inside
    # Along the motion the digit enters and leaves the frame: up to _OUTSIDE of it is cut off at
    # either end. The cut-off views tell a per-frame CNN (global pooling, blind to position on a
    # dark background) where the digit is; only their ORDER tells the direction.
    low, high = -_OUTSIDE * side, size - (1.0 - _OUTSIDE) * side
    travel = rng.uniform(0.6, 1.0) * (high - low)
    start = rng.uniform(low, high - travel)
    along = start + travel * np.linspace(0.0, 1.0, frames)
    if direction in ("left", "up"):
        along = low + high - along
    across = np.full(frames, rng.uniform(0.0, room))
    along = np.clip(along + rng.normal(0.0, _JITTER_PX, frames), low, high)
    across = np.clip(across + rng.normal(0.0, _JITTER_PX, frames), 0.0, room)
    xs, ys = (along, across) if direction in ("right", "left") else (across, along)
    clip = np.empty((frames, size, size), np.uint8)
    for t in range(frames):
        shift = np.float32([[1, 0, xs[t]], [0, 1, ys[t]]])
        moved = cv2.warpAffine(digit, shift, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        noise = rng.uniform(0.0, _NOISE_LEVEL, (size, size)).astype(np.float32)
        clip[t] = np.clip(np.maximum(moved, noise), 0, 255).round().astype(np.uint8)
    return clip


def _iter_clips(n_per_class, digits, directions, frames, size, seed, split) -> Iterator[tuple[np.ndarray, int]]:
    images, _ = digit_scans()
    label = 0
    for digit in digits:
        pool = digit_samples(digit, split)
        for direction in directions:
            # One stream per (seed, split, class): adding a class leaves the others' pixels alone.
            rng = np.random.default_rng([int(seed), SPLITS.index(split), digit, DIRECTIONS.index(direction)])
            for _ in range(n_per_class):
                sample = images[rng.choice(pool)]
                yield render_clip(sample, direction, rng, frames=frames, size=size), label
            label += 1


def generate_moving_digits(
    n_per_class: int,
    *,
    digits: Sequence[int],
    directions: Sequence[str],
    frames: int,
    size: int,
    channels: int = 3,
    seed: int = 0,
    split: str = "train",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Clips in memory: ``(x uint8 [N, T, H, W, C], y int64 [N], labels)``, ``N = n_per_class * classes``.

    ``labels[y[i]]`` is ``f"{digit}_{direction}"``; labels are ordered digit-major.
    """
    digits, directions = check_arguments(
        digits=digits, directions=directions, frames=frames, size=size, channels=channels
    )
    _check_int("n_per_class", n_per_class, 1, 1_000_000)
    check_seed(seed)
    if split not in SPLITS:
        raise choices_error("split", split, SPLITS)
    labels = tuple(f"{d}_{m}" for d in digits for m in directions)
    x = np.empty((n_per_class * len(labels), frames, size, size, channels), np.uint8)
    y = np.empty(len(x), np.int64)
    for i, (clip, label) in enumerate(_iter_clips(n_per_class, digits, directions, frames, size, seed, split)):
        x[i], y[i] = clip[..., None], label
    return x, y, labels


def make_moving_digits(
    out_dir,
    *,
    digits: Sequence[int] = (0, 1, 2, 3),
    directions: Sequence[str] = DIRECTIONS,
    clips_per_class: int = 80,
    frames: int = 16,
    size: int = 32,
    channels: int = 3,
    val_fraction: float = 0.2,
    seed: int = 0,
    fps: int = 10,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write ``OUT/{train,val}/<label>/<n>.mp4`` and ``OUT/dataset.json``; return ``OUT``.

    ``clips_per_class`` is split into train and val by ``val_fraction`` (at least one of each).
    An existing non-empty ``OUT`` is refused unless ``overwrite`` is set and it holds an earlier
    moving-digits dataset and nothing else (then the folder is replaced whole, see ``write_dataset``).
    """
    digits, directions = check_arguments(
        digits=digits, directions=directions, frames=frames, size=size, channels=channels
    )
    if size % 2:  # MPEG-4 needs even sides; OpenCV would silently write size - 1
        raise ConfigError(f"size: expected an even number of pixels for .mp4 clips, got {size}")
    _check_int("clips_per_class", clips_per_class, 2, 1_000_000)
    check_seed(seed)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
        raise ConfigError(f"fps: expected a number in (0, 240], got {fps!r}")
    n_val = min(max(1, round(clips_per_class * val_fraction)), clips_per_class - 1)
    counts = {"train": clips_per_class - n_val, "val": n_val}
    labels = [f"{d}_{m}" for d in digits for m in directions]

    def clips(split):
        return ((clip[..., None], label) for clip, label in
                _iter_clips(counts[split], digits, directions, frames, size, seed, split))

    return write_dataset(out_dir, DATASET_NAME, labels, counts, clips, fps=fps, progress=progress,
                         overwrite=overwrite, meta={
        "frames": frames,
        "size": size,
        "channels": channels,
        "seed": seed,
        "digits": list(digits),
        "directions": list(directions),
        "clips_per_class": clips_per_class,
        "val_fraction": val_fraction,
        "flip_invariant": False,  # a flip turns "right" into "left" and mirrors the digit
        "flip_pairs": [],  # none: a mirrored digit is no longer that digit, so "0_right" cannot become "0_left"
        "source": "sklearn.datasets.load_digits (UCI optical handwritten digits, 8x8)",
    })


def write_dataset(out_dir, name: str, labels, counts: dict[str, int], clips, *, fps: float, progress: bool,
                  overwrite: bool, meta: dict) -> Path:
    """Write ``OUT/{train,val}/<label>/<n>.mp4`` from ``clips(split)`` and ``OUT/dataset.json``.

    ``clips(split)`` yields ``(uint8 clip (T, H, W, 1 or 3 RGB), label index)``, ``counts[split]``
    clips per label. The whole dataset is written into a hidden sibling, ``.OUT.NAME-XXXXXXXX.tmp``,
    which then replaces OUT in one step (``replace_folder``): an interrupted or killed run leaves the
    old folder or the new one, never a mix. Siblings that killed runs left are removed at the start.
    """
    started = time.time()
    out = Path(out_dir)
    if out.is_symlink():  # replace the folder it points to, keep the link
        out = out.resolve()
    _prepare_out_dir(out, overwrite, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out, name, started)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.{name}-", suffix=".tmp", dir=out.parent))
    bar = progress_bar(total=len(labels) * sum(counts.values()), desc=name) if progress else None
    try:
        for split in SPLITS:
            for i, (clip, label) in enumerate(clips(split)):
                _write_mp4(staging / split / labels[label] / f"{i % counts[split]:04d}.mp4", clip, fps)
                if bar is not None:
                    bar.update(1)
                kill_point("data-clip")
        write_json_atomic(staging / "dataset.json", {
            "name": name, "labels": list(labels), "fps": fps,
            "counts": {split: n * len(labels) for split, n in counts.items()}, **meta,
        })
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; the dataset gets normal permissions
        kill_point("data-swap")
        replace_folder(staging, out)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_stale_staging(out: Path, name: str, older_than: float) -> None:
    """Delete what killed runs left: staging siblings of OUT, and the staging folders inside OUT
    that earlier versions made (``OUT/.NAME-XXXXXXXX``), when made before ``older_than``."""
    beside = re.compile(rf"^\.{re.escape(out.name)}\.({re.escape(name)}-|old-)[a-z0-9_]{{8}}(\.tmp)?$")
    inside = re.compile(rf"^\.{re.escape(name)}-[a-z0-9_]{{8}}$")
    candidates = [p for p in out.parent.iterdir() if beside.match(p.name)]
    if out.is_dir():
        candidates += [p for p in out.iterdir() if inside.match(p.name)]
    for path in candidates:
        if path.is_dir() and not path.is_symlink() and path.stat().st_mtime < older_than:
            shutil.rmtree(path, ignore_errors=True)


# What a dataset folder holds; --overwrite replaces the folder whole, so anything else would be lost.
_DATASET_ENTRIES = frozenset({*SPLITS, "dataset.json"})


def _prepare_out_dir(out: Path, overwrite: bool, name: str) -> None:
    """Refuse an OUT that is not ours to replace, before anything is written."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: expected a folder for the {name} dataset, found a file")
    check_writable_folder(out, "out")
    if not out.exists():
        return
    try:  # the new folder is made beside OUT and swapped in
        check_writable_folder(out.parent, "out")
    except ConfigError:
        raise ConfigError(f"out {out}: cannot replace it, its parent folder {out.parent} is not writable") from None
    leftover = re.compile(rf"^\.{re.escape(name)}-[a-z0-9_]{{8}}$")  # staging of earlier versions
    entries = sorted(p.name for p in out.iterdir() if not leftover.match(p.name))
    if not entries:
        return
    if not overwrite:
        raise DataError(f"{out}: folder is not empty; choose a new folder or pass overwrite=True (--overwrite)")

    if read_dataset_json(out).get("name") != name:
        raise DataError(f"{out}: not a {name} folder (no dataset.json naming it); refusing to overwrite")
    foreign = [entry for entry in entries if entry not in _DATASET_ENTRIES]
    if foreign:
        raise DataError(f"{out}: also holds {', '.join(foreign)}, which is not part of the {name} dataset; "
                        "overwriting replaces the whole folder, so move it out first")


def _write_mp4(path: Path, clip: np.ndarray, fps: float) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    frames, height, width, channels = clip.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height), True)
    if not writer.isOpened():
        raise DataError(f"{path}: OpenCV cannot write an mp4v video here (is opencv built with FFmpeg?)")
    try:
        for frame in clip:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
