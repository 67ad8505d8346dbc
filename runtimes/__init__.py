"""edge-rcnn runtimes: one ``load(path).predict(frames)`` on Raspberry Pi, Coral and Jetson.

Needs numpy and one runtime (ai-edge-litert for .tflite, onnxruntime for .onnx); never imports
TensorFlow, Keras, ``edge_rcnn`` or ``converters``::

    from runtimes import load
    p = load("model_int8.tflite", device="auto")   # cpu | edgetpu[:usb|:pci|:N] | cuda[:N] | tensorrt[:N] | auto
    r = p.predict(frames)                           # T uint8 HxWx3 frames (any size), or a video path
    r.label, r.score, r.topk, r.probs

    p = load("OUT/")                                # an export folder: the clip model for this device
    s = p.stream(every=1, smoothing=0.0)            # one CNN pass per frame with the streaming parts
    for frame in camera:
        r = s.push(frame)                           # a Prediction once T frames are in, else None

The camera application (sources, the loop, events, recording) is ``runtimes.camera``, above this
device core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from runtimes.backends import load_runtime
from runtimes.base import (
    RUNTIMES,
    Device,
    DeviceKind,
    Runtime,
    TensorInfo,
    dequantize_array,
    get_runtime,
    parse_device,
    quantize_array,
    register_runtime,
    runtime_for,
)
from runtimes.classify import Class, Prediction, get_classes, get_scores
from runtimes.devices import DeviceReport, choose_device, list_devices
from runtimes.errors import (
    EdgeRcnnError,
    InputError,
    MetadataError,
    ModelFileError,
    ModelOutputError,
    RuntimeUnavailableError,
    SourceError,
)
from runtimes.modeldir import ModelEntry, find_stream_parts, list_models, pick_model
from runtimes.predictor import Predictor
from runtimes.spec import ModelKind, ModelSpec, resolve_spec
from runtimes.streaming import FeatureStream, Stream, WindowStream, open_stream
from runtimes.threads import auto_threads, check_auto, one_thread_copy


def load(path: str | Path, device: str | Device = "auto", *, num_threads: int | str | None = None,
         labels: Sequence[str] | None = None, normalization: str | None = None, mean=None, std=None,
         frames: int | None = None, input_size: Sequence[int] | None = None, color_order: str | None = None,
         runtime: str | None = None, **options) -> Predictor:
    """A ``Predictor`` for a .tflite or .onnx file, or for an export folder (``OUT/``).

    A folder gives its clip model for ``device`` (read from ``OUT/manifest.json``, else from
    the files' metadata: Edge TPU, ONNX on a GPU, else TFLite; int8 first); ``.stream()`` then
    uses the folder's streaming parts of the same format and mode.

    The file's metadata says labels, frames, size and normalization; for a file without it
    (third-party), pass ``labels`` and ``normalization`` (``"unit"``, ``"symmetric"``,
    ``"imagenet"``) or ``mean``/``std``; frames and size come from a static input shape.
    Arguments given here override the metadata. Metadata that is damaged, mistyped or disagrees
    with the file's own tensors (labels per output, channels, frames, size, kind) is a
    ``MetadataError`` here, not a surprise at predict.

    ``num_threads``: ``None`` (default) is the runtime's own default (LiteRT: every core; ONNX
    Runtime: one per physical core); an integer is that many threads; ``"auto"`` times a clip on
    every core and on one here, at load, and keeps the faster (``runtimes.threads``: small models
    often run faster on one, but the timing is only as steady as the machine). The count used is
    in ``info["num_threads"]``.
    """
    timed = check_auto(num_threads)
    stream_parts = None
    if Path(path).is_dir():
        entries = list_models(path)
        path = pick_model(path, parse_device(device), entries).path
        stream_parts = find_stream_parts(path, entries)
    rt = load_runtime(path, device, num_threads=None if timed else num_threads, runtime=runtime, **options)
    if timed:
        rt = auto_threads(rt, lambda: one_thread_copy(rt, runtime=runtime, **options))
    spec = resolve_spec(
        rt.path, rt.metadata, rt.input, rt.output, labels=labels, normalization=normalization,
        mean=mean, std=std, frames=frames, input_size=input_size, color_order=color_order,
    )
    return Predictor(rt, spec, stream_parts=stream_parts,
                     load_options={"num_threads": num_threads, "runtime": runtime, **options})


__all__ = [
    "RUNTIMES", "Class", "Device", "DeviceKind", "DeviceReport", "EdgeRcnnError",
    "FeatureStream", "InputError", "MetadataError", "ModelEntry", "ModelFileError", "ModelKind",
    "ModelOutputError", "ModelSpec", "Prediction", "Predictor", "Runtime", "RuntimeUnavailableError",
    "SourceError", "Stream", "TensorInfo", "WindowStream", "choose_device", "dequantize_array", "get_classes",
    "get_runtime", "get_scores", "list_devices", "list_models", "load", "load_runtime", "open_stream",
    "parse_device", "quantize_array", "register_runtime", "resolve_spec", "runtime_for",
]
