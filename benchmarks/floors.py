"""What the size targets are judged on: a file's tensor data, its overhead, and the floor under its size.

Tensor data: the bytes of a file's constant tensors at their stored types (weights, biases, shape
constants) plus its quantization parameters (scales, zero points, any min/max kept), read with the
schema each runtime ships: LiteRT's flatbuffer schema for ``.tflite``, the onnx package for
``.onnx`` (initializers and ``Constant`` node tensors of the main graph). The rest of the file is
overhead: tensor and op records, names, the graph, metadata; ``TensorData`` reports it per tensor
(every tensor the graph holds, activations too). ``targets`` judges a small model's int8 file by
its tensor data and a big one's by the whole file.

The floor: an int8 file and its float32 counterpart, both with every name stripped: for TFLite,
TensorFlow's own ``flatbuffer_utils.strip_strings`` (tensor and subgraph names, descriptions,
signature defs); for ONNX, every tensor and node renamed to a few characters and ``value_info``
dropped. The edge-rcnn metadata stays: the runtimes read labels, frames and normalization from it
inside every file. What is left is weights, quantization parameters and graph structure. The
stripped files load and give the same outputs as the originals (tested), so their size ratio is
about the least that any file holding the same graph and metadata can reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path
from typing import Any

from edge_rcnn.benchmark.formats import FORMATS
from edge_rcnn.benchmark.prepare import expected_files

# (int8 row, float32 row) pairs whose size ratio is a converters target or sits next to one.
SIZE_PAIRS = (("tflite-int8", "tflite-fp32"), ("tflite-int8-fused", "tflite-fp32"), ("onnx-int8", "onnx-fp32"))


@dataclass(frozen=True)
class TensorData:
    """How one model file's bytes divide between tensor data and overhead."""

    file_bytes: int
    data_bytes: int  # constant tensors at their stored types + quantization parameters
    tensors: int  # every tensor the graph holds (activations too)
    weights: int  # values in the constant tensors

    @property
    def overhead_bytes(self) -> int:
        return self.file_bytes - self.data_bytes

    @property
    def overhead_per_tensor(self) -> float:
        return self.overhead_bytes / self.tensors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overhead_bytes": self.overhead_bytes, "overhead_per_tensor": self.overhead_per_tensor}


# Stored sizes of the schema's quantization arrays: scale, min and max are float32, zero_point int64.
TFLITE_QUANT_ITEMSIZE = {"scale": 4, "zeroPoint": 8, "min": 4, "max": 4}


def tflite_tensor_data(content: bytes) -> TensorData:
    """``TensorData`` of a TFLite flatbuffer. A buffer that several tensors share counts once; a
    buffer stored past the flatbuffer (``offset``/``size``, files over 2 GB) counts its ``size``."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    constants: dict[int, tuple[int, int]] = {}  # buffer index -> (bytes, values)
    quant_bytes = tensors = 0
    for subgraph in model.subgraphs or ():
        for tensor in subgraph.tensors or ():
            tensors += 1
            buffer = model.buffers[tensor.buffer]
            size = len(buffer.data) if buffer.data is not None else buffer.size
            if size:
                shape = () if tensor.shape is None else tensor.shape
                constants[tensor.buffer] = (size, prod(int(n) for n in shape))
            q = tensor.quantization
            if q is not None:
                quant_bytes += sum(len(getattr(q, name)) * itemsize for name, itemsize in TFLITE_QUANT_ITEMSIZE.items()
                                   if getattr(q, name) is not None)
    return TensorData(len(content), quant_bytes + sum(b for b, _ in constants.values()), tensors,
                      sum(v for _, v in constants.values()))


def onnx_tensor_data(content: bytes) -> TensorData:
    """``TensorData`` of an ONNX model (quantization parameters are initializers like any other)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(content).graph
    arrays = [numpy_helper.to_array(t) for t in graph.initializer]
    arrays += [numpy_helper.to_array(a.t) for node in graph.node for a in node.attribute
               if a.type == onnx.AttributeProto.TENSOR]
    names = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    names |= {name for node in graph.node for name in node.output if name}
    return TensorData(len(content), sum(a.nbytes for a in arrays), len(names), sum(a.size for a in arrays))


def tensor_data(path: str | Path) -> TensorData:
    """``TensorData`` of the file at ``path`` (``.tflite`` or ``.onnx``)."""
    path = Path(path)
    read = tflite_tensor_data if path.suffix == ".tflite" else onnx_tensor_data
    return read(path.read_bytes())


def strip_tflite(content: bytes) -> bytes:
    """The TFLite flatbuffer ``content`` without the strings TensorFlow's ``strip_strings`` removes."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(content, 0))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def strip_onnx(content: bytes) -> bytes:
    """The ONNX model ``content`` with short tensor and node names (graph inputs and outputs keep
    theirs) and no ``value_info``; initializers, nodes, attributes and ``metadata_props`` unchanged."""
    import onnx

    model = onnx.load_from_string(content)
    graph = model.graph
    del graph.value_info[:]
    keep = {v.name for v in (*graph.input, *graph.output)}
    short: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in keep:
            return name
        return short.setdefault(name, f"t{len(short):x}")

    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for i, node in enumerate(graph.node):
        node.name, node.doc_string = f"n{i:x}", ""
        node.input[:] = [rename(x) for x in node.input]
        node.output[:] = [rename(x) for x in node.output]
    graph.name, graph.doc_string, model.doc_string = "g", "", ""
    return model.SerializeToString()


def stripped_size(path: str | Path) -> int:
    """Bytes of the file at ``path`` once stripped (``.tflite`` or ``.onnx``)."""
    path = Path(path)
    strip = strip_tflite if path.suffix == ".tflite" else strip_onnx
    return len(strip(path.read_bytes()))


def pair_files(report, model: str | Path, models_dir: str | Path) -> dict[str, Path]:
    """The model file of each row in a pair of ``SIZE_PAIRS`` whose two rows ``report`` measured, where
    the benchmark exported it for ``model`` under ``models_dir`` (``prepare.expected_files``)."""
    measured = {row.format for row in report.rows if row.ok}
    names = {name for pair in SIZE_PAIRS if set(pair) <= measured for name in pair}
    return {name: expected_files(FORMATS[name], Path(model), Path(models_dir))["model"] for name in sorted(names)}


def tensor_data_by_row(report, model: str | Path, models_dir: str | Path) -> dict[str, TensorData]:
    """``TensorData`` of each file of ``pair_files``, by row name."""
    return {name: tensor_data(path) for name, path in pair_files(report, model, models_dir).items()}


def size_floors(report, model: str | Path, models_dir: str | Path) -> dict[str, float]:
    """``{"<int8 row>_vs_fp32_size_stripped": ratio}`` for each pair of ``pair_files`` (a float file
    shared by two pairs is stripped once)."""
    sizes = {name: stripped_size(path) for name, path in pair_files(report, model, models_dir).items()}
    return {f"{q.replace('-', '_')}_vs_fp32_size_stripped": sizes[q] / sizes[f] for q, f in SIZE_PAIRS
            if q in sizes and f in sizes}
