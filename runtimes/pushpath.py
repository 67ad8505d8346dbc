"""What one streaming push does besides the two model calls, each step made cheap.

A push of the standard model costs about 10 us in the encoder and 20 us in the head; the rest
used to be as much again in numpy and Python per frame. The pieces here keep it small:

- ``Ring``: the last T rows as one contiguous window, with the batched ``(1, T, ...)`` views
  made once (no slicing or new arrays per push);
- ``byte_table``: an 8-bit tensor's 256 possible values mapped through ``dequantize`` (and
  ``quantize`` for the next tensor) once, so a push does one ``np.take`` instead of half a
  dozen array passes -- bit-identical to applying the formulas, since the tables are made with
  them;
- ``fast_prediction``: the same ``Prediction`` as ``classify.make_prediction`` (same top-k
  order, ties to the lower id, same float values) from one ``tolist`` and a Python sort for
  the few classes a video model has; many classes take an exact ``np.partition`` path.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from runtimes.base import TensorInfo, dequantize, quantize
from runtimes.classify import Class, Prediction, make_prediction

SMALL_CLASS_COUNT = 64  # up to this many classes a Python sort of one list beats numpy's call overhead


class Ring:
    """The last ``size`` rows, oldest first, as one contiguous view: each row is stored twice
    (at ``i`` and ``i + size``), so the window is always ``data[pos + 1 : pos + 1 + size]``."""

    def __init__(self, size: int, row_shape: tuple[int, ...], dtype):
        self.size = size
        self.data = np.zeros((2 * size, *row_shape), dtype=dtype)
        self.pos = size - 1
        # Views made once: the two slots of each position and the (1, size, ...) window after it.
        self._slots = [(self.data[p], self.data[p + size]) for p in range(size)]
        self._batches = [self.data[None, p + 1 : p + 1 + size] for p in range(size)]

    def next_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Advance and return the two slots of the new newest row (write the same values to both)."""
        self.pos = pos = (self.pos + 1) % self.size
        return self._slots[pos]

    def append(self, row: np.ndarray) -> None:
        first, second = self.next_rows()
        first[...] = row
        second[...] = first

    def window(self) -> np.ndarray:
        """``(size, ...)``: the last ``size`` rows, oldest first (a view: copy it to keep it)."""
        return self._batches[self.pos][0]

    def batch(self) -> np.ndarray:
        """``(1, size, ...)``: the window as a batch of one, ready for a model (a view)."""
        return self._batches[self.pos]


def byte_values(dtype: str) -> np.ndarray:
    """Every value of an 8-bit integer type, in the order of its bytes read as uint8."""
    return np.arange(256, dtype=np.uint8).view(dtype)


def is_byte_tensor(tensor: TensorInfo) -> bool:
    return tensor.quantized and np.dtype(tensor.dtype).itemsize == 1


def byte_table(source: TensorInfo, target: TensorInfo | None = None) -> np.ndarray:
    """256 entries: a ``source`` value (its byte read as uint8) -> float32, or -> ``target``'s
    quantized value when ``target`` is an integer tensor (``quantize(dequantize(v))``)."""
    floats = dequantize(byte_values(source.dtype), source)
    return quantize(floats, target) if target is not None and target.quantized else floats


def look_up(table: np.ndarray, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table`` at every value of the 8-bit array ``raw`` (flattened), into ``out`` if given."""
    return table.take(raw.reshape(-1).view(np.uint8), out=out, mode="clip")  # clip: no buffered copy of out


def top_indices(scores: list[float], probs: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best of ``scores`` (``probs.tolist()``, no NaN), best first, ties to the
    lower id: the order of ``np.argsort(-probs, kind="stable")[:k]``."""
    n = len(scores)
    if n <= SMALL_CLASS_COUNT or k >= n:
        return sorted(range(n), key=scores.__getitem__, reverse=True)[:k]  # reverse keeps ties in id order
    kth = np.partition(probs, n - k)[n - k]  # the k-th best value: all above it are in, ties at it sorted below
    candidates = np.flatnonzero(probs >= kth)
    return candidates[np.argsort(-probs[candidates], kind="stable")][:k].tolist()


def fast_prediction(probs: np.ndarray, labels: Sequence[str], top_k: int, source=None) -> Prediction:
    """``classify.make_prediction(probs, labels, top_k, source=source)`` for a fresh float32 1-D
    ``probs`` (made read-only) and ``labels`` already strings."""
    scores = probs.tolist()
    total = sum(scores)
    if not abs(total) < np.inf:  # NaN or infinity somewhere: make_prediction raises ModelOutputError
        return make_prediction(probs, labels, top_k, source=source)
    top = tuple([Class(i, labels[i], scores[i]) for i in top_indices(scores, probs, top_k)])
    best = top[0]
    probs.setflags(write=False)
    return Prediction(label=best.label, score=best.score, index=best.id, topk=top, probs=probs)
