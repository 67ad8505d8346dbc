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
    for r in p.run("rtsp://..."): ...               # the camera loop: per-frame results and events
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Sequence

from runtimes import edgetpu as _edgetpu  # noqa: F401  (registers "edgetpu")
from runtimes import litert as _litert  # noqa: F401  (registers "litert")
from runtimes import onnxrt as _onnxrt  # noqa: F401  (registers "onnxruntime")
from runtimes.base import (
    RUNTIMES,
    Device,
    DeviceKind,
    Runtime,
    TensorInfo,
    dequantize,
    get_runtime,
    parse_device,
    quantize,
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
from runtimes.events import Event, EventDetector, EventKind
from runtimes.modeldir import ModelEntry, list_models
from runtimes.predictor import Predictor
from runtimes.spec import ModelKind, ModelSpec, resolve_spec
from runtimes.streaming import FeatureStream, Stream, WindowStream, open_stream
from runtimes.threads import auto_threads, one_thread_copy


def load_runtime(path: str | Path, device: str | Device = "auto", *, num_threads: int | None = None,
                 runtime: str | None = None, **options) -> Runtime:
    """One model file on one device, without labels or preprocessing (``Runtime.invoke(x)``).

    ``runtime`` forces a backend by registry name; ``options`` go to the backend
    (``cache_dir=`` for ONNX Runtime's TensorRT engine cache).
    """
    path = Path(path)
    if runtime:
        cls = get_runtime(runtime)
        device = parse_device(device)
        if device.kind is DeviceKind.AUTO and device.kind not in cls.devices:
            device = Device(cls.devices[0])
    else:
        device = choose_device(path, device)
        cls = runtime_for(path, device)
    if device.kind not in cls.devices:
        valid = ", ".join(d.value for d in cls.devices)
        raise InputError(f"device {device}: the {cls.name} runtime runs on one of: {valid}")
    accepted = [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if p.kind is p.KEYWORD_ONLY and name != "num_threads"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"{', '.join(unknown)}: not an option of the {cls.name} runtime; "
                         f"it takes: {', '.join(accepted) or 'no options'}")
    return cls(path, device, num_threads=num_threads, **options)


def load(path: str | Path, device: str | Device = "auto", *, num_threads: int | None = None,
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
    ``MetadataError`` here, not a surprise at predict. ``num_threads`` ``None`` (default): on a CPU,
    every core or one, whichever runs a clip of this model faster, timed here at load (about
    30 ms; see ``runtimes.threads``); the chosen count is in ``info["num_threads"]``.
    """
    stream_parts = None
    if Path(path).is_dir():
        from runtimes.modeldir import find_stream_parts, list_models, pick_model

        entries = list_models(path)
        path = pick_model(path, parse_device(device), entries).path
        stream_parts = find_stream_parts(path, entries)
    rt = load_runtime(path, device, num_threads=num_threads, runtime=runtime, **options)
    if num_threads is None:  # every core, or one where that runs this model faster (runtimes.threads)
        rt = auto_threads(rt, lambda: one_thread_copy(rt, runtime=runtime, **options))
    spec = resolve_spec(
        rt.path, rt.metadata, rt.input, rt.output, labels=labels, normalization=normalization,
        mean=mean, std=std, frames=frames, input_size=input_size, color_order=color_order,
    )
    return Predictor(rt, spec, stream_parts=stream_parts,
                     load_options={"num_threads": num_threads, "runtime": runtime, **options})


__all__ = [
    "RUNTIMES", "Class", "Device", "DeviceKind", "DeviceReport", "EdgeRcnnError", "Event", "EventDetector",
    "EventKind", "FeatureStream", "InputError", "MetadataError", "ModelEntry", "ModelFileError", "ModelKind",
    "ModelOutputError", "ModelSpec", "Prediction", "Predictor", "Runtime", "RuntimeUnavailableError",
    "SourceError", "Stream", "TensorInfo", "WindowStream", "choose_device", "dequantize", "get_classes",
    "get_runtime", "get_scores", "list_devices", "list_models", "load", "load_runtime", "open_stream",
    "parse_device", "quantize", "register_runtime", "resolve_spec", "runtime_for",
]
