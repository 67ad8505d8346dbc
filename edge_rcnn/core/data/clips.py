"""One clip on disk: what it is (``ClipRef``), a cheap probe, and decoding it to uint8 RGB frames.

A clip is a video file (decoded with OpenCV) or a folder of frame images sorted by name; in
``image`` mode a sample is one image file. Decoding samples T frames uniformly over the whole
clip and resizes them with ``cv2.INTER_AREA``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_rcnn.core.errors import DataError

# The device's rules: train and predict list, choose and decode frames alike (runtimes.decode).
from runtimes.decode import IMAGE_SUFFIXES, decode_uniform, frame_files, sample_indices

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
IMAGE_PATTERN = "*." + "|".join(s.lstrip(".") for s in IMAGE_SUFFIXES)  # *.png|jpg|jpeg|bmp|...
CLIP_LAYOUT = f"videos (*.mp4|avi|mov|mkv) or folders of frames ({IMAGE_PATTERN})"


class ClipKind(str, enum.Enum):
    """How a sample is stored (a ``str`` enum: ``ClipKind.VIDEO == "video"``)."""

    VIDEO = "video"  # one video file
    FRAMES = "frames"  # a folder of frame images, sorted by name
    IMAGE = "image"  # one image (``image`` mode)


@dataclass(frozen=True)
class ClipRef:
    """A sample on disk and its class name; ``kind`` is a :class:`ClipKind` value."""

    path: Path
    label: str
    kind: str


@dataclass(frozen=True)
class ClipInfo:
    """What a probe found: decodable frame count and frame size ``(height, width)``."""

    frames: int
    size: tuple[int, int]


class ClipError(DataError):
    """One clip that cannot be used; ``reason`` is a short category ("unreadable", "truncated", ...)."""

    def __init__(self, path, reason: str, detail: str = "") -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


class DataWarning(UserWarning):
    """Clips skipped or resized while scanning or loading a data folder."""


def kind_of(path: Path) -> ClipKind:
    """The :class:`ClipKind` a path holds, from its suffix (a folder holds frames)."""
    path = Path(path)
    if path.is_dir():
        return ClipKind.FRAMES
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return ClipKind.VIDEO
    if suffix in IMAGE_SUFFIXES:
        return ClipKind.IMAGE
    raise DataError(f"{path}: expected {CLIP_LAYOUT} or an image, got suffix {suffix!r}")


def as_ref(path_or_ref) -> ClipRef:
    if isinstance(path_or_ref, ClipRef):
        return path_or_ref
    path = Path(path_or_ref)
    if not path.exists():
        raise ClipError(path, "not found", f"expected {CLIP_LAYOUT}")
    return ClipRef(path, "", kind_of(path).value)


def read_frames_bgr(ref: ClipRef, frames: int) -> list[np.ndarray]:
    """``frames`` BGR frames (OpenCV's order, original size) sampled uniformly over the clip."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise DataError(f"frames: expected a positive integer, got {frames!r}")
    if ref.kind == ClipKind.IMAGE:
        raise DataError(f"{ref.path}: is a single image; use read_image() (or mode='image')")
    if ref.kind == ClipKind.FRAMES:
        files = frame_files(ref.path)
        if len(files) < frames:
            raise ClipError(ref.path, "too short", f"{len(files)} frame images, need {frames}")
        return [imread_bgr(files[i]) for i in sample_indices(len(files), frames)]
    return _read_video(ref.path, frames)


def _read_video(path: Path, frames: int) -> list[np.ndarray]:
    import cv2

    got = decode_uniform(cv2, path, frames)
    if not got.opened:
        raise ClipError(path, "unreadable", "OpenCV cannot open it")
    if got.frames:
        return got.frames
    if not got.decoded:
        raise ClipError(path, "unreadable", "no frame decodes")
    if got.header > got.decoded:
        raise ClipError(path, "truncated", f"decodes {got.decoded} of {got.header} frames, need {frames}")
    raise ClipError(path, "too short", f"{got.decoded} frames, need {frames}")


def imread_bgr(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ClipError(path, "unreadable", "OpenCV cannot decode the image")
    return image


def convert_frame(frame_bgr: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """A BGR frame -> uint8 ``(H, W, C)`` RGB (or grey with a trailing axis), resized to ``size``."""
    import cv2

    height, width = size
    if frame_bgr.shape[:2] != (height, width):
        frame_bgr = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_AREA)
    if channels == 1:
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)[..., None]
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def check_size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise DataError(f"size: expected an integer or (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise DataError(f"size: expected positive sides, got {size!r}")
    return height, width


def check_channels(channels) -> int:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"channels: expected 1 (grayscale) or 3 (RGB), got {channels!r}")
    return int(channels)


def read_clip(path_or_ref, *, frames: int, size, channels: int = 3) -> np.ndarray:
    """Decode a clip to uint8 ``(frames, H, W, C)`` RGB, T frames sampled uniformly over it.

    ``size`` is an int or ``(height, width)``; ``channels=1`` gives grayscale. Raises
    ``DataError`` (a :class:`ClipError`) for unreadable, truncated or too-short clips.
    """
    ref = as_ref(path_or_ref)
    size, channels = check_size(size), check_channels(channels)
    return np.stack([convert_frame(f, size, channels) for f in read_frames_bgr(ref, frames)])


def read_image(path, *, size, channels: int = 3) -> np.ndarray:
    """Decode one image to uint8 ``(H, W, C)`` RGB (or grayscale), resized to ``size``."""
    path = path.path if isinstance(path, ClipRef) else Path(path)
    if not path.is_file():
        raise ClipError(path, "not found", "expected a *.jpg|jpeg|png image")
    return convert_frame(imread_bgr(path), check_size(size), check_channels(channels))


def read_sample(ref: ClipRef, config) -> tuple[np.ndarray, tuple[int, int]]:
    """One model input for ``config`` (uint8 ``config.input_shape``) and its source frame size.

    Frames are RGB, or BGR when ``config.color_order == "bgr"``.
    """
    image_mode = config.mode.value == "image"
    if image_mode:
        if ref.kind != ClipKind.IMAGE:
            raise DataError(f"{ref.path}: expected an image for an image-mode model, got a {ref.kind} clip")
        raw = [imread_bgr(ref.path)]
    else:
        raw = read_frames_bgr(ref, config.frames)
    sample = np.stack([convert_frame(f, config.input_size, config.channels) for f in raw])
    if config.color_order == "bgr" and config.channels == 3:
        sample = np.ascontiguousarray(sample[..., ::-1])
    return (sample[0] if image_mode else sample), raw[0].shape[:2]
