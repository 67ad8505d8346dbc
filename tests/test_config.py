"""ModelConfig validation and serialization; importing edge_rcnn stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_rcnn.config import InputMode, ModelConfig, Normalization, RnnType
from edge_rcnn.errors import ConfigError


def test_defaults_and_roundtrip():
    cfg = ModelConfig(labels=["a", "b", "c"], rnn="gru", input_size=48, normalization="imagenet")
    assert cfg.rnn is RnnType.GRU and cfg.mode is InputMode.CLIP
    assert cfg.input_size == (48, 48) and cfg.labels == ("a", "b", "c")
    assert cfg.input_shape == (16, 48, 48, 3)
    again = ModelConfig.from_json(cfg.to_json())
    assert again == cfg
    assert cfg.to_dict()["rnn"] == "gru" and cfg.to_dict()["input_size"] == [48, 48]


def test_image_mode_shape_and_normalization():
    cfg = ModelConfig(labels=("x", "y"), mode="image", channels=1, normalization=Normalization.UNIT)
    assert cfg.input_shape == (32, 32, 1)
    assert cfg.mean_std == ([0.0], [1.0])
    assert ModelConfig(labels=("x", "y")).mean_std == ([0.5] * 3, [0.5] * 3)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(labels=("a",)), ["labels", "at least 2"]),
        (dict(labels="ab"), ["labels", "list"]),
        (dict(labels=("a", "a")), ["labels", "unique"]),
        (dict(labels=("a", "b"), backbone="vgg"), ["backbone", "'vgg'", "mobilenet", "resnet", "tiny"]),
        (dict(labels=("a", "b"), rnn="transformer"), ["rnn", "'transformer'", "lstm", "gru"]),
        (dict(labels=("a", "b"), mode="video"), ["mode", "clip", "image"]),
        (dict(labels=("a", "b"), frames=1), ["frames", "2..512", "1"]),
        (dict(labels=("a", "b"), frames=True), ["frames"]),
        (dict(labels=("a", "b"), input_size=(8, 8)), ["input_size", "16..1024"]),
        (dict(labels=("a", "b"), channels=2), ["channels", "got 2"]),
        (dict(labels=("a", "b"), dropout=1.0), ["dropout", "[0, 1)"]),
        (dict(labels=("a", "b"), normalization="zscore"), ["normalization", "symmetric"]),
    ],
)
def test_invalid_values_name_argument_and_value(kwargs, words):
    with pytest.raises(ConfigError) as info:
        ModelConfig(**kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown keys.*'colour'"):
        ModelConfig.from_dict({"labels": ["a", "b"], "colour": "red"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_json("{labels")


def test_import_is_cheap_and_tf_free():
    code = "import sys, edge_rcnn, runtimes; import edge_rcnn.cli; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
