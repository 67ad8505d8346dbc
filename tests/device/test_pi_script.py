"""``make test-pi`` (scripts/pi/run.sh) where it cannot run: one line naming what is missing, exit 1
under CI and 0 elsewhere, before any download or build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pi" / "run.sh"


def _run(tmp_path: Path, uid: int, ci: bool) -> subprocess.CompletedProcess:
    """The script with a PATH that has no qemu and no apt-get, and ``id -u`` answering ``uid``."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / "dirname").symlink_to(shutil.which("dirname")) if not (bin_ / "dirname").exists() else None
    (bin_ / "id").write_text(f"#!{shutil.which('bash')}\necho {uid}\n")
    (bin_ / "id").chmod(0o755)
    env = {"PATH": str(bin_), "HOME": str(tmp_path), "EDGE_RCNN_PI_CACHE": str(tmp_path / "cache")}
    if ci:
        env["CI"] = "true"
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(os.environ.get("EDGE_RCNN_DEVICE_ASSETS") is not None, reason="host-side script")
@pytest.mark.parametrize("uid, missing", [(1000, "installing it needs root"), (0, "no apt-get")])
@pytest.mark.parametrize("ci, code", [(False, 0), (True, 1)])
def test_missing_qemu_is_one_line_and_fails_only_ci(tmp_path, uid, missing, ci, code):
    done = _run(tmp_path, uid, ci)
    assert done.returncode == code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test-pi: not run: qemu-aarch64-static") and missing in lines[0]
    assert done.stdout == "" and not (tmp_path / "cache").exists()


@pytest.mark.skipif(os.environ.get("EDGE_RCNN_DEVICE_ASSETS") is not None, reason="host-side check")
def test_an_assets_folder_that_lacks_files_stops_the_run_in_one_line(tmp_path):
    import sys

    (tmp_path / "int8").mkdir()
    (tmp_path / "int8" / "model_int8.tflite").write_bytes(b"not a model")
    env = {**os.environ, "EDGE_RCNN_DEVICE_ASSETS": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(Path(__file__).with_name("test_device.py"))],
                          cwd=SCRIPT.parents[2], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert f"EDGE_RCNN_DEVICE_ASSETS={tmp_path}: not a device assets folder (lacks int8/model_int8.onnx" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
