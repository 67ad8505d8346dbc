"""Class probabilities -> typed results (the shape of pycoral's ``adapters/classify.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from runtimes.base import TensorInfo, dequantize_array
from runtimes.errors import ModelOutputError

SMALL_CLASS_COUNT = 64  # up to this many classes a Python sort of one list beats numpy's call overhead


@dataclass(frozen=True)
class Class:
    """One class: its index in the output, its name and its probability."""

    id: int
    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """The result of one clip: the top class, the ``topk`` best, and every probability."""

    label: str
    score: float
    index: int
    topk: tuple[Class, ...]
    probs: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict:
        return {
            "label": self.label, "score": self.score, "index": self.index,
            "topk": [{"id": c.id, "label": c.label, "score": c.score} for c in self.topk],
            "probs": [float(p) for p in self.probs],
        }


def get_scores(output: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """A raw output tensor -> float32 scores, dequantized with the tensor's scale and zero point."""
    return dequantize_array(output, tensor) if tensor.quantized else np.asarray(output, dtype=np.float32)


def top_indices(scores: np.ndarray, k: int, values: list[float] | None = None) -> list[int]:
    """Indices of the ``k`` best ``scores`` (1-D, no NaN), best first, ties to the lower id: the
    order of ``np.argsort(-scores, kind="stable")[:k]``. A video model has few classes: one Python
    sort of ``values`` (``scores.tolist()``, passed when the caller has it); many classes take an
    exact ``np.partition``."""
    n = len(scores)
    if n <= SMALL_CLASS_COUNT or k >= n:
        values = scores.tolist() if values is None else values
        return sorted(range(n), key=values.__getitem__, reverse=True)[:k]  # reverse keeps ties in id order
    kth = np.partition(scores, n - k)[n - k]  # the k-th best value: all above it are in, ties at it sorted below
    candidates = np.flatnonzero(scores >= kth)
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k].tolist()


def get_classes(scores: np.ndarray, labels: Sequence[str], top_k: int = 5, threshold: float = -np.inf) -> tuple[Class, ...]:
    """The ``top_k`` classes with a score at or above ``threshold``, best first (ties: lower id)."""
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    values = scores.tolist()
    return tuple(Class(i, str(labels[i]), values[i]) for i in top_indices(scores, max(int(top_k), 0), values)
                 if values[i] >= threshold)


def make_prediction(probs: np.ndarray, labels: Sequence[str], top_k: int = 5, *,
                    source: str | os.PathLike | None = None) -> Prediction:
    """The ``Prediction`` for one score vector (kept read-only as ``probs``). Scores that are NaN
    or infinite rank nothing: a ``ModelOutputError`` naming ``source`` (the model file) instead of
    a made-up answer."""
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    if len(probs) != len(labels) or not np.isfinite(probs).all():
        bad = int(np.count_nonzero(~np.isfinite(probs)))
        what = (f"{bad} of its {len(probs)} scores are NaN or infinite" if bad
                else f"{len(probs)} scores for {len(labels)} labels")
        raise ModelOutputError(f"{source or 'the model'}: {what}; the file is damaged or the model "
                               "overflows on this input")
    top = get_classes(probs, labels, top_k=max(int(top_k), 1))
    best = top[0]
    probs.setflags(write=False)
    return Prediction(label=best.label, score=best.score, index=best.id, topk=top, probs=probs)
