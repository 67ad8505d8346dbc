"""What the device tests measure, on whichever machine runs them: the outputs of every asset file
on fixed inputs. The host writes them to ``reference.npz`` (``make_assets.py``); a device (an
emulated Pi in ``make test-pi``) computes them again and compares. Imports only numpy and
``runtimes``: no TensorFlow on either side of the comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import runtimes
import runtimes.camera

MODES = ("int8", "float")
FORMATS = ("tflite", "onnx")
CLIPS = 3  # fixed clips per clip model
EXTRA_FRAMES = 4  # frames pushed past the first T, so the stream's windows roll over
VIDEO = "video.mp4"
REFERENCE = "reference.npz"


def clip_files(assets: Path) -> list[Path]:
    return [assets / mode / f"model_{mode}.{fmt}" for mode in MODES for fmt in FORMATS]


def stream_pairs(assets: Path) -> list[tuple[Path, Path]]:
    return [(assets / mode / f"stream_encoder_{mode}.{fmt}", assets / mode / f"stream_head_{mode}.{fmt}")
            for mode in MODES for fmt in FORMATS]


def key(path: Path) -> str:
    """``int8/model_int8.tflite``: the reference's name for a file."""
    return f"{path.parent.name}/{path.name}"


def fixed_frames(n: int, size, seed: int) -> np.ndarray:
    """``n`` uint8 RGB frames at the model's own size (no resize: OpenCV's ARM resize may round
    differently, which is measured on the video instead)."""
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def load(path: Path) -> runtimes.Predictor:
    # One thread: the same kernels on every machine, and no timing of two thread counts at load.
    return runtimes.load(path, num_threads=1)


def clip_probs(path: Path) -> np.ndarray:
    """(CLIPS, classes) probabilities of ``predict`` on fixed clips."""
    p = load(path)
    return np.stack([p.predict(fixed_frames(p.spec.frames, p.spec.frame.input_size, seed)).probs
                     for seed in range(CLIPS)])


def stream_probs(encoder: Path, head: Path) -> tuple[np.ndarray, np.ndarray]:
    """The frames pushed and the probabilities of every push that answered (T - 1 onwards)."""
    s = runtimes.open_stream(encoder, head, "cpu", num_threads=1)
    frames = fixed_frames(s.frames + EXTRA_FRAMES, s.convert.spec.input_size, seed=100)
    pushed = [s.push(f) for f in frames]
    return frames, np.stack([r.probs for r in pushed if r is not None])


def camera_run(assets: Path) -> tuple[np.ndarray, np.ndarray]:
    """``runtimes.camera.run`` on the test video with the int8 folder: the decoded frames (as RGB), and
    the probabilities of every frame that has a prediction."""
    p = runtimes.load(assets / "int8", num_threads=1)
    results = list(runtimes.camera.run(p, str(assets / VIDEO)))
    return (np.stack([r.frame.image[..., ::-1] if r.frame.color == "bgr" else r.frame.image for r in results]),
            np.stack([r.prediction.probs for r in results if r.prediction is not None]))


def collect(assets: Path) -> dict[str, np.ndarray]:
    """Every measured output, keyed as in ``reference.npz``."""
    out = {}
    for path in clip_files(assets):
        out[f"clip:{key(path)}"] = clip_probs(path)
    for encoder, head in stream_pairs(assets):
        out[f"stream:{key(encoder)}"] = stream_probs(encoder, head)[1]
    out["camera:frames"], out["camera:probs"] = camera_run(assets)
    return out
