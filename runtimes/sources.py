"""Frames from files: a video, a folder of frame images, or one image (OpenCV, imported here).

``read_frames(path, count)`` samples ``count`` frames uniformly over the whole video or folder
(first and last included) and returns them as uint8 RGB ``HxWx3`` arrays.
"""

from __future__ import annotations

from pathlib import Path

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


def sample_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0..total-1``, first and last included."""
    return [int(i) for i in np.linspace(0, total - 1, count).round()]


def _read_image(cv2, path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _too_few(path: Path, total: int, count: int, what: str) -> SourceError:
    return SourceError(f"{path}: {total} {what}; the model takes {count} per clip")


def _read_folder(cv2, folder: Path, count: int) -> list[np.ndarray]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < count:
        raise _too_few(folder, len(files), count, f"frame images ({', '.join(IMAGE_SUFFIXES)})")
    return [_read_image(cv2, files[i]) for i in sample_indices(len(files), count)]


def _decode_all(cv2, path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    return frames


def _read_video(cv2, path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"{path}: not a readable video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    picked: list[np.ndarray] = []
    try:
        if total >= count:  # one pass, decoding only the frames we keep
            wanted = sample_indices(total, count)
            index = 0
            while len(picked) < count and cap.grab():
                if index in wanted:
                    ok, frame = cap.retrieve()
                    if not ok:
                        break
                    picked.extend([frame] * wanted.count(index))
                index += 1
    finally:
        cap.release()
    if len(picked) < count:  # the container's frame count was missing or wrong: decode it all
        decoded = _decode_all(cv2, path)
        if len(decoded) < count:
            raise _too_few(path, len(decoded), count, "decodable frames")
        picked = [decoded[i] for i in sample_indices(len(decoded), count)]
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in picked]


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
