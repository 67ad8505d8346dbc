"""Events from a stream of predictions: a threshold with hysteresis, so a camera does not flicker.

A label starts an event after it has been the top class with ``score >= threshold`` on ``hold``
predictions in a row; the event ends on the first prediction where that label's score falls
below ``release`` (lower than ``threshold``). While an event is on, no other event starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from runtimes.classify import Prediction
from runtimes.errors import InputError


class EventKind(str, enum.Enum):
    START = "start"  # the label has been held long enough
    END = "end"  # its score fell below the release threshold (or the stream stopped)


@dataclass(frozen=True)
class Event:
    """One event: what happened, to which label, its score then, at which frame and time (seconds)."""

    kind: EventKind
    label: str
    score: float
    frame: int
    time: float

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind.value, "label": self.label, "score": round(self.score, 6),
                "frame": self.frame, "time": round(self.time, 6)}


class EventDetector:
    """``update(prediction, frame, time)`` -> the events that prediction causes (often none)."""

    def __init__(self, threshold: float = 0.8, *, release: float | None = None, hold: int = 3):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
            raise InputError(f"threshold: expected a score in (0, 1], got {threshold!r}")
        release = max(0.0, threshold - 0.2) if release is None else release
        if isinstance(release, bool) or not isinstance(release, (int, float)) or not 0 <= release <= threshold:
            raise InputError(f"release: expected a score in [0, threshold={threshold}], got {release!r}")
        if isinstance(hold, bool) or not isinstance(hold, int) or hold < 1:
            raise InputError(f"hold: expected a positive integer (predictions in a row), got {hold!r}")
        self.threshold, self.release, self.hold = float(threshold), float(release), hold
        self.reset()

    def reset(self) -> None:
        self.active: tuple[int, str] | None = None  # (class index, label) of the event that is on
        self._last_score = 0.0
        self._candidate: int | None = None
        self._count = 0

    def update(self, prediction: Prediction, frame: int, time: float) -> tuple[Event, ...]:
        events: list[Event] = []
        if self.active is not None:
            index, label = self.active
            score = float(prediction.probs[index])
            self._last_score = score
            if score >= self.release:
                return ()
            events.append(Event(EventKind.END, label, score, frame, time))
            self.active = None
        if prediction.score < self.threshold:
            self._candidate, self._count = None, 0
            return tuple(events)
        if prediction.index == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = prediction.index, 1
        if self._count >= self.hold:
            self.active = (prediction.index, prediction.label)
            self._last_score = prediction.score
            self._candidate, self._count = None, 0
            events.append(Event(EventKind.START, prediction.label, prediction.score, frame, time))
        return tuple(events)

    def finish(self, frame: int, time: float) -> tuple[Event, ...]:
        """End the event that is still on when the stream stops (none if none is on)."""
        if self.active is None:
            return ()
        event = Event(EventKind.END, self.active[1], self._last_score, frame, time)
        self.active = None
        return (event,)
