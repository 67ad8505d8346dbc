"""Conversion settings: enums for every choice, one frozen record, checked when built.

Strings from the CLI or a caller become enums here; an unknown value fails with the list of
valid ones (``choices_error``). Nothing is rewritten silently: a setting that cannot apply to the
chosen mode or formats is an error, not ignored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable

from edge_rcnn.core.config import parse_enum
from edge_rcnn.core.errors import ConfigError


class Mode(str, enum.Enum):
    """Numeric precision of the exported weights and activations."""

    INT8 = "int8"  # full integer: weights and activations int8, calibrated on real clips
    FP16 = "fp16"  # float16 weights (TFLite) / float16 graph with float32 IO (ONNX)
    DYNAMIC = "dynamic"  # int8 weights, activations quantized at run time; no calibration
    FLOAT = "float"  # float32, the reference


class IoType(str, enum.Enum):
    """Dtype of the input and output tensors of a full-int8 TFLite file."""

    INT8 = "int8"
    UINT8 = "uint8"  # what older Edge TPU tooling and pycoral examples expect
    FLOAT = "float"  # float32 IO; QUANTIZE/DEQUANTIZE at the graph edges only


class Format(str, enum.Enum):
    """A target file format; each has one module in this package with the same shape."""

    TFLITE = "tflite"
    ONNX = "onnx"
    EDGETPU = "edgetpu"  # the int8 .tflite compiled by edgetpu_compiler


class LstmKernel(str, enum.Enum):
    """How an LSTM is laid out in a TFLite file (GRU has no fused op and is always unrolled).

    LiteRT's int8 kernel of the fused op is much slower than its float kernel, so int8 defaults to
    the unrolled layout (plain int8 builtins: faster than float32, a larger file for the same
    weights) and float to the fused one. Timings and sizes: ``benchmarks/results/`` (the
    ``tflite-int8`` vs ``tflite-int8-fused`` rows, ``design-notes-2026-12-02.md``).
    """

    FUSED = "fused"  # one UNIDIRECTIONAL_SEQUENCE_LSTM op: smallest file
    UNROLLED = "unrolled"  # FULLY_CONNECTED/LOGISTIC/TANH/MUL/ADD per time step: fastest int8


class OnnxInt8(str, enum.Enum):
    """Which runtime an int8 ONNX (QDQ) file is quantized for; weights are symmetric int8 in both."""

    TENSORRT = "tensorrt"  # symmetric int8 activations (zero point 0): what TensorRT accepts (Jetson)
    CPU = "cpu"  # asymmetric uint8 activations: ONNX Runtime's fast U8S8 path on x86/ARM CPUs


# What each target can produce. Edge TPU runs full-integer models only.
TARGET_MODES: dict[Format, tuple[Mode, ...]] = {
    Format.TFLITE: (Mode.INT8, Mode.FP16, Mode.DYNAMIC, Mode.FLOAT),
    Format.ONNX: (Mode.INT8, Mode.FP16, Mode.DYNAMIC, Mode.FLOAT),
    Format.EDGETPU: (Mode.INT8,),
}

# Absolute tolerance on the probabilities vs the float Keras model; None: judged by top-1
# agreement and the accuracy drop only (quantized outputs move by a few quantization steps).
ATOL: dict[Mode, float | None] = {Mode.FLOAT: 1e-4, Mode.FP16: 1e-2, Mode.DYNAMIC: None, Mode.INT8: None}

CALIBRATION_MODES = (Mode.INT8,)
MAX_SEED = 2**32 - 1  # what every random generator seeded from it accepts
FEW_CALIBRATION_CLIPS = 100  # below this, warn: int8 ranges from few clips are noisy


def parse_formats(value: Any) -> tuple[Format, ...]:
    """``"tflite,onnx"`` or a list of names/enums -> unique formats, in the order given."""
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else (value or ())
    formats: list[Format] = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if item == "":
            continue
        fmt = parse_enum(Format, item, "format")
        if fmt not in formats:
            formats.append(fmt)
    if not formats:
        raise ConfigError(f"format: expected at least one of: {', '.join(f.value for f in Format)}; got {value!r}")
    return tuple(formats)


@dataclass(frozen=True)
class ConvertConfig:
    """How to convert one Keras model: target formats, precision, IO dtype, calibration, checks.

    ``io`` applies to full-int8 TFLite files; ``None`` means int8, or uint8 when an Edge TPU file
    is requested (the dtype its tooling expects). ONNX int8 files keep float IO (QDQ format:
    ONNX Runtime and TensorRT quantize inside). ``dynamic_batch`` applies to ONNX only; TFLite
    and Edge TPU files are always batch 1. ``samples`` clips calibrate (from ``split`` of the
    data folder) and up to ``verify_samples`` other clips of that split check the result.
    """

    formats: tuple[Format, ...] = (Format.TFLITE, Format.ONNX)
    mode: Mode = Mode.INT8
    io: IoType | None = None
    samples: int = 200
    verify_samples: int = 200
    max_drop: float = 1.0
    min_top1: float = 0.0  # percent; every verified file must reach it on the held-out clips
    dynamic_batch: bool = False
    split: str = "val"
    seed: int = 0
    streaming: bool = False  # also the frame encoder + step head (TFLite/ONNX; Edge TPU: the encoder)
    lstm_kernel: LstmKernel | None = None  # TFLite LSTM layout; None: unrolled for int8, else fused
    onnx_int8: OnnxInt8 = OnnxInt8.TENSORRT

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("formats", parse_formats(self.formats))
        set_("mode", parse_enum(Mode, self.mode, "mode"))
        if self.io is not None:
            set_("io", parse_enum(IoType, self.io, "io"))
        if self.lstm_kernel is not None:
            set_("lstm_kernel", parse_enum(LstmKernel, self.lstm_kernel, "lstm_kernel"))
        set_("onnx_int8", parse_enum(OnnxInt8, self.onnx_int8, "onnx_int8"))
        for fmt in self.formats:
            if self.mode not in TARGET_MODES[fmt]:
                valid = ", ".join(m.value for m in TARGET_MODES[fmt])
                raise ConfigError(f"mode: {fmt.value} files support {valid}; got {self.mode.value!r}")
        if self.io is not None and self.mode is not Mode.INT8:
            raise ConfigError(f"io: applies to --mode int8 only (float, fp16 and dynamic files have float IO); got mode {self.mode.value!r}")
        if self.io is IoType.FLOAT and Format.EDGETPU in self.formats:
            raise ConfigError("io: an Edge TPU file needs int8 or uint8 input and output, got 'float'")
        if self.dynamic_batch and Format.ONNX not in self.formats:
            raise ConfigError("dynamic_batch: applies to ONNX only (TFLite and Edge TPU files are batch 1); add 'onnx' to the formats")
        for name, low in (("samples", 1), ("verify_samples", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
        if isinstance(self.max_drop, bool) or not isinstance(self.max_drop, (int, float)) or not 0 <= self.max_drop <= 100:
            raise ConfigError(f"max_drop: expected percentage points in 0..100, got {self.max_drop!r}")
        set_("max_drop", float(self.max_drop))
        if isinstance(self.min_top1, bool) or not isinstance(self.min_top1, (int, float)) or not 0 <= self.min_top1 <= 100:
            raise ConfigError(f"min_top1: expected a top-1 accuracy in percent, 0..100, got {self.min_top1!r}")
        set_("min_top1", float(self.min_top1))
        if not isinstance(self.streaming, bool) or not isinstance(self.dynamic_batch, bool):
            raise ConfigError(f"streaming/dynamic_batch: expected True or False, got {self.streaming!r}/{self.dynamic_batch!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: expected an integer in 0..{MAX_SEED}, got {self.seed!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ConfigError(f"split: expected a split name such as 'val', got {self.split!r}")

    @property
    def io_type(self) -> IoType:
        """The IO dtype of a full-int8 TFLite file, with the default resolved."""
        if self.io is not None:
            return self.io
        return IoType.UINT8 if Format.EDGETPU in self.formats else IoType.INT8

    @property
    def tflite_lstm(self) -> LstmKernel:
        """The TFLite LSTM layout, with the default resolved (see ``LstmKernel``)."""
        if self.lstm_kernel is not None:
            return self.lstm_kernel
        return LstmKernel.UNROLLED if self.mode is Mode.INT8 else LstmKernel.FUSED

    @property
    def needs_calibration(self) -> bool:
        return self.mode in CALIBRATION_MODES

    @property
    def atol(self) -> float | None:
        return ATOL[self.mode]

    def to_dict(self) -> dict[str, Any]:
        return {
            "formats": [f.value for f in self.formats], "mode": self.mode.value,
            "io": self.io_type.value if self.mode is Mode.INT8 else "float", "samples": self.samples,
            "verify_samples": self.verify_samples, "max_drop": self.max_drop, "min_top1": self.min_top1,
            "dynamic_batch": self.dynamic_batch, "split": self.split, "seed": self.seed, "streaming": self.streaming,
            "tflite_lstm": self.tflite_lstm.value, "onnx_int8": self.onnx_int8.value,
        }


def file_name(fmt: Format, mode: Mode, part: str = "clip") -> str:
    """``model_<mode>.tflite`` / ``.onnx`` / ``model_int8_edgetpu.tflite``; streaming parts are
    ``stream_encoder_<mode>.<ext>`` and ``stream_head_<mode>.<ext>``."""
    stem = "model" if part == "clip" else part
    if fmt is Format.EDGETPU:
        return f"{stem}_{mode.value}_edgetpu.tflite"
    return f"{stem}_{mode.value}.{fmt.value}"
