"""Streaming: camera frames pushed one at a time, a ``Prediction`` for the last T frames.

Semantics (the MoViNet rule, "frame by frame equals the whole clip"): once T frames have been
pushed, ``push(frame)`` returns what ``predict`` returns for the last T frames pushed -- at every
position of an arbitrarily long video, with no state carried from older frames. With float
files the probabilities agree within 1e-4; int8 parts are quantized separately from the int8
clip model, so the two agree on top-1, not bit for bit.

Two ways to get there, one interface (``Stream``):

- ``FeatureStream``: a frame encoder (CNN on one frame) and a step head (one RNN step for the T
  windows in flight, with the classifier), exported by ``edge-rcnn quantize --streaming``. The
  stream holds the recurrent state of T staggered windows as T rows ("slots") of float32 arrays:
  slot ``s`` started at a frame ``f`` with ``f % T == s``. Each push runs the encoder once,
  zeroes the oldest slot (its window starts at this frame), and runs the head once on the new
  feature and all states, which advances every window by this frame; the slot that has now read
  T frames is the window of the last T frames, and its row of the head's probabilities is the
  answer. One CNN pass and one batched RNN step per frame, not T of each; the files hold no
  state (the states go in and come out of every call). A pair encoder (``motion=pair`` or
  ``gradient`` models: its input has twice the frame's channels) reads the new frame stacked with
  the previous one, which the stream keeps: T frames are then T - 1 steps and slots, and the
  first frame after a reset only fills the previous-frame half.
- ``WindowStream``: the fallback without streaming parts -- a ring of the last T preprocessed
  frames and the whole clip model on every push (T CNN passes per frame, same answers).

``every=K`` returns a prediction on every K-th push after the first full window (encoder and
head still run on every frame, so the window is always the last T frames); pushes in between
return ``None``. ``smoothing=a`` is an exponential moving average of the probabilities over the
head's outputs (``p = a * p_prev + (1 - a) * p_new``; 0 = none). Memory is fixed when the
stream is made: nothing grows with the number of frames.
"""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from runtimes.backends import load_runtime
from runtimes.base import DeviceKind, Runtime, TensorInfo, dequantize_array, parse_device, quantize_array
from runtimes.classify import Prediction, make_prediction
from runtimes.errors import InputError, MetadataError
from runtimes.metadata import FileMetadata
from runtimes.modeldir import find_stream_parts
from runtimes.preprocess import FrameFormat
from runtimes.ring import Ring
from runtimes.spec import ModelKind, resolve_spec
from runtimes.tables import FrameConverter, byte_table, is_byte_tensor, look_up
from runtimes.threads import can_choose, check_auto, fastest, median_seconds, one_thread_copy

__all__ = ["FeatureStream", "Stream", "WindowStream", "open_stream", "stream_for"]


def _check_number(name: str, value, low: float, high: float | None, integer: bool) -> None:
    kinds = (int,) if integer else (int, float)
    if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < low
            or (high is not None and value >= high)):
        bound = f">= {low}" if high is None else f"in [{low}, {high})"
        raise InputError(f"{name}: expected {'an integer' if integer else 'a number'} {bound}, got {value!r}")


class Stream:
    """Frames in one at a time; a ``Prediction`` on every ``every``-th push once ``frames`` are in.

    ``push`` and ``reset`` may be called from several threads: each runs whole, one at a time,
    so a frame is never half-added and a prediction is never another push's. The frames then
    form one sequence in the order the pushes took the lock, which is the caller's to decide
    (one camera, one pushing thread is the usual shape); a stream per camera for parallel work.
    """

    def __init__(self, labels: Sequence[str], frames: int, *, every: int = 1, smoothing: float = 0.0, topk: int = 5):
        _check_number("every", every, 1, None, integer=True)
        _check_number("smoothing", smoothing, 0.0, 1.0, integer=False)
        _check_number("topk", topk, 1, None, integer=True)
        self.labels, self.frames = tuple(labels), int(frames)
        self._label_names = tuple(str(label) for label in self.labels)
        self.every, self.smoothing, self.topk = every, float(smoothing), topk
        self.frames_seen = 0
        self.last: Prediction | None = None
        self._ema: np.ndarray | None = None
        self._lock = threading.Lock()
        self.source: str | None = None  # the file whose scores these are, for errors

    @property
    def ready(self) -> bool:
        """Whether T frames have been pushed since the start or the last ``reset``."""
        return self.frames_seen >= self.frames

    def push(self, frame: np.ndarray, color: str = "rgb") -> Prediction | None:
        """Add one frame (uint8 ``HxWxC`` of any size; ``color="bgr"`` for cv2 captures).

        Returns the prediction for the last T frames when the head ran on this push (the T-th
        push, then every ``every``-th), else ``None``; ``last`` keeps the latest one.
        """
        with self._lock:
            self._add(frame, color)
            self.frames_seen += 1
            due = self.frames_seen - self.frames
            if due < 0 or due % self.every:
                return None
            probs = self._window_probs()
            if self.smoothing:
                self._ema = probs if self._ema is None else self.smoothing * self._ema + (1 - self.smoothing) * probs
                probs = self._ema
            self.last = make_prediction(probs, self._label_names, self.topk, source=self.source)
            return self.last

    def reset(self) -> None:
        """Forget every frame pushed (a new scene): the next prediction comes after T new frames."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.frames_seen, self.last, self._ema = 0, None, None

    def _add(self, frame: np.ndarray, color: str) -> None:
        raise NotImplementedError

    def _window_probs(self) -> np.ndarray:
        raise NotImplementedError


class OutputScores:
    """A model's raw output -> float32 scores: one table lookup for 8-bit outputs, else the formula."""

    def __init__(self, tensor: TensorInfo):
        self.tensor = tensor
        self.table = byte_table(tensor) if is_byte_tensor(tensor) else None

    def __call__(self, out: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return look_up(self.table, out)
        return dequantize_array(out, self.tensor) if self.tensor.quantized else out.astype(np.float32)


class FeatureStream(Stream):
    """A frame encoder and a step head: one encoder pass and one head call per push."""

    def __init__(self, encoder: Runtime, head: Runtime, frame: FrameFormat, labels: Sequence[str], **options):
        feature, *states = head.inputs
        if not states or len(feature.shape) != 2 or any(len(s.shape) != 2 or s.shape != states[0].shape for s in states):
            shapes = [list(t.shape) for t in head.inputs]
            raise MetadataError(f"{head.path.name}: inputs {shapes}; expected a step head ([1, F] feature and [T, U] "
                                "states; re-export with edge-rcnn quantize --streaming)")
        if len(head.outputs) != len(head.inputs) or any(s.quantized for s in (*states, *head.outputs[1:])):
            raise MetadataError(f"{head.path.name}: expected float state outputs matching its {len(states)} state inputs")
        if encoder.output.shape[-1] != feature.shape[-1]:
            raise MetadataError(f"{encoder.path.name} gives {encoder.output.shape[-1]} features per frame; "
                                f"{head.path.name} reads {feature.shape[-1]}")
        slots = int(states[0].shape[0])
        # A pair encoder reads the new frame stacked with the previous one on channels: the stream
        # keeps the previous frame, and T frames make T - 1 steps (edge_rcnn.core.stepper).
        self.pair = frame.layout == "nhwc" and encoder.input.shape[-1] == 2 * frame.channels
        self._lag = 1 if self.pair else 0
        super().__init__(labels, slots + self._lag, **options)
        self.slots = slots
        self.encoder, self.head, self.convert = encoder, head, FrameConverter(frame, encoder.input)
        self.source = str(head.path)
        self.state_shapes = [tuple(s.shape) for s in states]
        self._states = [np.zeros(shape, np.float32) for shape in self.state_shapes]
        self._feature_in = feature
        # 8-bit encoder output: its 256 values as the head's input (float, or its own int8), once.
        self._feature_table = byte_table(encoder.output, feature) if is_byte_tensor(encoder.output) else None
        self._scores = OutputScores(head.outputs[0])
        self._probs: np.ndarray | None = None
        if self.pair:  # [new frame | previous frame] on the channel axis, filled in place
            self._pair = np.empty((1, *frame.input_size, 2 * frame.channels), encoder.input.dtype)
            self._channels = frame.channels

    def _add(self, frame: np.ndarray, color: str) -> None:
        x = self.convert(frame, color)
        if self.pair:
            c = self._channels
            if self.frames_seen == 0:  # no previous frame yet: no step, no window has started
                self._pair[..., c:] = x
                return
            self._pair[..., :c] = x
            x = self._pair
        raw = self.encoder.run(x)
        if self.pair:
            self._pair[..., c:] = self._pair[..., :c]  # this frame is the next pair's previous one
        if self._feature_table is not None:
            feature = look_up(self._feature_table, raw).reshape(self._feature_in.shape)
        else:
            feature = raw.reshape(self._feature_in.shape)
            feature = dequantize_array(feature, self.encoder.output) if self.encoder.output.quantized else feature.astype(np.float32)
            if self._feature_in.quantized:
                feature = quantize_array(feature, self._feature_in)
        oldest = (self.frames_seen - self._lag) % self.slots  # its window starts at this step
        for state in self._states:
            state[oldest] = 0.0
        self._probs, *self._states = self.head.run_all([feature, *self._states])

    def _window_probs(self) -> np.ndarray:
        # frames_seen counts this frame: the slot that started S steps ago has now read S.
        return self._scores(self._probs[(self.frames_seen - self._lag) % self.slots])

    def _reset(self) -> None:
        super()._reset()
        self.encoder.reset()
        self.head.reset()
        self._states = [np.zeros(shape, np.float32) for shape in self.state_shapes]
        self._probs = None


class WindowStream(Stream):
    """Fallback without streaming parts: the whole clip model over a ring of the last T frames."""

    def __init__(self, predictor, **options):
        spec, runtime = predictor.spec, predictor.runtime
        if spec.kind not in (ModelKind.CLIP, ModelKind.IMAGE):
            raise InputError(f"{runtime.path.name}: a {spec.kind.value} file; a window stream needs a clip or image model")
        super().__init__(spec.labels, spec.frames, **options)
        self.runtime, self.image = runtime, spec.kind is ModelKind.IMAGE
        self.source = str(runtime.path)
        self.convert = FrameConverter(spec.frame, runtime.input)
        self.window_frames: Ring | None = None  # made on the first frame (its converted shape)
        self._scores = OutputScores(runtime.output)

    def _add(self, frame: np.ndarray, color: str) -> None:
        x = self.convert(frame, color)[0]
        if self.window_frames is None:
            self.window_frames = Ring(self.frames, x.shape, x.dtype)
        self.window_frames.append(x)

    def _window_probs(self) -> np.ndarray:
        ring = self.window_frames
        with self.runtime.lock:  # the runtime is the predictor's own, which other threads may call
            self.runtime.reset()
            out = self.runtime.run(ring.window() if self.image else ring.batch())
        return self._scores(out[0])


def stream_for(predictor, **options) -> Stream:
    """``predictor.stream()``: the encoder + head next to its file, else a ``WindowStream`` (warned)."""
    kind, name = predictor.spec.kind, predictor.runtime.path.name
    if kind in (ModelKind.STREAM_ENCODER, ModelKind.STREAM_HEAD):
        raise InputError(f"{name}: a {kind.value} file; open the pair with runtimes.open_stream(encoder, head)")
    if kind is ModelKind.IMAGE:  # one frame per prediction: nothing to cache
        return WindowStream(predictor, **options)
    parts = predictor.stream_parts or find_stream_parts(predictor.runtime.path)
    if parts is not None:
        loaded = predictor.load_options or {}
        return open_stream(*parts, device=str(predictor.runtime.device), **loaded, **options)
    warnings.warn(
        f"{name}: no streaming parts beside it (stream_encoder/stream_head of the same "
        f"format and mode); re-running the whole clip model over the last {predictor.spec.frames} frames on every "
        "push. Export them with: edge-rcnn quantize ... --streaming", RuntimeWarning, stacklevel=3,
    )
    return WindowStream(predictor, **options)


# The step head's ops are tiny (one RNN step for the windows in flight): a second thread buys
# nothing and would compete with the encoder and the camera (benchmarks/results/ has the timings).
HEAD_THREADS = 1


def push_seconds(stream: "FeatureStream", pushes: int = 30) -> float:
    """Median seconds of a real ``push`` of a blank frame (the stream is reset afterwards)."""
    spec = stream.convert.spec
    frame = np.zeros((*spec.input_size, spec.channels), np.uint8)
    seconds = median_seconds(lambda: stream.push(frame), pushes, warmup=5)
    stream.reset()
    return seconds


def pick_encoder_threads(candidates: Sequence["FeatureStream"], rounds: int = 3) -> "FeatureStream":
    """The candidate stream (encoder on every core, or on one) whose pushes are fastest here.

    A small frame's convolutions can be too small to split, and the cost of a thread pool that
    went idle while Python ran between calls shows only in real pushes: so real pushes are timed
    (alternating rounds), not the calls alone.
    """
    return fastest(candidates, push_seconds, rounds)


def open_stream(encoder: str | Path, head: str | Path, device: str = "auto", *, num_threads: int | str | None = None,
                head_threads: int | None = HEAD_THREADS, every: int = 1, smoothing: float = 0.0, topk: int = 5,
                labels: Sequence[str] | None = None, normalization: str | None = None, mean=None, std=None,
                **runtime_options) -> FeatureStream:
    """A ``FeatureStream`` from two files: ``stream_encoder_<mode>.<ext>`` and ``stream_head_<mode>.<ext>``.

    ``device`` applies to both (an Edge TPU runs the encoder; the head then runs on the CPU).
    ``num_threads`` is the encoder's: ``None`` (default) the runtime's default, an integer, or
    ``"auto"``: every core or one, whichever pushes faster here, timed when the stream opens
    (``pick_encoder_threads``). The head runs on ``head_threads`` (default 1, see
    ``HEAD_THREADS``; ``None``: the runtime's default).
    ``labels`` / ``normalization`` / ``mean`` / ``std`` are for files without edge-rcnn metadata.
    """
    timed = check_auto(num_threads)
    head_device = "cpu" if parse_device(device).kind is DeviceKind.EDGETPU else device
    enc_rt = load_runtime(encoder, device, num_threads=None if timed else num_threads, **runtime_options)
    head_rt = load_runtime(head, head_device, num_threads=head_threads, **runtime_options)
    specs = []
    for rt, kind in ((enc_rt, ModelKind.STREAM_ENCODER), (head_rt, ModelKind.STREAM_HEAD)):
        meta = rt.metadata or FileMetadata(kind=kind.value)
        if meta.kind != kind.value:
            raise MetadataError(f"{rt.path}: a {meta.kind!r} file; expected a {kind.value} file here")
        specs.append(resolve_spec(rt.path, meta, rt.input, rt.output, labels=labels, normalization=normalization,
                                  mean=mean, std=std))
    sources = {rt.metadata.source_sha256 if rt.metadata else None for rt in (enc_rt, head_rt)}
    if len(sources) == 2 and None not in sources:
        raise MetadataError(f"{enc_rt.path.name} and {head_rt.path.name} were exported from different models "
                            "(source_sha256 differs)")
    options = dict(every=every, smoothing=smoothing, topk=topk)
    stream = FeatureStream(enc_rt, head_rt, specs[0].frame, specs[1].labels, **options)
    if timed and can_choose(enc_rt):
        one = one_thread_copy(enc_rt, **runtime_options)
        stream = pick_encoder_threads([stream, FeatureStream(one, head_rt, specs[0].frame, specs[1].labels, **options)])
    return stream
