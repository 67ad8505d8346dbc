"""Which graph a target converts: the whole clip model, or one of its two streaming parts.

``--streaming`` also exports the clip model split in two (``edge_rcnn.model.split_for_streaming``):
a frame encoder (one frame -> feature vector; runs once per camera frame) and a temporal head
(the last T features -> probabilities; unrolled, no state between calls). The runtimes'
``FeatureStream`` runs the pair (``runtimes.open_stream``). Each target module asks this module
for the Keras graph, the calibration reader and the metadata, so it converts any part the same way.

Calibration: the encoder on the frames of the calibration clips, the head on the float
encoder's features of those clips (what the device feeds it, up to the encoder's quantization).
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from converters.calibration import ArrayReader, ClipReader
from edge_rcnn.data import normalize
from edge_rcnn.config import InputMode
from edge_rcnn.errors import ConfigError, ConversionError

FRAMES_PER_CLIP = 4  # encoder calibration: this many evenly spaced frames of each calibration clip


class Part(str, enum.Enum):
    CLIP = "clip"  # the whole model (kind "clip" or "image" in the metadata)
    STREAM_ENCODER = "stream_encoder"
    STREAM_HEAD = "stream_head"


STREAM_PARTS = (Part.STREAM_ENCODER, Part.STREAM_HEAD)


def check_streamable(config) -> None:
    if config.mode is not InputMode.CLIP:
        raise ConfigError(f"streaming: only clip-mode models split into a frame encoder and a temporal head; this one is {config.mode.value!r}")


def build_graph(job, batch_size: int | None, unroll: bool | None = None):
    """The Keras model to convert for ``job.part`` (weights from ``job.model``)."""
    from edge_rcnn.model import rebuild, split_for_streaming

    if job.part is Part.CLIP:
        return rebuild(job.model, job.config, batch_size=batch_size, unroll=unroll)
    # unroll=None (TFLite) keeps the head unrolled: no state inside the file. ONNX asks for
    # unroll=False and gets native LSTM/GRU nodes, stateless in ONNX Runtime.
    encoder, head = split_for_streaming(job.model, job.config, batch_size=batch_size, unroll=unroll is not False)
    return encoder if job.part is Part.STREAM_ENCODER else head


def sample_shape(job) -> tuple[int, ...]:
    """One input sample's shape (no batch axis) for ``job.part``."""
    if job.part is Part.CLIP:
        return tuple(job.config.input_shape)
    if job.part is Part.STREAM_ENCODER:
        return (*job.config.input_size, job.config.channels)
    return (job.config.frames, feature_dim(job))


def feature_dim(job) -> int:
    encoder = job.model.get_layer("frames_cnn").layer
    return int(encoder.output_shape[-1])


def calibration_reader(job, input_name: str):
    """The ``get_next()`` reader that calibrates ``job.part`` (ConversionError without clips)."""
    if job.calibration is None:
        raise ConversionError("int8: needs calibration clips (use quantize with --calib DATA)")
    if job.part is Part.CLIP:
        return ClipReader(job.calibration, job.config, input_name)
    frames = calibration_frames(job)
    if job.part is Part.STREAM_ENCODER:
        return ArrayReader(frames, input_name)
    features = float_features(job, job.calibration.clips)
    return ArrayReader(features, input_name)


def calibration_frames(job) -> np.ndarray:
    """Normalized frames ``[N * k, H, W, C]``: ``FRAMES_PER_CLIP`` evenly spaced frames of each clip."""
    clips = job.calibration.clips
    pick = np.unique(np.linspace(0, clips.shape[1] - 1, FRAMES_PER_CLIP).round().astype(int))
    frames = clips[:, pick].reshape(-1, *clips.shape[2:])
    return normalize(frames, job.config)


def float_features(job, clips_uint8: np.ndarray, batch: int = 64) -> np.ndarray:
    """The float encoder's features ``[N, T, F]`` of uint8 clips (the head's calibration input)."""
    encoder = job.model.get_layer("frames_cnn").layer
    n, t = clips_uint8.shape[:2]
    frames = clips_uint8.reshape(n * t, *clips_uint8.shape[2:])
    out = [np.asarray(encoder(normalize(frames[i : i + batch], job.config), training=False), np.float32)
           for i in range(0, len(frames), batch)]
    return np.concatenate(out).reshape(n, t, -1)


def metadata(job, fmt, *, mode: str, input: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    """The ``edge_rcnn`` document for ``job.part`` (``kind`` and, for parts, ``stream``)."""
    from converters.config import file_name
    from converters.metadata import build_metadata

    kind = None if job.part is Part.CLIP else job.part.value
    meta = build_metadata(job.config, mode=mode, input=input, output=output, source_sha256=job.source_sha256, kind=kind)
    if job.part is not Part.CLIP:
        mode_ = job.settings.mode
        meta["stream"] = {
            "role": "encoder" if job.part is Part.STREAM_ENCODER else "head",
            "feature_dim": feature_dim(job), "frames": job.config.frames,
            "encoder": file_name(fmt, mode_, Part.STREAM_ENCODER.value),
            "head": file_name(fmt, mode_, Part.STREAM_HEAD.value),
        }
    return meta
