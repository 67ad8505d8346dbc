"""ImageNet backbones from tf_keras.applications, --weights imagenet|none|PATH, freezing.

Nothing here reaches the network: ImageNet weights are files made at test time from the same
architecture (random weights, saved under Keras' own file name in a temporary ``KERAS_HOME``),
and Keras' ``get_file`` is replaced by one that fails as an offline machine's does.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from conftest import TINY_FRAMES, tiny_model_config

from edge_rcnn.core.backbones import PRETRAINED
from edge_rcnn.core.config import ModelConfig, Normalization
from edge_rcnn.core.errors import ConfigError, ModelFileError

SMALL = dict(input_size=(96, 96), frames=4, units=8)  # the smallest input the ImageNet backbones take


def pretrained_config(backbone="mobilenetv2_035", **overrides):
    return tiny_model_config(backbone=backbone, **{**SMALL, **overrides})


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache, and a ``get_file`` that fails as it does with no network; returns the
    cache folder and the list of files ``get_file`` was asked for."""
    from edge_rcnn.core._keras import keras

    asked = []

    def no_network(fname, origin=None, **kwargs):
        asked.append(fname)
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in name resolution")

    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(keras().utils, "get_file", no_network)
    return home, asked


def _cache_imagenet_file(config, home, seed=1):
    """Random weights of ``config``'s ImageNet network saved where Keras caches the real ones."""
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.backbones import build_application

    keras().utils.set_random_seed(seed)
    app = build_application(config)
    path = home / "models" / PRETRAINED[config.backbone].weights_file(config.input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    app.save_weights(str(path))
    return path, app.get_weights()


# ---------------------------------------------------------------- config (no TensorFlow)

@pytest.mark.parametrize("backbone", sorted(PRETRAINED))
def test_pretrained_backbones_take_their_weights_normalization_and_refuse_another(backbone):
    config = ModelConfig(labels=("a", "b"), backbone=backbone, input_size=(96, 128))
    assert config.normalization is Normalization.SYMMETRIC  # x / 127.5 - 1, what the MobileNets were trained on
    assert config.mean_std == ([0.5] * 3, [0.5] * 3)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError) as err:
        ModelConfig(labels=("a", "b"), backbone=backbone, input_size=96, normalization="imagenet")
    assert "\n" not in str(err.value) and f"backbone {backbone} expects symmetric" in str(err.value)
    assert ModelConfig(labels=("a", "b"), backbone=backbone, input_size=96, normalization="symmetric") == \
        ModelConfig(labels=("a", "b"), backbone=backbone, input_size=96)


@pytest.mark.parametrize("size", [(95, 96), (96, 225), (32, 32)])
def test_pretrained_backbones_refuse_sizes_outside_96_to_224(size):
    with pytest.raises(ConfigError) as err:
        ModelConfig(labels=("a", "b"), backbone="mobilenetv3_small", input_size=size)
    assert "\n" not in str(err.value) and "expects each side in 96..224" in str(err.value) and str(size) in str(err.value)


def test_pretrained_backbones_refuse_a_bare_frame_pair():
    with pytest.raises(ConfigError) as err:
        ModelConfig(labels=("a", "b"), backbone="mobilenetv2_035", input_size=96, motion="pair")
    assert "\n" not in str(err.value) and "motion=pair" in str(err.value) and "newer frame only" in str(err.value)
    assert ModelConfig(labels=("a", "b"), backbone="mobilenetv2_035", input_size=96, motion="none").encoder_channels == 3


def test_from_scratch_backbones_keep_any_normalization():
    assert ModelConfig(labels=("a", "b")).normalization is Normalization.SYMMETRIC
    assert ModelConfig(labels=("a", "b"), normalization="imagenet").normalization is Normalization.IMAGENET


def test_imagenet_weights_need_an_imagenet_backbone_and_three_channels(offline):
    from edge_rcnn.core.model import resolve_weights

    for config, words in ((tiny_model_config(), ["backbone tiny has no ImageNet weights", "mobilenetv2_035"]),
                          (pretrained_config(channels=1), ["channels 1", "expect 3"])):
        with pytest.raises(ConfigError) as err:
            resolve_weights(config, "imagenet")
        assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)
    assert offline[1] == []  # refused before any download


# ---------------------------------------------------------------- --weights imagenet

@pytest.mark.slow  # an ImageNet-sized network built twice per backbone
@pytest.mark.parametrize("backbone", ["mobilenetv2_035", "mobilenetv3_small"])
def test_imagenet_weights_come_from_keras_cache_and_are_loaded(offline, backbone):
    """A file under Keras' name in $KERAS_HOME/models is used as it is: no download, no hash check
    (Keras' MobileNetV3 loader would download again over a file whose hash differs)."""
    from edge_rcnn.core.model import build_model, initialise_weights, resolve_weights, weights_holder

    home, asked = offline
    config = pretrained_config(backbone)
    path, saved = _cache_imagenet_file(config, home)
    source = resolve_weights(config, "imagenet")
    assert source.kind == "imagenet" and source.path == path and asked == []
    model = build_model(config)
    before = weights_holder(model, config).get_weights()
    assert initialise_weights(model, config, source) is None
    loaded = weights_holder(model, config).get_weights()
    assert len(loaded) == len(saved) and all(np.array_equal(a, b) for a, b in zip(loaded, saved))
    assert not all(np.array_equal(a, b) for a, b in zip(before, loaded))
    # Used: the encoder's backbone now computes the saved network's map of the newer frame.
    from edge_rcnn.core.backbones import build_application

    reference = build_application(config)
    reference.set_weights(saved)
    frame = np.random.default_rng(0).uniform(-1, 1, (1, 96, 96, 6)).astype("float32")
    backbone_model = model.get_layer("frames_cnn").layer.get_layer("backbone")
    np.testing.assert_allclose(backbone_model(frame, training=False).numpy(),
                               reference(frame[..., :3], training=False).numpy(), atol=1e-5)


def test_offline_without_a_cached_file_is_one_line_naming_the_file_and_the_folder(offline):
    from edge_rcnn.core.model import resolve_weights

    home, asked = offline
    config = pretrained_config("mobilenetv2_050", input_size=(160, 160))
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_160_no_top.h5"
    with pytest.raises(ConfigError) as err:
        resolve_weights(config, "imagenet")
    message = str(err.value)
    assert "\n" not in message and asked == [name]
    assert f"{name} is not in {home / 'models'}" in message and f"put it in {home / 'models'}/" in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + name in message
    assert not (home / "models" / name).exists()


def test_keras_file_names_follow_keras_own_rules():
    v2, v3 = PRETRAINED["mobilenetv2_100"], PRETRAINED["mobilenetv3_large"]
    assert v2.weights_file((128, 128)) == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5"
    assert v2.weights_file((100, 100)) == v2.weights_file((96, 128)) == v2.weights_file((224, 224))  # 224's otherwise
    assert v3.weights_file((96, 96)) == "weights_mobilenet_v3_large_minimalistic_224_1.0_float_no_top_v2.h5"


# ---------------------------------------------------------------- --weights PATH

@pytest.mark.slow  # two ImageNet-sized networks built
def test_a_weights_file_for_another_architecture_is_one_line(offline, tmp_path):
    from edge_rcnn.core.model import build_model, initialise_weights, resolve_weights

    other, _ = _cache_imagenet_file(pretrained_config("mobilenetv2_050"), offline[0])
    config = pretrained_config("mobilenetv2_035")
    source = resolve_weights(config, other)
    assert source.kind == "keras"
    with pytest.raises(ModelFileError) as err:
        initialise_weights(build_model(config), config, source)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(other)) and "backbone mobilenetv2_035 with a 96x96x3 input" in message
    with pytest.raises(ConfigError, match="no such file"):
        resolve_weights(config, tmp_path / "missing.h5")


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, digits_dir):
    """A real run (tiny model, 1 epoch) whose model.keras later runs start from."""
    from edge_rcnn.core.train import TrainConfig, train

    run = tmp_path_factory.mktemp("first_run")
    train(digits_dir, run, tiny_model_config(), TrainConfig(epochs=1, batch=8, seed=0))
    return run / "model.keras"


@pytest.mark.slow  # one_epoch_run: a training run
def test_a_previous_run_gives_its_encoder_and_with_the_same_labels_its_rnn(one_epoch_run):
    from edge_rcnn.core.model import build_model, initialise_weights, load_model, resolve_weights

    previous, _ = load_model(one_epoch_run)
    config = tiny_model_config()
    source = resolve_weights(config, one_epoch_run)
    assert source.kind == "run" and source.previous == config
    model = build_model(config)
    assert initialise_weights(model, config, source) is None
    for name in ("frames_cnn", "rnn_0", "classifier"):
        assert all(np.array_equal(a, b) for a, b in zip(model.get_layer(name).get_weights(),
                                                        previous.get_layer(name).get_weights())), name
    x = np.random.default_rng(0).normal(size=(2, *config.input_shape)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), previous(x).numpy(), atol=1e-6)


@pytest.mark.slow  # one_epoch_run: a training run
def test_a_previous_run_with_other_labels_gives_its_encoder_only_and_says_so(one_epoch_run):
    from edge_rcnn.core.model import build_model, initialise_weights, load_model, resolve_weights

    previous, _ = load_model(one_epoch_run)
    config = tiny_model_config(labels=("door_open", "door_closed", "person"))
    model = build_model(config)
    fresh_classifier = model.get_layer("classifier").get_weights()
    note = initialise_weights(model, config, resolve_weights(config, one_epoch_run))
    assert "\n" not in note and "frame encoder only" in note and "labels differ" in note and str(one_epoch_run) in note
    assert all(np.array_equal(a, b) for a, b in zip(model.get_layer("frames_cnn").get_weights(),
                                                    previous.get_layer("frames_cnn").get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_layer("classifier").get_weights(), fresh_classifier))


@pytest.mark.slow  # one_epoch_run: a training run
@pytest.mark.parametrize("change, words", [
    (dict(frames=TINY_FRAMES + 4), ["a run with 8 frames per clip", "expected 12"]),
    (dict(width=8), ["frame encoder differs", "width 4 (expected 8)"]),
    (dict(motion="none"), ["motion gradient (expected none)"]),
])
def test_a_previous_run_that_does_not_fit_is_one_line(one_epoch_run, change, words):
    from edge_rcnn.core.model import resolve_weights

    with pytest.raises(ConfigError) as err:
        resolve_weights(tiny_model_config(**change), one_epoch_run)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"--weights {one_epoch_run}") and all(w in message for w in words)


# ---------------------------------------------------------------- freezing

@pytest.mark.slow  # an ImageNet-sized network trained a few steps
def test_a_frozen_backbone_keeps_its_weights_and_batchnorm_statistics_while_the_head_learns():
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import backbone_frozen, build_model, rebuild, set_backbone_trainable, weights_holder

    config = pretrained_config("mobilenetv3_small")
    keras().utils.set_random_seed(0)
    model = build_model(config)
    set_backbone_trainable(model, config, False)
    assert backbone_frozen(model, config)
    model.compile(optimizer=keras().optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(4, *config.input_shape)).astype("float32")
    y = np.array([0, 1, 2, 3])
    holder_before = [w.copy() for w in weights_holder(model, config).get_weights()]  # BN moving stats included
    head_before = model.get_layer("classifier").get_weights()[0].copy()
    model.train_on_batch(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(holder_before, weights_holder(model, config).get_weights()))
    assert not np.array_equal(head_before, model.get_layer("classifier").get_weights()[0])
    # A model with a frozen backbone lists its weights in another order; a rebuild still copies them right.
    np.testing.assert_allclose(rebuild(model, config, batch_size=None)(x).numpy(), model(x).numpy(), atol=1e-5)
    set_backbone_trainable(model, config, True)
    model.compile(optimizer=keras().optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    assert not all(np.array_equal(a, b) for a, b in zip(holder_before, weights_holder(model, config).get_weights()))


# ---------------------------------------------------------------- int8, verification, streaming

def _fit_batchnorm(model, x) -> None:
    """BatchNorm statistics that fit ``x``, as a trained network's fit its data. Untrained, a deep
    MobileNetV3's map fades layer by layer to about 1e-9, a range no int8 scale represents."""
    from edge_rcnn.core._keras import keras

    norms = [layer for layer in model.submodules if isinstance(layer, keras().layers.BatchNormalization)]
    kept = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become this batch's
    model(x, training=True)
    for layer, momentum in zip(norms, kept):
        layer.momentum = momentum


@pytest.mark.slow  # an ImageNet-sized network quantized with its streaming parts, per backbone
@pytest.mark.parametrize("backbone", sorted(PRETRAINED))
def test_each_imagenet_backbone_converts_to_full_int8_verifies_and_streams(backbone, digits_dir, tmp_path):
    import runtimes
    from converters import quantize
    from converters.tflite import check_ops
    from edge_rcnn.core.model import build_model, save_model

    config = pretrained_config(backbone)
    model = build_model(config)
    _fit_batchnorm(model, np.random.default_rng(1).uniform(-1, 1, (4, *config.input_shape)).astype("float32"))
    model_path = save_model(model, config, tmp_path / "model.keras")
    out = tmp_path / "int8"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration clips: a warning, on purpose
        report = quantize(model_path, digits_dir, out, formats="tflite", streaming=True, split="train",
                          samples=4, verify_samples=4, max_drop=100, progress=False)
    assert report.passed
    for name in ("model_int8.tflite", "stream_encoder_int8.tflite"):
        assert check_ops((out / name).read_bytes(), full_integer=True) == [], name
    p = runtimes.load(out)
    assert tuple(p.spec.frame.mean) == (0.5,) * 3 and tuple(p.spec.frame.std) == (0.5,) * 3  # the backbone's normalization
    video = np.random.default_rng(0).integers(0, 256, (config.frames + 2, 96, 96, 3), dtype=np.uint8)
    stream = p.stream()
    pushed = [stream.push(frame) for frame in video]
    assert pushed[: config.frames - 1] == [None] * (config.frames - 1)
    assert all(r is not None and np.isfinite(r.probs).all() for r in pushed[config.frames - 1 :])


# ---------------------------------------------------------------- train: --weights, --freeze-epochs, resume

def _small_train(**overrides):
    from edge_rcnn.core.train import TrainConfig

    return TrainConfig(**{**dict(epochs=2, batch=8, seed=0, lr=2e-3), **overrides})


@pytest.mark.slow  # three training runs
def test_freeze_then_fine_tune_at_a_tenth_of_the_rate_and_resume_across_the_switch(one_epoch_run, digits_dir, tmp_path):
    from edge_rcnn.core.model import backbone_frozen, load_model, weights_holder
    from edge_rcnn.core.train import FINE_TUNE_LR_FACTOR, _load_keras, train

    config = tiny_model_config()
    source, _ = load_model(one_epoch_run)
    whole = train(digits_dir, tmp_path / "whole", config, _small_train(weights=str(one_epoch_run), freeze_epochs=1))
    assert whole.history["lr"] == pytest.approx([2e-3, 2e-3 * FINE_TUNE_LR_FACTOR])
    # Stopped after the frozen epoch: the backbone is still the source run's, weight for weight.
    part = tmp_path / "part"
    train(digits_dir, part, config, _small_train(epochs=1, weights=str(one_epoch_run), freeze_epochs=1))
    frozen = _load_keras(part / "last.keras", compile=False)
    assert backbone_frozen(frozen, config)
    assert all(np.array_equal(a, b) for a, b in zip(weights_holder(frozen, config).get_weights(),
                                                    weights_holder(source, config).get_weights()))
    assert json.loads((part / "state.json").read_text())["train_config"]["freeze_epochs"] == 1
    resumed = train(digits_dir, part, config, _small_train(weights=str(one_epoch_run), freeze_epochs=1))
    assert resumed.history["lr"] == pytest.approx(whole.history["lr"])
    a, _ = load_model(whole.model_path)
    b, _ = load_model(resumed.model_path)
    assert not backbone_frozen(b, config)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_cli_weights_errors_are_one_line_and_exit_2_before_training(offline, digits_dir, tmp_path, capsys):
    from edge_rcnn.cli import main

    base = ["train", str(digits_dir), "--frames", str(TINY_FRAMES), "--epochs", "1"]
    cases = [
        (["--backbone", "mobilenetv2_035", "--size", "96", "--weights", "imagenet"],
         ["mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5", str(offline[0] / "models")]),
        (["--backbone", "mobilenetv2_035", "--size", "96", "--channels", "1", "--weights", "imagenet"], ["channels 1"]),
        (["--backbone", "tiny", "--freeze-epochs", "1"], ["--freeze-epochs", "--weights none"]),
        (["--backbone", "mobilenetv3_small", "--size", "64"], ["expects each side in 96..224"]),
        (["--backbone", "mobilenetv3_small", "--size", "96", "--normalization", "imagenet"], ["expects symmetric"]),
    ]
    for n, (extra, words) in enumerate(cases):
        out = tmp_path / f"run{n}"
        assert main([*base, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and all(w in err for w in words), err
        assert not (out / "model.keras").exists() and not (out / "last.keras").exists()
