"""Converters: export -> reload -> predict -> compare for every format and mode, op lists, metadata, bad input.

Converted files are made once per module (module-scoped fixtures) from the tiny untrained model;
the int8 op check runs over every registered backbone and both RNN types on the smallest shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DIRECTIONS, TINY_FRAMES, tiny_model_config

from runtimes.metadata import read_metadata

FAST = dict(samples=4, verify_samples=8)  # digits_dir has 3 val clips per class: 4 calibrate, 8 verify
PLAIN_MODES = ("float", "fp16", "dynamic")


def run_cli(*argv: str) -> tuple[int, str, str]:
    """The real CLI in-process (so monkeypatches apply); returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from edge_rcnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- shared conversions


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory, tiny_model_file, digits_dir):
    from converters import quantize

    out = tmp_path_factory.mktemp("int8")
    with pytest.warns(UserWarning, match="calibrating on 4 clips"):
        report = quantize(tiny_model_file, digits_dir, out, formats="tflite,onnx", mode="int8", progress=False, **FAST)
    return report


@pytest.fixture(scope="module")
def plain_runs(tmp_path_factory, tiny_model_file, digits_dir):
    """``{mode: report}`` for export (no calibration) at float, fp16 and dynamic, TFLite + ONNX."""
    from converters import export

    return {mode: export(tiny_model_file, tmp_path_factory.mktemp(f"export_{mode}"), data=digits_dir, mode=mode,
                         verify_samples=8, progress=False) for mode in PLAIN_MODES}


@pytest.fixture(scope="module")
def io_float_run(tmp_path_factory, tiny_model_file, digits_dir):
    from converters import quantize

    out = tmp_path_factory.mktemp("int8_io_float")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize(tiny_model_file, digits_dir, out, formats="tflite", io="float", progress=False, **FAST)


def written(report, suffix: str) -> Path:
    (path,) = [p for name, p in report.paths.items() if name.endswith(suffix) and "_edgetpu" not in name]
    return path


# --------------------------------------------------------------------------- round trips


def test_int8_round_trip_tflite_and_onnx(int8_run, tiny_model_file):
    import runtimes

    assert sorted(int8_run.paths) == ["model_int8.onnx", "model_int8.tflite"]
    assert int8_run.passed and len(int8_run.comparisons) == 2
    for c in int8_run.comparisons:
        assert c.clips == 8 and c.reference_accuracy is not None and c.accuracy_drop <= 1.0
        assert c.agreement >= 75.0 and c.max_abs_diff < 0.1  # quantized: judged by agreement, not atol
    doc = json.loads(int8_run.report_path.read_text())
    assert doc["passed"] is True and doc["calibration"]["clips"] == 4 and doc["verification"]["clips"] == 8
    assert doc["verification"]["reuses_calibration_clips"] is False
    assert {f["file"] for f in doc["files"]} == {"model_int8.tflite", "model_int8.onnx"}
    # Reload and predict again: the same file gives the same answer clip after clip (state reset).
    model = runtimes.load(written(int8_run, ".tflite"), device="cpu")
    clip = np.random.default_rng(0).integers(0, 256, (TINY_FRAMES, 32, 32, 3), dtype=np.uint8)
    first = model.predict(clip).probs
    model.predict(255 - clip)
    np.testing.assert_array_equal(model.predict(clip).probs, first)


@pytest.mark.slow  # three exports (float, fp16, dynamic) to TFLite and ONNX
@pytest.mark.parametrize("mode", PLAIN_MODES)
def test_export_modes_round_trip(plain_runs, mode):
    plain_run = plain_runs[mode]
    assert sorted(plain_run.paths) == [f"model_{mode}.onnx", f"model_{mode}.tflite"]
    for c in plain_run.comparisons:
        assert c.passed, c.problems
        assert c.atol == {"float": 1e-4, "fp16": 1e-2, "dynamic": None}[mode]
        if c.atol is not None:
            assert c.max_abs_diff <= c.atol
        assert c.agreement == 100.0
    assert plain_run.report_path.name == "report.json"


def test_export_without_data_verifies_on_synthetic_clips(tmp_path, tiny_model_file):
    from converters import export

    report = export(tiny_model_file, tmp_path, formats="onnx", progress=False)
    (c,) = report.comparisons
    assert c.reference_accuracy is None and c.accuracy is None and c.max_abs_diff <= 1e-4 and c.clips == 16


@pytest.mark.slow  # the three plain exports
def test_fp16_onnx_keeps_float32_io_and_has_float16_weights(plain_runs):
    import onnx

    model = onnx.load(str(written(plain_runs["fp16"], ".onnx")))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)


def test_file_runs_in_a_stock_litert_interpreter(int8_run):
    """No edge-rcnn, no TensorFlow: ai_edge_litert and numpy only."""
    script = textwrap.dedent(f"""
        import sys
        for name in ("edge_rcnn", "runtimes", "converters", "tensorflow", "tf_keras"):
            sys.modules[name] = None  # importing any of them now fails
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path={str(written(int8_run, '.tflite'))!r})
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
        it.invoke()
        q = it.get_tensor(out["index"]).astype(np.float32)
        scale, zero = out["quantization"]
        print(inp["dtype"].__name__, out["dtype"].__name__, ((q - zero) * scale).sum())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    in_dtype, out_dtype, total = done.stdout.split()
    assert (in_dtype, out_dtype) == ("int8", "int8") and abs(float(total) - 1.0) < 0.05  # softmax sums to 1


# --------------------------------------------------------------------------- op lists and graphs


def tensors_with_ranges(content: bytes) -> int:
    """How many tensors of a .tflite carry calibration min/max."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    return sum(1 for g in model.subgraphs for t in g.tensors
               if t.quantization is not None and (t.quantization.min is not None or t.quantization.max is not None))


def test_int8_tflite_drops_calibration_ranges_and_computes_the_same(tmp_path):
    """The converter's per-tensor min/max are dead weight in a deployed file: the exported int8 file
    has none, and a file with and without them gives bit-identical outputs."""
    from converters.metadata import embed_tflite_metadata
    from converters.tflite import make_interpreter
    from edge_rcnn.core._keras import keras, tf

    k, tf_ = keras(), tf()
    inp = k.Input((8, 8, 3), batch_size=1)
    x = k.layers.DepthwiseConv2D(3, padding="same")(k.layers.Conv2D(8, 3, padding="same", activation="relu")(inp))
    model = k.Model(inp, k.layers.Dense(4, activation="softmax")(k.layers.GlobalAveragePooling2D()(x)))
    rng = np.random.default_rng(0)
    converter = tf_.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf_.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.random((1, 8, 8, 3), np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf_.int8
    converter.experimental_new_quantizer = False  # the legacy quantizer (tried first) is the one that keeps them
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        raw = bytes(converter.convert())
    kept, dropped = (embed_tflite_metadata(raw, {"x": 1}, drop_ranges=d) for d in (False, True))
    assert tensors_with_ranges(kept) > 0 and tensors_with_ranges(dropped) == 0 and len(dropped) < len(kept)

    def run(content):
        it = make_interpreter(content)
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        it.set_tensor(i["index"], rng_in)
        it.invoke()
        return it.get_tensor(o["index"])

    rng_in = np.random.default_rng(1).integers(-128, 128, (1, 8, 8, 3), dtype=np.int8)
    np.testing.assert_array_equal(run(dropped), run(kept))


def test_exported_int8_tflite_has_no_calibration_ranges(int8_run):
    assert tensors_with_ranges(written(int8_run, ".tflite").read_bytes()) == 0


def assert_full_int8(path: Path, io_dtype: str = "int8") -> None:
    from converters.tflite import check_ops, make_interpreter
    from runtimes.metadata import tflite_ops

    ops = tflite_ops(path)
    interpreter = make_interpreter(path.read_bytes())
    n_in, n_out = len(interpreter.get_input_details()), len(interpreter.get_output_details())
    assert ops and not {"WHILE", "IF", "CALL_ONCE"} & set(ops), ops
    assert ops.count("DEQUANTIZE") == (n_out if io_dtype == "float" else 0), ops  # float IO: one per output
    assert not [op for op in ops if op.startswith(("CUSTOM", "Flex"))], ops
    if io_dtype == "float":
        assert ops.count("QUANTIZE") == n_in, ops  # one per input
    else:
        assert ops.count("QUANTIZE") == (2 if io_dtype == "uint8" else 0), ops  # uint8 IO: a requantize at each end
    assert interpreter.get_input_details()[0]["dtype"].__name__ == ("float32" if io_dtype == "float" else io_dtype)
    graph_io = {d["index"] for d in (*interpreter.get_input_details(), *interpreter.get_output_details())}
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE") and graph_io & {*op["inputs"], *op["outputs"]}:
            continue  # the IO conversion at a graph edge
        types = {t.__name__ for t in (*op["operand_types"], *op["result_types"])}
        assert types <= {"int8", "int16", "int32"}, (op["op_name"], types)  # int16: LSTM cell state
    assert check_ops(path.read_bytes(), full_integer=True) == []


@pytest.mark.slow  # an int8 conversion per backbone and RNN (the fast loop has test_exported_int8_tflite_*)
@pytest.mark.parametrize("rnn, kernel", [("lstm", "unrolled"), ("lstm", "fused"), ("gru", None)])
@pytest.mark.parametrize("backbone", __import__("edge_rcnn.core.backbones", fromlist=["x"]).scratch_backbones())  # ImageNet: test_pretrained
def test_int8_tflite_is_builtin_int8_for_every_backbone_and_rnn(tmp_path, backbone, rnn, kernel):
    from converters.calibration import ClipSet
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from converters.tflite import convert
    from edge_rcnn.core.model import build_model

    config = tiny_model_config(backbone=backbone, rnn=rnn, width=4, units=8, frames=4)
    rng = np.random.default_rng(0)
    clips = ClipSet(rng.integers(0, 256, (4, *config.input_shape), dtype=np.uint8), None, "random")
    settings = ConvertConfig(formats=("tflite",), lstm_kernel=kernel)
    job = ExportJob(build_model(config), config, settings, tmp_path, "0" * 64, clips, False)
    exported = convert(job)
    assert_full_int8(exported.path)
    ops = exported.details["ops"]
    # The fused LSTM op only when asked for; int8 defaults to unrolled, GRU has no fused op.
    assert ("UNIDIRECTIONAL_SEQUENCE_LSTM" in ops) == (kernel == "fused")
    assert ("FULLY_CONNECTED" in ops and "LOGISTIC" in ops) == (kernel != "fused")


@pytest.mark.slow  # a second int8 conversion (float IO)
def test_int8_uint8_and_float_io(io_float_run, int8_run):
    assert_full_int8(written(int8_run, ".tflite"), "int8")
    path = written(io_float_run, ".tflite")
    assert_full_int8(path, "float")
    from runtimes.metadata import tflite_ops

    ops = tflite_ops(path)
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE" and ops.count("QUANTIZE") == 1  # edges only
    assert io_float_run.passed


@pytest.mark.slow  # the three plain exports
def test_check_ops_rejects_float_tensors_in_an_int8_promise(plain_runs):
    from converters.tflite import check_ops

    problems = check_ops(written(plain_runs["float"], ".tflite").read_bytes(), full_integer=True)
    assert problems and all("float32" in p for p in problems)


@pytest.mark.slow  # the three plain exports
def test_onnx_graphs(int8_run, plain_runs):
    import onnx

    from converters.onnx_export import OPSET, float_compute_nodes, weight_only_nodes

    for path in (written(int8_run, ".onnx"), *(written(r, ".onnx") for r in plain_runs.values())):
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= OPSET >= 17
        assert not {"Loop", "Scan"} & {n.op_type for n in model.graph.node}
        assert model.graph.input[0].name == "frames"
        assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, TINY_FRAMES, 32, 32, 3]
    q = onnx.load(str(written(int8_run, ".onnx")))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "LSTM"} <= ops
    inits = {i.name: i for i in q.graph.initializer}
    for node in q.graph.node:  # symmetric: every zero point is 0; activations int8 (biases int32)
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zp = onnx.numpy_helper.to_array(inits[node.input[2]])
            assert not zp.any() and zp.dtype == (np.int8 if node.op_type == "QuantizeLinear" else zp.dtype), node.name
            assert zp.dtype in (np.int8, np.int32), node.name
    conv = next(n for n in q.graph.node if n.op_type == "Conv")
    weight_dq = next(n for n in q.graph.node if conv.input[1] in n.output)
    assert onnx.numpy_helper.to_array(inits[weight_dq.input[1]]).size > 1  # per-channel weight scales
    assert float_compute_nodes(q) == []  # ORT quantizes Conv/MatMul; the LSTM keeps only its math float
    assert [n.split("(")[0] for n in weight_only_nodes(q)] == ["LSTM"]
    entry = next(f for f in int8_run.document["files"] if f["format"] == "onnx")
    assert entry["float_nodes"] == [] and entry["weight_only_nodes"] == weight_only_nodes(q)
    assert entry["notes"] == [f"weight-only int8 (math float): {weight_only_nodes(q)[0]}"]


@pytest.mark.slow  # an int8 conversion of its own
def test_onnx_int8_for_cpu_uses_uint8_activations_and_int8_weights(tmp_path, tiny_model_file, digits_dir):
    import onnx

    from converters import quantize

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = quantize(tiny_model_file, digits_dir, tmp_path, formats="onnx", onnx_int8="cpu", progress=False, **FAST)
    q = onnx.load(str(written(report, ".onnx")))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in q.graph.initializer}
    weights = {n.input[0] for n in q.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")}
    dtypes = {"activation": set(), "weight": set()}
    for node in q.graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            kind = "weight" if node.input[0] in inits else "activation"  # a weight is a stored constant
            dtypes[kind].add(inits[node.input[2]].dtype)
    assert np.dtype(np.uint8) in dtypes["activation"] and dtypes["weight"] <= {np.dtype(np.int8), np.dtype(np.int32)}
    assert weights  # compute nodes were quantized
    from converters.onnx_export import float_compute_nodes

    ops = [n.op_type for n in q.graph.node]
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops  # ORT's int8 LSTM kernel for this flavour
    lstm = next(n for n in q.graph.node if n.op_type == "DynamicQuantizeLSTM")
    assert {inits[lstm.input[i]].dtype for i in (1, 2)} == {np.dtype(np.int8)}  # W and R stored int8
    assert [n.split("(")[0] for n in float_compute_nodes(q)] == ["Conv"]  # the stem stays float (onnx_cpu)
    assert report.document["settings"]["onnx_int8"] == "cpu"
    assert report.comparisons[0].agreement >= 0.9
    assert read_metadata(written(report, ".onnx")).quantized_for == "cpu"


@pytest.mark.slow  # an int8 conversion of its own
def test_a_tensorrt_int8_onnx_loaded_on_a_cpu_says_which_file_would_be_fast(int8_run, tmp_path, tiny_model_file, digits_dir):
    """The default int8 ONNX is for TensorRT; ONNX Runtime's CPU kernels run it slower than float.
    Loading it on a CPU says so (once, one line); the converters' own check on this CPU does not."""
    import runtimes

    path = written(int8_run, ".onnx")
    assert read_metadata(path).quantized_for == "tensorrt"
    with pytest.warns(RuntimeWarning, match=r"model_int8.onnx: int8 quantized for TensorRT .* --onnx-int8 cpu$"):
        runtimes.load(path, "cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize_report = __import__("converters").quantize(tiny_model_file, digits_dir, tmp_path, formats="onnx",
                                                            streaming=True, progress=False, **FAST)
    assert quantize_report.comparisons and not [w for w in caught if "TensorRT" in str(w.message)]


def test_rnn_weights_quantize_per_row_symmetric():
    from converters.onnx_rnn import quantize_rows

    weight = np.array([[[1.0, -0.5], [0.0, 0.0]], [[0.25, 0.5], [0.0, 0.0]]], np.float32)  # 2 directions, 2 rows
    quantized = quantize_rows(weight)
    np.testing.assert_array_equal(quantized.scale, np.array([1 / 127, 1.0], np.float32))  # row 1 all zero: scale 1
    np.testing.assert_array_equal(quantized.values, [[[127, -64], [0, 0]], [[32, 64], [0, 0]]])  # rint: -63.5 -> -64
    assert quantized.values.dtype == np.int8


@pytest.mark.slow  # an int8 conversion per RNN type
@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_onnx_int8_stores_rnn_weights_as_int8(tmp_path, rnn):
    import onnx
    import onnxruntime as ort

    from converters.calibration import ClipSet
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from converters.onnx_export import convert, export_float, float_compute_nodes
    from converters.onnx_rnn import RNN_OPS, quantize_rnn_weights
    from edge_rcnn.core.data import normalize
    from edge_rcnn.core.model import build_model

    config = tiny_model_config(rnn=rnn, frames=4, motion="none", grid=0)  # 8 features: the RNN's weights are the subject
    rng = np.random.default_rng(0)
    clips = ClipSet(rng.integers(0, 256, (8, *config.input_shape), dtype=np.uint8), None, "random")
    job = ExportJob(build_model(config), config, ConvertConfig(formats=("onnx",)), tmp_path, "0" * 64, clips, False)
    exported = convert(job)
    q = onnx.load(str(exported.path))
    inits = {i.name: i for i in q.graph.initializer}
    producers = {out: n for n in q.graph.node for out in n.output}
    (node,) = [n for n in q.graph.node if n.op_type in RNN_OPS]
    assert node.op_type == rnn.upper() and float_compute_nodes(q) == []
    for name in node.input[1:3]:  # W and R: int8 behind DequantizeLinear, no float initializer left
        assert name not in inits
        dq = producers[name]
        values, scale, zero_point = (onnx.numpy_helper.to_array(inits[i]) for i in dq.input)
        assert dq.op_type == "DequantizeLinear" and onnx.helper.get_attribute_value(dq.attribute[0]) == 1
        assert values.dtype == np.int8 and np.abs(values).max() == 127  # symmetric: the largest row hits 127
        assert scale.shape == (values.shape[1],) and (scale > 0).all()  # one scale per gate row
        assert zero_point.dtype == np.int8 and zero_point.shape == scale.shape and not zero_point.any()
    assert inits[node.input[3]].data_type == onnx.TensorProto.FLOAT  # the bias stays float
    assert exported.notes == (f"weight-only int8 (math float): {rnn.upper()}({node.name})",)

    float_proto = export_float(job)
    weight_only = onnx.load_from_string(float_proto.SerializeToString())
    assert len(quantize_rnn_weights(weight_only)) == 2
    x = normalize(clips.clips, config)
    run = lambda proto: np.concatenate([  # noqa: E731
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"frames": c[None]})[0]
        for c in x])
    reference = run(float_proto)
    assert np.abs(run(weight_only) - reference).max() < 1e-3  # int8 weights alone move the outputs a little
    assert np.abs(run(q) - reference).max() < 2e-2  # the full int8 file: activations quantized too


@pytest.mark.slow  # an export of its own
def test_onnx_dynamic_batch(tmp_path, tiny_model_file):
    import onnxruntime as ort

    from converters import export

    report = export(tiny_model_file, tmp_path, formats="onnx", dynamic_batch=True, progress=False)
    path = written(report, ".onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.zeros((3, TINY_FRAMES, 32, 32, 3), np.float32)
    assert session.run(None, {"frames": x})[0].shape == (3, 4)
    from runtimes.metadata import read_metadata

    assert read_metadata(path).input.shape[0] == -1


# --------------------------------------------------------------------------- metadata


@pytest.mark.slow  # the three plain exports
def test_metadata_in_every_file(int8_run, plain_runs, tiny_model_file):
    from converters.tflite import make_interpreter
    from edge_rcnn.core.model import file_sha256, read_config
    from runtimes.metadata import read_metadata

    config = read_config(tiny_model_file)
    for report in (int8_run, *plain_runs.values()):
        for path in report.paths.values():
            meta = read_metadata(path).to_dict()  # the document as written
            assert meta["labels"] == list(config.labels) and meta["frames"] == config.frames
            assert meta["input_size"] == [32, 32] and meta["channels"] == 3
            assert meta["normalization"] == {"name": "symmetric", "mean": [0.5] * 3, "std": [0.5] * 3}
            assert meta["mode"] == report.document["settings"]["mode"] and meta["kind"] == "clip"
            assert meta["model_config"] == config.to_dict() and meta["source_sha256"] == file_sha256(tiny_model_file)
            assert meta["edge_rcnn_version"] and meta["format_version"] == 1
            if path.suffix == ".tflite":
                detail = make_interpreter(path.read_bytes()).get_input_details()[0]
                scale, zero = detail["quantization"]
                assert meta["input"]["dtype"] == detail["dtype"].__name__
                assert meta["input"]["scale"] == (pytest.approx(scale) if scale else None)
                assert meta["input"]["zero_point"] == (zero if scale else None)
            else:
                assert meta["input"]["dtype"] == "float32" and meta["input"]["scale"] is None


# --------------------------------------------------------------------------- verification logic


def test_validate_model_outputs_collects_every_mismatch():
    from converters.verify import validate_model_outputs
    from edge_rcnn.core.errors import AtolError, ShapeError

    ref = np.full((6, 4), 0.25, np.float32)
    validate_model_outputs(ref, ref + 5e-5, atol=1e-4)
    validate_model_outputs(ref, ref + 0.5, atol=None)  # int8/dynamic: no atol
    with pytest.raises(ShapeError, match=r"\(6, 3\)"):
        validate_model_outputs(ref, ref[:, :3], atol=1e-4)
    bad = ref.copy()
    bad[[1, 4]] += 0.02
    with pytest.raises(AtolError, match=r"2 of 6 clips .*clip 1: .*clip 4: "):
        validate_model_outputs(ref, bad, atol=1e-2)


@pytest.mark.slow  # two exports of its own
def test_a_model_that_was_useless_in_float_too_fails_min_top1_and_exits_3(tmp_path, tiny_model_file, digits_dir):
    # The untrained model guesses: float and exported files agree (no drop), so only the floor catches it.
    code, out, err = run_cli("export", tiny_model_file, "--mode", "float", "--format", "tflite", "--data", digits_dir,
                             "-o", tmp_path / "floor", "--min-top1", "90")
    assert code == 3 and err.count("\n") == 1 and "--min-top1 90" in err and "Traceback" not in err
    doc = json.loads((tmp_path / "floor" / "report.json").read_text())
    comparison = doc["files"][0]["comparison"]
    assert comparison["accuracy_drop"] == 0.0 and comparison["accuracy"] < 90 and comparison["min_top1"] == 90.0
    code, _, _ = run_cli("export", tiny_model_file, "--mode", "float", "--format", "tflite", "--data", digits_dir,
                         "-o", tmp_path / "no-floor")
    assert code == 0  # the same file passes without the floor
    code, _, err = run_cli("export", tiny_model_file, "--format", "tflite", "-o", tmp_path / "bad", "--min-top1", "101")
    assert code == 2 and "min_top1: expected a top-1 accuracy in percent" in err


def test_accuracy_drop_is_reported_and_exits_3(tmp_path, monkeypatch, tiny_model_file, digits_dir):
    import converters.api as api

    def perfect_reference(model, config, clips, batch=16):  # the float model now knows every label
        return np.eye(config.num_classes, dtype=np.float32)[clips.labels]

    monkeypatch.setattr(api, "reference_probs", perfect_reference)
    code, out, err = run_cli("export", tiny_model_file, "--mode", "dynamic", "--format", "onnx", "--data", digits_dir,
                             "-o", tmp_path)
    assert code == 3
    assert err.count("\n") == 1 and "model_dynamic.onnx" in err and "--max-drop 1" in err and "Traceback" not in err
    assert "FAILED (AccuracyDropError)" in out  # the table is printed before the error line
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["passed"] is False and doc["files"][0]["passed"] is False
    assert doc["files"][0]["comparison"]["reference_accuracy"] == 100.0
    assert (tmp_path / "model_dynamic.onnx").is_file()  # the file is kept


def test_verify_command_and_function(int8_run, tiny_model_file, digits_dir, tmp_path):
    from converters import verify

    path = written(int8_run, ".tflite")
    with pytest.warns(UserWarning, match="verifying on 12 held-out clips .*: one clip is 8.3 points"):
        c = verify(path, tiny_model_file, digits_dir, samples=12, device="cpu", report=tmp_path / "v.json", progress=False)
    assert c.clips == 12 and c.mode == "int8" and c.passed and c.notes == ()
    assert json.loads((tmp_path / "v.json").read_text())["comparison"]["agreement"] == c.agreement
    code, out, err = run_cli("verify", path, "--reference", tiny_model_file, "--data", digits_dir, "--device", "cpu")
    assert code == 0 and "model_int8.tflite" in out and "ok" in out, err


# --------------------------------------------------------------------------- Edge TPU


FAKE_COMPILER = """#!/bin/sh
out=.; while [ $# -gt 1 ]; do case "$1" in -o) out="$2"; shift 2;; *) shift;; esac; done
stem=$(basename "$1" .tflite)
cp "$1" "$out/${stem}_edgetpu.tflite" && echo "fake: 11 ops mapped to the Edge TPU" > "$out/${stem}_edgetpu.log"
"""


@pytest.mark.slow  # an int8 conversion of its own
def test_edgetpu_with_a_fake_compiler(tmp_path, monkeypatch, tiny_model_file, digits_dir):
    from runtimes.metadata import read_metadata

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "edgetpu_compiler").write_text(FAKE_COMPILER)
    (bin_dir / "edgetpu_compiler").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    code, stdout, err = run_cli("quantize", tiny_model_file, "--calib", digits_dir, "--format", "tflite", "--edgetpu",
                                "--samples", 4, "--verify-samples", 8, "-o", out)
    assert code == 0, err
    compiled = out / "model_int8_edgetpu.tflite"
    assert compiled.is_file() and "fake: 11 ops" in (out / "model_int8_edgetpu.log").read_text()
    meta = read_metadata(compiled)
    assert meta.input.dtype == "uint8" and meta.mode == "int8"  # uint8 IO by default for Edge TPU
    assert_full_int8(out / "model_int8.tflite", "uint8")
    assert tensors_with_ranges((out / "model_int8.tflite").read_bytes()) > 0  # the compiler's input keeps them
    entry = next(f for f in json.loads((out / "report.json").read_text())["files"] if f["format"] == "edgetpu")
    assert entry["status"] == "compiled" and entry["verified"] is False
    assert "model_int8_edgetpu.tflite: not verified" in stdout


def test_edgetpu_without_a_compiler_says_what_to_do(int8_run, monkeypatch, caplog, tiny_model_file):
    from converters import edgetpu
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from edge_rcnn.core.model import load_model

    monkeypatch.setenv("PATH", "/nonexistent")
    model, config = load_model(tiny_model_file)
    settings = ConvertConfig(formats=("tflite", "edgetpu"), io="int8")
    job = ExportJob(model, config, settings, int8_run.out_dir, "0" * 64)
    exported = edgetpu.convert(job)
    assert exported.path is None and not exported.runnable and exported.details["status"] == "skipped"
    message = exported.notes[0]
    for part in ("x86-64 Linux", "edgetpu-compiler", "apt", "edgetpu_compiler -s -o", "model_int8.tflite"):
        assert part in message
    assert message in caplog.text
    assert not (int8_run.out_dir / "model_int8_edgetpu.tflite").exists()


@pytest.mark.slow  # a second int8 conversion (float IO)
def test_edgetpu_constraints(io_float_run, monkeypatch):
    from converters import edgetpu
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from edge_rcnn.core.errors import ConversionError

    class WideRnn:  # the RNN reads 1280 features per step
        def get_layer(self, name):
            return type("Layer", (), {"input_shape": (1, TINY_FRAMES, 1280)})()

    job = ExportJob(WideRnn(), tiny_model_config(), ConvertConfig(formats=("tflite",)), io_float_run.out_dir, "0" * 64)
    with pytest.warns(UserWarning, match="1280 features"):
        problems = edgetpu.check_constraints(job, written(io_float_run, ".tflite"))
    assert any("float32 (expected int8 or uint8 IO)" in p for p in problems)
    monkeypatch.setattr(edgetpu, "find_compiler", lambda: pytest.fail("must not compile a file that breaks constraints"))
    with warnings.catch_warnings(), pytest.raises(ConversionError, match="breaks Edge TPU constraints"):
        warnings.simplefilter("ignore")
        edgetpu.convert(job)


# --------------------------------------------------------------------------- info


def test_info(int8_run):
    from converters import info

    details = info(written(int8_run, ".tflite"))
    assert details["format"] == "tflite" and details["metadata"]["mode"] == "int8"
    assert details["inputs"][0]["dtype"] == "int8" and details["inputs"][0]["scale"] > 0
    assert "FULLY_CONNECTED" in details["ops"] and details["ops_with_float_tensors"] == []  # int8: LSTM unrolled
    onnx_details = info(written(int8_run, ".onnx"))
    assert onnx_details["opset"] >= 17 and onnx_details["float_compute_nodes"] == []
    assert onnx_details["weight_only_nodes"][0].startswith("LSTM")  # int8 weights, float math
    code, out, _ = run_cli("info", written(int8_run, ".tflite"))
    assert code == 0 and "scale" in out and "FULLY_CONNECTED" in out and "0_right" in out
    code, out, _ = run_cli("info", written(int8_run, ".onnx"))
    assert code == 0 and "float compute nodes: none" in out and "weight-only int8 (math float): LSTM(" in out
    assert "mode int8 (quantized for tensorrt)," in out
    code, out, _ = run_cli("info", written(int8_run, ".onnx"), "--json")
    assert code == 0 and json.loads(out)["metadata"]["labels"][0] == "0_right"


# --------------------------------------------------------------------------- settings, calibration reader


def test_config_enums_and_errors():
    from converters.config import ConvertConfig, Format, IoType, Mode, file_name
    from edge_rcnn.core.errors import ConfigError

    c = ConvertConfig(formats="onnx,tflite,onnx", mode="FP16")
    assert c.formats == (Format.ONNX, Format.TFLITE) and c.mode is Mode.FP16 and c.atol == 1e-2
    assert ConvertConfig(formats="edgetpu").io_type is IoType.UINT8 and ConvertConfig().io_type is IoType.INT8
    assert file_name(Format.ONNX, Mode.FP16) == "model_fp16.onnx"
    for kwargs, match in [
        ({"formats": "tflite,coreml"}, "expected one of: tflite, onnx, edgetpu"),
        ({"mode": "int4"}, "expected one of: int8, fp16, dynamic, float"),
        ({"io": "int16"}, "expected one of: int8, uint8, float"),
        ({"formats": "edgetpu", "mode": "fp16"}, "edgetpu files support int8"),
        ({"mode": "float", "io": "uint8"}, "applies to --mode int8 only"),
        ({"formats": "tflite", "dynamic_batch": True}, "ONNX only"),
        ({"samples": 0}, "samples"),
        ({"max_drop": -1}, "max_drop"),
        ({"formats": ""}, "at least one"),
    ]:
        with pytest.raises(ConfigError, match=match):
            ConvertConfig(**kwargs)
    with pytest.raises(ConfigError, match="unknown settings"):
        from converters import quantize

        quantize("m.keras", "data", "out", samples=4, colour="red")


def test_calibration_reader_protocol(tiny_config):
    from converters.calibration import ClipReader, ClipSet, split_calibration
    from edge_rcnn.core.data import normalize

    rng = np.random.default_rng(0)
    clips = ClipSet(rng.integers(0, 256, (6, *tiny_config.input_shape), dtype=np.uint8), np.array([0, 0, 0, 1, 1, 1]), "t")
    reader = ClipReader(clips, tiny_config)
    feeds = list(iter(reader.get_next, None))
    assert len(feeds) == 6 and reader.get_next() is None
    assert feeds[2]["frames"].shape == (1, *tiny_config.input_shape) and feeds[2]["frames"].dtype == np.float32
    np.testing.assert_allclose(feeds[2]["frames"][0], normalize(clips.clips[2], tiny_config))
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["frames"], feeds[0]["frames"])  # from the first clip again
    with pytest.warns(UserWarning, match="calibrating on 2 clips"):
        calib, held, overlap = split_calibration(clips, 2)
    assert sorted(calib.labels) == [0, 1] and len(held) == 4 and not overlap  # both classes calibrate
    with pytest.warns(UserWarning, match="reuses the calibration clips"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="calibrating on")
        assert split_calibration(clips, 6)[2] is True


@pytest.mark.slow  # two int8 conversions of its own
def test_quantize_warns_when_one_verification_clip_outweighs_max_drop(tmp_path, tiny_model_file, digits_dir):
    """8 held-out clips: one clip is 12.5 points, so --max-drop 1 would fail on any single clip."""
    from converters import quantize

    with pytest.warns(UserWarning, match=r"verifying on 8 held-out clips .*: one clip is 12.5 points, more than --max-drop 1,"):
        quantize(tiny_model_file, digits_dir, tmp_path / "a", formats="tflite", progress=False, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize(tiny_model_file, digits_dir, tmp_path / "b", formats="tflite", progress=False, **FAST, max_drop=50)
    assert not [w for w in caught if "held-out clips" in str(w.message)]


# --------------------------------------------------------------------------- bad input: one line, exit 2


def assert_one_line_exit_2(argv, *expect):
    code, _, err = run_cli(*argv)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in expect:
        assert part in err, err


@pytest.fixture(scope="module")
def other_labels_dir(tmp_path_factory):
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    return make_moving_digits(tmp_path_factory.mktemp("other_labels"), digits=(7,), directions=TINY_DIRECTIONS,
                              clips_per_class=2, frames=TINY_FRAMES, size=32, progress=False)


def test_bad_inputs(tmp_path, tiny_model_file, digits_dir, other_labels_dir):
    not_keras = tmp_path / "model.keras"
    not_keras.write_text("not a zip")
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    q = ("quantize", tiny_model_file, "--calib", digits_dir)
    assert_one_line_exit_2(("quantize", not_keras, "--calib", digits_dir, "-o", out), "not a Keras model")
    assert_one_line_exit_2(("export", tmp_path / "missing.keras", "-o", out), "missing.keras")
    assert_one_line_exit_2(("quantize", tiny_model_file, "--calib", tmp_path / "empty", "-o", out), "empty")
    assert_one_line_exit_2(("quantize", tiny_model_file, "--calib", other_labels_dir, "-o", out), "7_right")
    assert_one_line_exit_2((*q, "--format", "tflite,coreml", "-o", out), "coreml", "tflite, onnx, edgetpu")
    assert_one_line_exit_2((*q, "--mode", "int4", "-o", out), "int4", "int8, fp16, dynamic, float")
    assert_one_line_exit_2((*q, "-o", a_file), "afile", "output folder")
    assert_one_line_exit_2(("export", tiny_model_file, "--mode", "int8", "-o", out), "quantize")
    assert not out.exists() or not any(out.glob("model_*"))


def test_unknown_custom_layer_is_refused(tmp_path):
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import save_model

    k = keras()

    class Doubler(k.layers.Layer):  # not registered: safe mode must not import or run it
        def call(self, x):
            return x * 2

    config = tiny_model_config()
    inp = k.Input(config.input_shape, name="frames")
    x = k.layers.Flatten()(Doubler(name="doubler")(inp))
    model = k.Model(inp, k.layers.Dense(config.num_classes, activation="softmax")(x))
    path = save_model(model, config, tmp_path / "custom.keras")
    assert_one_line_exit_2(("export", path, "-o", tmp_path / "out"), "custom.keras", "cannot load the Keras model safely")
    assert not (tmp_path / "out" / "model_float.tflite").exists()


@pytest.mark.slow  # a data set and an int8 conversion of its own
def test_calibration_clips_of_another_size_are_resized(tmp_path_factory, tiny_model_file):
    from converters import quantize
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    data = make_moving_digits(tmp_path_factory.mktemp("big"), digits=(0, 1), directions=TINY_DIRECTIONS,
                              clips_per_class=6, frames=TINY_FRAMES, size=48, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = quantize(tiny_model_file, data, tmp_path_factory.mktemp("big_out"), formats="onnx",
                          samples=2, verify_samples=4, progress=False)
    assert any("48x48" in str(w.message) and "resized" in str(w.message) for w in caught)
    assert report.comparisons[0].clips == 2 and report.passed  # 4 val clips: 2 calibrate, 2 verify


def test_interrupted_export_leaves_no_model_file(tmp_path, monkeypatch, tiny_model_file):
    from converters import export

    real = Path.write_bytes

    def half_then_interrupt(self, data):
        real(self, data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_bytes", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(tiny_model_file, tmp_path, formats="onnx", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no model, no temp file, no report


@pytest.mark.slow  # the three plain exports
def test_int8_falls_back_to_the_next_quantizer_and_fails_loudly(monkeypatch, int8_run, plain_runs):
    from converters import tflite
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from edge_rcnn.core.errors import ConversionError

    int8_bytes = written(int8_run, ".tflite").read_bytes()
    float_bytes = written(plain_runs["float"], ".tflite").read_bytes()
    job = ExportJob(None, tiny_model_config(), ConvertConfig(formats=("tflite",)), int8_run.out_dir, "0" * 64)
    monkeypatch.setattr(tflite, "convert_bytes", lambda job, q: float_bytes if q == "legacy" else int8_bytes)
    assert tflite.convert_checked(job) == (int8_bytes, "mlir")
    monkeypatch.setattr(tflite, "convert_bytes", lambda job, q: float_bytes)
    with pytest.raises(ConversionError, match=r"model_int8.tflite: legacy quantizer: .*float32.* \| mlir quantizer: "):
        tflite.convert_checked(job)


# --------------------------------------------------------------------------- streaming parts


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory, tiny_model_file, digits_dir):
    from converters import quantize

    out = tmp_path_factory.mktemp("stream_int8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize(tiny_model_file, digits_dir, out, formats="tflite,onnx", streaming=True, progress=False, **FAST)


@pytest.mark.slow  # an int8 conversion with streaming parts
def test_streaming_parts_are_int8_and_match_the_clip_model_frame_by_frame(stream_run, tiny_model_file):
    from converters import info
    from edge_rcnn.core.model import file_sha256
    from runtimes.metadata import read_metadata
    from runtimes.modeldir import find_stream_parts

    out = stream_run.out_dir
    names = {f"{stem}_int8.{ext}" for stem in ("model", "stream_encoder", "stream_head") for ext in ("tflite", "onnx")}
    assert set(stream_run.paths) == names
    pairs = [c for c in stream_run.comparisons if " + " in c.file]
    assert [c.format for c in pairs] == ["tflite", "onnx"] and all(c.passed and c.agreement >= 75 for c in pairs)
    assert_full_int8(out / "stream_encoder_int8.tflite")
    assert_full_int8(out / "stream_head_int8.tflite", io_dtype="float")  # int8 inside, float states in and out
    for ext in ("tflite", "onnx"):
        enc, head = (read_metadata(out / f"{part}_int8.{ext}").to_dict() for part in ("stream_encoder", "stream_head"))
        assert (enc["kind"], head["kind"]) == ("stream_encoder", "stream_head")
        io = {k: head["stream"].pop(k) for k in ("inputs", "outputs")}  # the step head's tensors, in call order
        assert enc["stream"] == {**head["stream"], "role": "encoder"} and head["stream"]["role"] == "head"
        config = tiny_model_config()
        F = config.grid ** 2 * config.projection  # every grid cell's projected appearance and motion
        assert head["stream"]["feature_dim"] == F and head["stream"]["frames"] == TINY_FRAMES
        assert head["stream"]["steps"] == TINY_FRAMES - 1 and head["stream"]["motion"] == "gradient"
        assert enc["input"]["shape"] == [1, 32, 32, 6] and head["input"]["shape"] == [1, F]  # a frame pair's feature
        assert len(io["inputs"]) == len(io["outputs"]) == 3  # LSTM: feature, h0, c0 -> probs, h0, c0
        described = info(out / f"stream_head_int8.{ext}")  # listed in call order, as the runtimes read them
        assert [t["name"] for t in described["inputs"]] == io["inputs"] and [t["name"] for t in described["outputs"]] == io["outputs"]
        assert described["inputs"][0]["shape"] == [1, F] and described["outputs"][0]["shape"][-1] == len(enc["labels"])
        assert "feature" in io["inputs"][0] and io["inputs"][0] == head["input"]["name"] or ext == "tflite"
        assert enc["source_sha256"] == head["source_sha256"] == file_sha256(tiny_model_file)
        assert find_stream_parts(out / f"model_int8.{ext}") == (out / f"stream_encoder_int8.{ext}", out / f"stream_head_int8.{ext}")
    manifest = json.loads((out / "manifest.json").read_text())
    assert {r["file"]: r["kind"] for r in manifest["files"]} == {
        n: ("clip" if n.startswith("model") else n.rsplit("_", 1)[0]) for n in names}


def test_streaming_needs_a_clip_model(tmp_path):
    from edge_rcnn.core.model import build_model, save_model

    config = tiny_model_config(mode="image")
    path = save_model(build_model(config), config, tmp_path / "image.keras")
    assert_one_line_exit_2(("export", path, "--streaming", "-o", tmp_path / "out"), "streaming", "clip-mode")


@pytest.mark.slow  # an int8 conversion with streaming parts
def test_edgetpu_compiles_the_stream_encoder(stream_run, tmp_path, monkeypatch):
    from converters import edgetpu
    from converters.config import ConvertConfig
    from converters.job import ExportJob
    from converters.parts import Part
    from edge_rcnn.core.model import load_model

    (tmp_path / "edgetpu_compiler").write_text(FAKE_COMPILER)
    (tmp_path / "edgetpu_compiler").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    model, config = load_model(Path(stream_run.document["source"]))
    settings = ConvertConfig(formats=("tflite", "edgetpu"), io="int8", streaming=True)
    job = ExportJob(model, config, settings, stream_run.out_dir, "0" * 64, part=Part.STREAM_ENCODER)
    exported = edgetpu.convert(job)
    assert exported.path.name == "stream_encoder_int8_edgetpu.tflite" and exported.part is Part.STREAM_ENCODER


@pytest.mark.slow  # an export per width
@pytest.mark.parametrize("width, expected", [(8, ["stem_conv", "dw0"]), (32, ["stem_conv"])])
def test_onnx_cpu_keeps_the_stem_and_narrow_leading_depthwise_convs_float(tmp_path, width, expected):
    import onnx

    from converters import export
    from converters.onnx_cpu import leading_float_convs
    from edge_rcnn.core.model import build_model, save_model

    config = tiny_model_config(backbone="mobilenet", width=width)  # dw0 reads `width` channels, dw1 2x that
    path = save_model(build_model(config), config, tmp_path / "m.keras")
    report = export(path, tmp_path / "out", formats="onnx", progress=False)
    names = leading_float_convs(onnx.load(str(written(report, ".onnx"))))
    assert [n.split("/")[-2] for n in names] == expected
