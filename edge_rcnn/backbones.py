"""Per-frame 2-D CNN backbones, registered by name.

Each builder takes the model config and returns a Keras model mapping one frame
``(H, W, C)`` to a feature map ``(h, w, c)``. Every layer used here has an int8 TFLite builtin
(Conv2D, DepthwiseConv2D, pooling, ReLU/ReLU6, Add; BatchNormalization folds into the conv),
so all backbones convert to full-int8 TFLite with no float fallback; the converter tests check it
for every entry of this registry.
"""

from __future__ import annotations

from typing import Callable

from edge_rcnn._keras import keras

BackboneBuilder = Callable[..., object]
# Faster-moving BN statistics than Keras' 0.99: small datasets give few steps per epoch, and with
# 0.99 val accuracy swung between 30% and 96% from one epoch to the next (measured on moving digits).
BN_MOMENTUM = 0.9
BACKBONES: dict[str, BackboneBuilder] = {}


def register_backbone(name: str) -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: make ``fn(config)`` available as ``ModelConfig(backbone=name)``."""

    def wrap(fn: BackboneBuilder) -> BackboneBuilder:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        BACKBONES[name] = fn
        return fn

    return wrap


def build_backbone(config) -> object:
    """Build ``config.backbone`` (a Keras model named ``backbone``)."""
    return BACKBONES[config.backbone](config)


def _frame_input(config):
    # A frame, or (motion=pair) a frame stacked with the previous one on channels.
    return keras().Input((*config.input_size, config.encoder_channels), name="frame")


@register_backbone("tiny")
def tiny(config):
    """The classic RCNN recipe: two conv + max-pool stages."""
    k = keras()
    L, w = k.layers, config.width
    inp = _frame_input(config)
    x = L.Conv2D(w, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.MaxPooling2D(2, name="pool1")(x)
    x = L.Conv2D(2 * w, 3, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(2, name="pool2")(x)
    return k.Model(inp, x, name="backbone")


def _conv_bn(x, filters, kernel, stride, name, activation="relu6"):
    L = keras().layers
    x = L.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if activation == "relu6":
        return L.ReLU(6.0, name=f"{name}_relu6")(x)
    if activation == "relu":
        return L.ReLU(name=f"{name}_relu")(x)
    return x


@register_backbone("mobilenet")
def mobilenet(config):
    """MobileNet-v1 style depthwise-separable blocks with ReLU6: the edge default."""
    k = keras()
    L, w = k.layers, config.width
    inp = _frame_input(config)
    x = _conv_bn(inp, w, 3, 2, "stem")
    for i, (filters, stride) in enumerate([(2 * w, 1), (4 * w, 2), (4 * w, 1), (8 * w, 2)]):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"dw{i}_bn")(x)
        x = L.ReLU(6.0, name=f"dw{i}_relu6")(x)
        x = _conv_bn(x, filters, 1, 1, f"pw{i}")
    return k.Model(inp, x, name="backbone")


@register_backbone("resnet")
def resnet(config):
    """Small ResNet: basic residual blocks, projection shortcut where the shape changes."""
    k = keras()
    L, w = k.layers, config.width
    inp = _frame_input(config)
    x = _conv_bn(inp, w, 3, 1, "stem", activation="relu")
    for i, (filters, stride) in enumerate([(w, 1), (2 * w, 2), (4 * w, 2)]):
        shortcut = x
        y = _conv_bn(x, filters, 3, stride, f"res{i}a", activation="relu")
        y = _conv_bn(y, filters, 3, 1, f"res{i}b", activation=None)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = _conv_bn(shortcut, filters, 1, stride, f"res{i}proj", activation=None)
        x = L.Add(name=f"res{i}_add")([y, shortcut])
        x = L.ReLU(name=f"res{i}_relu")(x)
    return k.Model(inp, x, name="backbone")
