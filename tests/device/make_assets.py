"""Build the device tests' assets on the host (TensorFlow and converters): ``python tests/device/make_assets.py OUT``.

OUT gets, replaced whole:
- ``int8/``: an untrained tiny clip model (``tests/conftest.py``'s ``tiny_model_config``) quantized
  to int8 TFLite and ONNX (``--onnx-int8 cpu``), calibrated on a few built-in moving-digit clips, with its streaming
  encoder and head; ``float/``: the same model exported as float, with its streaming parts;
- ``video.mp4``: a short clip of a square crossing a frame larger than the model's input;
- ``reference.npz``: every output ``outputs.collect`` measures, computed here (x86): what a
  device must reproduce.

Untrained is enough: the device tests compare one machine's arithmetic with another's, not accuracy.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT, HERE.parent):  # the repository (runtimes, converters) and tests/ (conftest, device)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from device.outputs import REFERENCE, VIDEO, collect  # noqa: E402

VIDEO_FRAMES, VIDEO_SIZE = 12, (40, 48)  # height, width: resized to the model's 32x32 on the way in


def write_video(path: Path) -> Path:
    """A light square moving right across a dark frame, written as mp4v."""
    import cv2

    h, w = VIDEO_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    for i in range(VIDEO_FRAMES):
        frame = np.full((h, w, 3), 30, np.uint8)
        x = 2 + 3 * i
        frame[12:26, x:x + 12] = (220, 180, 60)
        writer.write(frame)
    writer.release()
    return path


def make_model(work: Path) -> Path:
    from conftest import tiny_model_config

    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import build_model, save_model

    keras().utils.set_random_seed(0)
    config = tiny_model_config()
    path = work / "model.keras"
    save_model(build_model(config), config, path)
    return path


def make_data(work: Path) -> Path:
    from conftest import TINY_DIGITS, TINY_DIRECTIONS, TINY_FRAMES

    from edge_rcnn.core.data.moving_digits import make_moving_digits

    return make_moving_digits(work / "digits", digits=TINY_DIGITS, directions=TINY_DIRECTIONS, clips_per_class=4,
                              frames=TINY_FRAMES, size=32, seed=0, progress=False)


def build(out: str | Path, model: str | Path | None = None, data: str | Path | None = None, *,
          int8: str | Path | None = None, float_: str | Path | None = None) -> Path:
    """Export the files, the video and the reference into ``out`` (a folder replaced whole).

    ``model`` (a tiny model.keras) and ``data`` (a moving-digits folder) are made when not given.
    ``int8`` / ``float_``: export folders already made from ``model`` with the settings below (the
    suite's session fixtures), copied instead of converted again.
    """
    from converters import export, quantize

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "work").mkdir(parents=True)
    if int8 is None or float_ is None:
        model = Path(model) if model else make_model(tmp / "work")
        data = Path(data) if data else make_data(tmp / "work")
    if int8 is not None:
        shutil.copytree(int8, tmp / "int8")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few calibration clips: a warning, on purpose
            # The ONNX file for ONNX Runtime's CPU kernels (uint8 activations): what a Pi runs.
            quantize(model, data, tmp / "int8", formats="tflite,onnx", mode="int8", streaming=True, split="train",
                     samples=8, verify_samples=4, max_drop=100, onnx_int8="cpu", progress=False)
    if float_ is not None:
        shutil.copytree(float_, tmp / "float")
    else:
        export(model, tmp / "float", mode="float", formats="tflite,onnx", streaming=True, verify_samples=2,
               progress=False)
    shutil.rmtree(tmp / "work")
    write_video(tmp / VIDEO)
    np.savez(tmp / REFERENCE, **collect(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/device/make_assets.py OUT", file=sys.stderr)
        return 2
    print(f"device assets: {build(argv[0])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
