"""``Predictor``: camera frames in, a typed ``Prediction`` out, on top of one ``Runtime``.

Every ``predict`` is one whole clip from a clean recurrent state (``Runtime.invoke`` resets
first). ``invoke`` is the level below: an already preprocessed model input array -> float
probabilities, for verification against the float model and for building a stream out of two
runtimes (a frame encoder and a temporal head, each with its own ``ModelSpec``).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from runtimes.base import Runtime
from runtimes.classify import Prediction, make_prediction
from runtimes.decode import read_frames
from runtimes.errors import InputError
from runtimes.preprocess import prepare_frames
from runtimes.spec import ModelKind, ModelSpec
from runtimes.streaming import stream_for


class Predictor:
    """A loaded model file: ``predict(frames)``, ``predict_batch(clips)``, ``invoke(x)``, ``info``,
    and for cameras ``stream()`` (frames pushed one at a time; the camera loop over a source is
    ``runtimes.camera.run(predictor, source)``).

    ``stream_parts`` is the ``(encoder, head)`` pair that ``stream()`` uses (found beside the file
    when not given); ``load_options`` are the ``runtimes.load`` options the parts are loaded with.

    Threads: one Predictor may be shared. ``predict``, ``predict_batch`` and ``invoke`` are safe to
    call from several threads; on LiteRT they take turns on the file's interpreter (a lock, see
    ``Runtime``), on ONNX Runtime they run at once. For parallel LiteRT work load one Predictor
    per thread. Each ``stream()`` is its own object, itself safe to push from several threads.
    """

    def __init__(self, runtime: Runtime, spec: ModelSpec, *, stream_parts: tuple[Any, Any] | None = None,
                 load_options: dict[str, Any] | None = None):
        self.runtime = runtime
        self.spec = spec
        self.stream_parts = stream_parts
        self.load_options = dict(load_options or {})

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def info(self) -> dict[str, Any]:
        """The file's metadata, then what was loaded: backend, device, tensors and quantization."""
        rt, spec = self.runtime, self.spec
        out: dict[str, Any] = rt.metadata.to_dict() if rt.metadata is not None else {}
        out.update(
            path=str(rt.path), runtime=rt.name, device=str(rt.device), kind=spec.kind.value,
            labels=list(spec.labels), frames=spec.frames, has_metadata=rt.metadata is not None,
            input=rt.input.to_dict(), output=rt.output.to_dict(), **rt.details(),
        )
        if spec.frame is not None:
            f = spec.frame
            out.update(input_size=list(f.input_size), channels=f.channels, color_order=f.color_order,
                       normalization={**(out.get("normalization") or {}), "mean": list(f.mean), "std": list(f.std)},
                       layout=f.layout)
        return out

    def __repr__(self) -> str:
        return f"Predictor({self.runtime.path.name!r}, runtime={self.runtime.name!r}, device='{self.runtime.device}')"

    def _frames_of(self, frames, color: str):
        if isinstance(frames, (str, os.PathLike)):
            return read_frames(frames, self.spec.frames), "rgb"  # decoded files come as RGB
        if isinstance(frames, np.ndarray) and self.spec.kind is ModelKind.IMAGE and frames.ndim in (2, 3):
            frames = frames[None] if frames.ndim == 3 else frames[None, :, :, None]
        return frames, color

    def prepare(self, frames: Sequence[np.ndarray] | np.ndarray | str | os.PathLike, color: str = "rgb") -> np.ndarray:
        """Frames (or a video/folder path) -> the float32 model input for one call, batch axis included."""
        kind = self.spec.kind
        if kind in (ModelKind.STREAM_ENCODER, ModelKind.STREAM_HEAD):
            raise InputError(f"{self.runtime.path.name}: a {kind.value} file; predict() takes whole clips "
                             "(run the pair as a stream, or call invoke() with the model input)")
        frames, color = self._frames_of(frames, color)
        if not isinstance(frames, (list, tuple, np.ndarray)):
            raise InputError(f"frames: got {type(frames).__name__}; expected a list or array of frames, or a video path")
        if isinstance(frames, np.ndarray) and frames.ndim != 4:
            raise InputError(f"frames: array of shape {list(frames.shape)}; expected frames x height x width x channels")
        if len(frames) != self.spec.frames:
            what = "clip" if kind is ModelKind.CLIP else "image"
            raise InputError(f"frames: got {len(frames)}; the model takes exactly {self.spec.frames} per {what}")
        x = prepare_frames(frames, self.spec.frame, color)
        return x[None] if kind is ModelKind.CLIP else x

    def predict(self, frames, *, color: str = "rgb", topk: int = 5) -> Prediction:
        """One clip (T uint8 frames of any size, or a video/folder/image path) -> ``Prediction``.

        ``color`` is the channel order of the frames passed (cv2 captures are ``"bgr"``).
        """
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise InputError(f"topk: expected a positive integer, got {topk!r}")
        probs = self.runtime.invoke(self.prepare(frames, color))[0]
        return make_prediction(probs, self.spec.labels, topk, source=self.runtime.path)

    def predict_batch(self, clips: Sequence, *, color: str = "rgb", topk: int = 5) -> list[Prediction]:
        """``predict`` for each clip, each from a clean state (edge files have batch size 1)."""
        if isinstance(clips, (str, os.PathLike)) or len(clips) == 0:
            raise InputError("clips: expected a non-empty list of clips (each a list of frames or a path)")
        return [self.predict(clip, color=color, topk=topk) for clip in clips]

    def stream(self, *, every: int = 1, smoothing: float = 0.0, topk: int = 5):
        """A ``runtimes.streaming.Stream``: ``push(frame)`` -> the prediction for the last T frames.

        Uses the streaming parts (one encoder pass per frame) when the export folder has them,
        else re-runs this clip model over the last T frames on every push, with a warning.
        """
        return stream_for(self, every=every, smoothing=smoothing, topk=topk)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed model input -> float32 outputs (probabilities for a classifier).

        ``x`` is one sample without the batch axis (returns ``(classes,)``) or a batch with it
        (returns ``(N, classes)``, one call per sample, each from a clean state). Float input is
        quantized with the file's input scale and zero point; integer input must already be in
        the file's input dtype.
        """
        x = np.asarray(x)
        sample = [s if s is not None else "?" for s in self.runtime.input.shape[1:]]
        batch = x[None] if x.ndim == len(sample) else x
        if batch.ndim != len(sample) + 1 or any(s != "?" and s != d for s, d in zip(sample, batch.shape[1:])):
            raise InputError(f"x: shape {list(x.shape)}; the model takes {sample} per sample (batch axis optional)")
        if len(batch) == 0:
            raise InputError("x: empty batch")
        probs = np.stack([self.runtime.invoke(one[None])[0] for one in batch])
        return probs[0] if batch is not x else probs
