"""Does a clip model use frame order? Val top-1 on clips as they are, shuffled, and reversed.

A model that reads motion loses accuracy when a clip's frames are scrambled or run backwards; a
model that only recognises what is in the frames does not. ``train`` runs this check on the val
clips of every clip-mode run, records it in metrics.json and warns (``FrameOrderWarning``) when
the model looks order-blind. TensorFlow is not imported here: the model comes in (anything with
Keras' ``predict_on_batch``), and so do the batches.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np

from edge_rcnn.core.errors import DataError

# 5 points: an order-blind model scores the same on all three (up to a clip on a decision
# boundary), while a model that reads motion loses far more once motion is scrambled or reversed.
ORDER_MARGIN = 0.05


class FrameOrderWarning(UserWarning):
    """A clip model scores about as well on shuffled or reversed frames: it ignores frame order."""


@dataclass(frozen=True)
class TemporalCheck:
    """Top-1 over ``clips`` clips: as they are, frames shuffled (per clip), frames reversed."""

    top1: float
    shuffled_top1: float
    reversed_top1: float
    clips: int

    @property
    def uses_frame_order(self) -> bool:
        """False when the better of shuffled and reversed is within ``ORDER_MARGIN`` of ``top1``."""
        drop = self.top1 - max(self.shuffled_top1, self.reversed_top1)
        return round(drop, 9) > ORDER_MARGIN  # rounded: 0.90 - 0.85 is 0.05, not 0.05000000000000004

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "uses_frame_order": self.uses_frame_order}

    def summary(self) -> str:
        """One line: ``val top-1 98.4% | frames shuffled 31.2% | reversed 12.5%``."""
        return (f"val top-1 {self.top1:.1%} | frames shuffled {self.shuffled_top1:.1%} | "
                f"reversed {self.reversed_top1:.1%}")


@dataclass(frozen=True, eq=False)
class FrameOrderPredictions:
    """Labels and top-1 class indices per clip, for the three frame orders (same clip order)."""

    labels: np.ndarray
    normal: np.ndarray
    shuffled: np.ndarray
    reversed: np.ndarray

    def check(self) -> TemporalCheck:
        return TemporalCheck(*(float(np.mean(p == self.labels)) for p in (self.normal, self.shuffled, self.reversed)),
                             clips=len(self.labels))


def shuffle_frames(clips: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``clips [B, T, ...]`` with each clip's frames in its own random order, never the identity."""
    clips = np.asarray(clips)
    if clips.ndim < 2 or clips.shape[1] < 2:
        raise DataError(f"shuffle_frames: expected clips [B, T, ...] with T >= 2, got shape {clips.shape}")
    frames = clips.shape[1]
    identity = np.arange(frames)
    orders = np.empty(clips.shape[:2], np.intp)
    for i in range(len(clips)):
        order = rng.permutation(frames)
        while np.array_equal(order, identity):  # a shuffle that changes nothing would test nothing
            order = rng.permutation(frames)
        orders[i] = order
    return clips[np.arange(len(clips))[:, None], orders]


def predict_frame_orders(model, dataset: Iterable, seed: int = 0) -> FrameOrderPredictions:
    """Run ``model`` on each batch of ``dataset`` (``(clips [B, T, ...], labels [B])``, a tf.data
    set or numpy pairs) as it is, with frames shuffled by ``seed``, and with frames reversed."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"labels": [], "normal": [], "shuffled": [], "reversed": []}
    for x, y in dataset:
        x = np.asarray(x)
        parts["labels"].append(np.asarray(y).reshape(-1))
        parts["normal"].append(_top1(model, x))
        parts["shuffled"].append(_top1(model, shuffle_frames(x, rng)))
        parts["reversed"].append(_top1(model, np.ascontiguousarray(x[:, ::-1])))
    if not parts["labels"]:
        raise DataError("frame-order check: the dataset holds no clips")
    return FrameOrderPredictions(**{name: np.concatenate(arrays) for name, arrays in parts.items()})


def check_temporal(model, dataset: Iterable, seed: int = 0) -> TemporalCheck:
    """Top-1 of ``model`` on ``dataset``'s clips as they are, frames shuffled, frames reversed."""
    return predict_frame_orders(model, dataset, seed).check()


def warn_if_order_blind(check: TemporalCheck, stacklevel: int = 1) -> None:
    """One ``FrameOrderWarning`` when ``check`` says the model does not use frame order."""
    if check.uses_frame_order:
        return
    warnings.warn(
        f"the model does not use frame order: val top-1 {check.top1:.1%}, with frames shuffled "
        f"{check.shuffled_top1:.1%}, reversed {check.reversed_top1:.1%} (within {ORDER_MARGIN * 100:g} points); "
        "expected only if the labels do not depend on order, else it sees what is in the frames, not how they change",
        FrameOrderWarning, stacklevel=stacklevel + 1,
    )


def _top1(model, clips: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_on_batch(clips)).argmax(-1)
