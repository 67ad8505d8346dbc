"""What a model file needs from its caller, from its metadata, the caller's arguments, or its shape.

Our exported files carry everything (``runtimes.metadata``). A third-party .tflite/.onnx runs
when the caller supplies the missing facts: ``labels`` and the normalization (a preset name or
``mean`` and ``std``); frames, size and channels come from the input tensor's shape when it is
static. Arguments win over the file's metadata. Anything still missing is one
``MetadataError`` that lists every missing fact and the argument that supplies it.

The metadata is checked against the model's own tensors first (``tensor_problems``): labels for
every output, the input's channels, frames and size, a kind that fits the input's rank, a mean
and std per channel. A file that disagrees with itself is refused at load, not at predict.
"""

from __future__ import annotations

import enum
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from runtimes.base import TensorInfo
from runtimes.errors import InputError, MetadataError, ModelFileError
from runtimes.metadata import FileMetadata
from runtimes.metadata_checks import describe_problems, label_problem
from runtimes.preprocess import COLOR_ORDERS, FrameFormat, normalization_mean_std


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
    frame: FrameFormat | None


def _layout(shape: tuple[int | None, ...]) -> str:
    """Channels last unless the shape clearly says first (third-party NCHW exports)."""
    if len(shape) >= 4 and shape[-1] not in (1, 3) and shape[-3] in (1, 3):
        return "nchw"
    return "nhwc"


# The input ranks each kind takes; a step head reads features: [1, F], or [1, T, F].
RANKS = {ModelKind.CLIP: (5,), ModelKind.IMAGE: (4,), ModelKind.STREAM_ENCODER: (4,), ModelKind.STREAM_HEAD: (2, 3)}
FRAME_KINDS = (ModelKind.CLIP, ModelKind.IMAGE, ModelKind.STREAM_ENCODER)  # inputs of pixels
_BY_RANK = {5: ModelKind.CLIP, 4: ModelKind.IMAGE, 3: ModelKind.STREAM_HEAD}


def _shown(shape: tuple[int | None, ...]) -> str:
    return str([s if s is not None else "?" for s in shape])


def tensor_problems(meta: FileMetadata, inp: TensorInfo, out: TensorInfo) -> list[str]:
    """Where well-typed metadata (``FileMetadata.problems()`` empty) disagrees with the model's
    own input and output tensors, one phrase each; ``[]`` where it agrees."""
    shape, problems = inp.shape, []
    kind = _BY_RANK.get(len(shape))
    if meta.kind is not None:
        try:
            kind = ModelKind(meta.kind)
        except ValueError:
            valid = ", ".join(k.value for k in ModelKind)
            return [f"kind: {meta.kind!r}; expected one of: {valid}"]
    if kind is not None and len(shape) not in RANKS[kind]:
        # The other checks read axes by kind: on the wrong rank they would only add noise.
        ranks = " or ".join(map(str, RANKS[kind]))
        return [f"kind: {kind.value} takes an input of rank {ranks}, but input {inp.name!r} is {_shown(shape)}"]
    labels = meta.labels
    classes = out.shape[-1] if out.shape else None
    if labels is not None and kind is not ModelKind.STREAM_ENCODER and classes is not None and len(labels) != classes:
        problems.append(f"labels: {len(labels)} names for a model with {classes} outputs")
    if kind is ModelKind.CLIP and meta.frames is not None and shape[1] is not None and meta.frames != shape[1]:
        problems.append(f"frames: {meta.frames}, but input {inp.name!r} {_shown(shape)} takes {shape[1]}")
    if kind in FRAME_KINDS:
        layout = _layout(shape)
        hw = shape[-3:-1] if layout == "nhwc" else shape[-2:]
        axis = shape[-1] if layout == "nhwc" else shape[-3]
        channels = meta.channels
        pair = kind is ModelKind.STREAM_ENCODER and channels is not None and axis == 2 * channels  # a frame pair
        if channels is not None and axis is not None and channels != axis and not pair:
            problems.append(f"channels: {channels}, but input {inp.name!r} {_shown(shape)} takes {axis}")
        size = meta.input_size
        if size is not None and None not in hw and list(size) != list(hw):
            problems.append(f"input_size: {list(size)}, but input {inp.name!r} {_shown(shape)} takes {list(hw)}")
        want = channels or axis
        for key in ("mean", "std"):
            values = getattr(meta.normalization, key, None)
            if isinstance(values, tuple) and want is not None and len(values) not in (1, want):
                problems.append(f"normalization.{key}: {len(values)} values for a {want}-channel input; expected 1 or {want}")
    return problems


def check_metadata(meta: FileMetadata, inp: TensorInfo, out: TensorInfo) -> list[str]:
    """Every problem of ``meta`` on its own and against the tensors (what ``edge-rcnn info`` warns about)."""
    return meta.problems() or tensor_problems(meta, inp, out)


def _kind(meta: FileMetadata, shape: tuple[int | None, ...], path: Path) -> ModelKind:
    if meta.kind is not None:
        try:
            return ModelKind(meta.kind)
        except ValueError:
            valid = ", ".join(k.value for k in ModelKind)
            raise MetadataError(f"{path}: metadata kind {meta.kind!r}; expected one of: {valid}") from None
    if len(shape) not in _BY_RANK:
        raise ModelFileError(f"{path}: input of rank {len(shape)}; expected a clip (5), image (4) or features (3)")
    return _BY_RANK[len(shape)]


def _mean_std(meta: FileMetadata, normalization, mean, std, channels: int, missing: list[str]):
    if mean is not None or std is not None:
        if mean is None or std is None:
            raise InputError("mean/std: give both (per-channel values of (pixel/255 - mean) / std)")
    elif normalization is not None:
        mean, std = normalization_mean_std(str(normalization), channels)
    elif meta.normalization is not None:
        norm = meta.normalization
        if norm.mean is not None and norm.std is not None:
            mean, std = norm.mean, norm.std
        elif norm.name is not None:
            mean, std = normalization_mean_std(norm.name, channels)
    if mean is None:
        missing.append("normalization (normalization='unit'|'symmetric'|'imagenet', or mean=..., std=...)")
        return (), ()
    try:
        mean, std = tuple(float(m) for m in _seq(mean)), tuple(float(s) for s in _seq(std))
    except (TypeError, ValueError):
        raise InputError(f"mean/std: expected numbers or lists of numbers, got mean={mean!r}, std={std!r}") from None
    if not all(math.isfinite(v) for v in mean + std):
        raise InputError(f"mean/std: expected finite numbers, got mean={list(mean)}, std={list(std)}")
    for name, values in (("mean", mean), ("std", std)):
        if len(values) not in (1, channels):
            raise InputError(f"{name}: {len(values)} values for a {channels}-channel model; expected 1 or {channels}")
    if any(s <= 0 for s in std):
        raise InputError(f"std: expected positive values, got {list(std)}")
    return (mean * channels if len(mean) == 1 else mean), (std * channels if len(std) == 1 else std)


def _seq(value) -> Sequence[float]:
    return value if isinstance(value, (list, tuple)) else [value]


def _given_labels(labels) -> list[str]:
    """The caller's ``labels`` as strings, or an ``InputError`` (a string is not a list of names)."""
    if isinstance(labels, str):
        raise InputError(f"labels: expected a list of class names, got the string {labels!r}")
    try:
        names = [str(x) for x in labels]
    except TypeError:
        raise InputError(f"labels: expected a list of class names, got {labels!r}") from None
    problem = label_problem(names)
    if problem:
        raise InputError(problem)
    return names


def _check_given(frames, input_size) -> None:
    def positive(v) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0

    if frames is not None and not positive(frames):
        raise InputError(f"frames: expected a positive integer, got {frames!r}")
    if input_size is not None and not (isinstance(input_size, (list, tuple)) and len(input_size) == 2
                                       and all(positive(v) for v in input_size)):
        raise InputError(f"input_size: expected (height, width) as positive integers, got {input_size!r}")


def _pick(path: Path, name: str, given, meta: FileMetadata, from_shape, missing: list[str], hint: str):
    value = given if given is not None else getattr(meta, name)
    if value is None:
        value = from_shape
    if value is None:
        missing.append(f"{name} ({hint})")
    if value is not None and from_shape is not None and tuple(_seq(value)) != tuple(_seq(from_shape)):
        raise MetadataError(f"{path}: {name}={value!r} but the model input takes {from_shape!r}")
    return value


def resolve_spec(path: str | Path, meta: FileMetadata | None, inp: TensorInfo, out: TensorInfo, *,
                 labels: Sequence[str] | None = None, normalization: str | None = None, mean=None, std=None,
                 frames: int | None = None, input_size: Sequence[int] | None = None,
                 color_order: str | None = None) -> ModelSpec:
    """The ``ModelSpec`` for a file, or a ``MetadataError`` listing every missing fact."""
    path, has_metadata, meta = Path(path), meta is not None, meta or FileMetadata()
    shape = inp.shape
    problems = check_metadata(meta, inp, out) if has_metadata else []
    if problems:
        raise MetadataError(describe_problems(path, problems))
    kind = _kind(meta, shape, path)
    missing: list[str] = []
    if labels is not None:
        labels = _given_labels(labels)
    else:
        labels = meta.labels
    _check_given(frames, input_size)
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
        channels = meta.channels or (shape[-1] if layout == "nhwc" else shape[-3])
        size_from_shape = tuple(hw) if None not in hw else None
        size = _pick(path, "input_size", input_size, meta, size_from_shape, missing, "input_size=(height, width)")
        if channels is None:
            missing.append("channels (a static channel axis in the model input)")
        mean_, std_ = _mean_std(meta, normalization, mean, std, int(channels or 3), missing)
        order = color_order or meta.color_order or "rgb"
        if order not in COLOR_ORDERS:
            raise InputError(f"color_order: unknown value {order!r}; expected one of: {', '.join(COLOR_ORDERS)}")
        if not missing:
            frame = FrameFormat(tuple(int(s) for s in size), int(channels), order, mean_, std_, layout)
    if missing:
        raise MetadataError(f"{path}: no edge_rcnn metadata for: {'; '.join(missing)}" if not has_metadata
                            else f"{path}: metadata lacks: {'; '.join(missing)}")
    return ModelSpec(kind, labels, int(frames), frame)
