"""The runtime layer on the device: every asset file loads and predicts, and reproduces the host's
(x86) outputs. int8 files must match bit for bit (integer kernels have one right answer); float
files within FLOAT_ATOL (ARM's vector kernels sum in another order); the video within the rounding
of OpenCV's decode and resize. On the host (``make test``) the reference is computed in the same
session, so the comparison is trivially exact there and the code paths are what is tested.
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
import pytest

import runtimes
import runtimes.camera
from device.outputs import (
    CLIPS,
    EXTRA_FRAMES,
    VIDEO,
    camera_run,
    clip_files,
    clip_probs,
    fixed_frames,
    key,
    load,
    stream_pairs,
    stream_probs,
)

FLOAT_ATOL = 1e-4  # float probabilities, ARM against x86 (and a stream push against predict)
INT8_STREAM_ATOL = 0.05  # int8 stream push against int8 predict: a dozen output quantization steps
VIDEO_PIXEL_ATOL = 3  # decoded frames, ARM against x86 (OpenCV's decode rounds differently)
# The camera loop's probabilities after that decode and OpenCV's INTER_AREA resize: the untrained
# int8 model turns a pixel's +-1 into up to ~15 output steps of 1/256.
VIDEO_PROBS_ATOL = 0.1

CLIP_NAMES = [f"{mode}/model_{mode}.{fmt}" for mode in ("int8", "float") for fmt in ("tflite", "onnx")]


def _clip_file(assets, name):
    return next(p for p in clip_files(assets) if key(p) == name)


def _pair(assets, name):
    return next(pair for pair in stream_pairs(assets) if key(pair[0]) == name)


def _assert_labels_equal(probs, ref, atol):
    """Same top-1 wherever the reference's top two are further apart than the tolerance allows to swap."""
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * atol
    np.testing.assert_array_equal(probs.argmax(1)[clear], ref.argmax(1)[clear])


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
@pytest.mark.parametrize("name", CLIP_NAMES)
def test_file_loads_predicts_and_matches_x86(assets, reference, name):
    path = _clip_file(assets, name)
    p = load(path)
    assert p.runtime.name == ("litert" if path.suffix == ".tflite" else "onnxruntime")
    assert p.info["mode"] == path.parent.name and p.info["device"] == "cpu"
    r = p.predict(fixed_frames(p.spec.frames, p.spec.frame.input_size, seed=0))
    assert r.label in p.labels and r.probs.shape == (len(p.labels),)
    assert abs(float(r.probs.sum()) - 1.0) < 0.02

    probs, ref = clip_probs(path), reference[f"clip:{name}"]
    assert probs.shape == ref.shape == (CLIPS, len(p.labels))
    if "int8" in name:
        np.testing.assert_array_equal(probs, ref)
    else:
        np.testing.assert_allclose(probs, ref, rtol=0, atol=FLOAT_ATOL)
    _assert_labels_equal(probs, ref, 0 if "int8" in name else FLOAT_ATOL)


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
@pytest.mark.parametrize("name", [f"{mode}/stream_encoder_{mode}.{fmt}" for mode in ("int8", "float")
                                  for fmt in ("tflite", "onnx")])
def test_stream_push_matches_x86_and_equals_predict(assets, reference, name):
    encoder, head = _pair(assets, name)
    frames, pushed = stream_probs(encoder, head)
    ref = reference[f"stream:{name}"]
    assert pushed.shape == ref.shape and len(pushed) == EXTRA_FRAMES + 1
    int8 = "int8" in name
    if int8:
        np.testing.assert_array_equal(pushed, ref)
    else:
        np.testing.assert_allclose(pushed, ref, rtol=0, atol=FLOAT_ATOL)

    # Each answer is the clip model's on the last T frames (the clip file of the same format and mode).
    clip = load(encoder.with_name(f"model_{encoder.parent.name}{encoder.suffix}"))
    T = clip.spec.frames
    whole = np.stack([clip.predict(frames[i + 1 - T:i + 1]).probs for i in range(T - 1, len(frames))])
    np.testing.assert_allclose(pushed, whole, rtol=0, atol=INT8_STREAM_ATOL if int8 else FLOAT_ATOL)


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
def test_camera_loop_on_a_video_file(assets, reference):
    frames, probs = camera_run(assets)
    ref_frames, ref_probs = reference["camera:frames"], reference["camera:probs"]
    assert frames.shape == ref_frames.shape and frames.dtype == np.uint8
    diff = np.abs(frames.astype(int) - ref_frames.astype(int))
    assert diff.max() <= VIDEO_PIXEL_ATOL, f"decoded frames differ by up to {diff.max()}"
    T = load(assets / "int8" / "model_int8.tflite").spec.frames
    assert probs.shape == ref_probs.shape and len(probs) == len(frames) - T + 1
    np.testing.assert_allclose(probs, ref_probs, rtol=0, atol=VIDEO_PROBS_ATOL)
    _assert_labels_equal(probs, ref_probs, VIDEO_PROBS_ATOL)

    # The loop is the stream over the decoded frames: pushing them by hand gives the same answers.
    s = runtimes.load(assets / "int8", num_threads=1).stream()
    by_hand = [r.probs for r in (s.push(f) for f in frames) if r is not None]
    np.testing.assert_array_equal(probs, np.stack(by_hand))


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
def test_camera_loop_limits_and_bad_sources(assets, tmp_path):
    p = runtimes.load(assets / "int8", num_threads=1)
    run = runtimes.camera.run(p, str(assets / VIDEO), max_frames=3)
    assert [r.frame.index for r in run] == [0, 1, 2] and run.summary().frames == 3
    with pytest.raises(runtimes.SourceError):
        list(runtimes.camera.run(p, str(tmp_path / "missing.mp4")))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(runtimes.SourceError):
        list(runtimes.camera.run(p, str(tmp_path / "broken.mp4")))
    with pytest.raises(runtimes.InputError):
        runtimes.camera.run(p, str(assets / VIDEO), max_frames=0)


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
def test_truncated_files_raise_typed_errors(assets, tmp_path):
    for path in (assets / "int8" / "model_int8.tflite", assets / "int8" / "model_int8.onnx"):
        cut = tmp_path / path.name
        cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
        with pytest.raises(runtimes.ModelFileError):
            runtimes.load(cut, num_threads=1)


@pytest.mark.slow  # assets: the int8 and float exports with streaming parts (make test-pi runs these on the Pi)
def test_devices_report_names_this_machine(assets):
    report = runtimes.list_devices()
    assert report.machine == platform.machine()
    found = {r.name: r.package for r in report.runtimes}
    assert found["litert"] and found["onnxruntime"]
    assert "CPUExecutionProvider" in report.onnx_providers
    assert "cpu (" in report.summary()


def test_device_side_has_no_tensorflow(emulated):
    """The device install: numpy, a runtime and OpenCV. TensorFlow here would hide a dependency."""
    if not emulated:
        pytest.skip("host run: TensorFlow is installed here for the other tests")
    assert "tensorflow" not in sys.modules
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401
    with pytest.raises(ImportError):
        import onnx  # noqa: F401


def test_devices_report_names_the_cpu_and_what_runs_here():
    """On the emulated Pi: the Pi's CPU and board from the cpuinfo and device tree it was given."""
    report = runtimes.list_devices()
    assert any(u.startswith(".tflite: ai-edge-litert") for u in report.uses)
    assert any(u.startswith(".onnx: onnxruntime") for u in report.uses)
    assert report.to_dict()["cpu"]["name"] == report.cpu.name
    board = os.environ.get("EDGE_RCNN_EXPECT_BOARD")
    if board:
        cpu = {"Raspberry Pi 4": "Cortex-A72", "Raspberry Pi 5": "Cortex-A76"}[board[:14]]
        assert report.cpu.board == board and report.cpu.name == cpu
        assert "neon" in report.cpu.features
        assert ("dotprod" in report.cpu.features) == (cpu == "Cortex-A76")
        assert f"{cpu} with neon" in report.summary()


def test_edge_rcnn_devices_command_runs_on_the_device(capsys):
    """``edge-rcnn devices --json`` with only the device install: the CPU, board and runtimes in use."""
    import json

    from edge_rcnn.cli import main

    assert main(["devices", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["machine"] == platform.machine()
    assert shown["cpu"] == runtimes.list_devices().to_dict()["cpu"] and shown["uses"]
    board = os.environ.get("EDGE_RCNN_EXPECT_BOARD")
    if board:
        assert shown["cpu"]["board"] == board and shown["machine"] == "aarch64"
