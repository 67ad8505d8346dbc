"""TFLite target: float32, float16, dynamic-range and full-integer int8 files.

Converted from a static batch-1 rebuild of the Keras model (``edge_rcnn.core.model.rebuild``). A
full-int8 file is checked after conversion: only builtin ops, every tensor an op touches is an
integer (int8 activations, int16 LSTM cell state, int32 biases), float only on a QUANTIZE that
reads the graph input or a DEQUANTIZE that writes the graph output (``--io float``); never a
WHILE loop, a Flex/SELECT_TF op or a custom op. The metadata (schema: ``runtimes.metadata``) goes
inside the file, which is written atomically.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from converters import parts
from converters.calibration import representative_dataset
from converters.config import Format, IoType, LstmKernel, Mode
from converters.job import ExportedFile, ExportJob
from converters.metadata import embed_tflite_metadata, tensor_entry
from converters.parts import Part, build_graph, calibration_reader
from edge_rcnn.core import _keras
from edge_rcnn.core._util import write_bytes_atomic
from edge_rcnn.core.errors import ConversionError, first_line
from edge_rcnn.core.stepper import STATE_OUTPUT_SUFFIX
from runtimes.metadata import TensorEntry

log = logging.getLogger(__name__)

# Ops that must never appear: control flow (the LSTM must stay fused, GRU unrolled) and
# anything outside the builtin set, which a stock LiteRT interpreter cannot run.
FORBIDDEN_OPS = ("WHILE", "IF", "CALL_ONCE", "CALL")
INTEGER_DTYPES = ("int8", "uint8", "int16", "int32", "int64", "bool")


# Full-int8 quantizers, tried in order. With TF 2.21 (tests: every backbone x LSTM/GRU) the MLIR
# quantizer is nondeterministic on unrolled GRUs: about one conversion in three leaves a
# DEQUANTIZE -> float SPLIT -> QUANTIZE at the first time step (identical model and data), while
# the legacy quantizer (tflite::optimize) gave full int8 every time and equal or lower error.
# The MLIR one stays as a fallback for ops the legacy quantizer cannot handle.
INT8_QUANTIZERS = ("legacy", "mlir")


def convert(job: ExportJob) -> ExportedFile:
    """Write ``model_<mode>.tflite`` for ``job``; ConversionError if it breaks a promise."""
    name = job.path_for(Format.TFLITE).name
    content, quantizer = convert_checked(job)
    io = signature_io(content, parts.state_names(job.config)) if job.part is parts.Part.STREAM_HEAD else None
    inp, out = io_entries(content, io)
    meta = parts.metadata(job, Format.TFLITE, mode=job.settings.mode.value, input=inp, output=out, io=io)
    # Calibration ranges stay in a file the Edge TPU compiler will read (its use of them is not
    # documented); everywhere else they are dead bytes.
    drop = job.settings.mode is Mode.INT8 and Format.EDGETPU not in job.settings.formats
    path = write_bytes_atomic(job.path_for(Format.TFLITE), embed_tflite_metadata(content, meta, drop_ranges=drop))
    details = {"ops": op_counts(content)}
    if quantizer:
        details["quantizer"] = quantizer
    log.debug("%s: %s", name, details)
    return ExportedFile(path, Format.TFLITE, job.settings.mode, details=details, part=job.part)


def convert_checked(job: ExportJob) -> tuple[bytes, str | None]:
    """``(flatbuffer, quantizer)`` that passes ``check_ops``; int8 tries each quantizer in turn."""
    name = job.path_for(Format.TFLITE).name
    full_integer = job.settings.mode is Mode.INT8
    failures: list[str] = []
    for quantizer in INT8_QUANTIZERS if full_integer else (None,):
        try:
            content = convert_bytes(job, quantizer)
        except ConversionError as exc:
            failures.append(f"{quantizer or 'converter'}: {exc}")
            continue
        problems = check_ops(content, full_integer=full_integer)
        if not problems:
            return content, quantizer
        failures.append(f"{quantizer or 'converter'} quantizer: {'; '.join(problems)}")
        log.info("%s: %s", name, failures[-1])
    raise ConversionError(f"{name}: {' | '.join(failures)}")


def convert_bytes(job: ExportJob, quantizer: str | None = None) -> bytes:
    """The converted flatbuffer (no metadata yet); ``quantizer`` picks legacy or MLIR for int8."""
    tf = _keras.tf()

    # The clip model's LSTM as the fused op or unrolled (see LstmKernel); streaming heads are
    # always unrolled (no state in the file) and GRUs always are (no fused op).
    static = build_graph(job, batch_size=1, unroll=True if job.settings.tflite_lstm is LstmKernel.UNROLLED else None)
    converter = tf.lite.TFLiteConverter.from_keras_model(static)
    _SETUP[job.settings.mode](converter, job, tf)
    if quantizer is not None:
        converter.experimental_new_quantizer = quantizer == "mlir"
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": we set the IO dtype
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            # TF's calibrator reads a several-input model's signature with tf.lite.Interpreter.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError/RuntimeError with pages of MLIR
        first = first_line(exc, 300)
        raise ConversionError(f"TFLite {job.settings.mode.value} conversion failed: {first}") from None


def _setup_float(converter, job: ExportJob, tf) -> None:
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]


def _setup_fp16(converter, job: ExportJob, tf) -> None:
    _setup_float(converter, job, tf)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _setup_dynamic(converter, job: ExportJob, tf) -> None:
    _setup_float(converter, job, tf)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: int8 weights only


def _setup_int8(converter, job: ExportJob, tf) -> None:
    reader = calibration_reader(job, "input")  # TFLite feeds by position; the name is only a key
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(reader, f"calibrating {job.path_for(Format.TFLITE).name}", job.progress)
    # Builtin int8 kernels only: an op that cannot be quantized fails here instead of falling back to float.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io = job.settings.io_type
    # The step head keeps float IO: its states go back in on the next call, and int8 state
    # outputs would need requantizing to the inputs' own scales on every push.
    if io is not IoType.FLOAT and job.part is not Part.STREAM_HEAD:
        converter.inference_input_type = converter.inference_output_type = getattr(tf, io.value)


_SETUP = {Mode.FLOAT: _setup_float, Mode.FP16: _setup_fp16, Mode.DYNAMIC: _setup_dynamic, Mode.INT8: _setup_int8}


def make_interpreter(content: bytes):
    """A LiteRT interpreter with no default delegate, so op details are the file's own ops."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        Interpreter, OpResolverType = _keras.tf().lite.Interpreter, _keras.tf().lite.experimental.OpResolverType
    interpreter = Interpreter(model_content=content,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def op_counts(content: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in make_interpreter(content)._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def check_ops(content: bytes, full_integer: bool) -> list[str]:
    """Every broken promise of a converted file, as short phrases (empty: all good)."""
    try:
        interpreter = make_interpreter(content)
    except (RuntimeError, ValueError) as exc:  # e.g. a Flex op: a stock interpreter has no kernel
        return [f"does not load in a stock LiteRT interpreter ({first_line(exc)})"]
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    graph_in = {d["index"] for d in interpreter.get_input_details()}
    graph_out = {d["index"] for d in interpreter.get_output_details()}
    problems: list[str] = []
    for op in interpreter._get_ops_details():
        name = op["op_name"]
        if name in FORBIDDEN_OPS or name.startswith(("Flex", "CUSTOM")) or name == "DELEGATE":
            problems.append(f"op {op['index']} is {name} (expected builtin ops only, no control flow)")
            continue
        if not full_integer:
            continue
        inputs = [int(i) for i in op["inputs"] if i >= 0]
        outputs = [int(i) for i in op["outputs"] if i >= 0]
        if name == "QUANTIZE" and set(inputs) <= graph_in:
            continue  # float -> int8 at the graph input (--io float) or int8 -> uint8
        if name in ("DEQUANTIZE", "QUANTIZE") and set(outputs) <= graph_out:
            continue  # int8 -> float at the graph output (--io float) or int8 -> uint8
        floats = sorted({dtypes[i] for i in inputs + outputs if i in dtypes and dtypes[i] not in INTEGER_DTYPES})
        if floats:
            problems.append(f"op {op['index']} {name} uses {'/'.join(floats)} tensors (expected int8 only)")
        elif name == "DEQUANTIZE":
            problems.append(f"op {op['index']} DEQUANTIZE inside the graph (expected int8 end to end)")
    return problems


def signature_io(content: bytes, states: list[str]) -> tuple[list[str], list[str]]:
    """A step head's input and output tensor names in call order: ``[feature, *states]`` ->
    ``[probs, *states]`` (the converter orders a file's tensors its own way)."""
    runner = make_interpreter(content).get_signature_runner()
    ins, outs = runner.get_input_details(), runner.get_output_details()
    state_outs = [s + STATE_OUTPUT_SUFFIX for s in states]
    probs = sorted(set(outs) - set(state_outs))
    if sorted(ins) != sorted(["feature", *states]) or len(probs) != 1 or not set(state_outs) <= set(outs):
        raise ConversionError(f"step head signature: inputs {sorted(ins)}, outputs {sorted(outs)}; "
                              f"expected feature, {', '.join(states)} and their outputs")
    return ([ins[n]["name"] for n in ("feature", *states)], [outs[n]["name"] for n in (*probs, *state_outs)])


def io_entries(content: bytes, io: tuple[list[str], list[str]] | None = None) -> tuple[TensorEntry, TensorEntry]:
    """Metadata ``input``/``output`` entries from the interpreter's own tensor details (a step
    head's: the feature and the probabilities, named in ``io``)."""
    interpreter = make_interpreter(content)

    def entry(detail: dict[str, Any]) -> TensorEntry:
        scale, zero_point = detail["quantization"]
        name = detail["name"].removeprefix("serving_default_").split(":")[0]
        return tensor_entry(name, detail["shape_signature"], detail["dtype"], scale, zero_point)

    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if io is None:
        return entry(inputs[0]), entry(outputs[0])
    named = lambda details, name: next(d for d in details if d["name"] == name)  # noqa: E731
    return entry(named(inputs, io[0][0])), entry(named(outputs, io[1][0]))
