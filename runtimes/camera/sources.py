"""Frame sources for the camera loop: cameras, streams, video files, frame folders, arrays.

``open_source(source)`` takes what a user types: a camera index (``0``), a device
(``/dev/video0``), a stream URL (``rtsp://``, ``http(s)://``, ...), a video file, a folder of
frame images, or any iterable of uint8 frames; it gives a ``FrameSource`` that yields ``Frame``
records. OpenCV is imported here, lazily. Files and folders end cleanly; a live source that
drops is reopened with exponential backoff (``Reconnect``) and the stream goes on; a frame that
fails to decode is skipped and counted (``dropped``). A source that cannot be opened at all is
one ``SourceError`` line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from runtimes.decode import IMAGE_SUFFIXES, frame_files, import_cv2, quiet_cv2
from runtimes.errors import SourceError

DEFAULT_FPS = 30.0  # frame folders and arrays have no clock: frame i is at i / 30 s
MAX_BAD_READS = 25  # failed reads in a row before a file is taken as ended (or a live source as dropped)


@dataclass(frozen=True)
class Frame:
    """One frame: its position in the stream, its time in seconds (media time for files and
    folders, wall-clock since the start for live sources), the image and its channel order."""

    index: int
    time: float
    image: np.ndarray
    color: str = "bgr"


@dataclass(frozen=True)
class Reconnect:
    """How a live source that drops is reopened: ``retries`` tries, waiting ``backoff`` seconds
    before the first and doubling up to ``max_backoff``; then the stream ends with a SourceError.
    ``sleep`` waits out each delay (a test passes one that records the delays instead)."""

    retries: int = 6
    backoff: float = 0.5
    max_backoff: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delays(self) -> Iterator[float]:
        for attempt in range(self.retries):
            yield min(self.backoff * 2**attempt, self.max_backoff)


class FrameSource:
    """An iterator of ``Frame``; ``dropped`` frames failed to decode, ``reconnects`` counts reopenings."""

    name: str
    live: bool = False
    fps: float = DEFAULT_FPS

    def __init__(self):
        self.dropped = 0
        self.reconnects = 0
        self._next_index = 0

    def _frames(self) -> Iterator[tuple[np.ndarray, str]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        for image, color in self._frames():
            index = self._next_index
            self._next_index += 1
            t = time.monotonic() - start if self.live else index / self.fps
            yield Frame(index, t, image, color)

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CaptureSource(FrameSource):
    """A camera, a stream or a video file through ``cv2.VideoCapture`` (or ``open_capture``)."""

    def __init__(self, target: int | str, name: str, live: bool, reconnect: Reconnect,
                 open_capture: Callable[[Any], Any] | None = None):
        super().__init__()
        self.target, self.name, self.live, self.reconnect = target, name, live, reconnect
        self._open = open_capture or _cv2_capture
        self.cap = self._open(target)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(_open_error(target, name, live))
        fps = float(self.cap.get(5) or 0.0)  # 5 is cv2.CAP_PROP_FPS (a fake capture needs no cv2)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        self._first = self._read_first() if not live else None

    def _read_first(self):
        for _ in range(MAX_BAD_READS):
            ok, image = self.cap.read()
            if ok and image is not None and image.size:
                return image
            self.dropped += 1
        self.close()
        raise SourceError(f"{self.name}: no decodable frames (empty or corrupt video)")

    def _frames(self) -> Iterator[tuple[np.ndarray, str]]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first, "bgr"
        bad = 0
        while True:
            ok, image = self.cap.read()
            if ok and image is not None and image.size:
                self.dropped += bad if not self.live else 0  # failures followed by a frame were skipped frames
                bad = 0
                yield image, "bgr"
                continue
            bad += 1
            if self.live:
                self.dropped += 1
                if bad >= 3:  # a few failed reads in a row: the source dropped, reopen it
                    self._reopen()
                    bad = 0
            elif bad >= MAX_BAD_READS:
                return  # the end of the file (a trailing failure is the end, not a dropped frame)

    def _reopen(self) -> None:
        self.cap.release()
        for delay in self.reconnect.delays():
            self.reconnect.sleep(delay)
            self.cap = self._open(self.target)
            if self.cap.isOpened():
                self.reconnects += 1
                return
            self.cap.release()
        raise SourceError(f"{self.name}: lost, and not back after {self.reconnect.retries} reconnection attempts")

    def close(self) -> None:
        self.cap.release()


class FolderSource(FrameSource):
    """Frame images of a folder in name order; an unreadable image is skipped and counted."""

    def __init__(self, folder: Path):
        super().__init__()
        self.name, self.cv2 = str(folder), import_cv2()
        self.files = frame_files(folder)
        if not self.files:
            raise SourceError(f"{folder}: no frame images ({', '.join(IMAGE_SUFFIXES)})")

    def _frames(self) -> Iterator[tuple[np.ndarray, str]]:
        for path in self.files:
            with quiet_cv2(self.cv2):
                image = self.cv2.imread(str(path), self.cv2.IMREAD_COLOR)
            if image is None:
                self.dropped += 1
                continue
            yield image, "bgr"
        if self.dropped == len(self.files):
            raise SourceError(f"{self.name}: none of its {len(self.files)} images could be read")


class ArraySource(FrameSource):
    """Frames the caller already has (a list, an array, a generator), RGB unless told otherwise."""

    def __init__(self, frames: Iterable[np.ndarray], color: str = "rgb", name: str = "frames"):
        super().__init__()
        self.frames, self.color, self.name = frames, color, name

    def _frames(self) -> Iterator[tuple[np.ndarray, str]]:
        for image in self.frames:
            yield image, self.color


def _cv2_capture(target):
    cv2 = import_cv2()
    with quiet_cv2(cv2):
        return cv2.VideoCapture(target)


def _open_error(target, name: str, live: bool) -> str:
    if isinstance(target, int) or name.startswith("/dev/"):
        found = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
        return f"camera {name}: cannot open it (no such camera, or busy); video devices here: {found}"
    if live:
        return f"{name}: cannot open the stream (unreachable, refused, or not a video stream)"
    return f"{name}: not a readable video"


def open_source(source, *, color: str = "rgb", reconnect: Reconnect | None = None,
                open_capture: Callable[[Any], Any] | None = None) -> FrameSource:
    """A ``FrameSource`` for a camera index, ``/dev/video*``, a URL, a video, a folder, or frames.

    ``color`` is the channel order of frames passed as arrays (files and cameras give BGR);
    ``open_capture`` replaces ``cv2.VideoCapture`` (tests, custom backends).
    """
    reconnect = reconnect or Reconnect()
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, bool):
        raise SourceError(f"source: expected a camera index, device, URL, video, folder or frames; got {source!r}")
    if isinstance(source, int) or (isinstance(source, str) and source.strip().isdigit()):
        index = int(source)
        return CaptureSource(index, str(index), True, reconnect, open_capture)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if "://" in text:
            return CaptureSource(text, text, True, reconnect, open_capture)
        if text.startswith("/dev/"):
            if not Path(text).exists():
                raise SourceError(_open_error(text, text, True))
            return CaptureSource(text, text, True, reconnect, open_capture)
        path = Path(text)
        if path.is_dir():
            return FolderSource(path)
        if not path.is_file():
            raise SourceError(f"{path}: no such video, frame folder, camera or stream")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise SourceError(f"{path}: one image; the camera loop reads videos, frame folders, cameras and streams")
        return CaptureSource(text, text, False, reconnect, open_capture)
    if isinstance(source, np.ndarray) and source.ndim not in (3, 4):
        raise SourceError(f"source: array of shape {list(source.shape)}; expected frames x height x width (x channels)")
    if hasattr(source, "__iter__"):
        return ArraySource(source, color)
    raise SourceError(f"source: expected a camera index, device, URL, video, folder or frames; got {type(source).__name__}")
