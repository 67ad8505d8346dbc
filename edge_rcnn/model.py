"""Build the combined CNN+RNN model, split it for streaming, save and load it.

Layer names are part of the contract with the converters: ``frames_cnn`` (the per-frame
encoder applied over time), ``rnn_0``..``rnn_{L-1}`` and ``classifier``.

clip mode:  (T, H, W, C) -> TimeDistributed(backbone + global average pool) -> (T, F)
            -> RNN x layers -> Dense softmax
image mode: (H, W, C) -> backbone -> (h, w, c) -> rows as a sequence (h, w*c) -> RNN -> Dense
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

from edge_rcnn._keras import keras
from edge_rcnn.backbones import build_backbone
from edge_rcnn.config import InputMode, ModelConfig, RnnType
from edge_rcnn.errors import ModelFileError, first_line

CONFIG_ENTRY = "edge_rcnn_config.json"  # our file inside the .keras zip


def build_frame_encoder(config: ModelConfig, batch_size: int | None = None):
    """One frame ``(H, W, C)`` -> feature vector ``(F,)``: the backbone plus global pooling."""
    k = keras()
    inp = k.Input((*config.input_size, config.channels), batch_size=batch_size, name="frame")
    x = build_backbone(config)(inp)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, x, name="frame_encoder")


def _rnn_layer(config: ModelConfig, index: int, last: bool, unroll: bool | None):
    k = keras()
    if config.rnn is RnnType.LSTM:
        # Not unrolled by default: tf_keras' LSTM converts to the fused int8 TFLite op.
        return k.layers.LSTM(config.units, return_sequences=not last, unroll=bool(unroll), name=f"rnn_{index}")
    # GRU has no fused TFLite op: unrolled it is a straight line of builtins (no WHILE loop).
    return k.layers.GRU(
        config.units, return_sequences=not last, unroll=True if unroll is None else unroll,
        reset_after=True, name=f"rnn_{index}",
    )


def _temporal_stack(config: ModelConfig, x, unroll: bool | None):
    k = keras()
    for i in range(config.layers):
        x = _rnn_layer(config, i, last=i == config.layers - 1, unroll=unroll)(x)
    if config.dropout:
        x = k.layers.Dropout(config.dropout, name="dropout")(x)
    return k.layers.Dense(config.num_classes, activation="softmax", name="classifier")(x)


def build_model(config: ModelConfig, batch_size: int | None = None, unroll: bool | None = None):
    """The full model for ``config``; ``batch_size=1`` gives the static shapes edge devices need."""
    k = keras()
    if config.mode is InputMode.IMAGE:
        inp = k.Input(config.input_shape, batch_size=batch_size, name="image")
        fmap = build_backbone(config)(inp)
        h, w, c = fmap.shape[1:]
        seq = k.layers.Reshape((h, w * c), name="rows")(fmap)
        return k.Model(inp, _temporal_stack(config, seq, unroll), name="rcnn_image")
    inp = k.Input(config.input_shape, batch_size=batch_size, name="frames")
    feats = k.layers.TimeDistributed(build_frame_encoder(config), name="frames_cnn")(inp)
    return k.Model(inp, _temporal_stack(config, feats, unroll), name="rcnn_clip")


def feature_dim(encoder) -> int:
    return int(encoder.output_shape[-1])


def build_temporal_head(config: ModelConfig, features: int, batch_size: int | None = 1, unroll: bool = True):
    """Cached frame features ``(T, F)`` -> class probabilities.

    Unrolled by default so the exported file holds no recurrent state between calls: each call
    reads exactly the T features it is given (the streaming window), as a fresh clip would.
    """
    k = keras()
    inp = k.Input((config.frames, features), batch_size=batch_size, name="features")
    return k.Model(inp, _temporal_stack(config, inp, unroll), name="temporal_head")


def split_for_streaming(model, config: ModelConfig, batch_size: int = 1, unroll: bool = True):
    """``(frame_encoder, window_head)`` with the trained weights of a clip ``model``.

    The window head reads all T features per call (unrolled by default: a TFLite fused LSTM
    would keep state between invokes). ``--streaming`` exports the encoder with a step head
    instead (``edge_rcnn.stepper``: one step for the T windows in flight per frame); this split
    is the clip model's CNN and RNN halves, which the benchmark times apart.
    """
    encoder = frame_encoder_of(model, config, batch_size=batch_size)
    head = build_temporal_head(config, feature_dim(encoder), batch_size=batch_size, unroll=unroll)
    for layer in head.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return encoder, head


def frame_encoder_of(model, config: ModelConfig, batch_size: int | None = 1):
    """The frame encoder (CNN + pooling on one frame) with the trained weights of a clip ``model``."""
    if config.mode is not InputMode.CLIP:
        raise ModelFileError("streaming: only clip-mode models can be split into encoder and head")
    encoder = build_frame_encoder(config, batch_size=batch_size)
    encoder.set_weights(model.get_layer("frames_cnn").layer.get_weights())
    return encoder


def rebuild(model, config: ModelConfig, batch_size: int | None = 1, unroll: bool | None = None):
    """The same weights in a freshly built graph (static batch, or another unroll choice)."""
    fresh = build_model(config, batch_size=batch_size, unroll=unroll)
    fresh.set_weights(model.get_weights())
    return fresh


def save_model(model, config: ModelConfig, path: str | os.PathLike) -> Path:
    """Write ``model.keras`` with our config inside the zip, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as zf:
            zf.writestr(CONFIG_ENTRY, config.to_json())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The ``ModelConfig`` stored in a ``model.keras`` (no TensorFlow needed)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file (expected a .keras file written by edge-rcnn train)")
    try:
        with zipfile.ZipFile(path) as zf:
            if CONFIG_ENTRY not in zf.namelist():
                raise ModelFileError(f"{path}: a Keras file without an edge-rcnn config (was it saved by edge-rcnn?)")
            return ModelConfig.from_json(zf.read(CONFIG_ENTRY).decode("utf-8"))
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path}: not a Keras model (expected a .keras zip file)") from None


def load_model(path: str | os.PathLike):
    """``(model, config)`` from a ``model.keras``; Keras safe mode, so no code from the file runs."""
    config = read_config(path)
    try:
        model = keras().models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError for unknown layers, OSError for I/O
        raise ModelFileError(f"{path}: cannot load the Keras model safely ({first_line(exc)})") from None
    return model, config


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_summary(config: ModelConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True)
