"""256-entry lookup tables: what a streaming push uses instead of per-pixel arithmetic.

Preprocessing a uint8 frame and quantizing it for the model are per-pixel functions of a uint8
value, and dequantizing an 8-bit tensor is a function of its byte; each folds into a 256-entry
table built once with the very same float32 operations, so a lookup is bit-identical to the
formulas::

    frame_table[c, v] = quantize_array((v / 255 - mean[c]) / std[c], input)   # int8/uint8 input
    frame_table[c, v] = (v / 255 - mean[c]) / std[c]                          # float input
    byte_table[b] = dequantize_array(b, source)  (then quantize_array(., target) for an int8 target)

``FrameConverter`` applies the frame table (``cv2.LUT`` when OpenCV is installed, ``np.take``
otherwise); frames that need anything else (float pixels, a numpy resize without OpenCV, colour
to grey, channels first) take ``prepare_frames``, with the same result.
"""

from __future__ import annotations

import numpy as np

from runtimes.base import TensorInfo, dequantize_array, quantize_array
from runtimes.preprocess import FrameFormat, prepare_frames, resize_frame


def make_frame_table(spec: FrameFormat, tensor: TensorInfo) -> np.ndarray:
    """``(channels, 256)`` lookup table: uint8 pixel value -> model input value, per channel."""
    values = np.arange(256, dtype=np.float32)[:, None]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    normalized = (values / np.float32(255.0) - mean) / std  # the float32 ops prepare_frames uses
    table = quantize_array(normalized, tensor) if tensor.quantized else normalized.astype(tensor.dtype)
    return np.ascontiguousarray(table.T)


_CV_TABLE_TYPES = ("int8", "uint8", "int16", "uint16", "int32", "float32", "float64")


class FrameConverter:
    """``converter(frame, color)`` -> ``(1, H, W, C)`` array in the input tensor's dtype.

    The returned array is a buffer owned by the converter and overwritten by the next call:
    copy it if you keep it.
    """

    def __init__(self, spec: FrameFormat, tensor: TensorInfo):
        self.spec, self.tensor = spec, tensor
        self.table = make_frame_table(spec, tensor)
        self.shared = bool((self.table == self.table[0]).all())  # same normalization on every channel
        self.out = np.empty((1, *spec.input_size, spec.channels), dtype=tensor.dtype)
        self._scratch = np.empty((*spec.input_size, spec.channels), dtype=tensor.dtype)
        self._size, self._nhwc, self._rgb = tuple(spec.input_size), spec.layout == "nhwc", spec.channels == 3
        try:
            import cv2
        except ImportError:
            cv2 = None
        self.cv2 = cv2 if cv2 is not None and np.dtype(tensor.dtype).name in _CV_TABLE_TYPES else None
        # cv2.LUT's table: (1, 256) for one table, (1, 256, C) for one per channel.
        self._cv_table = self.table[:1] if self.shared else np.ascontiguousarray(self.table.T[None])

    def _fast(self, frame: np.ndarray, color: str) -> np.ndarray | None:
        spec = self.spec
        if not self._nhwc or frame.dtype != np.uint8:
            return None
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if frame.ndim != 3 or frame.shape[2] != spec.channels or frame.size == 0:
            return None
        if frame.shape[:2] != self._size:
            frame = resize_frame(np.ascontiguousarray(frame), self._size)
            if frame.dtype != np.uint8:  # the numpy resize fallback (no OpenCV) gives float32
                return None
        elif not frame.flags.c_contiguous:  # already the model's size (a camera set to it): no copy unless strided
            frame = np.ascontiguousarray(frame)
        swap = self._rgb and color != spec.color_order
        out = self.out[0]
        if self.cv2 is not None:
            if swap:
                frame = self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)  # reverses the channels either way
            dst = out if self._rgb else out[:, :, 0]
            got = self.cv2.LUT(frame if self._rgb else frame[:, :, 0], self._cv_table, dst=dst)
            if got is not dst:  # OpenCV made a new array instead of filling ours
                dst[...] = got
            return self.out
        if self.shared:
            if swap:
                np.take(self.table[0], frame, out=self._scratch, mode="clip")
                out[...] = self._scratch[:, :, ::-1]
            else:
                np.take(self.table[0], frame, out=out, mode="clip")
            return self.out
        for c in range(spec.channels):
            source = spec.channels - 1 - c if swap else c
            out[:, :, c] = self.table[c][frame[:, :, source]]
        return self.out

    def __call__(self, frame, color: str = "rgb") -> np.ndarray:
        fast = self._fast(frame, color) if isinstance(frame, np.ndarray) and color in ("rgb", "bgr") else None
        if fast is not None:
            return fast
        x = prepare_frames([frame], self.spec, color)  # checks and explains bad frames
        x = quantize_array(x, self.tensor) if self.tensor.quantized else x.astype(self.tensor.dtype, copy=False)
        return np.ascontiguousarray(x)


def byte_values(dtype: str) -> np.ndarray:
    """Every value of an 8-bit integer type, in the order of its bytes read as uint8."""
    return np.arange(256, dtype=np.uint8).view(dtype)


def is_byte_tensor(tensor: TensorInfo) -> bool:
    return tensor.quantized and np.dtype(tensor.dtype).itemsize == 1


def byte_table(source: TensorInfo, target: TensorInfo | None = None) -> np.ndarray:
    """256 entries: a ``source`` value (its byte read as uint8) -> float32, or -> ``target``'s
    quantized value when ``target`` is an integer tensor (``quantize_array(dequantize_array(v))``)."""
    floats = dequantize_array(byte_values(source.dtype), source)
    return quantize_array(floats, target) if target is not None and target.quantized else floats


def look_up(table: np.ndarray, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table`` at every value of the 8-bit array ``raw`` (flattened), into ``out`` if given."""
    return table.take(raw.reshape(-1).view(np.uint8), out=out, mode="clip")  # clip: no buffered copy of out
