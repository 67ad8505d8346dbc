"""``Ring``: the last T rows of a stream as one contiguous window, without a copy per push."""

from __future__ import annotations

import numpy as np


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
