"""The camera loop: a source -> a stream -> per-frame results, events, and optionally files.

``run(predictor, source)`` yields one ``FrameResult`` per frame;
``run_camera`` drives it for the CLI (``edge-rcnn run``): annotated video, events file, a
progress line, Ctrl-C as a clean stop, and a ``RunSummary``. Everything it holds is bounded
(the stream's rings, a 30-entry FPS window), so memory stays flat on a stream of any length.
"""

from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Iterator

from runtimes.camera.events import Event, EventDetector
from runtimes.camera.recording import AnnotatedVideo, EventLog
from runtimes.camera.sources import Frame, Reconnect, open_source
from runtimes.classify import Prediction
from runtimes.errors import InputError, SourceError


@dataclass(frozen=True)
class FrameResult:
    """One frame of the loop: the frame, the prediction made on it (``None`` on frames where the
    head did not run), the latest prediction, the events it caused and the current FPS."""

    frame: Frame
    prediction: Prediction | None
    latest: Prediction | None
    events: tuple[Event, ...]
    fps: float


@dataclass(frozen=True)
class RunSummary:
    source: str
    frames: int
    predictions: int
    events: int
    dropped: int
    reconnects: int
    seconds: float
    fps: float
    interrupted: bool = False
    saved: str | None = None
    events_file: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        stop = " (interrupted)" if self.interrupted else ""
        return (f"{self.source}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS), "
                f"{self.predictions} predictions, {self.events} events, {self.dropped} dropped frames, "
                f"{self.reconnects} reconnects{stop}")


class CameraRun:
    """``for result in run: ...``; counters are readable during and after the loop (``summary()``)."""

    def __init__(self, predictor, source, *, every: int = 1, smoothing: float = 0.0, topk: int = 5,
                 threshold: float = 0.8, release: float | None = None, hold: int = 3, max_frames: int | None = None,
                 color: str = "rgb", reconnect: Reconnect | None = None, open_capture=None):
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
            raise InputError(f"max_frames: expected a positive integer, got {max_frames!r}")
        self.detector = EventDetector(threshold, release=release, hold=hold)
        self.stream = predictor.stream(every=every, smoothing=smoothing, topk=topk)
        self.source = open_source(source, color=color, reconnect=reconnect, open_capture=open_capture)
        self.max_frames = max_frames
        self.frames = self.predictions = self.event_count = 0
        self.final_events: tuple[Event, ...] = ()  # the END of an event still on when the loop stopped
        self.last_frame: Frame | None = None
        self.started = self._stopped = None
        self._times: collections.deque[float] = collections.deque(maxlen=30)

    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] == self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])

    def __iter__(self) -> Iterator[FrameResult]:
        self.started = time.perf_counter()
        try:
            for frame in self.source:
                prediction = self.stream.push(frame.image, frame.color)
                events: tuple[Event, ...] = ()
                if prediction is not None:
                    self.predictions += 1
                    events = self.detector.update(prediction, frame.index, frame.time)
                    self.event_count += len(events)
                self.frames += 1
                self._times.append(time.perf_counter())
                self.last_frame = frame
                yield FrameResult(frame, prediction, self.stream.last, events, self.fps())
                if self.max_frames is not None and self.frames >= self.max_frames:
                    break
            self.finish()
        finally:
            self._stopped = time.perf_counter()
            self.source.close()

    def finish(self) -> tuple[Event, ...]:
        """End the event still on (once); called when the source ends, or by whoever stops the loop."""
        if self.last_frame is not None and not self.final_events:
            self.final_events = self.detector.finish(self.last_frame.index, self.last_frame.time)
            self.event_count += len(self.final_events)
        return self.final_events

    def summary(self, **extra) -> RunSummary:
        end = self._stopped or time.perf_counter()
        seconds = end - self.started if self.started else 0.0
        return RunSummary(
            source=self.source.name, frames=self.frames, predictions=self.predictions, events=self.event_count,
            dropped=self.source.dropped, reconnects=self.source.reconnects, seconds=seconds,
            fps=self.frames / seconds if seconds > 0 else 0.0, **extra,
        )


def run(predictor, source, **options) -> CameraRun:
    """The camera loop over ``source`` (camera index, /dev/video*, URL, video, frame folder, or
    frames) with ``predictor``: an iterable of ``FrameResult``, one per frame (options: ``CameraRun``)."""
    return CameraRun(predictor, source, **options)


def _label(result: FrameResult) -> str:
    latest = result.latest
    return f"{latest.label} {latest.score:.2f}" if latest is not None else "..."


class _StopBetweenFrames:
    """Ctrl-C and SIGTERM, taken between frames instead of inside one.

    The handlers that raise (Python's KeyboardInterrupt for SIGINT, the CLI's ``Terminated`` for
    SIGTERM) would otherwise stop the loop between counting a frame and writing it, so the saved
    video would hold one frame less than the summary counts. Within the loop a signal is only
    recorded; ``check()`` after each whole frame calls the handler it replaced, and a reconnect's
    backoff (``around``) ends early to take it. Only in the main
    thread (where signal handlers live), and only for handlers that are Python callables: a
    process left with the default SIGTERM action is stopped by the system as before.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.pending: int | None = None
        self.replaced: dict[int, object] = {}
        self._asked = threading.Event()

    def __enter__(self) -> "_StopBetweenFrames":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    self.replaced[sig] = handler
                    signal.signal(sig, self._record)
        return self

    def _record(self, signum, frame) -> None:
        if self.pending is None:
            self.pending = signum
        self._asked.set()

    def around(self, sleep):
        """A reconnect's backoff ``sleep``: ``time.sleep`` becomes a wait that a stop asked for
        ends early; any other (a test's) is called as it is; the stop is taken after either."""
        def wait(seconds: float) -> None:
            self._asked.wait(seconds) if sleep is time.sleep else sleep(seconds)
            self.check()

        return wait

    def check(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            handler = self._restore().get(signum)
            handler(signum, None)  # raises KeyboardInterrupt / Terminated

    def _restore(self) -> dict[int, object]:
        replaced, self.replaced = self.replaced, {}
        for sig, handler in replaced.items():
            signal.signal(sig, handler)
        return replaced

    def __exit__(self, *exc) -> None:
        self._restore()


def run_camera(predictor, source, *, save=None, events=None, progress: bool = False, on_events=None,
               **options) -> RunSummary:
    """The whole camera loop: ``save`` an annotated video, append ``events`` as JSON lines, show a
    progress line on stderr, pass each frame's events to ``on_events(events)``. Ctrl-C stops it cleanly
    (``interrupted`` in the summary); a live source lost for good raises ``SourceError`` after the
    files are finished (``error.summary``). Options: ``CameraRun``."""
    stop = _StopBetweenFrames()
    reconnect = options.get("reconnect") or Reconnect()
    options["reconnect"] = replace(reconnect, sleep=stop.around(reconnect.sleep))
    camera_run = run(predictor, source, **options)
    try:
        video = AnnotatedVideo(save, camera_run.source.fps) if save else None
        log = EventLog(events) if events else None
    except BaseException:
        camera_run.source.close()
        raise
    interrupted, failure, shown, done = False, None, 0.0, False
    iterator = iter(camera_run)
    try:
        stop.__enter__()
        for result in iterator:
            if on_events is not None and result.events:
                on_events(result.events)
            if log is not None:
                log.write(result.events)
            if video is not None:
                video.write(result.frame.image, result.frame.color, _label(result), result.fps)
            if progress and time.perf_counter() - shown > 0.5:
                shown = time.perf_counter()
                sys.stderr.write(f"\r{camera_run.frames} frames  {result.fps:6.1f} FPS  {_label(result):<24}  "
                                 f"events {camera_run.event_count}  dropped {camera_run.source.dropped}")
                sys.stderr.flush()
            stop.check()  # a stop asked for during this frame: now, with the frame written
        stop.check()
        done = True
    except KeyboardInterrupt:
        interrupted = done = True
    except SourceError as exc:
        failure, done = exc, True
    finally:
        stop.__exit__()
        iterator.close()
        if progress and shown:
            sys.stderr.write("\n")
        final = camera_run.finish() if done else ()
        if on_events is not None and final:
            on_events(final)
        if log is not None:
            log.write(final)
            log.close()
        saved = video.close(keep=done) if video is not None else None
    summary = camera_run.summary(interrupted=interrupted, saved=str(saved) if saved else None,
                          events_file=str(log.path) if log else None)
    if failure is not None:
        failure.summary = summary
        raise failure
    return summary
