"""runtimes: one predict API over LiteRT, Edge TPU and ONNX Runtime, without TensorFlow.

Tiny files are exported at test time (tests may use TensorFlow; ``runtimes`` never does). Edge TPU
and CUDA/TensorRT are exercised through the real code path with fakes standing in for the
device; the devices themselves are behind the ``edgetpu`` / ``cuda`` markers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import CostClock, tiny_model_files

import runtimes
import runtimes.decode
from runtimes import (
    RUNTIMES,
    Device,
    DeviceKind,
    InputError,
    MetadataError,
    ModelFileError,
    RuntimeUnavailableError,
    SourceError,
)
from runtimes import devices as rt_devices
from runtimes import edgetpu as rt_edgetpu
from runtimes import litert as rt_litert
from runtimes import onnxrt as rt_onnxrt

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("0_right", "0_left", "1_right", "1_left")


# ---------------------------------------------------------------- files made once per module

def _meta(config, mode: str) -> dict:
    mean, std = config.mean_std
    return {
        "format_version": 1, "edge_rcnn_version": "test", "kind": "clip", "labels": list(config.labels),
        "frames": config.frames, "input_size": list(config.input_size), "channels": config.channels,
        "color_order": "rgb", "normalization": {"name": "symmetric", "mean": mean, "std": std}, "mode": mode,
        "model_config": config.to_dict(),
    }


def _compiled_for_edgetpu(tflite_bytes: bytes) -> bytes:
    """The same file with its first op swapped for ``edgetpu-custom-op`` (what edgetpu_compiler leaves)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = 32  # CUSTOM
    code.customCode, code.version = "edgetpu-custom-op", 1
    model.operatorCodes.append(code)
    model.subgraphs[0].operators[0].opcodeIndex = len(model.operatorCodes) - 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _stateful_lstm(tf, keras):
    """A tiny LSTM with large weights, so state left over from the last clip changes the answer."""
    init = keras.initializers.RandomNormal(stddev=1.5, seed=1)
    inp = keras.Input((4, 8, 8, 1), batch_size=1)
    x = keras.layers.TimeDistributed(keras.layers.Flatten())(inp)
    x = keras.layers.LSTM(8, kernel_initializer=init, recurrent_initializer=init)(x)
    out = keras.layers.Dense(3, activation="softmax", kernel_initializer=init)(x)
    return tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out)).convert()


def _dynamic_time(tf, keras):
    """Third-party style: any number of frames (T is -1 in the input's shape signature)."""
    inp = keras.Input((None, 8, 8, 1), batch_size=1)
    x = keras.layers.TimeDistributed(keras.layers.Flatten())(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    return model, tf.lite.TFLiteConverter.from_keras_model(model).convert()


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_converted):
    """Keras reference + float/int8/raw TFLite, float/fp16/QDQ/raw ONNX, a stateful LSTM, a 'compiled' file."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from converters.metadata import embed_onnx_metadata
    from edge_rcnn.core._keras import keras, tf

    tf_, k = tf(), keras()
    out = tmp_path_factory.mktemp("runtimes")
    model, config, calib, _, _, int8 = tiny_model_files(out, _meta, tiny_converted)
    (out / "compiled.tflite").write_bytes(_compiled_for_edgetpu(int8))
    (out / "stateful.tflite").write_bytes(_stateful_lstm(tf_, k))
    dynamic, data = _dynamic_time(tf_, k)
    (out / "dynamic.tflite").write_bytes(data)

    half = convert_float_to_float16(onnx.load(out / "float.onnx"), keep_io_types=False)
    onnx.save(embed_onnx_metadata(half, _meta(config, "fp16")), out / "fp16.onnx")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"frames": c} for c in calib)

        def get_next(self):
            return next(self.it, None)

    quantize_static(out / "raw.onnx", out / "qdq_raw.onnx", Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    onnx.save(embed_onnx_metadata(onnx.load(out / "qdq_raw.onnx"), _meta(config, "int8")), out / "qdq.onnx")
    return {"dir": out, "model": model, "config": config, "dynamic": dynamic}


def _clip(seed=0, size=(32, 32), frames=8):
    return np.random.default_rng(seed).integers(0, 256, (frames, *size, 3), dtype=np.uint8)


def _keras_probs(files, clip):
    x = (clip.astype(np.float32) / 255.0 - 0.5) / 0.5
    return files["model"](x[None], training=False).numpy()[0]


def _path(files, name):
    return files["dir"] / name


# ---------------------------------------------------------------- round trips and quantization

@pytest.mark.parametrize("name,atol", [("float.tflite", 1e-4), ("float.onnx", 1e-4), ("fp16.onnx", 1e-2)])
def test_float_files_match_keras(files, name, atol):
    clip = _clip()
    result = runtimes.load(_path(files, name), device="cpu").predict(clip)
    np.testing.assert_allclose(result.probs, _keras_probs(files, clip), atol=atol)
    assert result.label == LABELS[int(np.argmax(result.probs))] and result.index == int(np.argmax(result.probs))


def test_int8_tflite_quantizes_input_and_dequantizes_output(files):
    p = runtimes.load(_path(files, "int8.tflite"), device="cpu")
    inp, outp = p.runtime.input, p.runtime.output
    assert inp.dtype == "int8" and outp.dtype == "int8" and inp.scale and outp.scale
    clip = _clip(1)
    result = p.predict(clip)
    assert result.probs.dtype == np.float32 and abs(float(result.probs.sum()) - 1) < 4 * outp.scale
    np.testing.assert_allclose(result.probs, _keras_probs(files, clip), atol=0.1)
    # The same numbers by hand, pycoral style: q = round(x / s) + z in, (q - z) * s out.
    x = p.prepare(clip)
    q = np.clip(np.round(x / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    p.runtime.reset()
    raw = p.runtime.run(q)[0]
    np.testing.assert_allclose(result.probs, (raw.astype(np.float32) - outp.zero_point) * outp.scale, atol=1e-6)
    np.testing.assert_array_equal(p.invoke(q[0]), p.invoke(x[0]))  # int8 input passes through as is


def test_qdq_onnx_runs_with_float_io(files):
    clip = _clip(2)
    p = runtimes.load(_path(files, "qdq.onnx"), device="cpu")
    assert p.runtime.input.dtype == "float32" and p.info["mode"] == "int8"
    np.testing.assert_allclose(p.predict(clip).probs, _keras_probs(files, clip), atol=0.1)


def test_invoke_takes_preprocessed_input_one_or_batched(files):
    p = runtimes.load(_path(files, "float.tflite"))
    clips = [_clip(3), _clip(4)]
    x = np.stack([p.prepare(c)[0] for c in clips])
    batched = p.invoke(x)
    assert batched.shape == (2, 4)
    np.testing.assert_allclose(batched[1], p.invoke(x[1]), atol=0)
    np.testing.assert_allclose(batched[0], _keras_probs(files, clips[0]), atol=1e-4)
    assert [r.label for r in p.predict_batch(clips)] == [LABELS[int(i)] for i in batched.argmax(1)]


# ---------------------------------------------------------------- preprocessing

@pytest.mark.parametrize("opencv", [True, False], ids=["cv2", "numpy"])
def test_frames_of_other_sizes_are_resized(files, monkeypatch, opencv):
    if not opencv:
        monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError: the numpy fallback
    p = runtimes.load(_path(files, "float.tflite"))
    clip = _clip(5)
    big = clip.repeat(2, axis=1).repeat(2, axis=2)  # 64x64, each pixel a 2x2 block: area resize is exact
    np.testing.assert_allclose(p.predict(big).probs, p.predict(clip).probs, atol=1e-5)
    odd = np.stack([np.full((45, 61, 3), v, np.uint8) for v in range(0, 240, 30)])  # flat frames: exact too
    flat = np.stack([np.full((32, 32, 3), v, np.uint8) for v in range(0, 240, 30)])
    np.testing.assert_allclose(p.predict(list(odd)).probs, p.predict(flat).probs, atol=1e-5)


def test_bgr_frames_are_swapped_and_float_pixels_accepted(files):
    p = runtimes.load(_path(files, "float.onnx"))
    clip = _clip(6)
    rgb = p.predict(clip).probs
    np.testing.assert_allclose(p.predict(clip[..., ::-1], color="bgr").probs, rgb, atol=1e-6)
    assert np.abs(p.predict(clip[..., ::-1]).probs - rgb).max() > 1e-6  # the swap does change the answer
    np.testing.assert_allclose(p.predict(clip.astype(np.float32)).probs, rgb, atol=1e-6)


def test_prepare_frames_grey_and_channels_first():
    from runtimes.preprocess import FrameFormat, prepare_frames

    grey = FrameFormat((4, 4), 1, "rgb", (0.0,), (1.0,))
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    np.testing.assert_allclose(prepare_frames(red, grey), 0.299, atol=1e-6)
    np.testing.assert_allclose(prepare_frames(red, grey, color="bgr"), 0.114, atol=1e-6)  # that red was blue
    nchw = FrameFormat((2, 3), 3, "bgr", (0.5,) * 3, (0.5,) * 3, layout="nchw")
    x = prepare_frames([red[0]], nchw)  # rgb frame into a bgr model: red lands in the last channel
    assert x.shape == (1, 3, 2, 3)
    np.testing.assert_allclose(x[0, :, 0, 0], [-1.0, -1.0, 1.0])


# ---------------------------------------------------------------- recurrent state

def test_every_clip_starts_from_a_clean_lstm_state(files, monkeypatch):
    path = _path(files, "stateful.tflite")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in runtimes.metadata.tflite_ops(path)
    rng = np.random.default_rng(7)
    a, b = (rng.integers(0, 256, (4, 8, 8, 1), dtype=np.uint8) for _ in range(2))
    p = runtimes.load(path, labels=["x", "y", "z"], normalization="unit")
    first, _, again = p.predict(a).probs, p.predict(b).probs, p.predict(a).probs
    np.testing.assert_array_equal(first, again)
    # Without the reset the fused LSTM starts clip A from clip B's state: the bug this guards against.
    monkeypatch.setattr(p.runtime, "reset", lambda: None)
    p.predict(b)
    assert np.abs(p.predict(a).probs - first).max() > 1e-3


# ---------------------------------------------------------------- registry, devices, fakes

def _fake_litert(monkeypatch, files=None):
    """LiteRT whose load_delegate records its arguments; the interpreter is the real one, minus the
    delegate. Standing in for the TPU, it runs compiled.tflite as the int8 file it was made from."""
    real = rt_litert.import_litert()
    calls = []

    def load_delegate(library, options=None):
        calls.append((library, dict(options or {})))
        return f"delegate:{library}"

    def interpreter(**kwargs):
        calls.append(("delegates", kwargs.pop("experimental_delegates")))
        if files and Path(kwargs["model_path"]).name == "compiled.tflite":
            kwargs["model_path"] = str(_path(files, "int8.tflite"))
        return real.Interpreter(**kwargs)

    monkeypatch.setattr(rt_litert, "import_litert", lambda: rt_litert.LiteRtModule("fake", "0", interpreter, load_delegate))
    monkeypatch.setattr(rt_edgetpu, "library_loadable", lambda library: True)
    return calls


BACKEND_CASES = {  # registry name -> (file, device): every registered backend must appear here
    "litert": ("float.tflite", "cpu"),
    "edgetpu": ("int8.tflite", "edgetpu"),
    "onnxruntime": ("float.onnx", "cpu"),
}


def test_every_registered_runtime_has_a_case():
    assert set(RUNTIMES) == set(BACKEND_CASES)


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_registry_lookup_and_predict(files, monkeypatch, name):
    cls = RUNTIMES[name]
    assert runtimes.get_runtime(name) is cls
    for suffix in cls.suffixes:
        for kind in cls.devices:
            assert runtimes.runtime_for(f"m{suffix.upper()}", Device(kind)) is cls
    file, device = BACKEND_CASES[name]
    if name == "edgetpu":
        _fake_litert(monkeypatch)
    with pytest.warns(RuntimeWarning, match="not compiled") if name == "edgetpu" else _nothing():
        p = runtimes.load(_path(files, file), device=device)
        forced = runtimes.load_runtime(_path(files, file), runtime=name)  # by name, device auto
    assert p.runtime.name == name and p.info["runtime"] == name and forced.name == name
    clip = _clip(8)
    np.testing.assert_allclose(p.predict(clip).probs, _keras_probs(files, clip), atol=0.1 if "int8" in file else 1e-4)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("system,library", [("Linux", "libedgetpu.so.1"), ("Darwin", "libedgetpu.1.dylib"),
                                            ("Windows", "edgetpu.dll")])
@pytest.mark.parametrize("device,option", [("edgetpu", None), ("edgetpu:0", ":0"), ("edgetpu::0", ":0"),
                                           ("edgetpu:usb", "usb"), ("edgetpu:usb:0", "usb:0"), ("edgetpu:pci:1", "pci:1")])
def test_edgetpu_delegate_library_and_device_option(files, monkeypatch, system, library, device, option):
    calls = _fake_litert(monkeypatch, files)
    monkeypatch.setattr(rt_devices.platform, "system", lambda: system)
    p = runtimes.load(_path(files, "compiled.tflite"), device=device)
    assert calls[0] == (library, {"device": option} if option else {})
    assert calls[1] == ("delegates", [f"delegate:{library}"])
    assert p.info["ops"] == {"edgetpu": 1, "cpu": len(runtimes.metadata.tflite_ops(_path(files, "int8.tflite"))) - 1}


def test_edgetpu_unknown_platform_and_bad_selector():
    with pytest.raises(RuntimeUnavailableError, match="supported systems: Linux, Darwin, Windows"):
        rt_edgetpu.edgetpu_library("Plan9")
    with pytest.raises(InputError, match=r"edgetpu\[:usb"):
        runtimes.parse_device("edgetpu:firewire")


def test_missing_edgetpu_names_what_was_found(files):
    if rt_edgetpu.library_loadable(rt_edgetpu.edgetpu_library()) and runtimes.list_devices().edgetpus:
        pytest.skip("an Edge TPU is attached")
    with pytest.raises(RuntimeUnavailableError) as err:
        runtimes.load(_path(files, "int8.tflite"), device="edgetpu:usb")
    msg = str(err.value)
    assert "edgetpu:usb" in msg and "found: cpu" in msg and "ai-edge-litert" in msg and "\n" not in msg


def test_compiled_file_auto_device_and_cpu_error(files, monkeypatch):
    path = _path(files, "compiled.tflite")
    monkeypatch.setattr(rt_devices, "_library_tpus", lambda library: (rt_devices.EdgeTpuInfo("usb", "/sys/x"),))
    assert runtimes.choose_device(path, "auto") == Device(DeviceKind.EDGETPU)
    assert runtimes.choose_device(_path(files, "int8.tflite"), "auto") == Device(DeviceKind.CPU)
    monkeypatch.setattr(rt_devices, "_library_tpus", lambda library: None)
    assert runtimes.choose_device(path, "auto") == Device(DeviceKind.CPU)
    with pytest.raises(RuntimeUnavailableError, match="compiled for the Edge TPU"):
        runtimes.load(path, device="auto")


def test_scan_edgetpus_reads_sysfs_and_dev(tmp_path):
    usb, dev = tmp_path / "usb", tmp_path / "dev"
    for name, ids in {"1-1": ("18d1", "9302"), "1-2": ("1a6e", "089a"), "1-3": ("18d1", "4ee7")}.items():
        (usb / name).mkdir(parents=True)
        (usb / name / "idVendor").write_text(ids[0] + "\n")
        (usb / name / "idProduct").write_text(ids[1] + "\n")
    dev.mkdir()
    (dev / "apex_0").touch()
    found = rt_devices.scan_edgetpus(usb, dev)
    assert [(t.type, Path(t.path).name) for t in found] == [("pci", "apex_0"), ("usb", "1-1"), ("usb", "1-2")]


ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_onnx_provider_priority_and_options(tmp_path):
    select = rt_onnxrt.select_providers
    chain = select(runtimes.parse_device("auto"), ALL, tmp_path)
    assert [n for n, _ in chain] == ALL
    assert chain[0][1] == {"device_id": 0, "trt_fp16_enable": True, "trt_engine_cache_enable": True,
                           "trt_engine_cache_path": str(tmp_path)}
    assert [n for n, _ in select(runtimes.parse_device("auto"), ALL[1:] + ["AzureExecutionProvider"], tmp_path)] == ALL[1:]
    assert select(runtimes.parse_device("cuda:1"), ALL, tmp_path) == [("CUDAExecutionProvider", {"device_id": 1})]
    assert [n for n, _ in select(runtimes.parse_device("tensorrt"), ALL, tmp_path)] == ALL[:1]
    with pytest.raises(RuntimeUnavailableError, match="no TensorrtExecutionProvider; found: CUDAExecutionProvider, CPU"):
        select(runtimes.parse_device("tensorrt"), ALL[1:], tmp_path)


@pytest.mark.parametrize("device,granted,ok", [("auto", ALL, True), ("tensorrt", ALL[:1], True),
                                                ("cuda", ALL[2:], False)])
def test_onnx_session_gets_the_chosen_providers(files, monkeypatch, tmp_path, device, granted, ok):
    import onnxruntime as ort

    real_session, seen = ort.InferenceSession, {}

    class FakeSession:  # a GPU session as far as provider choice goes; runs on the CPU
        def __init__(self, path, opts, providers, provider_options):
            seen.update(providers=providers, options=provider_options, threads=opts.intra_op_num_threads)
            self._real = real_session(path, opts, providers=["CPUExecutionProvider"])

        def get_providers(self):
            return list(granted)

        def __getattr__(self, name):
            return getattr(self._real, name)

    monkeypatch.setattr(ort, "get_available_providers", lambda: list(ALL))
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    load = lambda: runtimes.load(_path(files, "float.onnx"), device=device, num_threads=1, cache_dir=tmp_path / "trt")  # noqa: E731
    if not ok:
        with pytest.raises(RuntimeUnavailableError, match="could not start CUDAExecutionProvider"):
            load()
        return
    p = load()
    assert seen["providers"] == (ALL if device == "auto" else ALL[:1]) and seen["threads"] == 1
    assert seen["options"][0]["trt_engine_cache_path"] == str(tmp_path / "trt") and (tmp_path / "trt").is_dir()
    assert str(p.runtime.device) == "tensorrt" and p.info["providers"] == granted
    assert p.predict(_clip()).probs.shape == (4,)


def test_list_devices_reports_this_machine():
    report = runtimes.list_devices()
    data = report.to_dict()
    assert data["cpu_threads"] == os.cpu_count()
    assert "CPUExecutionProvider" in data["onnx_providers"]
    assert {r["name"]: r["package"] for r in data["runtimes"]}["litert"] == "ai-edge-litert"
    assert json.loads(json.dumps(data)) == data


def test_litert_is_ai_edge_litert_or_an_install_hint_never_tensorflow(monkeypatch):
    assert rt_litert.import_litert().package == "ai-edge-litert"
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # not installed
    with pytest.raises(RuntimeUnavailableError, match="needs LiteRT: pip install ai-edge-litert"):
        rt_litert.import_litert()


# ---------------------------------------------------------------- third-party files

@pytest.mark.parametrize("name", ["raw.tflite", "raw.onnx"])
def test_file_without_metadata(files, name):
    path = _path(files, name)
    with pytest.raises(MetadataError) as err:
        runtimes.load(path)
    assert "labels (labels=[...])" in str(err.value) and "normalization (" in str(err.value)
    assert "frames" not in str(err.value)  # static input shape: frames and size need not be given
    clip = _clip(9)
    p = runtimes.load(path, labels=LABELS, normalization="symmetric")
    np.testing.assert_allclose(p.predict(clip).probs, _keras_probs(files, clip), atol=1e-4)
    q = runtimes.load(path, labels=LABELS, mean=0.5, std=[0.5, 0.5, 0.5])
    np.testing.assert_allclose(q.predict(clip).probs, p.predict(clip).probs, atol=1e-6)
    assert p.info["has_metadata"] is False and p.info["frames"] == 8
    with pytest.raises(MetadataError, match="3 labels for a model with 4 outputs"):
        runtimes.load(path, labels=LABELS[:3], normalization="unit")
    with pytest.raises(MetadataError, match="frames=16 but the model input takes 8"):
        runtimes.load(path, labels=LABELS, normalization="unit", frames=16)
    with pytest.raises(InputError, match="normalization: unknown value 'zscore'; expected one of: unit, symmetric"):
        runtimes.load(path, labels=LABELS, normalization="zscore")


def test_dynamic_frames_come_from_the_caller(files):
    path = _path(files, "dynamic.tflite")
    with pytest.raises(MetadataError, match=r"frames \(frames=T\)"):
        runtimes.load(path, labels=list("abc"), normalization="unit")
    with pytest.raises(InputError, match="labels: expected a list of class names, got the string 'abc'"):
        runtimes.load(path, labels="abc", normalization="unit", frames=5)
    p = runtimes.load(path, labels=list("abc"), normalization="unit", frames=5)
    assert p.runtime.input.shape == (1, None, 8, 8, 1)
    clip = np.random.default_rng(3).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    want = files["dynamic"](clip[None].astype(np.float32) / 255.0, training=False).numpy()[0]
    np.testing.assert_allclose(p.predict(clip).probs, want, atol=1e-5)
    with pytest.raises(InputError, match="got 3; the model takes exactly 5"):
        p.predict(clip[:3])


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("frames,match", [
    (_clip()[:5], "got 5; the model takes exactly 8"),
    (_clip().astype(np.int16), "dtype int16; expected uint8"),
    (np.zeros((8, 32, 32, 4), np.uint8), "4 channel"),
    (np.zeros((8, 32, 32, 1), np.uint8), "1 channel"),
    ([], "got 0"),
    (np.zeros((0, 32, 32, 3), np.uint8), "got 0"),
    (np.zeros((32, 32, 3), np.uint8), r"shape \[32, 32, 3\]; expected frames x height x width x channels"),
    (np.where(np.arange(8)[:, None, None, None] == 3, np.nan, 1.0) * np.ones((8, 32, 32, 3)), "NaN or infinity"),
    (_clip().astype(np.float32) / 255.0 * 2 - 1, "expected pixels in 0..255"),
    (42, "expected a list or array of frames"),
])
def test_bad_frames(files, frames, match):
    p = runtimes.load(_path(files, "float.tflite"))
    with pytest.raises(InputError, match=match):
        p.predict(frames)
    with pytest.raises(InputError, match="color: unknown value 'hsv'"):
        p.predict(_clip(), color="hsv")
    with pytest.raises(InputError, match="topk: expected a positive integer, got 0"):
        p.predict(_clip(), topk=0)


def test_bad_invoke_input(files):
    p = runtimes.load(_path(files, "int8.tflite"))
    with pytest.raises(InputError, match=r"shape \[1, 8, 32, 32\]; the model takes \[8, 32, 32, 3\] per sample"):
        p.invoke(np.zeros((1, 8, 32, 32), np.float32))
    with pytest.raises(InputError, match="dtype uint8; expected float or int8"):
        p.invoke(np.zeros((8, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="NaN"):
        p.invoke(np.full((8, 32, 32, 3), np.inf, np.float32))


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_bad_model_files(files, tmp_path, suffix):
    data = _path(files, "float" + suffix).read_bytes()
    cases = {"missing": None, "empty": b"", "text": b"hello, not a model\n" * 20, "half": data[: len(data) // 2]}
    for name, content in cases.items():
        path = tmp_path / f"{name}{suffix}"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ModelFileError) as err:
            runtimes.load(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value), (name, str(err.value))


def test_bad_device_and_suffix(files, tmp_path):
    with pytest.raises(InputError, match="cannot run .tflite files; for .tflite use one of: cpu, edgetpu"):
        runtimes.load(_path(files, "float.tflite"), device="cuda")
    with pytest.raises(InputError, match="num_threads: expected a positive integer, got 0"):
        runtimes.load(_path(files, "float.onnx"), num_threads=0)
    with pytest.raises(InputError, match="device: unknown value 'gpu'; expected one of: auto, cpu"):
        runtimes.load(_path(files, "float.tflite"), device="gpu")
    with pytest.raises(RuntimeUnavailableError, match="found: .*CPUExecutionProvider"):
        runtimes.load(_path(files, "float.onnx"), device="tensorrt") if "TensorrtExecutionProvider" not in \
            runtimes.list_devices().onnx_providers else pytest.skip("TensorRT present")
    (tmp_path / "model.pb").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="unknown model type '.pb'; expected one of: .onnx, .tflite"):
        runtimes.load(tmp_path / "model.pb")


def test_unknown_runtime_options_name_the_valid_ones(files):
    with pytest.raises(InputError, match="cach_dir: not an option of the onnxruntime runtime; it takes: cache_dir"):
        runtimes.load(_path(files, "float.onnx"), cach_dir="/tmp/engines")
    with pytest.raises(InputError, match="cache_dir: not an option of the litert runtime; it takes: no options"):
        runtimes.load(_path(files, "float.tflite"), cache_dir="/tmp/engines")


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)


def test_truncated_tflite_never_crashes_the_process(files, tmp_path):
    data = _path(files, "int8.tflite").read_bytes()
    for cut in (len(data) // 2, len(data) - 16, 12):
        (tmp_path / f"cut{cut}.tflite").write_bytes(data[:cut])
    done = _run_python(f"""
        import pathlib, runtimes
        for path in sorted(pathlib.Path({str(tmp_path)!r}).glob('*.tflite')):
            try:
                runtimes.load(path).predict([])
            except runtimes.ModelFileError as exc:
                print('ok', exc)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok ") == 3


@pytest.mark.parametrize("name", ["int8.tflite", "float.onnx"])
def test_runtimes_never_import_tensorflow(files, name):
    done = _run_python(f"""
        import sys, numpy as np, edge_rcnn
        p = edge_rcnn.load({str(_path(files, name))!r})
        r = p.predict(np.zeros((8, 48, 64, 3), np.uint8))
        runtimes_devices = edge_rcnn.list_devices()
        assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tensorflow imported'
        assert 'converters' not in sys.modules
        print(r.label)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in LABELS


# ---------------------------------------------------------------- sources and CLI

def _write_video(path: Path, clip: np.ndarray) -> Path:
    import cv2

    h, w = clip.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    for frame in clip:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path


def test_video_and_frame_folder_sources(files, tmp_path):
    import cv2

    p = runtimes.load(_path(files, "float.tflite"))
    clip = np.stack([np.full((24, 40, 3), (20 * i, 255 - 20 * i, 100), np.uint8) for i in range(16)])
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame[:, :, ::-1])
    picked = clip[runtimes.decode.sample_indices(16, 8)]
    assert runtimes.decode.sample_indices(16, 8)[0] == 0 and runtimes.decode.sample_indices(16, 8)[-1] == 15
    np.testing.assert_allclose(p.predict(folder).probs, p.predict(picked).probs, atol=1e-6)
    video = _write_video(tmp_path / "clip.mp4", clip)
    capture = cv2.VideoCapture(str(video))  # mp4 is lossy: compare with the decoded frames themselves
    decoded = np.stack([capture.read()[1][:, :, ::-1] for _ in range(16)])
    capture.release()
    assert np.abs(decoded.astype(int) - clip).max() < 16  # the right frames, in order
    np.testing.assert_allclose(p.predict(str(video)).probs, p.predict(decoded[runtimes.decode.sample_indices(16, 8)]).probs,
                               atol=1e-6)
    with pytest.raises(SourceError, match="3 decodable frames; the model takes 8"):
        p.predict(_write_video(tmp_path / "short.mp4", clip[:3]))
    with pytest.raises(SourceError, match="no such video"):
        p.predict(tmp_path / "nope.mp4")


def test_cli_predict_and_devices(files, tmp_path, capsys):
    from edge_rcnn.cli import main

    video = _write_video(tmp_path / "clip.mp4", _clip(10, size=(40, 48)))
    assert main(["predict", str(_path(files, "float.onnx")), str(video), "--json", "--topk", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] in LABELS and len(out["topk"]) == 2 and out["runtime"] == "onnxruntime"
    assert main(["predict", str(_path(files, "int8.tflite")), str(video), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "[litert on cpu]" in text and text.count("\n") == 4
    assert main(["predict", str(_path(files, "raw.tflite")), str(video)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["predict", str(_path(files, "raw.tflite")), str(video), "--labels", ",".join(LABELS),
                 "--normalization", "symmetric"]) == 0
    capsys.readouterr()
    assert main(["devices", "--json"]) == 0
    assert "onnx_providers" in json.loads(capsys.readouterr().out)
    code = main(["predict", str(_path(files, "float.tflite")), str(video), "--device", "edgetpu:usb"])
    if _has_edgetpu():
        assert code == 0
    else:  # the common case: no Edge TPU here, one line that says which device was asked for
        assert code == 2 and "edgetpu:usb" in capsys.readouterr().err


def test_prediction_record_and_helpers():
    probs = np.array([0.1, 0.6, 0.3], np.float32)
    r = runtimes.classify.make_prediction(probs, ["a", "b", "c"], top_k=2)
    assert (r.label, r.index, [c.label for c in r.topk]) == ("b", 1, ["b", "c"])
    with pytest.raises(AttributeError):
        r.label = "x"
    assert runtimes.get_classes(probs, ["a", "b", "c"], top_k=3, threshold=0.2) == (
        runtimes.Class(1, "b", pytest.approx(0.6)), runtimes.Class(2, "c", pytest.approx(0.3)))
    t = runtimes.TensorInfo("out", (1, 3), "uint8", scale=0.5, zero_point=10)
    np.testing.assert_array_equal(runtimes.get_scores(np.array([10, 12, 9], np.uint8), t), [0.0, 1.0, -0.5])
    np.testing.assert_array_equal(runtimes.quantize_array(np.array([0.0, 1.0, 1.25, 500.0]), t), [10, 12, 13, 255])


# ---------------------------------------------------------------- real hardware (skipped when absent)

def _has_edgetpu() -> bool:
    return rt_edgetpu.library_loadable(rt_edgetpu.edgetpu_library()) and bool(runtimes.list_devices().edgetpus)


@pytest.mark.edgetpu
@pytest.mark.skipif(not _has_edgetpu(), reason="no Edge TPU with libedgetpu here")
def test_real_edgetpu_delegate(files):
    with pytest.warns(RuntimeWarning, match="not compiled"):
        p = runtimes.load(_path(files, "int8.tflite"), device="edgetpu")
    assert p.predict(_clip()).probs.shape == (4,)


@pytest.mark.cuda
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_real_gpu_providers(files, tmp_path, device):
    if rt_onnxrt.PROVIDERS[DeviceKind(device)] not in runtimes.list_devices().onnx_providers:
        pytest.skip(f"ONNX Runtime has no {device} provider here")
    clip = _clip(11)
    p = runtimes.load(_path(files, "float.onnx"), device=device, cache_dir=tmp_path)
    np.testing.assert_allclose(p.predict(clip).probs, _keras_probs(files, clip), atol=1e-2)


# --------------------------------------------------------------------------- thread count at load


class _TimedRuntime:
    """Stands in for a CPU runtime whose calls cost ``delay`` seconds on ``clock``."""

    def __init__(self, delay: float, kind: DeviceKind = DeviceKind.CPU, inputs: int = 1,
                 clock: CostClock | None = None):
        from types import SimpleNamespace

        self.delay, self.clock, self.calls, self.resets = delay, clock or CostClock(), 0, 0
        self.device = SimpleNamespace(kind=kind)
        self.input = runtimes.TensorInfo("frames", (1, 4, 8, 8, 3), "int8", 0.5, 0)
        self.inputs = (self.input,) * inputs

    def reset(self):
        self.resets += 1

    def run(self, x):
        assert x.shape == (1, 4, 8, 8, 3) and x.dtype == np.int8
        self.calls += 1
        self.clock.spend(self.delay)


@pytest.fixture
def clock(monkeypatch):
    """The load's timer (``runtimes.threads``) reads this clock: a call costs what the test says."""
    import runtimes.threads

    clock = CostClock()
    monkeypatch.setattr(runtimes.threads, "time", clock)
    return clock


@pytest.mark.parametrize("all_cores, one, picked", [(0.002, 0.001, "one"), (0.001, 0.002, "all")])
def test_load_keeps_every_core_or_one_whichever_runs_a_clip_faster(monkeypatch, clock, all_cores, one, picked):
    from runtimes.threads import auto_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    every, single = _TimedRuntime(all_cores, clock=clock), _TimedRuntime(one, clock=clock)
    chosen = auto_threads(every, lambda: single)
    assert chosen is {"one": single, "all": every}[picked]
    assert every.calls > 0 and single.calls > 0 and single.resets == single.calls  # each call a clean clip


@pytest.mark.parametrize("case", ["slow model", "one core", "edge tpu", "two inputs"])
def test_load_times_no_second_runtime_where_threads_cannot_matter(monkeypatch, clock, case):
    from runtimes.threads import AUTO_LIMIT_S, auto_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 1 if case == "one core" else 4)
    rt = _TimedRuntime(AUTO_LIMIT_S * 1.5 if case == "slow model" else 0.0,
                       DeviceKind.EDGETPU if case == "edge tpu" else DeviceKind.CPU, 2 if case == "two inputs" else 1,
                       clock)

    def never():
        raise AssertionError("a one-thread runtime was loaded")

    assert auto_threads(rt, never) is rt


def test_auto_threads_reports_the_count_it_chose_and_the_default_times_nothing(files, monkeypatch):
    import runtimes.threads as threads

    def one_is_faster(rt, x, **_):
        return 0.002 if rt.num_threads != 1 else 0.001

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "call_seconds", one_is_faster)
    for name in ("int8.tflite", "qdq.onnx"):
        model = runtimes.load(_path(files, name), "cpu", num_threads="auto")
        assert model.info["num_threads"] == 1, name
        np.testing.assert_allclose(model.predict(_clip()).probs, runtimes.load(_path(files, name), "cpu", num_threads=1)
                                   .predict(_clip()).probs)
    monkeypatch.setattr(threads, "call_seconds", lambda *a, **k: pytest.fail("timed without num_threads='auto'"))
    assert runtimes.load(_path(files, "qdq.onnx"), "cpu", num_threads=2).info["num_threads"] == 2
    # The default is the runtime's own count, the same on every load: LiteRT every core (2 here).
    assert runtimes.load(_path(files, "int8.tflite"), "cpu").info["num_threads"] == 2
    assert runtimes.load(_path(files, "qdq.onnx"), "cpu").info["num_threads"] == "default (one per physical core)"
    for bad in ("fast", 0, 1.5, True):
        with pytest.raises(InputError, match=r"num_threads: expected a positive integer"):
            runtimes.load(_path(files, "int8.tflite"), "cpu", num_threads=bad)


def test_native_stderr_noise_is_dropped_and_other_lines_kept(files):
    """LiteRT's "Created TensorFlow Lite XNNPACK delegate" line and TensorFlow's import-time INFO
    lines (absl, oneDNN, CUDA stub) are not shown to users; anything else written to stderr while
    such a call runs still is, and absl warnings are never dropped."""
    script = textwrap.dedent(f"""
        import os
        import runtimes
        from runtimes.quiet import TENSORFLOW_IMPORT_NOISE, XNNPACK_BANNER, dropping_stderr_lines
        with dropping_stderr_lines(XNNPACK_BANNER, *TENSORFLOW_IMPORT_NOISE):
            os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
            os.write(2, b"I0000 00:00:1795717405.674662   25618 port.cc:153] oneDNN custom operations are on.\\n")
            os.write(2, b"W0000 00:00:1795717405.674662   25618 port.cc:153] a real warning\\n")
            os.write(2, b"a real problem\\n")
        runtimes.load({str(_path(files, "int8.tflite"))!r}, "cpu", num_threads=1)
        from edge_rcnn.core._keras import keras
        keras()
        print("loaded")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.strip() == "loaded", done.stderr[-500:]
    for noise in ("XNNPACK", "oneDNN", "InitializeLog", "cudart_stub", "I0000"):
        assert noise not in done.stderr, done.stderr
    assert done.stderr.count("a real problem") == 1 and done.stderr.count("a real warning") == 1, done.stderr
