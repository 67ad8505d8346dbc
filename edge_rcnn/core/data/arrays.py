"""A split of a data folder decoded into memory: ``load_arrays`` (evaluation, calibration, tests)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edge_rcnn.core._util import progress as progress_bar
from edge_rcnn.core.config import ModelConfig
from edge_rcnn.core.data.clips import ClipError, ClipRef, DataWarning, read_sample
from edge_rcnn.core.data.folder import SPLIT_CHOICES, DatasetIndex, scan_folder
from edge_rcnn.core.errors import DataError, choices_error


def load_arrays(
    source, config: ModelConfig, *, split: str = "val", limit: int | None = None, seed: int = 0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a split ("train", "val" or "all") into ``(x uint8 [N, *config.input_shape], y int64 [N])``.

    ``source`` is a data folder or a :class:`DatasetIndex`; ``y`` indexes ``config.labels``.
    ``limit`` keeps a seeded subsample with each class in proportion. Clips that fail to decode
    are skipped with a warning; clips of another frame size are resized, with a note.
    """
    if split not in SPLIT_CHOICES:
        raise choices_error("split", split, SPLIT_CHOICES)
    index = source if isinstance(source, DatasetIndex) else scan_folder(
        source, frames=config.frames, mode=config.mode, seed=seed)
    unknown = sorted(set(index.labels) - set(config.labels))
    if unknown:
        raise DataError(f"{index.root}: labels {unknown} are not among the model's labels {list(config.labels)}")
    refs = index.refs(split)
    if not refs:
        raise DataError(f"{index.root}: no {split} clips; expected some under {index.root}/<label>/")
    if limit is not None:
        refs = subsample(refs, limit, seed)
    x = np.empty((len(refs), *config.input_shape), np.uint8)
    y = np.empty(len(refs), np.int64)
    failed: list[ClipError] = []
    other_sizes: set[tuple[int, int]] = set()
    bar = progress_bar(total=len(refs), desc=f"load {split}") if progress else None
    n = 0
    for ref in refs:
        try:
            x[n], source_size = read_sample(ref, config)
        except ClipError as exc:
            failed.append(exc)
        else:
            y[n] = config.labels.index(ref.label)
            n += 1
            if source_size != config.input_size:
                other_sizes.add(source_size)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    _warn(index.root, split, failed, other_sizes, config)
    if n == 0:
        raise DataError(f"{index.root}: none of the {len(refs)} {split} clips decodes (first: {failed[0]})")
    return x[:n], y[:n]


def subsample(refs: tuple[ClipRef, ...], limit: int, seed: int = 0) -> tuple[ClipRef, ...]:
    """A seeded subsample of ``limit`` refs, each class kept in proportion (largest remainder)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"limit: expected a positive integer, got {limit!r}")
    if limit >= len(refs):
        return refs
    labels = sorted({r.label for r in refs})
    members = {label: [i for i, r in enumerate(refs) if r.label == label] for label in labels}
    quota = {label: limit * len(members[label]) / len(refs) for label in labels}
    counts = {label: int(q) for label, q in quota.items()}
    for label in sorted(labels, key=lambda k: counts[k] - quota[k])[: limit - sum(counts.values())]:
        counts[label] += 1
    rng = np.random.default_rng(seed)
    keep = [i for label in labels for i in rng.permutation(members[label])[: counts[label]]]
    return tuple(refs[i] for i in sorted(keep))


def _warn(root: Path, split: str, failed, other_sizes, config: ModelConfig) -> None:
    if failed:
        warnings.warn(f"{root}: skipped {len(failed)} {split} clips that do not decode (first: {failed[0]})",
                      DataWarning, stacklevel=3)
    if other_sizes:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(other_sizes))
        height, width = config.input_size
        warnings.warn(f"{root}: clips of another size ({listed}) resized to {width}x{height} (cv2.INTER_AREA)",
                      DataWarning, stacklevel=3)
