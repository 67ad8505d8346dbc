"""The model configuration: frozen, validated when built, serializable to JSON.

The same dictionary (``ModelConfig.to_dict()``) is saved next to the trained model and inside
every exported file, so a device knows T, the input size, the labels and the normalization
without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any, Mapping

from edge_rcnn.core.backbones import BACKBONES, PRETRAINED, input_size_range
from edge_rcnn.core.errors import ConfigError, choices_error
from runtimes.preprocess import normalization_mean_std


class RnnType(str, enum.Enum):
    """Recurrent layer over the per-frame features."""

    LSTM = "lstm"  # input, forget and output gates plus a cell state
    GRU = "gru"  # update and reset gates; no fused TFLite op, exported unrolled


class InputMode(str, enum.Enum):
    """What one model input is."""

    CLIP = "clip"  # T frames -> one label (cameras)
    IMAGE = "image"  # one image; the RNN reads the CNN feature map row by row


class Motion(str, enum.Enum):
    """What one step of the RNN sees (clip mode)."""

    # Its frame and the previous one, stacked on channels (T frames -> T - 1 steps), and per grid
    # cell the products of spatial and temporal brightness gradients (Lucas-Kanade's terms).
    GRADIENT = "gradient"
    PAIR = "pair"  # the frame pair alone: the CNN has to learn motion from the stacked frames
    NONE = "none"  # its frame alone: T frames -> T steps; motion only through the RNN's memory


class Normalization(str, enum.Enum):
    """How uint8 pixels become model inputs: ``(pixel / 255 - mean) / std`` per channel."""

    UNIT = "unit"  # [0, 1]
    SYMMETRIC = "symmetric"  # [-1, 1]
    IMAGENET = "imagenet"  # ImageNet channel mean/std (RGB)

    def mean_std(self, channels: int) -> tuple[list[float], list[float]]:
        # One table of presets for the SDK: the runtimes' (a device reads the same numbers).

        mean, std = normalization_mean_std(self.value, channels)
        return list(mean), list(std)


def parse_enum(enum_type: type[enum.Enum], value: Any, argument: str):
    """``enum_type(value)``, or a ``ConfigError`` naming the argument and the valid values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(str(value).lower())
    except ValueError:
        raise choices_error(argument, value, [m.value for m in enum_type]) from None


def _backbone_names() -> list[str]:
    return sorted(BACKBONES)


def _backbone_sizes(name: str) -> tuple[int, int]:
    return input_size_range(name)


def _backbone_pretrained(name: str) -> bool:
    return name in PRETRAINED


def _normalization_for(backbone: str, asked: Any) -> Normalization:
    """The normalization of a model: the one a pretrained backbone's weights expect (another is
    refused: the weights would see inputs they were not trained on), else ``asked`` or symmetric."""
    entry = PRETRAINED.get(backbone)
    asked = None if asked is None else parse_enum(Normalization, asked, "normalization")
    if entry is None:
        return asked or Normalization.SYMMETRIC
    expected = Normalization(entry.normalization)
    if asked is not None and asked is not expected:
        raise ConfigError(f"normalization: backbone {backbone} expects {expected.value} (the input its ImageNet "
                          f"weights were trained on), got {asked.value}; leave normalization unset")
    return expected


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the model and to feed it on a device.

    ``frames`` is T (ignored in ``image`` mode), ``input_size`` is (height, width), ``width`` is
    the backbone's base number of filters, ``units`` the RNN size, ``layers`` the number of
    stacked RNN layers.

    The frame encoder (clip mode) keeps where things are: ``grid`` > 0 projects the backbone's
    map to ``projection`` channels (1x1 conv) and averages it into a ``grid`` x ``grid`` layout
    of cells, flattened; ``grid=0`` is one global average (what is in the frame, not where).
    ``motion=pair`` feeds each RNN step a frame stacked with the one before it, so the first
    convolutions see local motion itself rather than two textures the RNN has to compare;
    ``motion=gradient`` (the default) adds, per grid cell, averages of products of the pair's
    spatial and temporal brightness gradients: their signs say which way the content moves
    whatever its texture.
    """

    labels: tuple[str, ...]
    frames: int = 16
    input_size: tuple[int, int] = (32, 32)
    channels: int = 3
    backbone: str = "mobilenet"
    width: int = 16
    rnn: RnnType = RnnType.LSTM
    units: int = 64
    layers: int = 1
    dropout: float = 0.0
    mode: InputMode = InputMode.CLIP
    normalization: Normalization | None = None  # None: the backbone's (symmetric unless it was pretrained otherwise)
    color_order: str = "rgb"
    motion: Motion | None = None  # None: GRADIENT for clip models, NONE for image models
    grid: int | None = None  # None: DEFAULT_GRID for clip models, 0 for image models
    projection: int = 16

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)):
            raise ConfigError(f"labels: expected a list of class names, got {labels!r}")
        labels = tuple(str(x) for x in labels)
        if len(labels) < 2:
            raise ConfigError(f"labels: expected at least 2 classes, got {len(labels)} ({list(labels)})")
        if len(set(labels)) != len(labels):
            raise ConfigError(f"labels: expected unique names, got {list(labels)}")
        set_("labels", labels)
        set_("rnn", parse_enum(RnnType, self.rnn, "rnn"))
        set_("mode", parse_enum(InputMode, self.mode, "mode"))
        if self.backbone not in _backbone_names():
            raise choices_error("backbone", self.backbone, _backbone_names())
        set_("normalization", _normalization_for(self.backbone, self.normalization))
        size = self.input_size
        if isinstance(size, int):
            size = (size, size)
        if len(tuple(size)) != 2 or not all(isinstance(s, int) for s in size):
            raise ConfigError(f"input_size: expected (height, width) integers, got {self.input_size!r}")
        size = tuple(int(s) for s in size)
        if min(size) < 16 or max(size) > 1024:
            raise ConfigError(f"input_size: expected each side in 16..1024, got {size}")
        low, high = _backbone_sizes(self.backbone)
        if min(size) < low or max(size) > high:
            raise ConfigError(f"input_size: backbone {self.backbone} expects each side in {low}..{high} "
                              f"(the sizes its ImageNet weights were trained at), got {size}")
        set_("input_size", size)
        _check_int("frames", self.frames, 2, 512)
        _check_int("channels", self.channels, 1, 4)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels: expected 1 (grayscale) or 3 (colour), got {self.channels}")
        _check_int("width", self.width, 4, 512)
        _check_int("units", self.units, 1, 4096)
        _check_int("layers", self.layers, 1, 8)
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")
        set_("dropout", float(self.dropout))
        if self.color_order not in ("rgb", "bgr"):
            raise choices_error("color_order", self.color_order, ["rgb", "bgr"])
        clip = self.mode is InputMode.CLIP
        motion = (Motion.GRADIENT if clip else Motion.NONE) if self.motion is None else parse_enum(Motion, self.motion, "motion")
        grid = (DEFAULT_GRID if clip else 0) if self.grid is None else self.grid
        _check_int("grid", grid, 0, 32)
        _check_int("projection", self.projection, 1, 512)
        if not clip and (motion is not Motion.NONE or grid):
            raise ConfigError(f"motion={motion.value}, grid={grid}: clip-mode settings; an image model reads "
                              "its feature map row by row (expected motion none and grid 0 in image mode)")
        if motion is Motion.PAIR and _backbone_pretrained(self.backbone):
            raise ConfigError(f"motion=pair: backbone {self.backbone} reads the newer frame only (its ImageNet weights "
                              "take one frame), so the pair would be lost; expected motion gradient (the default) or none")
        set_("motion", motion)
        set_("grid", grid)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def mean_std(self) -> tuple[list[float], list[float]]:
        return self.normalization.mean_std(self.channels)

    @property
    def steps(self) -> int:
        """RNN steps per clip: one per frame, or one per pair of consecutive frames."""
        return self.frames - 1 if self.pairs else self.frames

    @property
    def pairs(self) -> bool:
        """Whether each step reads a frame stacked with the previous one."""
        return self.motion is not Motion.NONE

    @property
    def encoder_channels(self) -> int:
        """Channels of the frame encoder's input: the frame's, twice for a frame pair."""
        return 2 * self.channels if self.pairs else self.channels

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, without the batch axis."""
        frame = (*self.input_size, self.channels)
        return frame if self.mode is InputMode.IMAGE else (self.frames, *frame)

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"model config: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model config: unknown keys {unknown}; expected some of {sorted(known)}")
        if "labels" not in data:
            raise ConfigError("model config: missing 'labels'")
        kwargs = {**LEGACY_FIELDS, **data}
        if "input_size" in kwargs and isinstance(kwargs["input_size"], list):
            kwargs["input_size"] = tuple(kwargs["input_size"])
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model config: not valid JSON ({exc})") from None
        return cls.from_dict(data)


DEFAULT_GRID = 4
# A config saved before a field existed describes a model built without it.
LEGACY_FIELDS = {"motion": Motion.NONE.value, "grid": 0}


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: expected an integer in {low}..{high}, got {value!r}")
