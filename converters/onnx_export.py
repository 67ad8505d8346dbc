"""ONNX target: float32, float16, dynamic and static int8 (QDQ) files.

tf2onnx converts a rebuild of the tf_keras model (batch 1 by default, ``dynamic_batch`` on
request; RNNs not unrolled, so LSTM/GRU become native ONNX ``LSTM``/``GRU`` nodes, never a
``Loop``). int8 is ONNX Runtime static quantization in QDQ format with symmetric int8 activations
and per-channel symmetric int8 weights (what TensorRT accepts), calibrated on the same clips as
TFLite. ORT quantizes Conv/MatMul/Gemm but not LSTM/GRU nodes; ``converters.onnx_rnn`` then stores
their W/R weights as int8 behind DequantizeLinear (weight-only: the RNN math stays float, listed
in the report as such). The ``--onnx-int8 cpu`` file is for ONNX Runtime's CPU kernels only: its
first convs stay float and its LSTMs are ORT's ``DynamicQuantizeLSTM`` (``converters.onnx_cpu``).
fp16 keeps float32 IO. This module is named ``onnx_export`` so it does not shadow ``onnx``.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from converters import parts
from converters.calibration import ProgressReader
from converters.config import Format, Mode, OnnxInt8
from converters.job import ExportedFile, ExportJob
from converters.metadata import embed_onnx_metadata, tensor_entry
from converters.onnx_rnn import RNN_OPS, WEIGHT_INPUTS, quantize_rnn_weights
from converters.parts import build_graph, calibration_reader, input_shapes
from edge_rcnn.core import _keras
from edge_rcnn.core._util import write_bytes_atomic
from edge_rcnn.core.errors import ConversionError, RuntimeUnavailableError, first_line
from runtimes.metadata import TensorEntry

log = logging.getLogger(__name__)

OPSET = 17
LOOP_OPS = ("Loop", "Scan", "If")  # control flow: TensorRT and static tools want straight graphs
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN")
INSTALL_HINT = "pip install 'edge-rcnn[train]' (tf2onnx, onnx, onnxruntime)"


def convert(job: ExportJob) -> ExportedFile:
    """Write ``model_<mode>.onnx`` for ``job``; ConversionError if the graph breaks a promise."""
    onnx = _import("onnx")
    proto = _MODES[job.settings.mode](export_float(job), job)
    problems = check_graph(proto)
    if problems:
        raise ConversionError(f"{job.path_for(Format.ONNX).name}: {'; '.join(problems)}")
    inp, out = io_entries(proto)
    io = None
    if job.part is parts.Part.STREAM_HEAD:  # [feature, *states] -> [probs, *states], in the Keras model's order
        io = [i.name for i in proto.graph.input], [o.name for o in proto.graph.output]
    meta = parts.metadata(job, Format.ONNX, mode=job.settings.mode.value, input=inp, output=out, io=io)
    if job.settings.mode is Mode.INT8:  # the runtime warns when it is the wrong one
        meta = replace(meta, quantized_for=job.settings.onnx_int8.value)
    embed_onnx_metadata(proto, meta)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError / InferenceError
        raise ConversionError(f"{job.path_for(Format.ONNX).name}: onnx.checker failed: {first_line(exc, 300)}") from None
    path = write_bytes_atomic(job.path_for(Format.ONNX), proto.SerializeToString())
    float_nodes, weight_only = float_compute_nodes(proto), weight_only_nodes(proto)
    notes = []
    if job.settings.mode in (Mode.INT8, Mode.DYNAMIC) and float_nodes:
        notes.append(f"float nodes (not quantized by ONNX Runtime): {', '.join(float_nodes)}")
    if weight_only:
        notes.append(f"weight-only int8 (math float): {', '.join(weight_only)}")
    return ExportedFile(path, Format.ONNX, job.settings.mode, notes=tuple(notes), part=job.part,
                        details={"opset": OPSET, "ops": op_counts(proto), "float_nodes": float_nodes,
                                 "weight_only_nodes": weight_only})


def export_float(job: ExportJob):
    """The float32 ``onnx.ModelProto`` from tf2onnx (input named like the Keras input, e.g. ``frames``)."""
    tf = _keras.tf()
    tf2onnx = _import("tf2onnx")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    batch = None if job.settings.dynamic_batch else 1
    model = build_graph(job, batch_size=batch, unroll=False)  # clip model: native LSTM/GRU nodes
    spec = tuple(tf.TensorSpec(shape, tf.float32, name=name) for name, shape in input_shapes(job, batch).items())
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    except Exception as exc:
        raise ConversionError(f"tf2onnx (opset {OPSET}) failed: {first_line(exc, 300)}") from None
    for value in (*proto.graph.input, *proto.graph.output):  # tf2onnx names a free batch axis "unk__N"
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = "batch"
    return proto


def _float(proto, job: ExportJob):
    return proto


def _fp16(proto, job: ExportJob):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(proto, keep_io_types=True)
    sort_topologically(half.graph)  # the converter appends its IO casts at the end of the node list
    return half


def _dynamic(proto, job: ExportJob):
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    onnx = _import("onnx")
    with tempfile.TemporaryDirectory(prefix="edge_rcnn_onnx_") as tmp:
        src, pre, dst = (Path(tmp) / f"{n}.onnx" for n in ("float", "pre", "dynamic"))
        onnx.save(proto, str(src))
        with _quiet_ort():
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            # int8 weights, activations quantized per call; LSTM becomes ORT's DynamicQuantizeLSTM (ORT only).
            quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, per_channel=False)
        return onnx.load(str(dst))


def _int8(proto, job: ExportJob):
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    from converters.onnx_cpu import leading_float_convs, quantize_lstms_dynamically

    onnx = _import("onnx")
    reader = ProgressReader(calibration_reader(job, proto.graph.input[0].name), f"calibrating {job.path_for(Format.ONNX).name}",
                            job.progress)
    with tempfile.TemporaryDirectory(prefix="edge_rcnn_onnx_") as tmp:
        src, pre, dst, lstm = (Path(tmp) / f"{n}.onnx" for n in ("float", "pre", "int8", "lstm"))
        onnx.save(proto, str(src))
        with _quiet_ort():
            # Shape inference and graph fusions first, as ORT recommends; shapes are static, no sympy needed.
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            # TensorRT wants symmetric int8 activations (zero point 0). On CPUs, ONNX Runtime's fast
            # path is uint8 activations x int8 weights; with int8 activations the ReLU6 Clips stay
            # float between DequantizeLinear/QuantizeLinear pairs.
            symmetric = job.settings.onnx_int8 is OnnxInt8.TENSORRT
            # For ORT's CPU kernels the stem and narrow depthwise convs stay float (converters.onnx_cpu).
            float_convs = [] if symmetric else leading_float_convs(onnx.load(str(pre)))
            quantize_static(
                str(pre), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
                nodes_to_exclude=float_convs, extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
            )
            if not symmetric:  # LSTM -> ORT's DynamicQuantizeLSTM (GRUs: weight-only int8 below)
                quantize_lstms_dynamically(str(dst), str(lstm))
                dst = lstm
        quantized = onnx.load(str(dst))
    quantize_rnn_weights(quantized)  # ORT's QDQ skips LSTM/GRU: their W/R become int8 + DequantizeLinear
    return quantized


_MODES = {Mode.FLOAT: _float, Mode.FP16: _fp16, Mode.DYNAMIC: _dynamic, Mode.INT8: _int8}


def sort_topologically(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (in place)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ConversionError(f"ONNX graph has a cycle or a dangling input at node {waiting[0].name!r}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def check_graph(proto) -> list[str]:
    loops = sorted({n.op_type for n in proto.graph.node if n.op_type in LOOP_OPS})
    return [f"holds {'/'.join(loops)} nodes (expected a straight graph; RNNs as LSTM/GRU nodes)"] if loops else []


def float_compute_nodes(proto) -> list[str]:
    """Compute nodes (Conv, MatMul, LSTM, GRU, ...) with float weights or float data: not dequantized int8.

    RNNs whose weights are dequantized int8 are not here but in ``weight_only_nodes``."""
    producers = _producers(proto)
    weight_only = set(weight_only_nodes(proto))
    return [_label(node) for node in proto.graph.node
            if node.op_type in COMPUTE_OPS and _label(node) not in weight_only
            and any(producers.get(i) != "DequantizeLinear" for i in node.input[:2])]


def weight_only_nodes(proto) -> list[str]:
    """LSTM/GRU nodes whose W and R come from DequantizeLinear: int8 in the file, float math when run
    (ONNX Runtime has no int8 LSTM/GRU kernel for QDQ graphs, whatever feeds their data input)."""
    producers = _producers(proto)
    return [_label(node) for node in proto.graph.node if node.op_type in RNN_OPS
            and all(producers.get(node.input[i]) == "DequantizeLinear" for i in WEIGHT_INPUTS)]


def _producers(proto) -> dict[str, str]:
    return {out: node.op_type for node in proto.graph.node for out in node.output}


def _label(node) -> str:
    return f"{node.op_type}({node.name})"


def op_counts(proto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in proto.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def io_entries(proto) -> tuple[TensorEntry, TensorEntry]:
    """Metadata ``input``/``output`` entries (float32 IO in every mode; -1 for a dynamic dimension)."""
    from onnx import helper


    def entry(value_info) -> TensorEntry:
        tensor_type = value_info.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        return tensor_entry(value_info.name, shape, helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))

    return entry(proto.graph.input[0]), entry(proto.graph.output[0])


class _DropOrtAdvice(logging.Filter):
    """ORT's quantizer logs advice through the root logger ("consider pre-processing", "bias of
    Gemm node is not constant"); drop it below ERROR so a user sees only what needs action."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_ort():
    for name in ("onnxruntime", "onnxruntime.quantization"):
        logging.getLogger(name).setLevel(logging.ERROR)
    drop = _DropOrtAdvice()
    logging.root.addFilter(drop)
    try:
        yield
    finally:
        logging.root.removeFilter(drop)


def _import(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise RuntimeUnavailableError(f"ONNX export needs {name}; {INSTALL_HINT}") from None
