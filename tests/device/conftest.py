"""The device tests' assets: model files, a video and the x86 reference outputs.

``EDGE_RCNN_DEVICE_ASSETS`` set (``make test-pi``, on an emulated Pi): the folder that
``make_assets.py`` wrote on the host; nothing here imports TensorFlow. Unset (``make test`` on
the host): the assets are built once per session from the suite's tiny model and digits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from device.outputs import REFERENCE, VIDEO, clip_files, stream_pairs

ASSETS_ENV = "EDGE_RCNN_DEVICE_ASSETS"


def missing_assets(assets: Path) -> list[str]:
    """The asset files ``assets`` lacks (names relative to it)."""
    wanted = [*clip_files(assets), *(p for pair in stream_pairs(assets) for p in pair),
              assets / VIDEO, assets / REFERENCE]
    return [str(p.relative_to(assets)) for p in wanted if not p.is_file()]


@pytest.fixture(scope="session")
def assets(request, tmp_path_factory) -> Path:
    given = os.environ.get(ASSETS_ENV)
    if given:
        path = Path(given)
        lacking = missing_assets(path)
        if lacking:
            pytest.exit(f"{ASSETS_ENV}={path}: not a device assets folder (lacks {', '.join(lacking[:3])}); "
                        "write one with python tests/device/make_assets.py OUT", returncode=2)
        return path
    from device.make_assets import build  # the host side: TensorFlow and converters

    # The suite's shared exports of the same model, made the same way: copied, not converted again.
    return build(tmp_path_factory.mktemp("device") / "assets", int8=request.getfixturevalue("tiny_int8_stream_dir"),
                 float_=request.getfixturevalue("tiny_float_stream_dir"))


@pytest.fixture(scope="session")
def reference(assets) -> dict[str, np.ndarray]:
    with np.load(assets / REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def emulated() -> bool:
    """Running on the device side of ``make test-pi`` (assets from the host, no TensorFlow here)."""
    return bool(os.environ.get(ASSETS_ENV))
