"""Built-in motion datasets: data built to make a motion-blind model fail.

Three generators, each a kind of motion a camera sees, each labelled by the motion alone so that
neither one frame nor an order-less bag of frames solves it:

``translate``  an object (a handwritten digit or a filled shape) moves right, left, down or up
               and stays wholly inside the frame, over a still photograph. Nothing enters or
               leaves: only where the object is, frame after frame, tells the direction.
``approach``   an object grows (approach), shrinks (recede) or keeps its size (still) over a
               still photograph. Every frame of "approach" also occurs in "recede".
``camera``     the camera pans left/right/up/down, zooms in/out or stays still over a real
               photograph. Train and val clips use disjoint photographs, so val accuracy
               measures motion learned apart from texture.

Textures are real photographs that packages ship (scikit-image's sample images, scikit-learn's
and matplotlib's sample photos); objects are scikit-learn's handwritten digits and drawn shapes.
Everything is deterministic from ``seed``. Speeds and sizes are fractions of the frame, so a
clip looks the same at any ``size``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import numpy as np

from edge_rcnn.core.data.moving_digits import digit_scans, write_dataset
from edge_rcnn.core.errors import ConfigError, DataError, choices_error

KINDS = ("translate", "approach", "camera")
LABELS = {
    "translate": ("right", "left", "down", "up"),
    "approach": ("approach", "recede", "still"),
    "camera": ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "still"),
}
# A horizontal mirror swaps these labels and keeps every other label's meaning.
FLIP_PAIRS = {
    "translate": (("right", "left"),),
    "approach": (),
    "camera": (("pan_left", "pan_right"),),
}
SPLITS = ("train", "val")

# (package, path inside it) of each photograph; the val ones are never used by train clips.
_TRAIN_PHOTOS = (
    ("skimage", "data/astronaut.png"), ("skimage", "data/brick.png"), ("skimage", "data/camera.png"),
    ("skimage", "data/chelsea.png"), ("skimage", "data/coins.png"), ("skimage", "data/grass.png"),
    ("skimage", "data/hubble_deep_field.jpg"), ("skimage", "data/ihc.png"), ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/retina.jpg"), ("skimage", "data/cell.png"), ("sklearn", "datasets/images/china.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)
_VAL_PHOTOS = (
    ("skimage", "data/coffee.png"), ("skimage", "data/rocket.jpg"), ("skimage", "data/gravel.png"),
    ("skimage", "data/moon.png"), ("sklearn", "datasets/images/flower.jpg"),
)
_INSTALL_HINT = "pip install 'edge-rcnn[train]' (scikit-image, scikit-learn and matplotlib ship the photographs)"
_NOISE_STD = 2.0  # sensor noise, grey levels
_JITTER = 0.003  # hand-held jitter per frame, as a fraction of the frame side (std)
_PAN_SPEED = (0.012, 0.035)  # pan: frame sides per frame
_ZOOM = (1.25, 1.7)  # zoom: total scale change over a clip
_MOVE = (0.25, 0.5)  # translate: travel over a clip, as a fraction of the frame side
_GROW = (1.5, 2.2)  # approach/recede: total size change over a clip
SHAPES = ("digit", "disc", "square", "triangle", "ring")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise choices_error("dataset", kind, KINDS)
    return kind


def _package_file(package: str, relative: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"motion datasets: the photographs come with the {package} package; {_INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise DataError(f"{path}: photograph missing from the installed {package}; {_INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=2)
def photos(split: str) -> tuple[np.ndarray, ...]:
    """The RGB uint8 photographs of ``split`` (train and val share none)."""
    import cv2

    if split not in SPLITS:
        raise choices_error("split", split, SPLITS)
    out = []
    for package, relative in _TRAIN_PHOTOS if split == "train" else _VAL_PHOTOS:
        path = _package_file(package, relative)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{path}: OpenCV cannot read this photograph")
        out.append(np.ascontiguousarray(image[..., ::-1]))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    return digit_scans()[0]


def _object(rng: np.random.Generator, side: int) -> np.ndarray:
    """A float32 alpha mask ``(side, side)`` in [0, 1]: a handwritten digit or a filled shape."""
    import cv2

    shape = SHAPES[rng.integers(len(SHAPES))]
    if shape == "digit":
        digits = _digits()
        return cv2.resize(digits[rng.integers(len(digits))], (side, side), interpolation=cv2.INTER_LINEAR)
    big = 64
    mask = np.zeros((big, big), np.uint8)
    if shape == "disc":
        cv2.circle(mask, (32, 32), 28, 255, -1)
    elif shape == "ring":
        cv2.circle(mask, (32, 32), 27, 255, 10)
    elif shape == "square":
        cv2.rectangle(mask, (8, 8), (56, 56), 255, -1)
    else:
        cv2.fillPoly(mask, [np.int32([[32, 4], [60, 58], [4, 58]])], 255)
    angle = rng.uniform(0, 360)
    mask = cv2.warpAffine(mask, cv2.getRotationMatrix2D((32, 32), angle, 1.0), (big, big))
    return cv2.resize(mask.astype(np.float32) / 255.0, (side, side), interpolation=cv2.INTER_AREA)


def _view(photo: np.ndarray, center, scale: float, size: int) -> np.ndarray:
    """The ``size x size`` view of ``photo`` centred at ``center`` (x, y), ``scale`` photo px per view px."""
    import cv2

    cx, cy = center
    m = np.float32([[scale, 0, cx - scale * size / 2], [0, scale, cy - scale * size / 2]])
    return cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def _prepared_photo(rng: np.random.Generator, pool, size: int, reach: float) -> tuple[np.ndarray, float]:
    """A photograph of ``pool``, pre-shrunk so a view at scale ~1 covers a random share of it.

    ``reach`` is how many view sides of room the motion needs along one axis.
    """
    import cv2

    photo = pool[rng.integers(len(pool))]
    if rng.random() < 0.5:
        photo = photo[:, ::-1]  # a mirrored photograph is as real as the original
    short = min(photo.shape[:2])
    # The view covers 1/4 to 1/2 of the photograph's short side (more detail than a thumbnail),
    # and never more than the motion leaves room for.
    cover = rng.uniform(0.25, 0.5) * short
    cover = min(cover, short / reach)
    shrink = size / cover
    if shrink < 1.0:
        photo = cv2.resize(photo, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        return photo, 1.0
    return photo, 1.0 / shrink


def _finish(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = frames.astype(np.float32) + rng.normal(0.0, _NOISE_STD, frames.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def render_camera(label: str, rng: np.random.Generator, pool, *, frames: int, size: int) -> np.ndarray:
    """One RGB clip ``uint8 (frames, size, size, 3)`` of the camera moving over a photograph."""
    t = np.linspace(0.0, 1.0, frames)
    pan = rng.uniform(*_PAN_SPEED) * (frames - 1)  # view sides travelled over the clip
    zoom = rng.uniform(*_ZOOM)
    reach = 1.0 + (pan if label.startswith("pan") else 0.0) + 0.1
    if label.startswith("zoom"):
        reach = zoom * 1.1
    photo, scale = _prepared_photo(rng, pool, size, reach)
    h, w = photo.shape[:2]
    half = scale * size / 2
    dx = dy = np.zeros(frames)
    s = np.full(frames, scale)
    travel = pan * size * scale
    if label in ("pan_left", "pan_right"):
        dx = (t - 0.5) * travel * (1 if label == "pan_right" else -1)
    elif label in ("pan_up", "pan_down"):
        dy = (t - 0.5) * travel * (1 if label == "pan_down" else -1)
    elif label in ("zoom_in", "zoom_out"):
        factor = zoom ** (-t if label == "zoom_in" else t - 1.0)  # view scale shrinks on zoom in
        s = scale * factor
        half = s.max() * size / 2
    margin_x = half + np.abs(dx).max() + 1
    margin_y = half + np.abs(dy).max() + 1
    cx = rng.uniform(margin_x, max(margin_x, w - margin_x)) if w > 2 * margin_x else w / 2
    cy = rng.uniform(margin_y, max(margin_y, h - margin_y)) if h > 2 * margin_y else h / 2
    jitter = rng.normal(0.0, _JITTER * size * scale, (frames, 2))
    clip = np.stack([_view(photo, (cx + dx[i] + jitter[i, 0], cy + dy[i] + jitter[i, 1]), s[i], size)
                     for i in range(frames)])
    return _finish(clip, rng)


def render_object(label: str, rng: np.random.Generator, pool, *, frames: int, size: int) -> np.ndarray:
    """One RGB clip of an object moving (``translate``) or changing size (``approach``) over a still photograph."""
    import cv2

    t = np.linspace(0.0, 1.0, frames)
    photo, scale = _prepared_photo(rng, pool, size, 1.1)
    h, w = photo.shape[:2]
    background = _view(photo, (w / 2, h / 2), scale, size).astype(np.float32)
    background *= rng.uniform(0.35, 0.7)  # a dimmer scene, so the object stands out as a subject does
    colour = rng.uniform(170, 255, 3).astype(np.float32)
    if label in LABELS["translate"]:
        side = np.full(frames, rng.uniform(0.22, 0.32) * size)
        travel = rng.uniform(*_MOVE) * size
        room = size - side[0]
        along = rng.uniform(0.0, room - travel) + travel * t
        if label in ("left", "up"):
            along = room - along
        across = np.full(frames, rng.uniform(0.0, room))
        xs, ys = (along, across) if label in ("right", "left") else (across, along)
    else:
        grow = rng.uniform(*_GROW)
        small = rng.uniform(0.15, 0.25) * size
        ratio = {"approach": grow ** t, "recede": grow ** (1.0 - t), "still": np.full(frames, grow ** rng.uniform(0, 1))}
        side = small * ratio[label]
        cx, cy = rng.uniform(0.35, 0.65, 2) * size
        xs, ys = cx - side / 2, cy - side / 2
    jitter = rng.normal(0.0, _JITTER * size, (frames, 2))
    mask_side = int(np.ceil(side.max())) + 2
    mask = _object(rng, mask_side)
    clip = np.empty((frames, size, size, 3), np.float32)
    for i in range(frames):
        k = side[i] / mask_side
        m = np.float32([[k, 0, xs[i] + jitter[i, 0]], [0, k, ys[i] + jitter[i, 1]]])
        alpha = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        clip[i] = background * (1.0 - alpha) + colour * alpha
    return _finish(clip, rng)


def check_arguments(kind: str, *, frames: int, size: int) -> None:
    check_kind(kind)
    for name, value, low, high in (("frames", frames, 2, 512), ("size", size, 16, 1024)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ConfigError(f"{name}: expected an integer in {low}..{high}, got {value!r}")


def iter_clips(kind: str, n_per_class: int, *, frames: int, size: int, seed: int, split: str
               ) -> Iterator[tuple[np.ndarray, int]]:
    """``(uint8 clip (frames, size, size, 3), label index)``, class after class."""
    check_arguments(kind, frames=frames, size=size)
    if split not in SPLITS:
        raise choices_error("split", split, SPLITS)
    pool = photos(split)
    render = render_camera if kind == "camera" else render_object
    for index, label in enumerate(LABELS[kind]):
        # One stream per (kind, seed, split, class): adding clips to a class leaves the others alone.
        rng = np.random.default_rng([KINDS.index(kind), int(seed), SPLITS.index(split), index])
        for _ in range(n_per_class):
            yield render(label, rng, pool, frames=frames, size=size), index


def generate_motion(kind: str, n_per_class: int, *, frames: int = 16, size: int = 64, seed: int = 0,
                    split: str = "train") -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Clips in memory: ``(x uint8 [N, T, H, W, 3], y int64 [N], labels)``."""
    check_arguments(kind, frames=frames, size=size)
    labels = LABELS[kind]
    x = np.empty((n_per_class * len(labels), frames, size, size, 3), np.uint8)
    y = np.empty(len(x), np.int64)
    for i, (clip, label) in enumerate(iter_clips(kind, n_per_class, frames=frames, size=size, seed=seed, split=split)):
        x[i], y[i] = clip, label
    return x, y, labels


def make_motion(kind: str, out_dir, *, clips_per_class: int = 80, frames: int = 16, size: int = 64,
                val_fraction: float = 0.25, seed: int = 0, fps: int = 10, progress: bool = True,
                overwrite: bool = False) -> Path:
    """Write ``OUT/{train,val}/<label>/<n>.mp4`` and ``OUT/dataset.json`` for ``kind``; return ``OUT``.

    ``dataset.json`` names the kind, records how a mirror maps the labels (``flip_pairs``) and
    that the labels depend on frame order.
    """
    check_arguments(kind, frames=frames, size=size)
    if size % 2:  # MPEG-4 needs even sides; OpenCV would silently write size - 1
        raise ConfigError(f"size: expected an even number of pixels for .mp4 clips, got {size}")
    if isinstance(clips_per_class, bool) or not isinstance(clips_per_class, int) or clips_per_class < 2:
        raise ConfigError(f"clips_per_class: expected an integer >= 2, got {clips_per_class!r}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: expected an integer >= 0, got {seed!r}")
    photos("train"), photos("val")  # a missing photograph stops here, before any folder is made
    n_val = min(max(1, round(clips_per_class * val_fraction)), clips_per_class - 1)
    counts = {"train": clips_per_class - n_val, "val": n_val}

    def clips(split):
        return iter_clips(kind, counts[split], frames=frames, size=size, seed=seed, split=split)

    name = f"motion-{kind}"
    return write_dataset(out_dir, name, LABELS[kind], counts, clips, fps=fps, progress=progress,
                         overwrite=overwrite, meta={
        "frames": frames, "size": size, "channels": 3, "seed": seed, "kind": kind,
        "clips_per_class": clips_per_class, "val_fraction": val_fraction,
        "flip_pairs": [list(pair) for pair in FLIP_PAIRS[kind]],
        "source": "photographs shipped by scikit-image, scikit-learn and matplotlib (train and val disjoint); "
                  "objects: sklearn.datasets.load_digits and drawn shapes",
    })
