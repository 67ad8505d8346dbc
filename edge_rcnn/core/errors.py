"""Errors for training and conversion, on top of the runtime hierarchy (one tree, one base)."""

from __future__ import annotations

from runtimes.errors import (  # noqa: F401  (re-exported: one hierarchy for the whole SDK)
    EdgeRcnnError,
    InputError,
    MetadataError,
    ModelFileError,
    ModelOutputError,
    RuntimeUnavailableError,
    SourceError,
    first_line,
)


class ConfigError(EdgeRcnnError, ValueError):
    """An invalid model, quantization or export setting; the message lists the valid choices."""


class DataError(EdgeRcnnError, ValueError):
    """A data folder or clip that cannot be used (missing, empty, one class, too short, ...)."""


class ConversionError(EdgeRcnnError, RuntimeError):
    """A converter failed, or produced a file that breaks a promise (float ops in an int8 file)."""


class ValidationError(EdgeRcnnError, ValueError):
    """An exported file disagrees with the float model beyond the tolerance."""


class ShapeError(ValidationError):
    """Exported and reference outputs have different shapes."""


class AtolError(ValidationError):
    """Exported outputs differ from the reference by more than the absolute tolerance."""


class AccuracyDropError(ValidationError):
    """The quantized model lost more top-1 accuracy than ``--max-drop`` allows (CLI exit 3)."""

    exit_code = 3


def choices_error(argument: str, value: object, valid) -> ConfigError:
    """``ConfigError`` for an unknown choice, listing the valid ones (the one message format)."""
    listed = ", ".join(str(v) for v in valid)
    return ConfigError(f"{argument}: unknown value {value!r}; expected one of: {listed}")
