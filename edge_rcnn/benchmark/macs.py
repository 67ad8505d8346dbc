"""Multiply-accumulates of a Keras model, counted from its own layers (no profiler, no graph tracing).

Counted: the products of ``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``, ``Dense`` and the
gate matrix products of ``LSTM`` (4 gates) and ``GRU`` (3 gates): ``steps * gates * units *
(features + units)``. Not counted: biases, BatchNormalization (folded into the convolution by
every converter), pooling, activations and the LSTM/GRU element-wise state updates (a few
``units`` per step, negligible next to the matrix products). ``TimeDistributed`` multiplies its
inner layer by T; nested models are walked. Shapes come from the layers' static shapes, so the
batch axis must not matter (it is ignored) and the other axes must be known.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


@dataclass(frozen=True)
class LayerMacs:
    name: str  # path through nested models: "frames_cnn/backbone/conv1"
    type: str
    macs: int


@dataclass(frozen=True)
class MacCount:
    """MACs for one call of a model (one sample), in total and per counted layer."""

    total: int
    layers: tuple[LayerMacs, ...]

    def by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.type] = out.get(layer.type, 0) + layer.macs
        return out


def _shape(shape) -> tuple[int, ...]:
    if isinstance(shape, list):  # a layer with several inputs/outputs: the first one
        shape = shape[0]
    return tuple(int(s) for s in shape[1:])  # drop the batch axis


def _weight_shape(layer, attr: str) -> tuple[int, ...]:
    return tuple(int(s) for s in getattr(layer, attr).shape)


def _layer_macs(layer) -> int:
    kind = type(layer).__name__
    if kind == "Conv2D":
        kh, kw, cin, cout = _weight_shape(layer, "kernel")  # cin is per group already
        oh, ow, _ = _shape(layer.output_shape)
        return oh * ow * cout * kh * kw * cin
    if kind == "DepthwiseConv2D":
        kh, kw, cin, mult = _weight_shape(layer, "depthwise_kernel")
        oh, ow, _ = _shape(layer.output_shape)
        return oh * ow * cin * mult * kh * kw
    if kind == "SeparableConv2D":
        kh, kw, cin, mult = _weight_shape(layer, "depthwise_kernel")
        *_, cout = _weight_shape(layer, "pointwise_kernel")
        oh, ow, _ = _shape(layer.output_shape)
        return oh * ow * cin * mult * (kh * kw + cout)
    if kind == "Dense":
        fin, units = _weight_shape(layer, "kernel")
        positions = prod(_shape(layer.output_shape)[:-1])  # Dense on a sequence: once per step
        return positions * fin * units
    if kind in GATES:
        steps, features = _shape(layer.input_shape)
        units = int(layer.units)
        return steps * GATES[kind] * units * (features + units)
    return 0


def _walk(layer, prefix: str, repeat: int, out: list[LayerMacs]) -> None:
    kind = type(layer).__name__
    name = f"{prefix}{layer.name}"
    if kind == "TimeDistributed":
        steps = _shape(layer.input_shape)[0]
        _walk(layer.layer, f"{name}/", repeat * steps, out)
    elif kind == "Bidirectional":
        _walk(layer.forward_layer, f"{name}/", repeat, out)
        _walk(layer.backward_layer, f"{name}/", repeat, out)
    elif hasattr(layer, "layers") and kind in ("Functional", "Model", "Sequential"):
        for inner in layer.layers:
            _walk(inner, f"{name}/", repeat, out)
    else:
        macs = _layer_macs(layer)
        if macs:
            out.append(LayerMacs(name, kind, macs * repeat))


def count_macs(model) -> MacCount:
    """MACs of one sample through ``model`` (a tf_keras model or layer with built shapes)."""
    layers: list[LayerMacs] = []
    if hasattr(model, "layers") and type(model).__name__ in ("Functional", "Model", "Sequential"):
        for layer in model.layers:
            _walk(layer, "", 1, layers)
    else:
        _walk(model, "", 1, layers)
    return MacCount(sum(x.macs for x in layers), tuple(layers))


def split_clip_macs(model) -> dict[str, int]:
    """A clip model's MACs: ``frame`` (the encoder on one frame), ``frames`` (T frames), ``head``
    (RNN + classifier over one window), ``step`` (the streaming step head: one step for all T
    windows in flight), ``clip``."""
    total = count_macs(model)
    encoder = count_macs(model.get_layer("frames_cnn").layer)
    frames = sum(x.macs for x in total.layers if x.name.startswith("frames_cnn/"))
    return {"frame": encoder.total, "frames": frames, "head": total.total - frames, "clip": total.total,
            "step": step_head_macs(model)}


def step_head_macs(model) -> int | None:
    """MACs of one streaming step (``edge_rcnn.core.stepper``): the first layer's input projection once
    (the new frame's feature is shared by all windows), every other product for S slots (the RNN's
    steps per clip: T, or T - 1 for frame pairs). None for a model without edge-rcnn's layer names
    (``rnn_0``.., ``classifier``)."""
    names = {layer.name for layer in model.layers}
    if "rnn_0" not in names or "classifier" not in names:
        return None
    slots = int(model.get_layer("rnn_0").input_shape[1])
    macs, i = 0, 0
    while f"rnn_{i}" in names:
        kernel, recurrent = (w.shape for w in model.get_layer(f"rnn_{i}").get_weights()[:2])
        macs += (1 if i == 0 else slots) * kernel[0] * kernel[1] + slots * recurrent[0] * recurrent[1]
        i += 1
    units, classes = model.get_layer("classifier").get_weights()[0].shape
    return int(macs + slots * units * classes)
