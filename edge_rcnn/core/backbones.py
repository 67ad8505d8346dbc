"""Per-frame 2-D CNN backbones, registered by name.

Each builder takes the model config and returns a Keras model mapping one frame
``(H, W, C)`` to a feature map ``(h, w, c)``. Every layer used here has an int8 TFLite builtin
(Conv2D, DepthwiseConv2D, pooling, ReLU/ReLU6, Add; BatchNormalization folds into the conv),
so all backbones convert to full-int8 TFLite with no float fallback; the converter tests check it
for every entry of this registry.

The ImageNet backbones (:data:`PRETRAINED`) are ``tf_keras.applications`` models without their
classifier and pooling, so the frame encoder keeps their spatial map. Each records the input
range and the normalization its ImageNet weights were trained with; ``ModelConfig`` takes both
from here, and the exported metadata carries the normalization to the runtime. Only the
MobileNetV3 *minimalistic* variants are offered: ReLU and 3x3 kernels, no hard-swish or
squeeze-excite, whose int8 ranges are poor and whose ops the Edge TPU does not all map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edge_rcnn.core._keras import keras

BackboneBuilder = Callable[..., object]
# Faster-moving BN statistics than Keras' 0.99: small datasets give few steps per epoch, and with
# 0.99 the inference statistics lag the weights, so val accuracy swings from one epoch to the next.
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


def scratch_backbones() -> list[str]:
    """The backbones without pretrained weights (small enough for 32-pixel tests)."""
    return sorted(set(BACKBONES) - set(PRETRAINED))


def input_size_range(name: str) -> tuple[int, int]:
    """The smallest and largest input side that backbone ``name`` accepts (ModelConfig's 16..1024
    for those trained from scratch)."""
    entry = PRETRAINED.get(name)
    return entry.sizes if entry else (16, 1024)


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


# Keras' file hashes (tf_keras.applications.mobilenet_v3.WEIGHTS_HASHES, the no-top column).
_V3_NO_TOP_HASHES = {"small": "cde8136e733e811080d9fcd8a252f7e4", "large": "ec5221f64a2f6d1ef965a614bdae7973"}
_KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Pretrained:
    """An ImageNet backbone from ``tf_keras.applications``: how to build it, the input it expects,
    and the file Keras downloads its weights into (``~/.keras/models``)."""

    application: str  # the tf_keras.applications function
    kwargs: dict[str, Any] = field(default_factory=dict)
    # (pixel / 255 - 0.5) / 0.5 = pixel / 127.5 - 1: the [-1, 1] input both MobileNet families were
    # trained on (Keras' mobilenet_v2.preprocess_input; MobileNetV3's own Rescaling layer, left out).
    normalization: str = "symmetric"
    sizes: tuple[int, int] = (96, 224)

    @property
    def family(self) -> str:
        return "mobilenet_v2" if self.application == "MobileNetV2" else "mobilenet_v3"

    def weights_file(self, input_size: tuple[int, int]) -> str:
        """Keras' own file name for the no-top ImageNet weights (the one ``get_file`` caches)."""
        if self.application == "MobileNetV2":
            # Keras keeps one file per square size it was trained at, and 224's for any other size.
            rows = input_size[0] if input_size[0] == input_size[1] and input_size[0] in (96, 128, 160, 192, 224) else 224
            return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(self.kwargs['alpha'])}_{rows}_no_top.h5"
        return f"weights_mobilenet_v3_{self._v3_type}_minimalistic_224_1.0_float_no_top_v2.h5"

    def weights_url(self, input_size: tuple[int, int]) -> str:
        return f"{_KERAS_WEIGHTS_URL}{self.family}/{self.weights_file(input_size)}"

    @property
    def file_hash(self) -> str | None:
        return None if self.application == "MobileNetV2" else _V3_NO_TOP_HASHES[self._v3_type]

    @property
    def _v3_type(self) -> str:
        return "small" if self.application == "MobileNetV3Small" else "large"


PRETRAINED: dict[str, Pretrained] = {}
APPLICATION = "application"  # the tf_keras.applications model inside a pretrained backbone


def keras_cache_dir() -> Path:
    """Where Keras caches downloads: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when that
    is not writable, as Keras' ``get_file`` does); weights go into its ``models`` folder."""
    base = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()
    if base.is_dir() and not os.access(base, os.W_OK):
        base = Path("/tmp/.keras")
    return base


def current_frame(config, pair):
    """The newer frame of a frame pair (its first ``channels`` channels): a fixed 1x1 convolution
    with an identity kernel, an int8 builtin whose weights quantize exactly (no Lambda, which
    Keras' safe mode refuses to load)."""
    import numpy as np

    c = config.channels
    kernel = np.zeros((1, 1, 2 * c, c), np.float32)
    kernel[0, 0, np.arange(c), np.arange(c)] = 1.0
    return keras().layers.Conv2D(c, 1, use_bias=False, trainable=False, name="current_frame",
                                 kernel_initializer=keras().initializers.Constant(kernel.tolist()))(pair)


def build_application(config):
    """The bare ``tf_keras.applications`` model of ``config.backbone``: random weights, one frame in
    (``channels``), its last spatial map out. BatchNormalization uses :data:`BN_MOMENTUM` (Keras'
    0.999 barely moves the statistics in the few steps a small dataset gives)."""
    k, entry = keras(), PRETRAINED[config.backbone]
    app = getattr(k.applications, entry.application)(
        input_shape=(*config.input_size, config.channels), include_top=False, weights=None, **entry.kwargs)
    for layer in app.layers:
        if isinstance(layer, k.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    app._name = APPLICATION  # one name whatever the variant: the weights loader finds it by name
    return app


def _register_pretrained(name: str, entry: Pretrained, doc: str) -> None:
    PRETRAINED[name] = entry

    def build(config):
        # A frame pair (motion=pair/gradient) feeds the ImageNet network its newer frame only; the
        # gradient cues beside the backbone read both frames.
        k = keras()
        inp = _frame_input(config)
        x = current_frame(config, inp) if config.encoder_channels != config.channels else inp
        return k.Model(inp, build_application(config)(x), name="backbone")

    build.__doc__ = doc
    build.__name__ = name
    register_backbone(name)(build)


for _alpha, _tag in ((0.35, "035"), (0.5, "050"), (1.0, "100")):
    _register_pretrained(f"mobilenetv2_{_tag}", Pretrained("MobileNetV2", {"alpha": _alpha}),
                         f"MobileNetV2 at width multiplier {_alpha} (ImageNet weights with --weights imagenet).")
_register_pretrained("mobilenetv3_small", Pretrained(
    "MobileNetV3Small", {"minimalistic": True, "include_preprocessing": False}),
    "MobileNetV3-Small, minimalistic (ReLU, 3x3 kernels, no squeeze-excite).")
_register_pretrained("mobilenetv3_large", Pretrained(
    "MobileNetV3Large", {"minimalistic": True, "include_preprocessing": False}),
    "MobileNetV3-Large, minimalistic (ReLU, 3x3 kernels, no squeeze-excite).")
