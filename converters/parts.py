"""Which graph a target converts: the whole clip model, or one of its two streaming parts.

``--streaming`` also exports the clip model split in two: a frame encoder (one frame -> feature
vector; runs once per camera frame) and a step head (``edge_rcnn.core.stepper``: one recurrent step
for the T windows in flight, states as explicit inputs and outputs, no state in the file). The
runtimes' ``FeatureStream`` runs the pair (``runtimes.open_stream``). Each target module asks
this module for the Keras graph, the calibration reader and the metadata, so it converts any
part the same way.

Calibration: the encoder on the frames of the calibration clips; the head on what it sees on a
device -- the float encoder's features of the calibration clips played back to back as one
video, with the states the float step head itself produces along the way.
"""

from __future__ import annotations

import enum
from dataclasses import replace

import numpy as np

from converters.calibration import ArrayReader, ClipReader, FeedReader
from converters.config import file_name
from converters.metadata import build_metadata
from edge_rcnn.core._keras import tf
from edge_rcnn.core.config import InputMode
from edge_rcnn.core.data import normalize
from edge_rcnn.core.errors import ConfigError, ConversionError
from edge_rcnn.core.model import frame_encoder_of, rebuild
from edge_rcnn.core.stepper import build_step_head, run_step_head, state_names
from runtimes.metadata import FileMetadata, StreamPart, TensorEntry

FRAMES_PER_CLIP = 4  # encoder calibration: this many evenly spaced frames of each calibration clip
HEAD_CALIBRATION_STEPS = 1024  # step head calibration: at most this many pushes (of N clips x T)


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
    if job.part is Part.CLIP:
        return rebuild(job.model, job.config, batch_size=batch_size, unroll=unroll)
    if job.part is Part.STREAM_HEAD:
        return build_step_head(job.model, job.config)  # static shapes: [1, F] and [T, U] per state
    return frame_encoder_of(job.model, job.config, batch_size=batch_size)


def input_shapes(job, batch_size: int | None) -> dict[str, tuple[int | None, ...]]:
    """Every input of ``job.part``'s graph by name, with its batch axis (the head's are static)."""
    if job.part is Part.STREAM_HEAD:
        states = {name: (job.config.steps, job.config.units) for name in state_names(job.config)}
        return {"feature": (1, feature_dim(job)), **states}
    name = "frames" if job.part is Part.CLIP else "frame"
    shape = job.config.input_shape if job.part is Part.CLIP else (*job.config.input_size, job.config.encoder_channels)
    return {name: (batch_size, *shape)}


def feature_dim(job) -> int:
    encoder = job.model.get_layer("frames_cnn").layer
    return int(encoder.output_shape[-1])


def calibration_reader(job, input_name: str):
    """The ``get_next()`` reader that calibrates ``job.part`` (ConversionError without clips)."""
    if job.calibration is None:
        raise ConversionError("int8: needs calibration clips (use quantize with --calib DATA)")
    if job.part is Part.CLIP:
        return ClipReader(job.calibration, job.config, input_name)
    if job.part is Part.STREAM_ENCODER:
        return ArrayReader(calibration_frames(job), input_name)
    return FeedReader(step_feeds(job))


def encoder_inputs(clips_uint8: np.ndarray, config) -> np.ndarray:
    """uint8 ``[N, T, H, W, C]`` -> the encoder's inputs ``[N, S, H, W, C or 2C]`` (still uint8):
    the frames themselves, or (``motion=pair``) each frame from the second on stacked with the
    one before it, as the clip model's ``frame_pairs`` stacks them."""
    if not config.pairs:
        return clips_uint8
    return np.concatenate([clips_uint8[:, 1:], clips_uint8[:, :-1]], axis=-1)


def calibration_frames(job) -> np.ndarray:
    """Normalized encoder inputs ``[N * k, H, W, C or 2C]``: ``FRAMES_PER_CLIP`` evenly spaced
    steps of each clip."""
    steps = encoder_inputs(job.calibration.clips, job.config)
    pick = np.unique(np.linspace(0, steps.shape[1] - 1, FRAMES_PER_CLIP).round().astype(int))
    return normalize_steps(steps[:, pick].reshape(-1, *steps.shape[2:]), job.config)


def normalize_steps(steps_uint8: np.ndarray, config) -> np.ndarray:
    """``normalize`` for encoder inputs: a frame pair is two frames with the same normalization."""
    if not config.pairs:
        return normalize(steps_uint8, config)
    c = config.channels
    return np.concatenate([normalize(steps_uint8[..., :c], config), normalize(steps_uint8[..., c:], config)], -1)


def float_features(job, clips_uint8: np.ndarray, batch: int = 64) -> np.ndarray:
    """The float encoder's step features ``[N, S, F]`` of uint8 clips (the head's calibration input)."""
    encoder = job.model.get_layer("frames_cnn").layer
    steps = encoder_inputs(clips_uint8, job.config)
    n, s = steps.shape[:2]
    flat = steps.reshape(n * s, *steps.shape[2:])
    out = [np.asarray(encoder(normalize_steps(flat[i : i + batch], job.config), training=False), np.float32)
           for i in range(0, len(flat), batch)]
    return np.concatenate(out).reshape(n, s, -1)


def step_feeds(job, limit: int = HEAD_CALIBRATION_STEPS) -> list[dict[str, np.ndarray]]:
    """Step-head inputs ``{feature, h0, c0, ...}`` seen while the float encoder + float step head
    play the calibration clips back to back (every state depth 0..T-1, windows across clip
    boundaries as a camera sees them); at most ``limit`` evenly spaced steps."""
    features = float_features(job, job.calibration.clips)
    head = build_step_head(job.model, job.config)
    step = tf().function(lambda *a: head(list(a), training=False))  # traced once: N x T calls, not eager
    _, feeds = run_step_head(step, features.reshape(-1, features.shape[-1]), job.config)
    names = ["feature", *state_names(job.config)]
    pick = np.unique(np.linspace(0, len(feeds) - 1, min(limit, len(feeds))).round().astype(int))
    return [dict(zip(names, feeds[i])) for i in pick]


def metadata(job, fmt, *, mode: str, input: TensorEntry, output: TensorEntry,
             io: tuple[list[str], list[str]] | None = None) -> FileMetadata:
    """The ``edge_rcnn`` record for ``job.part`` (``kind`` and, for parts, ``stream``); ``io``:
    the head's input and output tensor names in call order."""
    kind = None if job.part is Part.CLIP else job.part.value
    meta = build_metadata(job.config, mode=mode, input=input, output=output, source_sha256=job.source_sha256, kind=kind)
    if job.part is Part.CLIP:
        return meta
    mode_ = job.settings.mode
    stream = StreamPart(
        role="encoder" if job.part is Part.STREAM_ENCODER else "head",
        feature_dim=feature_dim(job), frames=job.config.frames, steps=job.config.steps,
        motion=job.config.motion.value,
        encoder=file_name(fmt, mode_, Part.STREAM_ENCODER.value),
        head=file_name(fmt, mode_, Part.STREAM_HEAD.value),
        inputs=tuple(io[0]) if io is not None else None, outputs=tuple(io[1]) if io is not None else None,
    )
    return replace(meta, stream=stream)
