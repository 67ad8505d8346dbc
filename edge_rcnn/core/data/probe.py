"""Cheap checks done by ``scan_folder``: does a clip open, how many frames, what size.

A probe decodes as little as it can: a video's first and last frames (its header's frame count
is trusted only when the last frame decodes), image sizes from PNG/JPEG headers.
"""

from __future__ import annotations

import struct
from pathlib import Path

from edge_rcnn.core.data.clips import IMAGE_PATTERN, ClipError, ClipInfo, ClipKind, ClipRef, frame_files, imread_bgr
from edge_rcnn.core.errors import DataError


def probe_clip(ref: ClipRef, frames: int = 1) -> ClipInfo:
    """Open ``ref`` cheaply: its frame count and size, or ``ClipError`` saying why it is unusable
    (unreadable, truncated, fewer than ``frames`` frames).

    Frame folders whose images differ in size raise a plain ``DataError`` (a broken dataset,
    not one bad clip).
    """
    if ref.kind == ClipKind.VIDEO:
        info = _probe_video(ref.path, frames)
    elif ref.kind == ClipKind.IMAGE:
        return ClipInfo(1, image_size(ref.path))
    else:
        info = _probe_frame_folder(ref.path)
    if info.frames < frames:
        raise ClipError(ref.path, "too short", f"{info.frames} frames, need {frames}")
    return info


def _probe_frame_folder(folder: Path) -> ClipInfo:
    files = frame_files(folder)
    if not files:
        raise ClipError(folder, "no frames", f"expected {IMAGE_PATTERN} images in the folder")
    sizes: dict[tuple[int, int], Path] = {}
    for file in files:
        sizes.setdefault(image_size(file), file)
        if len(sizes) > 1:
            (a, first), (b, other) = sizes.items()
            raise DataError(
                f"{folder}: frame images differ in size ({first.name} is {a[1]}x{a[0]}, "
                f"{other.name} is {b[1]}x{b[0]}); expected one size per clip"
            )
    return ClipInfo(len(files), next(iter(sizes)))


def _probe_video(path: Path, frames: int) -> ClipInfo:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ClipError(path, "unreadable", "OpenCV cannot open it")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ClipError(path, "unreadable", "no frame decodes")
        listed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        # The header's count can lie (estimated from the duration, or a cut-off file): trust it
        # only when its last frame decodes, else count by reading.
        if listed > 1 and cap.set(cv2.CAP_PROP_POS_FRAMES, listed - 1) and cap.read()[0]:
            return ClipInfo(listed, frame.shape[:2])
    finally:
        cap.release()
    decoded = count_video_frames(path)
    if decoded < min(frames, listed):
        raise ClipError(path, "truncated", f"decodes {decoded} of the {listed} frames its header lists")
    return ClipInfo(decoded, frame.shape[:2])


def count_video_frames(path: Path) -> int:
    """Frames that actually decode (reads the whole video)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = 0
    try:
        while cap.isOpened() and cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a PNG or JPEG from its header (falls back to decoding it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
                width, height = struct.unpack(">II", head[16:24])
                return int(height), int(width)
            if head[:2] == b"\xff\xd8":
                f.seek(2)
                size = _jpeg_size(f)
                if size:
                    return size
    except OSError as exc:
        raise ClipError(path, "unreadable", exc.strerror or type(exc).__name__) from None
    image = imread_bgr(path)
    return image.shape[:2]


def _jpeg_size(f) -> tuple[int, int] | None:
    while True:
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            marker = f.read(1)
            if marker != b"\xff":
                break
            byte = marker
        else:
            return None
        if not marker or marker == b"\xd9":
            return None
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):  # start of frame
            data = f.read(5)
            if len(data) < 5:
                return None
            height, width = struct.unpack(">HH", data[1:5])
            return int(height), int(width)
        f.seek(length - 2, 1)
