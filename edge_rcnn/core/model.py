"""Build the combined CNN+RNN model, split it for streaming, save and load it.

Layer names are part of the contract with the converters: ``frames_cnn`` (the per-frame
encoder applied over time), ``rnn_0``..``rnn_{L-1}`` and ``classifier``.

clip mode:  (T, H, W, C) -> [motion=pair: frames 1..T-1 stacked with frames 0..T-2, (T-1, H, W, 2C)]
            -> TimeDistributed(backbone + layout: projected grid cells or global average)
            -> (steps, F) -> RNN x layers -> Dense softmax
image mode: (H, W, C) -> backbone -> (h, w, c) -> rows as a sequence (h, w*c) -> RNN -> Dense
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_rcnn.core._keras import keras
from edge_rcnn.core.backbones import APPLICATION, BN_MOMENTUM, PRETRAINED, build_backbone, keras_cache_dir
from edge_rcnn.core.config import InputMode, ModelConfig, Motion, RnnType
from edge_rcnn.core.errors import ConfigError, ModelFileError, first_line
from runtimes.modeldir import file_sha256  # noqa: F401  (the one file hash: exports name their source with it)

CONFIG_ENTRY = "edge_rcnn_config.json"  # our file inside the .keras zip


# Scales (pixels averaged per side) at which the gradient cues are computed: a gradient-based
# motion estimate holds for shifts below about one pixel, so each scale covers a faster motion.
CUE_SCALES = (1, 2, 4, 8)
# A gradient saturates at this many grey levels: a cue is about the sign of a gradient, so a faint
# texture tells the direction as well as a strong one. Chosen with a linear probe of the cues on the
# camera set's unseen photographs (benchmarks/results/motion-*.md).
CUE_SATURATION_GREY_LEVELS = 0.25
CUE_MIN_SIDE = 8  # a scale whose map is smaller than this (or than two cells per grid cell) is left out


def build_frame_encoder(config: ModelConfig, batch_size: int | None = None):
    """One encoder input ``(H, W, config.encoder_channels)`` -> feature vector ``(F,)``.

    ``grid`` > 0: a 1x1 projection (BN, ReLU6) then an average over each of ``grid`` x ``grid``
    cells (the last cells are narrower when the map does not divide), flattened: the RNN learns
    where things are and where they go. ``grid=0``: one global average. ``motion=gradient`` mixes
    each cell's appearance with its gradient cues (``gradient_cues``): one learned 1x1 projection
    per source, added, then ReLU6, so the RNN reads ``grid * grid * projection`` features.
    Sources meet in an addition rather than a concatenation: an int8 concatenation of tensors
    with different ranges needs requantize ops, an int8 addition rescales its inputs itself.
    """
    k = keras()
    L = k.layers
    inp = k.Input((*config.input_size, config.encoder_channels), batch_size=batch_size, name="frame")
    fmap = build_backbone(config)(inp)
    if not config.grid and config.motion is not Motion.GRADIENT:
        return k.Model(inp, L.GlobalAveragePooling2D(name="gap")(fmap), name="frame_encoder")
    x = L.Conv2D(config.projection, 1, use_bias=False, name="project_conv")(fmap)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name="project_bn")(x)
    x = L.ReLU(6.0, name="project_relu6")(x)
    cells = _cells(config, x, "grid_pool")
    if config.motion is Motion.GRADIENT:
        sources = [_projected(config, cells, "mix_appearance"), *gradient_cues(config, inp, tuple(cells.shape[1:3]))]
        cells = sources[0]
        for n, source in enumerate(sources[1:]):  # int8 ADD is binary
            cells = L.Add(name=f"mix_add{n}")([cells, source])
        cells = L.ReLU(6.0, name="mix_relu6")(cells)
    return k.Model(inp, L.Flatten(name="cells")(cells), name="frame_encoder")


def _cells(config: ModelConfig, x, name: str, count: tuple[int, int] | None = None):
    """Average ``x`` over ``grid`` x ``grid`` cells, or ``count`` cells per axis (global average for
    ``grid=0``, kept 4-D); the last cells are narrower when the map does not divide."""
    L = keras().layers
    return L.AveragePooling2D(pool := _cell_pool(config, x.shape[1:3], count), strides=pool, padding="same", name=name)(x)


def _cell_pool(config: ModelConfig, size, count=None) -> tuple[int, int]:
    if count is None:
        count = size if not config.grid else tuple(min(config.grid, side) for side in size)
    return tuple(-(-side // n) if config.grid else side for side, n in zip(size, count))


def _cell_count(size, pool) -> tuple[int, int]:
    return tuple(-(-side // p) for side, p in zip(size, pool))


def _projected(config: ModelConfig, x, name: str):
    """A learned 1x1 projection to ``projection`` channels with BN (folded into the conv on export)."""
    L = keras().layers
    x = L.Conv2D(config.projection, 1, use_bias=False, name=f"{name}_conv")(x)
    return L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def _fixed_conv(filters: int, size: int, kernel: np.ndarray, name: str, bias=None):
    L, k = keras().layers, keras()
    bias_init = None if bias is None else k.initializers.Constant(list(bias) if np.ndim(bias) else float(bias))
    return L.Conv2D(filters, size, padding="same", use_bias=bias is not None, trainable=False, name=name,
                    kernel_initializer=k.initializers.Constant(kernel.tolist()),
                    **({"bias_initializer": bias_init} if bias_init is not None else {}))


def gradient_cues(config: ModelConfig, pair, cells: tuple[int, int]) -> list:
    """Motion cues of a frame pair: per scale, the cell averages of its cue terms, projected
    (``cells``: the appearance's cells per axis, which every scale's cells must match).

    ``I`` is the pair's brightness (channel mean), ``Ix, Iy`` its spatial gradient (central
    differences of the two frames' mean) and ``It`` the new frame minus the previous one, each at
    scales 1, 2, 4 (, 8): the image averaged over s x s pixels, so a fast motion is seen where it
    moves less than a pixel. For content moving by ``(u, v)``, ``It = -(u Ix + v Iy)``: where
    ``Ix`` and ``It`` have opposite signs the content moves right, whatever the texture.

    Each gradient is saturated around its sign, ``ReLU6(gain * g + 3)`` (3 is zero), so a cue is
    about signs, not contrast, then split into its positive and negative parts. The terms are the
    products of spatial and temporal parts (``x+ t+``, ``x+ t-``, ...: where content goes) and
    the parts themselves (how much texture and change there is), averaged over each grid cell. A
    pattern over cells says pan, zoom or an object's path.

    Each scale's gradients are one fixed (untrained) convolution straight from the pair's pixels
    (kernel 3s, stride s): an int8 file computes them in 32-bit sums of the input pixels and rounds
    only after the saturation, so it takes the same signs as the float model. The rest is fixed
    1x1 convolutions, one multiplication and average pools: int8 builtins throughout.
    """
    L, k = keras().layers, keras()
    c = config.channels
    # One grey level is 1 / (255 std) in normalized units: the gain saturates at CUE_SATURATION_GREY_LEVELS.
    grey_level = 1.0 / (255.0 * float(np.mean(config.mean_std[1])))
    gain = 3.0 / (CUE_SATURATION_GREY_LEVELS * grey_level)
    # Signed parts [x+, x-, y+, y-, t+, t-] = ReLU6(+-2 (s - 3)) of the saturated gradients s.
    split = np.zeros((1, 1, 3, 6), np.float32)
    for g in range(3):
        split[0, 0, g, 2 * g], split[0, 0, g, 2 * g + 1] = 2.0, -2.0
    # The terms as one product A * B: A picks a spatial part and B a temporal part (8 products),
    # then A picks each part and B is the constant 6 (the parts themselves, on the products' scale).
    pick_a, pick_b = np.zeros((1, 1, 6, 14), np.float32), np.zeros((1, 1, 6, 14), np.float32)
    for n, (spatial, temporal) in enumerate((s, t) for s in range(4) for t in (4, 5)):
        pick_a[0, 0, spatial, n], pick_b[0, 0, temporal, n] = 1.0, 1.0
    for part in range(6):
        pick_a[0, 0, part, 8 + part] = 1.0
    six = [0.0] * 8 + [6.0] * 6
    least = max(CUE_MIN_SIDE, 2 * config.grid)
    scales = []
    for scale in CUE_SCALES:  # each scale whose map is big enough and cuts into the same cells
        size = tuple(-(-side // scale) for side in config.input_size)
        pool = _cell_pool(config, size, cells if config.grid else None)
        if min(size) >= least and _cell_count(size, pool) == (cells if config.grid else (1, 1)):
            scales.append(scale)
    if not scales:
        raise ConfigError(f"motion=gradient: no cue scale of a {config.input_size} input cuts into the "
                          f"{cells} cells of grid={config.grid}; expected a larger input or a smaller grid")
    projected = []
    for n, scale in enumerate(scales):
        kernel = _gradient_kernel(scale, c, gain)
        # The bias 3 centres the saturation. Each scale's bias differs by a thousandth: the TFLite
        # converter merges equal constant tensors, and a bias shared by convolutions whose weights
        # have different scales is quantized for the first of them only (the int8 cues of every
        # other scale would be off).
        y = L.Conv2D(3, kernel.shape[0], strides=scale, padding="same", trainable=False, name=f"cue_gradients{scale}",
                     kernel_initializer=k.initializers.Constant(kernel.tolist()),
                     bias_initializer=k.initializers.Constant(3.0 + 1e-3 * n))(pair)
        y = L.ReLU(6.0, name=f"cue_saturated{scale}")(y)
        y = L.ReLU(6.0, name=f"cue_parts{scale}")(_fixed_conv(6, 1, split, f"cue_split{scale}", [-6.0, 6.0] * 3)(y))
        terms = L.Multiply(name=f"cue_terms{scale}")([
            _fixed_conv(14, 1, pick_a, f"cue_a{scale}")(y), _fixed_conv(14, 1, pick_b, f"cue_b{scale}", six)(y)])
        count = cells if config.grid else None
        projected.append(_projected(config, _cells(config, terms, f"cue_cells{scale}", count), f"mix_cues{scale}"))
    return projected


def _gradient_kernel(scale: int, channels: int, gain: float) -> np.ndarray:
    """``(3s, 3s, 2C, 3)``: ``gain * [Ix, Iy, It]`` of the pair's s x s block averages, as one
    convolution with stride s (the centre block is the output pixel's own block)."""
    s = scale
    kernel = np.zeros((3 * s, 3 * s, 2 * channels, 3), np.float32)
    block = gain / (s * s * channels)  # average over the block and the channels
    centre, before, after = slice(s, 2 * s), slice(0, s), slice(2 * s, 3 * s)
    for frame, sign in ((slice(0, channels), 1.0), (slice(channels, None), -1.0)):
        kernel[centre, after, frame, 0] += block / 4  # half a central difference, half from each frame
        kernel[centre, before, frame, 0] -= block / 4
        kernel[after, centre, frame, 1] += block / 4
        kernel[before, centre, frame, 1] -= block / 4
        kernel[centre, centre, frame, 2] += sign * block  # new frame minus previous one
    return kernel


def frame_pairs(config: ModelConfig, frames):
    """``(T, H, W, C)`` -> ``(T - 1, H, W, 2C)``: frame t stacked with frame t - 1, t = 1..T-1.

    Built from slices and a concatenation (int8 builtins in TFLite, plain ops in ONNX), so the
    exported clip model takes the same T frames as before; a stream runs the encoder once per
    frame on (new frame, previous frame) and keeps the previous frame itself.
    """
    L = keras().layers
    current = L.Cropping3D(((1, 0), (0, 0), (0, 0)), name="frames_current")(frames)
    previous = L.Cropping3D(((0, 1), (0, 0), (0, 0)), name="frames_previous")(frames)
    return L.Concatenate(axis=-1, name="frame_pairs")([current, previous])


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
    steps = frame_pairs(config, inp) if config.pairs else inp
    feats = k.layers.TimeDistributed(build_frame_encoder(config), name="frames_cnn")(steps)
    return k.Model(inp, _temporal_stack(config, feats, unroll), name="rcnn_clip")


def feature_dim(encoder) -> int:
    return int(encoder.output_shape[-1])


def frame_encoder_of(model, config: ModelConfig, batch_size: int | None = 1):
    """The frame encoder (CNN + pooling on one frame) with the trained weights of a clip ``model``."""
    if config.mode is not InputMode.CLIP:
        raise ModelFileError("streaming: only clip-mode models can be split into encoder and head")
    encoder = build_frame_encoder(config, batch_size=batch_size)
    copy_weights(model.get_layer("frames_cnn").layer, encoder)
    return encoder


def rebuild(model, config: ModelConfig, batch_size: int | None = 1, unroll: bool | None = None):
    """The same weights in a freshly built graph (static batch, or another unroll choice)."""
    fresh = build_model(config, batch_size=batch_size, unroll=unroll)
    copy_weights(model, fresh)
    return fresh


def _leaves(layer) -> list:
    """The layers that hold weights, in build order (through nested models and TimeDistributed)."""
    k = keras()
    if isinstance(layer, k.Model):
        return [leaf for inner in layer.layers for leaf in _leaves(inner)]
    if isinstance(layer, k.layers.Wrapper):
        return _leaves(layer.layer)
    return [layer] if layer.weights else []


def copy_weights(source, target) -> None:
    """Copy weights layer by layer between two builds of the same architecture.

    ``Model.get_weights`` lists trainable weights first, so a model saved with its backbone frozen
    (``--freeze-epochs``) orders them unlike a fresh build; layer by layer the order is the build's.
    """
    src, dst = _leaves(source), _leaves(target)
    if len(src) != len(dst):
        raise ModelFileError(f"{source.name}: {len(src)} layers with weights where {target.name} has {len(dst)}")
    for a, b in zip(src, dst):
        b.set_weights(a.get_weights())


# --- Starting weights (--weights) and freezing (--freeze-epochs) -------------------------------

# A previous run's frame encoder fits this one when these agree (they shape its weights or its input).
ENCODER_FIELDS = ("mode", "backbone", "width", "input_size", "channels", "normalization", "motion", "grid", "projection")


@dataclass(frozen=True)
class WeightsSource:
    """Where a new model's starting weights come from: ``kind`` is none, imagenet (``path``: Keras'
    cached file), keras (``path``: a weights file for the backbone) or run (a previous ``model.keras``)."""

    kind: str
    path: Path | None = None
    previous: ModelConfig | None = None


def resolve_weights(config: ModelConfig, weights: str | os.PathLike | None) -> WeightsSource:
    """Check ``--weights`` against ``config`` and find its file, before any training work.

    ``imagenet`` reads Keras' own cache (``$KERAS_HOME/models``, else ``~/.keras/models``) by
    Keras' file name, and downloads into it through Keras' ``get_file`` only when the file is
    absent (``get_file`` with MobileNetV3's hash would download again over a file whose hash
    differs). Offline and not cached: a ``ConfigError`` naming the file, its URL and the folder.
    """
    if weights is None or str(weights) == "none":
        return WeightsSource("none")
    if str(weights) == "imagenet":
        return WeightsSource("imagenet", _imagenet_file(config))
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"--weights {path}: no such file; expected imagenet, none, a Keras weights file (.h5) "
                          f"for backbone {config.backbone}, or a previous run's model.keras")
    if not zipfile.is_zipfile(path):
        return WeightsSource("keras", path)
    previous = read_config(path)
    if previous.mode is InputMode.CLIP and previous.frames != config.frames:
        raise ConfigError(f"--weights {path}: a run with {previous.frames} frames per clip; expected {config.frames} "
                          f"(set --frames {previous.frames}, or start from imagenet or none)")
    differ = [f"{name} {_value(previous, name)} (expected {_value(config, name)})"
              for name in ENCODER_FIELDS if getattr(previous, name) != getattr(config, name)]
    if differ:
        raise ConfigError(f"--weights {path}: its frame encoder differs from this run's: {', '.join(differ)}")
    return WeightsSource("run", path, previous)


def _value(config: ModelConfig, name: str):
    value = getattr(config, name)
    return value.value if hasattr(value, "value") else value


def _imagenet_file(config: ModelConfig) -> Path:
    entry = PRETRAINED.get(config.backbone)
    if entry is None:
        raise ConfigError(f"--weights imagenet: backbone {config.backbone} has no ImageNet weights; expected one of: "
                          f"{', '.join(sorted(PRETRAINED))}")
    if config.channels != 3:
        raise ConfigError(f"--weights imagenet: channels {config.channels}; ImageNet weights expect 3 (colour) "
                          "channels: use --channels 3, or --weights none")
    name, folder = entry.weights_file(config.input_size), keras_cache_dir() / "models"
    if (folder / name).is_file():
        return folder / name
    url = entry.weights_url(config.input_size)
    try:
        return Path(keras().utils.get_file(name, url, cache_subdir="models", cache_dir=str(folder.parent),
                                           file_hash=entry.file_hash))
    except Exception as exc:  # URLError, HTTPError, a failed hash, an unwritable cache: all mean "not here"
        raise ConfigError(f"--weights imagenet: {name} is not in {folder} and cannot be downloaded "
                          f"({first_line(exc)}); download {url} and put it in {folder}/") from None


def weights_holder(model, config: ModelConfig):
    """The part of ``model`` that backbone weights load into and that freezing freezes: the ImageNet
    network inside a pretrained backbone, or the whole backbone."""
    backbone = (model.get_layer("frames_cnn").layer if config.mode is InputMode.CLIP else model).get_layer("backbone")
    return backbone.get_layer(APPLICATION) if config.backbone in PRETRAINED else backbone


def initialise_weights(model, config: ModelConfig, source: WeightsSource) -> str | None:
    """Load ``source`` into a freshly built ``model``; returns a note when a run is reused in part.

    A previous run gives its frame encoder, and its RNN and classifier too when its labels and
    RNN are this run's; a ``ModelFileError`` names a file that does not fit.
    """
    if source.kind == "none":
        return None
    if source.kind in ("imagenet", "keras"):
        holder = weights_holder(model, config)
        try:
            holder.load_weights(str(source.path))
        except Exception as exc:  # ValueError for a layer or shape mismatch, OSError for a non-HDF5 file
            expected = PRETRAINED[config.backbone].weights_file(config.input_size) if config.backbone in PRETRAINED else "weights saved from it"
            raise ModelFileError(f"{source.path}: not weights for backbone {config.backbone} with a "
                                 f"{config.input_size[0]}x{config.input_size[1]}x{config.channels} input "
                                 f"({first_line(exc)}); expected Keras' {expected}") from None
        return None
    previous, prev = load_model(source.path)
    part = (lambda m: m.get_layer("frames_cnn")) if config.mode is InputMode.CLIP else (lambda m: m.get_layer("backbone"))
    copy_weights(part(previous), part(model))
    head = [f"rnn_{i}" for i in range(config.layers)] + ["classifier"]
    same_head = (prev.labels == config.labels and (prev.rnn, prev.units, prev.layers) == (config.rnn, config.units, config.layers))
    if same_head:
        for name in head:
            copy_weights(previous.get_layer(name), model.get_layer(name))
        return None
    why = "its labels differ" if prev.labels != config.labels else "its RNN differs"
    return (f"--weights {source.path}: reusing its frame encoder only ({why}: "
            f"{list(prev.labels)} {prev.rnn.value} {prev.units}x{prev.layers}); the RNN and classifier start afresh")


def set_backbone_trainable(model, config: ModelConfig, trainable: bool) -> None:
    """Freeze or unfreeze the backbone's weights (``weights_holder``). Frozen, its BatchNormalization
    layers also run in inference mode (tf_keras runs a non-trainable BatchNormalization with
    ``training=False``): they keep the statistics they came with. Recompile after a change."""
    weights_holder(model, config).trainable = trainable


def backbone_frozen(model, config: ModelConfig) -> bool:
    """Whether no backbone weight trains. Asked of the weights, not of the holder's flag: a saved
    model keeps each layer's flag but not a nested model's own."""
    return not weights_holder(model, config).trainable_weights


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
    # The config travels beside the weights in the zip: both must describe the same model.
    got, want = (tuple(model.input_shape[1:]), model.output_shape[-1]), (tuple(config.input_shape), config.num_classes)
    if got != want:
        raise ModelFileError(f"{path}: its edge-rcnn config ({want[0]} input, {want[1]} labels) disagrees with its "
                             f"Keras model ({got[0]} input, {got[1]} outputs); expected a file saved by edge-rcnn train")
    return model, config
