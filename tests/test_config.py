"""ModelConfig validation and serialization; importing edge_rcnn stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_rcnn.core.config import InputMode, ModelConfig, Normalization, RnnType
from edge_rcnn.core.errors import ConfigError


def test_defaults_and_roundtrip():
    cfg = ModelConfig(labels=["a", "b", "c"], rnn="gru", input_size=48, normalization="imagenet")
    assert cfg.rnn is RnnType.GRU and cfg.mode is InputMode.CLIP
    assert cfg.input_size == (48, 48) and cfg.labels == ("a", "b", "c")
    assert cfg.input_shape == (16, 48, 48, 3)
    again = ModelConfig.from_json(cfg.to_json())
    assert again == cfg
    assert cfg.to_dict()["rnn"] == "gru" and cfg.to_dict()["input_size"] == [48, 48]


def test_clip_models_default_to_frame_pairs_with_gradient_cues_on_a_grid():
    from edge_rcnn.core.config import Motion

    cfg = ModelConfig(labels=["a", "b"], frames=8)
    assert cfg.motion is Motion.GRADIENT and cfg.grid == 4 and cfg.steps == 7 and cfg.encoder_channels == 6
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    image = ModelConfig(labels=["a", "b"], mode="image")
    assert image.motion is Motion.NONE and image.grid == 0 and image.steps == 16


def test_a_config_saved_before_motion_and_grid_existed_describes_the_old_model():
    from edge_rcnn.core.config import Motion

    old = ModelConfig(labels=["a", "b"]).to_dict()
    del old["motion"], old["grid"], old["projection"]
    cfg = ModelConfig.from_dict(old)
    assert cfg.motion is Motion.NONE and cfg.grid == 0 and cfg.steps == cfg.frames


@pytest.mark.parametrize("kwargs, message", [
    ({"motion": "flow"}, "motion: unknown value 'flow'"),
    ({"grid": -1}, "grid: expected an integer in 0..32"),
    ({"projection": 0}, "projection: expected an integer in 1..512"),
    ({"mode": "image", "motion": "pair"}, "clip-mode settings"),
    ({"mode": "image", "grid": 4}, "clip-mode settings"),
])
def test_bad_motion_settings_name_the_argument(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(labels=["a", "b"], **kwargs)


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
