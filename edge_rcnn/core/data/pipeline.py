"""``tf.data`` input pipeline for training: decode with OpenCV in parallel, cache, augment, batch.

TensorFlow is imported inside :func:`make_dataset` only (``import edge_rcnn.core.data`` stays cheap).
Augmentation (training only) is seeded and stateless: the same ``seed`` gives the same batches.

The rule for augmentations: one that can change what a motion means (a horizontal mirror turns
"left" into "right") runs only when the user says the labels survive it, or says which label each
one becomes (``flip_pairs``); crop and brightness keep every motion, so they always run.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from edge_rcnn.core._keras import tf as get_tf
from edge_rcnn.core.config import InputMode, ModelConfig
from edge_rcnn.core.data.clips import ClipError, ClipRef, DataWarning, read_sample
from edge_rcnn.core.errors import ConfigError, DataError

MAX_CROP = 0.10  # random crop: up to this fraction of each side, then resized back
MAX_BRIGHTNESS = 0.10  # brightness jitter, as a fraction of the full 0..255 range
# Words (label parts split at _ - and space) whose meaning a horizontal mirror turns around.
DIRECTION_WORDS = frozenset({
    "left", "right", "leftward", "leftwards", "rightward", "rightwards", "clockwise", "counterclockwise",
    "anticlockwise", "cw", "ccw", "east", "west", "eastward", "eastwards", "westward", "westwards",
    "northeast", "northwest", "southeast", "southwest",
})

FlipPairs = tuple[tuple[str, str], ...]


def label_indices(refs: Sequence[ClipRef], config: ModelConfig) -> np.ndarray:
    """``config.labels.index(ref.label)`` for each ref; ``DataError`` naming unknown labels."""
    unknown = sorted({r.label for r in refs} - set(config.labels))
    if unknown:
        raise DataError(f"labels {unknown} (e.g. {next(r.path for r in refs if r.label in unknown)}) "
                        f"are not among the model's labels {list(config.labels)}")
    return np.array([config.labels.index(r.label) for r in refs], np.int64)


def check_flip_pairs(pairs, labels: Sequence[str] | None = None, *, source: str = "flip_pairs",
                     error: type[Exception] = ConfigError) -> FlipPairs:
    """``pairs`` as ``((label, its mirror's label), ...)``.

    Raises ``error`` naming ``source`` unless each pair is two different names, of ``labels`` when
    given, and no name is in two pairs.
    """
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise error(f"{source}: expected a list of [label, mirrored label] pairs, got {pairs!r}")
    seen: dict[str, list[str]] = {}
    for pair in pairs:
        if (isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2
                or not all(isinstance(name, str) and name for name in pair)):
            raise error(f"{source}: expected each pair as two label names, got {pair!r}")
        if pair[0] == pair[1]:
            raise error(f"{source}: {pair[0]!r} is paired with itself; a label that a mirror keeps needs no pair")
        for name in pair:
            if labels is not None and name not in labels:
                raise error(f"{source}: {name!r} is not a label; the labels are: {', '.join(labels)}")
            if name in seen:
                raise error(f"{source}: {name!r} is in two pairs, {seen[name]} and {list(pair)}")
            seen[name] = list(pair)
    return tuple((a, b) for a, b in pairs)


def flip_label_map(labels: Sequence[str], pairs) -> np.ndarray:
    """``int64 [len(labels)]``: the label index of a mirrored clip of each label (itself when in no pair)."""
    labels = list(labels)
    table = np.arange(len(labels), dtype=np.int64)
    for a, b in check_flip_pairs(pairs, labels):
        table[labels.index(a)], table[labels.index(b)] = labels.index(b), labels.index(a)
    return table


def unpaired_direction_labels(labels: Sequence[str], pairs) -> list[str]:
    """The labels that name a left/right direction (:data:`DIRECTION_WORDS`) and are in no pair."""
    paired = {name for pair in pairs for name in pair}
    return [label for label in labels if label not in paired
            and DIRECTION_WORDS & set(re.split(r"[_\- ]+", label.lower()))]


def make_dataset(
    refs: Sequence[ClipRef], config: ModelConfig, *, batch: int, training: bool, seed: int = 0,
    flip: bool = False, flip_pairs: Sequence[tuple[str, str]] = (), cache: bool = True,
    augment: bool | None = None,
):
    """A ``tf.data.Dataset`` of ``(float32 [B, *config.input_shape] normalized, int64 [B] labels)``.

    ``training`` shuffles (seeded, reshuffled each epoch) and, unless ``augment=False``,
    augments: the same random crop (up to 10% per side, resized back) for all T frames of a
    clip, brightness jitter, and a horizontal flip when ``flip`` is set. A mirrored clip takes
    its label's partner in ``flip_pairs`` (``("left", "right")``); labels in no pair keep
    theirs, and one ``DataWarning`` names those that hold a direction word. Otherwise order
    and values are deterministic. ``cache`` keeps decoded uint8 clips in memory after the
    first epoch. Clips that fail to decode are dropped with a warning.

    The k-th pass over a training dataset is shuffled by TensorFlow's k-th draw from ``seed``, so a
    new dataset starts over at the first; :func:`make_epoch_datasets` gives each epoch its own.
    """
    build = _pipeline(refs, config, batch=batch, training=training, flip=flip, flip_pairs=flip_pairs, cache=cache,
                      augment=augment)
    return build(seed, seed, reshuffle=True)


def make_epoch_datasets(
    refs: Sequence[ClipRef], config: ModelConfig, *, batch: int, seed: int = 0, flip: bool = False,
    flip_pairs: Sequence[tuple[str, str]] = (), cache: bool = True, augment: bool = True,
) -> Callable[[int], Any]:
    """For training: ``epoch -> tf.data.Dataset``, as :func:`make_dataset` with ``training=True``.

    Epoch k's order and augmentation depend on ``(seed, k)`` alone (:func:`epoch_seeds`), not on
    how many epochs this process ran before: a run resumed at epoch k sees the batches an
    uninterrupted run sees at epoch k. The epochs share one cache of decoded clips.
    """
    build = _pipeline(refs, config, batch=batch, training=True, flip=flip, flip_pairs=flip_pairs, cache=cache,
                      augment=augment)

    def epoch_dataset(epoch: int):
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ConfigError(f"epoch: expected an integer >= 0, got {epoch!r}")
        return build(*epoch_seeds(seed, int(epoch)), reshuffle=False)

    return epoch_dataset


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """``(shuffle seed, augmentation seed)`` of one training epoch, from ``(seed, epoch)`` alone."""
    shuffle, noise = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2)
    return int(shuffle), int(noise)


def _pipeline(refs, config: ModelConfig, *, batch, training: bool, flip: bool, flip_pairs, cache: bool,
              augment: bool | None) -> Callable[..., Any]:
    """Check the arguments and decode once; return ``build(shuffle_seed, noise_seed, reshuffle)``."""
    tf = get_tf()
    refs = tuple(refs)
    if not refs:
        raise DataError("make_dataset: no clips given; expected at least one ClipRef")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise DataError(f"batch: expected a positive integer, got {batch!r}")
    labels = label_indices(refs, config)
    augment = training if augment is None else bool(augment)
    mirror = flip_label_map(config.labels, flip_pairs)  # checked even when unused: a typo stops here
    unpaired = unpaired_direction_labels(config.labels, flip_pairs) if flip and augment else []
    if unpaired:
        warnings.warn(f"horizontal flips are on, but labels {unpaired} name a direction and have no flip pair, "
                      "so a mirrored clip keeps a label it no longer shows; give flip_pairs (--flip-pairs a:b) "
                      "or turn flips off (--flip no)", DataWarning, stacklevel=3)
    shape = config.input_shape

    def decode(i):
        ref = refs[int(i)]
        try:
            return read_sample(ref, config)[0], True
        except ClipError as exc:
            warnings.warn(f"skipping a clip that does not decode: {exc}", DataWarning, stacklevel=1)
            return np.zeros(shape, np.uint8), False

    def decode_tf(i, y):
        x, ok = tf.numpy_function(decode, [i], [tf.uint8, tf.bool], stateful=False)
        x.set_shape(shape)
        ok.set_shape(())
        return x, y, ok

    mean, std = (tf.constant(v, tf.float32) for v in config.mean_std)

    def decoded_ok(x, y, ok):
        return ok

    def drop_flag(x, y, ok):
        return x, y

    def to_float(x, y):
        return tf.cast(x, tf.float32), y

    def normalize_tf(x, y):
        return (x / 255.0 - mean) / std, y

    def decoded(ds):
        return ds.map(decode_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).filter(decoded_ok).map(
            drop_flag)

    indices = tf.data.Dataset.from_tensor_slices((np.arange(len(refs), dtype=np.int64), labels))
    # Decoded uint8 clips stay in memory, shared by every dataset build() makes; training's shuffle
    # buffer holds a second copy.
    cached = decoded(indices).cache() if cache else None
    augment_fn = _make_augment(tf, config, mirror if flip else None) if augment else None

    def build(shuffle_seed: int, noise_seed: int, reshuffle: bool):
        if cached is not None:
            ds = cached
            if training:
                ds = ds.shuffle(len(refs), seed=shuffle_seed, reshuffle_each_iteration=reshuffle)
        else:  # shuffle cheap indices, not decoded clips
            ds = indices.shuffle(len(refs), seed=shuffle_seed, reshuffle_each_iteration=reshuffle) if training else indices
            ds = decoded(ds)
        if augment_fn is not None:
            noise = tf.data.Dataset.random(seed=noise_seed, rerandomize_each_iteration=reshuffle)
            ds = tf.data.Dataset.zip((ds, noise)).map(augment_fn, num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(to_float)
        ds = ds.map(normalize_tf, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

    return build


def _make_augment(tf, config: ModelConfig, mirror: np.ndarray | None):
    """``((uint8 sample, label), random int64) -> (float32 0..255 sample, label)``, stateless.

    ``mirror``: ``None`` for no flip, else :func:`flip_label_map`, the label of each label's mirror image.
    """
    height, width = config.input_size
    is_image = config.mode is InputMode.IMAGE
    mirrored_label = None if mirror is None else tf.constant(mirror, tf.int64)

    def augment(sample_label, key):
        x, y = sample_label
        seeds = tf.random.experimental.stateless_split(tf.stack([key, tf.constant(0, tf.int64)]), 3)
        clip = tf.cast(x[None] if is_image else x, tf.float32)  # (T, H, W, C)
        # One crop box for the whole clip: [top, left, 1 - bottom, 1 - right] in [0, 1] coordinates.
        cut = tf.random.stateless_uniform([4], seeds[0], 0.0, MAX_CROP)
        box = tf.stack([cut[0], cut[1], 1.0 - cut[2], 1.0 - cut[3]])
        steps = tf.shape(clip)[0]
        clip = tf.image.crop_and_resize(clip, tf.tile(box[None], [steps, 1]), tf.range(steps), (height, width))
        delta = tf.random.stateless_uniform([], seeds[1], -MAX_BRIGHTNESS, MAX_BRIGHTNESS) * 255.0
        clip = tf.clip_by_value(clip + delta, 0.0, 255.0)
        if mirrored_label is not None:
            flipped = tf.random.stateless_uniform([], seeds[2]) < 0.5
            clip = tf.cond(flipped, lambda: tf.reverse(clip, axis=[2]), lambda: clip)
            y = tf.where(flipped, tf.gather(mirrored_label, y), y)
        clip = clip[0] if is_image else clip
        return tf.ensure_shape(clip, config.input_shape), y

    return augment
