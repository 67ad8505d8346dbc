"""Camera frames -> model input: check, resize, reorder colours, normalize (numpy; cv2 if present).

The caller passes frames as they come (uint8 ``HxWxC`` of any size, RGB or BGR, or float pixel
values in 0..255); ``FrameFormat``
says what the model wants, read from the file's metadata. Resizing uses OpenCV when it is
installed (``INTER_AREA`` on the uint8 frame, like the training pipeline) and a numpy fallback
otherwise (box average for whole-number shrink factors, bilinear otherwise), so a Pi without
OpenCV still runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from runtimes.errors import InputError

# (pixel / 255 - mean) / std per channel, the same presets as edge_rcnn.core.config.Normalization.
NORMALIZATIONS = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
COLOR_ORDERS = ("rgb", "bgr")
_LUMA_RGB = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def normalization_mean_std(name: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of a named normalization for 1 or 3 channels (grey: the channel average)."""
    if name not in NORMALIZATIONS:
        raise InputError(f"normalization: unknown value {name!r}; expected one of: {', '.join(NORMALIZATIONS)}")
    mean, std = NORMALIZATIONS[name]
    if channels == 1:
        return (sum(mean) / 3,), (sum(std) / 3,)
    return mean, std


@dataclass(frozen=True)
class FrameFormat:
    """What one frame must look like for the model: size ``(height, width)``, channels, colour
    order, normalization, and whether the model wants channels last (``nhwc``) or first."""

    input_size: tuple[int, int]
    channels: int
    color_order: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "nhwc"


def _resize_numpy(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % height == 0 and w % width == 0:  # whole-number shrink: box average (area)
        fh, fw = h // height, w // width
        return frame.reshape(height, fh, width, fw, -1).mean(axis=(1, 3))
    # Bilinear with half-pixel centres (cv2.INTER_LINEAR's sampling grid).
    ys = np.clip((np.arange(height) + 0.5) * h / height - 0.5, 0, h - 1)
    xs = np.clip((np.arange(width) + 0.5) * w / width - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = frame[y0][:, x0] * (1 - wx) + frame[y0][:, x1] * wx
    bottom = frame[y1][:, x0] * (1 - wx) + frame[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``HxWxC`` -> ``size`` (height, width), as training does: OpenCV ``INTER_AREA`` in the
    frame's own dtype (uint8 stays uint8), or the numpy fallback (float32) without OpenCV."""
    height, width = size
    if frame.shape[:2] == (height, width):
        return frame
    try:
        import cv2
    except ImportError:
        return _resize_numpy(frame.astype(np.float32), height, width)
    out = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    return out.reshape(height, width, frame.shape[2])


def _as_frame(frame, index: int) -> np.ndarray:
    try:
        arr = np.asarray(frame)
    except (TypeError, ValueError):  # ragged nested lists
        raise InputError(f"frame {index}: not an array of pixels ({type(frame).__name__}); "
                         "expected height x width x channels") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.size == 0:
        raise InputError(f"frame {index}: shape {list(arr.shape)}; expected height x width x channels")
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"frame {index}: contains NaN or infinity")
        low, high = float(arr.min()), float(arr.max())
        if low < 0.0 or high > 255.0:
            raise InputError(
                f"frame {index}: float values in [{low:.3g}, {high:.3g}]; expected pixels in 0..255 "
                "(pass raw camera frames: normalization happens inside)"
            )
        return arr.astype(np.float32)
    raise InputError(f"frame {index}: dtype {arr.dtype}; expected uint8 (or float pixels in 0..255)")


def check_pixel_range(high: float) -> None:
    """Float frames hold pixel values 0..255, like uint8 ones. Float frames whose brightest value
    is above 0 and at most 1 are images scaled to 0..1 (skimage, ``tf.image``, ``/ 255``): read as
    pixels they would be near-black, and the answer quietly wrong. They are refused instead; the
    caller says what they are by passing ``frames * 255`` or uint8 frames."""
    if 0.0 < high <= 1.0:
        raise InputError(f"frames: float values in 0..{high:.3g}, an image scaled to 0..1; expected pixels in "
                         "0..255: pass uint8 frames, or multiply by 255")


def prepare_frames(frames: Sequence[np.ndarray] | np.ndarray, spec: FrameFormat, color: str = "rgb") -> np.ndarray:
    """``N`` frames -> float32 ``(N, H, W, C)`` (or ``(N, C, H, W)``) normalized model input.

    ``color`` is the order of the caller's frames (cv2 gives ``bgr``); it is swapped when the
    model was trained on the other. Three-channel frames for a one-channel model become grey.
    Float frames hold pixels in 0..255; a float clip in 0..1 is refused (``check_pixel_range``).
    """
    if color not in COLOR_ORDERS:
        raise InputError(f"color: unknown value {color!r}; expected one of: {', '.join(COLOR_ORDERS)}")
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise InputError(f"frames: array of shape {list(frames.shape)}; expected N x height x width x channels")
    if len(frames) == 0:
        raise InputError("frames: empty; expected at least one frame")
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    out = np.empty((len(frames), *spec.input_size, spec.channels), dtype=np.float32)
    float_high = None  # the brightest value over the clip's float frames (one dark frame is no 0..1 image)
    for i, raw in enumerate(frames):
        frame = _as_frame(raw, i)
        if frame.dtype != np.uint8:
            float_high = max(float_high or 0.0, float(frame.max()))
        channels = frame.shape[2]
        if channels != spec.channels and not (channels == 3 and spec.channels == 1):
            raise InputError(f"frame {i}: {channels} channel(s); the model takes {spec.channels} ({spec.color_order})")
        # Resize first, in the frame's dtype (uint8), as the training data pipeline does.
        frame = resize_frame(np.ascontiguousarray(frame), spec.input_size).astype(np.float32)
        if spec.channels == 1 and channels == 3:
            frame = (frame @ (_LUMA_RGB if color == "rgb" else _LUMA_RGB[::-1]))[:, :, None]
        elif channels == 3 and color != spec.color_order:
            frame = frame[:, :, ::-1]
        out[i] = frame
    if float_high is not None:
        check_pixel_range(float_high)
    out = (out / np.float32(255.0) - mean) / std
    return out.transpose(0, 3, 1, 2) if spec.layout == "nchw" else out
