"""Frames from files: a video, a folder of frame images, or one image (OpenCV, imported here).

``read_frames(path, count)`` samples ``count`` frames uniformly over the whole video or folder
(first and last included) and returns them as uint8 RGB ``HxWx3`` arrays.

Training reads its clips with the same pieces (``frame_files``, ``decode_uniform``,
``sample_indices``): a model must see on the device the very frames it was trained on, so the
folder rule, the frame choice and the decoding live here once; each side only words its own
errors (a skipped training clip has a reason, a device source raises ``SourceError``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from runtimes.errors import SourceError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
INSTALL_HINT = "pip install opencv-python-headless"


def import_cv2():
    try:
        import cv2
    except ImportError:
        raise SourceError(f"reading videos and images needs OpenCV: {INSTALL_HINT}") from None
    return cv2


@contextlib.contextmanager
def quiet_cv2(cv2):
    """Within the block, FFmpeg and OpenCV print nothing of their own about a file or camera they
    cannot open ("moov atom not found", "can't read header"): our error says it, in one line.
    ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL`` set by the user still win."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when FFmpeg opens a file
    logging = cv2.utils.logging
    if "OPENCV_LOG_LEVEL" in os.environ:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def sample_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0..total-1``, first and last included."""
    return [int(i) for i in np.linspace(0, total - 1, count).round()]


def _read_image(cv2, path: Path) -> np.ndarray:
    with quiet_cv2(cv2):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _too_few(path: Path, total: int, count: int, what: str) -> SourceError:
    return SourceError(f"{path}: {total} {what}; the model takes {count} per clip")


def frame_files(folder: str | Path) -> list[Path]:
    """A frame folder's images in name order: files with an image suffix, hidden ones left out
    (macOS copies leave ``._0001.jpg`` beside ``0001.jpg``). Training, ``predict`` and the camera
    loop's folder source all list frames with this."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_folder(cv2, folder: Path, count: int) -> list[np.ndarray]:
    files = frame_files(folder)
    if len(files) < count:
        raise _too_few(folder, len(files), count, f"frame images ({', '.join(IMAGE_SUFFIXES)})")
    return [_read_image(cv2, files[i]) for i in sample_indices(len(files), count)]


@dataclass(frozen=True)
class Decoded:
    """What ``decode_uniform`` got from a video file."""

    frames: list  # ``count`` BGR frames sampled uniformly; empty when fewer than ``count`` decode
    opened: bool  # False: OpenCV cannot open the file at all
    header: int  # the container's frame count (0 when missing)
    decoded: int  # frames the full decoding pass got (0 when the header's count sufficed)


def _decode(cap, chosen: Sequence[int] | None) -> list[np.ndarray]:
    """Decode in order, keeping the frames at ``chosen`` (sorted, distinct), or all when None."""
    wanted = None if chosen is None else set(chosen)
    last = None if chosen is None else chosen[-1]
    out, index = [], 0
    while last is None or index <= last:
        if not cap.grab():
            break
        if wanted is None or index in wanted:
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                break
            out.append(frame)
        index += 1
    return out


def decode_uniform(cv2, path: str | Path, count: int) -> Decoded:
    """``count`` frames spread evenly over a video (``sample_indices``), decoding only those when
    the container's frame count is right; when it is missing or wrong, every frame is decoded and
    the choice made over what decoded."""
    with quiet_cv2(cv2):
        return _decode_uniform(cv2, path, count)


def _decode_uniform(cv2, path: str | Path, count: int) -> Decoded:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return Decoded([], False, 0, 0)
        header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if header >= count:  # distinct indices: the step between them is at least one frame
            picked = _decode(cap, sample_indices(header, count))
            if len(picked) == count:
                return Decoded(picked, True, header, 0)
    finally:
        cap.release()
    cap = cv2.VideoCapture(str(path))
    try:
        every = _decode(cap, None)
    finally:
        cap.release()
    frames = [every[i] for i in sample_indices(len(every), count)] if len(every) >= count else []
    return Decoded(frames, True, header, len(every))


def _read_video(cv2, path: Path, count: int) -> list[np.ndarray]:
    got = decode_uniform(cv2, path, count)
    if not got.opened:
        raise SourceError(f"{path}: not a readable video")
    if not got.frames:
        raise _too_few(path, got.decoded, count, "decodable frames")
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in got.frames]


def read_frames(path: str | Path, count: int) -> list[np.ndarray]:
    """``count`` uint8 RGB frames from a video file, a folder of frame images, or (count 1) an image."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such video, image or frame folder")
    cv2 = import_cv2()
    if path.is_dir():
        return _read_folder(cv2, path, count)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if count != 1:
            raise _too_few(path, 1, count, "image")
        return [_read_image(cv2, path)]
    return _read_video(cv2, path, count)
