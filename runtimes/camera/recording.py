"""What the camera loop writes: an annotated video (atomically) and events as JSON lines."""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path

import numpy as np

from runtimes.camera.events import Event
from runtimes.decode import import_cv2
from runtimes.errors import InputError

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
MIN_WIDTH = 320  # smaller frames are scaled up (whole pixels) so the text stays readable


class AnnotatedVideo:
    """Frames with the label, score and FPS drawn on them, written to a temporary file beside
    ``path`` and renamed over it by ``close()`` -- never a half-written video under the final name.

    The container (MP4's sample tables, AVI's index) keeps an entry per frame in memory until
    ``close()`` writes it, so memory grows slowly with the length of one recording; a service
    that records for days should record in segments (benchmarks/results/reliability-*).
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC:
            raise InputError(f"--save {self.path}: unknown video type; expected one of: {', '.join(FOURCC)}")
        if not self.path.parent.is_dir():
            raise InputError(f"--save {self.path}: no such folder {self.path.parent}")
        self.fps, self.cv2 = fps, import_cv2()
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}{self.path.suffix}")
        remove_dead_writers_temps(self.path)
        self.writer = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray, color: str, text: str, fps: float) -> None:
        cv2 = self.cv2
        frame = np.asarray(image)
        if frame.dtype != np.uint8:  # float pixels in 0..255 (the stream accepts them too)
            frame = np.clip(frame, 0, 255).astype(np.uint8)
        if frame.ndim == 2 or frame.shape[2] == 1:
            frame = cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
        elif color != "bgr":
            frame = np.ascontiguousarray(frame[:, :, ::-1])
        if self.writer is None:
            scale = max(1, -(-MIN_WIDTH // frame.shape[1]))
            self.size = (frame.shape[1] * scale, frame.shape[0] * scale)
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()]),
                                          self.fps, self.size)
            if not self.writer.isOpened():
                raise InputError(f"--save {self.path}: OpenCV cannot write this video type here")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_NEAREST)
        else:
            frame = frame.copy()
        scale = max(0.4, self.size[0] / 640)
        thick = max(1, round(scale * 1.5))
        for row, line in enumerate((text, f"{fps:.1f} FPS")):
            y = int((row + 1) * 24 * scale) + 2
            cv2.putText(frame, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
            cv2.putText(frame, line, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (80, 255, 80), thick, cv2.LINE_AA)
        self.writer.write(frame)
        self.frames += 1

    def close(self, keep: bool = True) -> Path | None:
        """Finish the file and rename it into place (``keep=False``: delete it). The path, or None."""
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if keep and self.frames and self.tmp.is_file():
            os.replace(self.tmp, self.path)
            return self.path
        self.tmp.unlink(missing_ok=True)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def remove_dead_writers_temps(path: Path) -> list[Path]:
    """Delete the temporary videos of ``path`` whose writer is gone (a ``kill -9`` skips
    ``close``); a live writer's file, another recording of the same name, is kept."""
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.tmp(\d+){re.escape(path.suffix)}$")
    removed = []
    for entry in path.parent.glob(f".{glob.escape(path.stem)}.tmp*{glob.escape(path.suffix)}"):
        match = pattern.match(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


class EventLog:
    """Events appended as JSON lines, one ``write`` per line and flushed, so ``tail -f`` follows a
    live camera and an interrupted run leaves only whole lines.

    A file that cannot take what is written (a full disk, ``/dev/full``) is an ``InputError``
    naming it: at once when a probe byte cannot be written to a regular file, else at the first
    event; the loop then stops with its files finished, not with an ``OSError`` from a flush.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.failed = False
        try:
            self.file = open(self.path, "w", encoding="utf-8")
            if self.path.is_file():  # a regular file: find a full disk now, not at the first event
                self.file.write("\n")
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.seek(0)
                self.file.truncate()
        except OSError as exc:
            self._fail(exc)
        self.count = 0

    def _fail(self, exc: OSError):
        self.failed = True
        file = getattr(self, "file", None)
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # the buffered bytes that failed once fail again; the error below says it
        raise InputError(f"--events {self.path}: cannot write it ({exc.strerror or exc})") from None

    def write(self, events: tuple[Event, ...] | list[Event]) -> None:
        if self.failed or not events:
            return
        try:
            for event in events:
                self.file.write(json.dumps(event.to_dict()) + "\n")
                self.count += 1
            self.file.flush()
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self.failed:
            return
        try:
            self.file.close()
        except OSError as exc:
            self._fail(exc)
