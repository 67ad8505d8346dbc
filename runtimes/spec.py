"""What a model file needs from its caller, from its metadata, the caller's arguments, or its shape.

Our exported files carry everything (``runtimes.metadata``). A third-party .tflite/.onnx runs
when the caller supplies the missing facts: ``labels`` and the normalization (a preset name or
``mean`` and ``std``); frames, size and channels come from the input tensor's shape when it is
static. Arguments win over the file's metadata. Anything still missing is one
``MetadataError`` that lists every missing fact and the argument that supplies it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from runtimes.base import TensorInfo
from runtimes.errors import InputError, MetadataError, ModelFileError
from runtimes.preprocess import COLOR_ORDERS, InputSpec, normalization_mean_std


class ModelKind(str, enum.Enum):
    """What one call of the file takes (the metadata's ``kind``)."""

    CLIP = "clip"  # T frames -> class probabilities
    IMAGE = "image"  # one frame -> class probabilities
    STREAM_ENCODER = "stream_encoder"  # one frame -> feature vector
    STREAM_HEAD = "stream_head"  # T feature vectors -> class probabilities


@dataclass(frozen=True)
class ModelSpec:
    """Everything above the runtime: kind, labels, frames per call and the frame format
    (``frame`` is ``None`` for a stream head, which reads features, not pixels)."""

    kind: ModelKind
    labels: tuple[str, ...]
    frames: int
    frame: InputSpec | None


def _layout(shape: tuple[int | None, ...]) -> str:
    """Channels last unless the shape clearly says first (third-party NCHW exports)."""
    if len(shape) >= 4 and shape[-1] not in (1, 3) and shape[-3] in (1, 3):
        return "nchw"
    return "nhwc"


def _kind(meta: dict[str, Any], shape: tuple[int | None, ...], path: Path) -> ModelKind:
    if "kind" in meta:
        try:
            return ModelKind(meta["kind"])
        except ValueError:
            valid = ", ".join(k.value for k in ModelKind)
            raise MetadataError(f"{path}: metadata kind {meta['kind']!r}; expected one of: {valid}") from None
    by_rank = {5: ModelKind.CLIP, 4: ModelKind.IMAGE, 3: ModelKind.STREAM_HEAD}
    if len(shape) not in by_rank:
        raise ModelFileError(f"{path}: input of rank {len(shape)}; expected a clip (5), image (4) or features (3)")
    return by_rank[len(shape)]


def _mean_std(meta, normalization, mean, std, channels: int, missing: list[str]):
    if mean is not None or std is not None:
        if mean is None or std is None:
            raise InputError("mean/std: give both (per-channel values of (pixel/255 - mean) / std)")
    elif normalization is not None:
        mean, std = normalization_mean_std(str(normalization), channels)
    elif isinstance(meta.get("normalization"), dict):
        norm = meta["normalization"]
        if "mean" in norm and "std" in norm:
            mean, std = norm["mean"], norm["std"]
        elif "name" in norm:
            mean, std = normalization_mean_std(norm["name"], channels)
    if mean is None:
        missing.append("normalization (normalization='unit'|'symmetric'|'imagenet', or mean=..., std=...)")
        return (), ()
    mean, std = tuple(float(m) for m in _seq(mean)), tuple(float(s) for s in _seq(std))
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise InputError(f"{name}: {len(values)} values for a {channels}-channel model; expected 1 or {channels}")
    if any(s <= 0 for s in std):
        raise InputError(f"std: expected positive values, got {list(std)}")
    return (mean * channels if len(mean) == 1 else mean), (std * channels if len(std) == 1 else std)


def _seq(value) -> Sequence[float]:
    return value if isinstance(value, (list, tuple)) else [value]


def _pick(path: Path, name: str, given, meta: dict[str, Any], from_shape, missing: list[str], hint: str):
    value = given if given is not None else meta.get(name)
    if value is None:
        value = from_shape
    if value is None:
        missing.append(f"{name} ({hint})")
    if value is not None and from_shape is not None and tuple(_seq(value)) != tuple(_seq(from_shape)):
        raise MetadataError(f"{path}: {name}={value!r} but the model input takes {from_shape!r}")
    return value


def resolve_spec(path: str | Path, meta: dict[str, Any] | None, inp: TensorInfo, out: TensorInfo, *,
                 labels: Sequence[str] | None = None, normalization: str | None = None, mean=None, std=None,
                 frames: int | None = None, input_size: Sequence[int] | None = None,
                 color_order: str | None = None) -> ModelSpec:
    """The ``ModelSpec`` for a file, or a ``MetadataError`` listing every missing fact."""
    path, meta = Path(path), dict(meta or {})
    shape = inp.shape
    kind = _kind(meta, shape, path)
    missing: list[str] = []
    if isinstance(labels, str):
        raise InputError(f"labels: expected a list of class names, got the string {labels!r}")
    if labels is None:
        labels = meta.get("labels")
    if kind is not ModelKind.STREAM_ENCODER:
        if labels is None:
            missing.append("labels (labels=[...])")
        elif out.shape and out.shape[-1] is not None and len(labels) != out.shape[-1]:
            raise MetadataError(f"{path}: {len(labels)} labels for a model with {out.shape[-1]} outputs")
    labels = tuple(str(x) for x in labels or ())
    if kind is ModelKind.STREAM_HEAD:  # a step head: T is its state slots, not an input axis
        frames = _pick(path, "frames", frames, meta, None, missing, "frames=T")
    elif kind is ModelKind.CLIP:
        frames = _pick(path, "frames", frames, meta, shape[1] if len(shape) > 1 else None, missing, "frames=T")
    else:
        frames = 1
    frame = None
    if kind is not ModelKind.STREAM_HEAD:
        layout = _layout(shape)
        hw = shape[-3:-1] if layout == "nhwc" else shape[-2:]
        channels = meta.get("channels") or (shape[-1] if layout == "nhwc" else shape[-3])
        size_from_shape = tuple(hw) if None not in hw else None
        size = _pick(path, "input_size", input_size, meta, size_from_shape, missing, "input_size=(height, width)")
        if channels is None:
            missing.append("channels (a static channel axis in the model input)")
        mean_, std_ = _mean_std(meta, normalization, mean, std, int(channels or 3), missing)
        order = color_order or meta.get("color_order") or "rgb"
        if order not in COLOR_ORDERS:
            raise InputError(f"color_order: unknown value {order!r}; expected one of: {', '.join(COLOR_ORDERS)}")
        if not missing:
            frame = InputSpec(tuple(int(s) for s in size), int(channels), order, mean_, std_, layout)
    if missing:
        raise MetadataError(f"{path}: no edge_rcnn metadata for: {'; '.join(missing)}" if not meta
                            else f"{path}: metadata lacks: {'; '.join(missing)}")
    return ModelSpec(kind, labels, int(frames), frame)
