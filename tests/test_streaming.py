"""Streaming and the camera loop: frame by frame equals the whole clip, at every position.

Files are exported through ``converters`` (``streaming=True``): a tiny untrained model in float for
the exact checks (the session's shared folder), the trained fixture model in int8 for top-1 agreement with
the float Keras model on held-out video. Sources are videos written at test time and fakes of
``cv2.VideoCapture`` for cameras that drop; nothing reaches a real address.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CostClock

import runtimes
import runtimes.camera
from runtimes import InputError, MetadataError, ModelFileError, SourceError
from runtimes.base import Device, DeviceKind, TensorInfo, quantize_array
from runtimes.camera.events import EventDetector, EventKind
from runtimes.camera.loop import run_camera
from runtimes.camera.sources import Reconnect, open_source
from runtimes.classify import make_prediction
from runtimes.modeldir import MANIFEST_NAME, find_stream_parts, list_models, pick_model
from runtimes.preprocess import FrameFormat, prepare_frames
from runtimes.ring import Ring
from runtimes.streaming import FeatureStream, WindowStream
from runtimes.tables import FrameConverter

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- files made once per module

@pytest.fixture
def float_dir(tiny_float_stream_dir):
    """model_float.{tflite,onnx} and their streaming parts, from the tiny untrained model (the
    session's shared folder: tests here only read it)."""
    return tiny_float_stream_dir


@pytest.fixture(scope="module")
def int8_dir(tmp_path_factory, trained_model_file, digits_dir):
    """The trained model as int8 TFLite with its streaming parts, calibrated on the train split."""
    from converters import quantize as quantize_model

    out = tmp_path_factory.mktemp("stream_int8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration clips: a warning, on purpose
        quantize_model(trained_model_file, digits_dir, out, formats="tflite", streaming=True, split="train",
                       samples=32, verify_samples=8, max_drop=100, progress=False)
    return out


def _decode(path: Path) -> np.ndarray:
    import cv2

    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[:, :, ::-1])
    cap.release()
    return np.stack(frames)


@pytest.fixture(scope="module")
def held_out_video(digits_dir):
    """The val clips of ``digits_dir`` one after another: a long RGB video the models never trained on."""
    return np.concatenate([_decode(p) for p in sorted(Path(digits_dir, "val").glob("*/*.mp4"))])


def _write_video(path: Path, frames: np.ndarray, fps: float = 10.0, size: tuple[int, int] | None = None) -> Path:
    import cv2

    h, w = size or frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(cv2.resize(np.ascontiguousarray(frame[:, :, ::-1]), (w, h), interpolation=cv2.INTER_AREA))
    writer.release()
    return path


def _video(n: int, seed: int = 0, size=(40, 48)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- the streaming contract

@pytest.mark.parametrize("ext", ["tflite", "onnx"])
def test_push_equals_predict_on_the_last_T_frames_at_every_position(float_dir, ext):
    p = runtimes.load(float_dir / f"model_float.{ext}")
    s = p.stream()
    assert isinstance(s, FeatureStream) and s.encoder.path.name == f"stream_encoder_float.{ext}"
    T, video = p.spec.frames, _video(40)  # 40x48 frames: the model takes 32x32, push resizes
    for i, frame in enumerate(video):
        r = s.push(frame)
        if i < T - 1:
            assert r is None and not s.ready
            continue
        ref = p.predict(video[i - T + 1 : i + 1])
        assert r.label == ref.label
        np.testing.assert_allclose(r.probs, ref.probs, atol=1e-4)
    s.reset()
    assert [s.push(f) for f in video[: T - 1]] == [None] * (T - 1)
    np.testing.assert_allclose(s.push(video[T - 1]).probs, p.predict(video[:T]).probs, atol=1e-4)


@pytest.mark.slow  # needs the trained model (a training run) and its int8 export
def test_int8_stream_agrees_with_the_float_keras_model_on_held_out_video(int8_dir, trained_model_file, held_out_video):
    from edge_rcnn.core.data import normalize
    from edge_rcnn.core.model import load_model

    model, config = load_model(trained_model_file)
    T, video = config.frames, held_out_video
    p = runtimes.load(int8_dir)
    assert p.runtime.path.name == "model_int8.tflite"
    s = p.stream()
    pushed = [s.push(f) for f in video]
    assert all(r is None for r in pushed[: T - 1]) and all(r is not None for r in pushed[T - 1 :])
    windows = np.stack([video[i - T + 1 : i + 1] for i in range(T - 1, len(video))])
    keras_top = np.concatenate([np.asarray(model(normalize(windows[i : i + 32], config))).argmax(-1)
                                for i in range(0, len(windows), 32)])
    stream_top = np.array([r.index for r in pushed[T - 1 :]])
    clip_ends = np.arange(0, len(windows), T)  # windows that are exactly one val clip
    assert np.mean(stream_top[clip_ends] == keras_top[clip_ends]) >= 0.95
    assert np.mean(stream_top == keras_top) >= 0.9  # every position, windows across two clips included
    clip_top = np.array([p.predict(w).index for w in windows])  # the int8 clip model, window by window
    assert np.mean(stream_top == clip_top) >= 0.9


def test_every_k_runs_the_head_every_kth_push_and_smoothing_averages(float_dir):
    p = runtimes.load(float_dir)
    video, T = _video(30, seed=1), p.spec.frames
    plain = p.stream()
    every = p.stream(every=4)
    smooth = p.stream(smoothing=0.6)
    ema = None
    for i, frame in enumerate(video):
        a, b, c = plain.push(frame), every.push(frame), smooth.push(frame)
        due = i + 1 - T
        assert (b is not None) == (due >= 0 and due % 4 == 0)
        if b is not None:
            np.testing.assert_allclose(b.probs, a.probs, atol=1e-6)  # the encoder ran on every frame
        if a is not None:
            ema = a.probs if ema is None else 0.6 * ema + 0.4 * a.probs
            np.testing.assert_allclose(c.probs, ema, atol=1e-6)
            assert c.label == p.labels[int(np.argmax(ema))]
    assert every.last is not None and every.frames_seen == len(video)
    for bad in (dict(every=0), dict(every=1.5), dict(smoothing=1.0), dict(smoothing=-0.1), dict(topk=0)):
        with pytest.raises(InputError, match=next(iter(bad))):
            p.stream(**bad)


def _counting(monkeypatch, runtime, calls: list):
    real = runtime.run

    def run(x):
        calls.append(x.shape)
        return real(x)

    monkeypatch.setattr(runtime, "run", run)


def test_push_costs_one_encoder_pass_and_one_head_call(float_dir, monkeypatch):
    p = runtimes.load(float_dir / "model_float.tflite")
    T, video = p.spec.frames, _video(30, seed=2)
    s, enc, head = p.stream(every=1), [], []
    _counting(monkeypatch, s.encoder, enc)
    real = s.head.run_all
    monkeypatch.setattr(s.head, "run_all", lambda arrays: head.append([a.shape for a in arrays]) or real(arrays))
    for frame in video:
        s.push(frame)
    # One encoder pass per frame on the frame stacked with the previous one (the first frame only
    # waits for the second): T frames are S = T - 1 steps, and each step is one head call.
    assert s.pair and s.slots == T - 1
    assert len(enc) == 29 and all(shape == (1, 32, 32, 6) for shape in enc)
    # One head step per frame: this step's feature and the S windows' states, never S features.
    F = s.head.input.shape[-1]
    assert len(head) == 29 and all(shapes[0] == (1, F) and all(x[0] == T - 1 for x in shapes[1:]) for shapes in head)
    window, clip = WindowStream(p), []
    _counting(monkeypatch, p.runtime, clip)
    for frame in video:
        window.push(frame)
    assert len(clip) == 30 - T + 1 and all(shape[1] == T for shape in clip)  # T frames through the CNN per push


def test_without_streaming_parts_the_clip_model_reruns_over_a_ring_with_a_warning(float_dir, tmp_path):
    shutil.copy(float_dir / "model_float.tflite", tmp_path / "model_float.tflite")
    p = runtimes.load(tmp_path)
    assert p.stream_parts is None
    with pytest.warns(RuntimeWarning, match="no streaming parts beside it.*--streaming"):
        s = p.stream()
    assert isinstance(s, WindowStream)
    video, T = _video(20, seed=3), p.spec.frames
    for i, frame in enumerate(video):
        r = s.push(frame)
        if i >= T - 1:
            np.testing.assert_allclose(r.probs, p.predict(video[i - T + 1 : i + 1]).probs, atol=1e-6)


@pytest.mark.parametrize("lookup", ["opencv", "numpy"])
def test_frame_conversion_table_equals_prepare_then_quantize(lookup):
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)]
    tensors = [TensorInfo("x", (1, 32, 32, 3), "int8", 0.0078, -3), TensorInfo("x", (1, 32, 32, 3), "uint8", 0.004, 128),
               TensorInfo("x", (1, 32, 32, 3), "float32")]
    for mean, std in (((0.5,) * 3, (0.5,) * 3), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        spec = FrameFormat((32, 32), 3, "rgb", mean, std)
        for tensor in tensors:
            convert = FrameConverter(spec, tensor)
            if lookup == "numpy":  # a device without OpenCV
                convert.cv2 = None
            for frame in frames:
                for color in ("rgb", "bgr"):
                    slow = prepare_frames([frame], spec, color)
                    slow = quantize_array(slow, tensor) if tensor.quantized else slow
                    assert convert._fast(frame, color) is not None
                    np.testing.assert_array_equal(convert(frame, color), slow)
            strided = np.random.default_rng(5).integers(0, 256, (32, 64, 3), dtype=np.uint8)[:, ::2]  # model size, not contiguous
            np.testing.assert_array_equal(convert(strided), quantize_array(prepare_frames([strided], spec), tensor)
                                          if tensor.quantized else prepare_frames([strided], spec))
    grey = FrameFormat((32, 32), 1, "rgb", (0.5,), (0.5,))
    convert = FrameConverter(grey, TensorInfo("x", (1, 32, 32, 1), "int8", 0.01, 0))
    assert convert._fast(frames[0], "rgb") is None  # colour -> grey takes the general path
    np.testing.assert_array_equal(convert(frames[0]), quantize_array(prepare_frames([frames[0]], grey), convert.tensor))
    with pytest.raises(InputError, match="frame 0: dtype int32"):
        convert(frames[0].astype(np.int32))


def test_ring_keeps_the_last_rows_oldest_first_in_one_contiguous_view():
    ring = Ring(3, (2,), np.int64)
    for i in range(7):
        ring.append(np.array([i, -i]))
    window = ring.window()
    assert window.tolist() == [[4, -4], [5, -5], [6, -6]] and window.flags["C_CONTIGUOUS"]
    assert ring.data.shape == (6, 2)
    assert np.shares_memory(ring.batch(), ring.data) and ring.batch().shape == (1, 3, 2)
    np.testing.assert_array_equal(ring.batch()[0], window)
    ring.append(np.array([7, -7]))
    assert ring.batch()[0].tolist() == [[5, -5], [6, -6], [7, -7]] and ring.batch().flags["C_CONTIGUOUS"]


def _tied_probs(rng, n: int) -> np.ndarray:
    """Random scores from few distinct values: ties everywhere, at the top-k boundary too."""
    return rng.choice(np.array([0.0, 0.1, 0.25, 0.25, 0.4], np.float32), size=n)


@pytest.mark.parametrize("classes", [1, 3, 16, 64, 65, 400])
def test_top_k_is_numpys_stable_order_with_ties_to_the_lower_id(classes):
    """The one top-k (``classify.top_indices``: a Python sort for few classes, ``np.partition``
    for many) ranks as ``np.argsort(-p, kind="stable")`` does, ties at the boundary included."""
    from runtimes.classify import top_indices

    rng = np.random.default_rng(classes)
    labels = tuple(f"class{i}" for i in range(classes))
    for trial in range(40):
        probs = (_tied_probs(rng, classes) if trial % 2 else rng.random(classes)).astype(np.float32)
        for k in sorted({1, 3, 5, classes, classes + 2}):
            expected = np.argsort(-probs, kind="stable")[:k].tolist()
            assert top_indices(probs, k) == expected
            got = make_prediction(probs.copy(), labels, k)
            assert [c.id for c in got.topk] == expected[:max(k, 1)]
            assert [type(c.score) for c in got.topk] == [float] * len(got.topk)
            assert got.index == expected[0] and not got.probs.flags.writeable
    from runtimes.errors import ModelOutputError

    for bad in (np.nan, np.inf):  # a score that is not a number ranks nothing: a typed error
        scores = np.array([0.2, bad, 0.5, 0.3], np.float32)
        with pytest.raises(ModelOutputError, match="1 of its 4 scores are NaN or infinite"):
            make_prediction(scores.copy(), "abcd", 3)


def test_byte_tables_equal_the_quantization_formulas():
    from runtimes.tables import byte_table, byte_values, look_up

    for dtype, zero in (("int8", -3), ("uint8", 131)):
        out = TensorInfo("y", (1, 256), dtype, 0.0123, zero)
        raw = byte_values(dtype)[None]
        np.testing.assert_array_equal(look_up(byte_table(out), raw), (raw[0].astype(np.float32) - zero) * np.float32(0.0123))
        head = TensorInfo("h", (1, 4, 256), "int8", 0.02, 5)
        into = np.empty(256, np.int8)
        assert look_up(byte_table(out, head), raw, out=into) is into
        np.testing.assert_array_equal(into, quantize_array((raw[0].astype(np.float32) - zero) * np.float32(0.0123), head))


@pytest.mark.slow  # the mismatched head comes from another model: the trained one's int8 export
def test_open_stream_from_two_files_and_mismatched_pairs(float_dir, int8_dir, tmp_path):
    from dataclasses import replace

    from converters.metadata import embed_tflite_metadata
    from runtimes.metadata import read_metadata

    enc, head = float_dir / "stream_encoder_float.tflite", float_dir / "stream_head_float.tflite"
    s = runtimes.open_stream(enc, head, "cpu", every=2, topk=2, num_threads=2)
    assert s.frames == 8 and s.every == 2 and s.labels == runtimes.load(float_dir).labels
    assert (s.encoder.num_threads, s.head.num_threads) == (2, 1)  # the head's tiny ops run on one thread
    assert runtimes.open_stream(enc, head, "cpu", num_threads=2, head_threads=2).head.num_threads == 2
    assert all(s.push(f) is None for f in _video(7)) and len(s.push(_video(1)[0]).topk) == 2
    with pytest.raises(MetadataError, match="a 'stream_head' file; expected a stream_encoder file"):
        runtimes.open_stream(head, enc)
    with pytest.raises(MetadataError, match="a 'clip' file; expected a stream_encoder file"):
        runtimes.open_stream(float_dir / "model_float.tflite", head)
    with pytest.raises(InputError, match="a stream_encoder file; open the pair with runtimes.open_stream"):
        runtimes.load(enc).stream()
    with pytest.raises(MetadataError, match="exported from different models"):
        runtimes.open_stream(enc, int8_dir / "stream_head_int8.tflite")
    meta = replace(read_metadata(head), source_sha256="0" * 64)
    other = tmp_path / "stream_head_float.tflite"
    other.write_bytes(embed_tflite_metadata(head.read_bytes(), meta))
    with pytest.raises(MetadataError, match="exported from different models"):
        runtimes.open_stream(enc, other)


@pytest.mark.slow  # the shared int8 export (with streaming parts)
def test_export_folder_manifest_glob_and_choice(float_dir, tiny_int8_stream_dir, tmp_path):
    int8_tflite = (p for p in tiny_int8_stream_dir.iterdir() if p.suffix == ".tflite")  # int8 in TFLite only
    for path in (*float_dir.iterdir(), *int8_tflite):
        if path.suffix in (".tflite", ".onnx"):
            shutil.copy(path, tmp_path / path.name)
    shutil.copy(float_dir / MANIFEST_NAME, tmp_path / MANIFEST_NAME)  # lists the float files only
    listed = {e.path.name: (e.format, e.mode, e.kind) for e in list_models(tmp_path)}
    assert listed["stream_head_float.onnx"] == ("onnx", "float", "stream_head") and "model_int8.tflite" not in listed
    (tmp_path / MANIFEST_NAME).unlink()  # without it: every file's own metadata
    listed = {e.path.name: (e.format, e.mode, e.kind) for e in list_models(tmp_path)}
    assert listed["model_int8.tflite"] == ("tflite", "int8", "clip") and len(listed) == 9
    assert pick_model(tmp_path, Device(DeviceKind.CPU)).path.name == "model_int8.tflite"  # int8 first
    assert pick_model(tmp_path, Device(DeviceKind.CUDA)).path.name == "model_float.onnx"
    assert find_stream_parts(tmp_path / "model_float.tflite") == (
        tmp_path / "stream_encoder_float.tflite", tmp_path / "stream_head_float.tflite")
    assert find_stream_parts(tmp_path / "model_int8.tflite")[1].name == "stream_head_int8.tflite"
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(MetadataError, match="not an edge-rcnn manifest"):
        runtimes.load(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="no clip model to run on cpu"):
        runtimes.load(tmp_path / "empty", "cpu")


# ---------------------------------------------------------------- events

def _pred(score: float, index: int = 0):
    probs = np.full(3, (1 - score) / 2, np.float32)
    probs[index] = score
    return make_prediction(probs, ("a", "b", "c"))


def test_events_need_a_held_label_and_end_below_the_release_threshold():
    d = EventDetector(0.8, release=0.6, hold=3)
    scores = [0.9, 0.5, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.7, 0.65, 0.9, 0.55, 0.9]
    fired = [(i, e.kind, e.label, round(e.score, 2)) for i, s in enumerate(scores)
             for e in d.update(_pred(s), i, i / 10)]
    assert fired == [(7, EventKind.START, "a", 0.9), (11, EventKind.END, "a", 0.55)]  # flicker fires nothing
    fired = [d.update(_pred(0.95, index=1), 20 + i, 2.0 + i / 10) for i in range(3)]
    assert [len(f) for f in fired] == [0, 0, 1] and d.active == (1, "b")
    (end,) = d.update(_pred(0.95, index=2), 23, 2.3)
    assert (end.kind, end.label, end.frame) == (EventKind.END, "b", 23)
    assert end.to_dict() == {"event": "end", "label": "b", "score": pytest.approx(0.025), "frame": 23, "time": 2.3}
    low = EventDetector(0.5, release=0.3, hold=1)
    assert [e.label for e in low.update(make_prediction(np.array([0.1, 0.8, 0.1]), "abc"), 0, 0.0)] == ["b"]
    assert low.update(make_prediction(np.array([0.05, 0.4, 0.55]), "abc"), 1, 0.1) == ()  # b holds above release
    swap = low.update(make_prediction(np.array([0.05, 0.1, 0.85]), "abc"), 2, 0.2)
    assert [(e.kind, e.label) for e in swap] == [(EventKind.END, "b"), (EventKind.START, "c")]
    for _ in range(3):
        d.update(_pred(0.99), 30, 3.0)
    assert [e.kind for e in d.finish(31, 3.1)] == [EventKind.END] and d.finish(31, 3.1) == ()
    for bad, match in ((dict(threshold=1.5), "threshold"), (dict(release=0.9), "release"), (dict(hold=0), "hold")):
        with pytest.raises(InputError, match=match):
            EventDetector(**{"threshold": 0.8, **bad})


# ---------------------------------------------------------------- the camera loop

def test_run_yields_a_result_per_frame(float_dir):
    p = runtimes.load(float_dir)
    video, T = _video(20, seed=5), p.spec.frames
    results = list(runtimes.camera.run(p, video, every=2, threshold=0.9))
    assert [r.frame.index for r in results] == list(range(20))
    assert [r.prediction is not None for r in results] == [i >= T - 1 and (i - T + 1) % 2 == 0 for i in range(20)]
    assert results[-2].prediction is None and results[-2].latest is results[-3].prediction  # the last one stays
    assert results[3].frame.time == pytest.approx(0.1)  # arrays have no clock: frame i is at i / 30 s
    run = runtimes.camera.run(p, video[:12], max_frames=10)
    assert len(list(run)) == 10 and run.summary().frames == 10


@pytest.mark.slow  # the trained model's int8 export, so that events happen on held-out video
def test_cli_run_on_a_video_saves_annotations_and_events(int8_dir, held_out_video, tmp_path, capsys):
    from edge_rcnn.cli import main

    video = _write_video(tmp_path / "long.mp4", held_out_video, fps=10.0, size=(48, 40))  # not the model's size
    saved, events = tmp_path / "annotated.mp4", tmp_path / "events.jsonl"
    argv = ["run", str(int8_dir), "--source", str(video), "--save", str(saved), "--events", str(events),
            "--threshold", "0.6", "--hold", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    n = len(held_out_video)
    assert out[-1].startswith(f"{video}: {n} frames") and f"{n - 7} predictions" in out[-1]
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines and lines == [json.loads(line) for line in out[:-1]]  # printed as they happen, and written
    assert [e["event"] for e in lines] == ["start", "end"] * (len(lines) // 2)  # every event ends
    assert all(e["time"] == pytest.approx(e["frame"] / 10.0) and set(e) == {"event", "label", "score", "frame", "time"}
               for e in lines)
    assert len(_decode(saved)) == n and sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4", "events.jsonl",
                                                                                     "long.mp4"]
    assert main(argv[:4] + ["--max-frames", "20", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 20 and summary["dropped"] == 0 and not summary["interrupted"]


def test_ctrl_c_stops_cleanly_with_the_files_finished(float_dir, tmp_path, capsys):
    p = runtimes.load(float_dir)

    def camera():
        yield from _video(25, seed=6)
        raise KeyboardInterrupt

    summary = run_camera(p, camera(), save=tmp_path / "a.avi", events=tmp_path / "e.jsonl", threshold=0.2, hold=1,
                         progress=True)
    assert summary.interrupted and summary.frames == 25 and summary.predictions == 18
    assert summary.line().endswith("(interrupted)") and "25 frames" in summary.line()
    progress = capsys.readouterr().err
    assert progress.startswith("\r1 frames") and " FPS " in progress and progress.endswith("\n")
    assert len(_decode(tmp_path / "a.avi")) == 25 and sorted(x.name for x in tmp_path.iterdir()) == ["a.avi", "e.jsonl"]
    kinds = [json.loads(line)["event"] for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert kinds[0] == "start" and kinds[-1] == "end"  # the event still on at Ctrl-C is ended


class FakeCapture:
    """``cv2.VideoCapture`` stand-in: scripted reads (an array, or None for a failed read)."""

    def __init__(self, reads=(), opened=True):
        self.reads, self.opened = list(reads), opened

    def isOpened(self):
        return self.opened

    def read(self):
        item = self.reads.pop(0) if self.reads else None
        return (item is not None), item

    def get(self, prop):
        return 10.0

    def release(self):
        self.opened = False


def test_a_live_source_that_drops_is_reopened_with_backoff(float_dir, tmp_path):
    frames = list(_video(9, seed=7))
    captures = iter([FakeCapture(frames[:5]), FakeCapture(opened=False), FakeCapture(frames[5:]),
                     *[FakeCapture(opened=False)] * 3])
    sleeps = []  # the waits, recorded instead of slept
    reconnect = Reconnect(retries=3, backoff=0.5, max_backoff=1.0, sleep=sleeps.append)
    p = runtimes.load(float_dir)
    with pytest.raises(SourceError, match="rtsp://cam/1: lost, and not back after 3 reconnection attempts") as err:
        run_camera(p, "rtsp://cam/1", save=tmp_path / "a.mp4", reconnect=reconnect,
                   open_capture=lambda target: next(captures))
    assert sleeps == [0.5, 1.0, 0.5, 1.0, 1.0]  # doubling, capped; the first reopening worked on its second try
    s = err.value.summary
    assert (s.frames, s.reconnects, s.dropped, s.predictions) == (9, 1, 6, 2)
    assert len(_decode(tmp_path / "a.mp4")) == 9  # the files are finished before the error


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_during_a_frame_is_taken_after_that_frame_is_written(float_dir, tmp_path, signum):
    """Ctrl-C or SIGTERM arriving while a frame is being handled (here: from the events callback,
    as a user reacting to an event line would) stops the loop after that frame is saved: the video
    holds exactly the frames the summary counts. Without the deferral the stop would land between
    counting the frame and writing it."""
    from edge_rcnn.cli import _terminate

    previous = signal.signal(signal.SIGTERM, _terminate)  # what edge-rcnn run installs
    sent = []

    def on_events(events):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signum)

    try:
        summary = run_camera(runtimes.load(float_dir), list(_video(40, seed=9)), save=tmp_path / "a.avi",
                             threshold=0.01, hold=1, on_events=on_events)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert summary.interrupted and 0 < summary.frames < 40
    assert len(_decode(tmp_path / "a.avi")) == summary.frames
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the loop's own handlers are gone


def test_a_stop_during_a_reconnect_backoff_ends_the_wait(float_dir, tmp_path):
    frames = list(_video(9, seed=7))
    captures = iter([FakeCapture(frames[:5]), *[FakeCapture(opened=False)] * 6])
    waits = []

    def sleep(seconds):  # the backoff: Ctrl-C arrives while the loop waits to reconnect
        waits.append(seconds)
        os.kill(os.getpid(), signal.SIGINT)

    summary = run_camera(runtimes.load(float_dir), "rtsp://cam/1", save=tmp_path / "a.mp4",
                         reconnect=Reconnect(retries=6, backoff=30.0, max_backoff=60.0, sleep=sleep),
                         open_capture=lambda t: next(captures))
    assert summary.interrupted and summary.frames == 5 and waits == [30.0]  # stopped at the first wait
    assert len(_decode(tmp_path / "a.mp4")) == 5


def test_decode_errors_in_a_file_are_skipped_and_counted(tmp_path):
    f = _video(3, seed=8)
    (tmp_path / "x.mp4").write_bytes(b"")
    source = open_source(tmp_path / "x.mp4", open_capture=lambda t: FakeCapture([f[0], None, f[1], None, None, f[2]]))
    got = list(source)
    assert [x.index for x in got] == [0, 1, 2] and source.dropped == 3 and source.reconnects == 0
    assert all(np.array_equal(a.image, b) for a, b in zip(got, f)) and got[2].time == pytest.approx(0.2)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_sources_are_one_line_and_exit_2(float_dir, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mp4").write_bytes(np.random.default_rng(9).bytes(4096))
    (tmp_path / "no_images").mkdir()
    (tmp_path / "no_images" / "notes.txt").write_text("x")
    port = _closed_port()
    cases = {
        "99": "camera 99: cannot open it", "/dev/video99": "camera /dev/video99: cannot open it",
        f"rtsp://127.0.0.1:{port}/stream": "cannot open the stream", f"http://127.0.0.1:{port}/v.mp4": "cannot open the stream",
        str(tmp_path / "empty.mp4"): "not a readable video", str(tmp_path / "corrupt.mp4"): "not a readable video",
        str(tmp_path / "no_images"): "no frame images", str(tmp_path / "nope.mp4"): "no such video",
    }
    # A fresh process, as a user runs it: OpenCV/FFmpeg print their own lines to the C stderr, which
    # only a new process shows as the user would see it. One line per case between the markers.
    done = _run_python(f"""
        import sys
        from edge_rcnn.cli import main
        for source in {list(cases)!r}:
            code = main(["run", {str(float_dir / "model_float.onnx")!r}, "--source", source])
            sys.stderr.write(f"=== {{code}}\\n")
            sys.stderr.flush()
    """)
    runs, lines = [], []
    for line in done.stderr.splitlines():
        if line.startswith("=== "):
            runs.append((int(line[4:]), lines))
            lines = []
        elif line.strip():
            lines.append(line)
    assert done.returncode == 0 and len(runs) == len(cases), done.stderr
    for (source, expect), (code, lines) in zip(cases.items(), runs):
        assert code == 2 and len(lines) == 1, (source, lines)
        assert lines[0].startswith("edge-rcnn run: error: ") and expect in lines[0], (source, lines)
    with pytest.raises(SourceError, match="got True"):
        open_source(True)


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)


# ---------------------------------------------------------------- bounded memory, no TensorFlow

def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    pytest.skip("no /proc/self/status VmRSS on this system")


@pytest.mark.slow  # a soak: 40,000 frames
def test_memory_stays_flat_on_a_long_stream(float_dir):
    """After a warm-up, RSS is read at the ends of three equal stretches of frames. Something kept
    per frame grows every stretch; a one-off step (an allocator arena, another test's leftovers
    in this process) grows one. So the smallest stretch's growth must stay under 1 MiB: a leak of
    90 bytes a frame would pass that in each."""
    p = runtimes.load(float_dir / "model_float.tflite")
    pool = _video(16, seed=10, size=(32, 32))
    total, warm, marks, rss = 40_000, 4_000, (4_000, 16_000, 28_000, 39_999), []

    def camera():
        for i in range(total):
            if i in marks:
                rss.append(_rss_kb())
            yield pool[i % 16].copy()  # a new array per frame, as a camera gives

    run = runtimes.camera.run(p, camera(), threshold=0.3, hold=1)
    for _ in run:
        pass
    growth_kb = [b - a for a, b in zip(rss, rss[1:])]
    assert run.frames == total and min(growth_kb) < 1024, f"RSS grew {growth_kb} kB over three stretches of 12,000 frames"


def test_streaming_never_imports_tensorflow(float_dir):
    code = f"""
        import sys, warnings, numpy as np, runtimes, runtimes.camera
        s = runtimes.open_stream({str(float_dir / 'stream_encoder_float.tflite')!r},
                                 {str(float_dir / 'stream_head_float.tflite')!r})
        frames = np.zeros((10, 24, 40, 3), np.uint8)
        assert [s.push(f) is None for f in frames[:8]].count(False) == 1
        p = runtimes.load({str(float_dir)!r})
        results = list(runtimes.camera.run(p, frames))
        banned = [m for m in ('tensorflow', 'keras', 'tf_keras', 'edge_rcnn', 'converters') if m in sys.modules]
        assert not banned, banned
        print(results[-1].latest.label)
    """
    done = _run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in runtimes.load(float_dir).labels


class _TimedStream:
    """A stream whose pushes cost ``delay`` seconds on ``clock`` (for the encoder thread choice)."""

    def __init__(self, delay: float, clock: CostClock):
        self.delay, self.clock, self.pushes, self.resets = delay, clock, 0, 0
        from types import SimpleNamespace

        self.convert = SimpleNamespace(spec=SimpleNamespace(input_size=(4, 6), channels=3))

    def push(self, frame):
        assert frame.shape == (4, 6, 3) and frame.dtype == np.uint8
        self.pushes += 1
        self.clock.spend(self.delay)

    def reset(self):
        self.resets += 1


def test_the_stream_encoder_gets_the_thread_count_whose_pushes_are_faster(monkeypatch):
    import runtimes.threads
    from runtimes.streaming import pick_encoder_threads

    clock = CostClock()
    monkeypatch.setattr(runtimes.threads, "time", clock)  # the pushes' timer reads the costs given here
    slow_all, fast_one = _TimedStream(0.002, clock), _TimedStream(0.001, clock)
    assert pick_encoder_threads([slow_all, fast_one]) is fast_one
    assert slow_all.pushes > 0 and fast_one.pushes > 0 and slow_all.resets == fast_one.resets == 3  # clean after
    fast_all, slow_one = _TimedStream(0.001, clock), _TimedStream(0.002, clock)
    assert pick_encoder_threads([fast_all, slow_one]) is fast_all


def test_a_cpu_stream_keeps_the_default_threads_or_times_them_on_auto_and_starts_clean(float_dir, monkeypatch):
    import runtimes.streaming as streaming

    enc, head = float_dir / "stream_encoder_float.tflite", float_dir / "stream_head_float.tflite"
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    s = runtimes.open_stream(enc, head, "cpu")
    assert (s.encoder.num_threads, s.head.num_threads) == (2, 1)  # LiteRT's default: every core; the head one
    timed, real_pushes = [], streaming.push_seconds

    def one_is_faster(stream, pushes=30):  # real pushes (they must leave the stream clean), a fixed cost
        timed.append(stream.encoder.num_threads)
        real_pushes(stream, pushes=3)
        return 0.001 if stream.encoder.num_threads == 1 else 0.002

    monkeypatch.setattr(streaming, "push_seconds", one_is_faster)
    s = runtimes.open_stream(enc, head, "cpu", num_threads="auto")
    assert s.encoder.num_threads == 1 and sorted(set(timed)) == [1, 2]
    assert s.frames_seen == 0 and s.last is None
    assert all(not state.any() for state in s._states)  # the timing pushes left nothing behind


@pytest.mark.slow  # the shared int8 export (with streaming parts)
def test_edgetpu_stream_runs_the_encoder_through_the_delegate_and_the_head_on_the_cpu(tiny_int8_stream_dir,
                                                                                       monkeypatch):
    """Up to the device: the Edge TPU delegate is asked for the encoder only (a fake stands in for
    libedgetpu); the step head, which the TPU cannot hold state for, runs on the CPU."""
    from runtimes import edgetpu as rt_edgetpu
    from runtimes import litert as rt_litert

    real, made = rt_litert.import_litert(), []

    def interpreter(**kwargs):
        made.append((Path(kwargs["model_path"]).name, kwargs.pop("experimental_delegates")))
        return real.Interpreter(**kwargs)

    fake = rt_litert.LiteRtModule("fake", "0", interpreter, lambda library, options=None: f"delegate:{library}")
    monkeypatch.setattr(rt_litert, "import_litert", lambda: fake)
    monkeypatch.setattr(rt_edgetpu, "library_loadable", lambda library: True)
    int8_dir = tiny_int8_stream_dir  # any int8 stream pair: the device path is under test, not accuracy
    enc, head = int8_dir / "stream_encoder_int8.tflite", int8_dir / "stream_head_int8.tflite"
    with pytest.warns(RuntimeWarning, match="not compiled for the Edge TPU"):
        s = runtimes.open_stream(enc, head, "edgetpu:usb")
    assert (s.encoder.name, s.encoder.device.kind, s.head.name, s.head.device.kind) == (
        "edgetpu", DeviceKind.EDGETPU, "litert", DeviceKind.CPU)
    assert made == [(enc.name, [f"delegate:{rt_edgetpu.edgetpu_library()}"]), (head.name, None)]
    on_cpu = runtimes.open_stream(enc, head, "cpu", num_threads=s.encoder.num_threads)
    for frame in _video(24, seed=7):
        got, want = s.push(frame), on_cpu.push(frame)
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_array_equal(got.probs, want.probs)


def test_a_head_without_step_states_is_refused_in_one_line():
    from types import SimpleNamespace

    from runtimes.streaming import FeatureStream

    head = SimpleNamespace(path=Path("stream_head_int8.tflite"), inputs=(TensorInfo("features", (1, 8, 16), "int8", 0.1, 0),),
                           outputs=(TensorInfo("probs", (1, 4), "int8", 0.1, 0),))
    encoder = SimpleNamespace(path=Path("stream_encoder_int8.tflite"), output=TensorInfo("f", (1, 16), "int8", 0.1, 0))
    with pytest.raises(MetadataError, match=r"stream_head_int8.tflite: inputs \[\[1, 8, 16\]\]; expected a step head.*re-export with edge-rcnn quantize --streaming") as err:
        FeatureStream(encoder, head, None, ["a", "b", "c", "d"])
    assert "\n" not in str(err.value)
