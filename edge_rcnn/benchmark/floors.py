"""The floor under the missed size targets: what no converter change can beat.

An int8 file and its float32 counterpart, both with every name stripped: for TFLite,
TensorFlow's own ``flatbuffer_utils.strip_strings`` (tensor and subgraph names, descriptions,
signature defs); for ONNX, every tensor and node renamed to a few characters and ``value_info``
dropped. The edge-rcnn metadata stays: the runtimes need it and the converters issue asks for it
inside every file. What is left is weights, quantization parameters and graph structure. The
stripped files load and give the same outputs as the originals (tested), so their size ratio is
about the least that any file holding the same graph and metadata can reach. (The streaming
target's floor is a ratio like the others: ``targets.ratios``' ``stream_speedup_calls_bound``.)
"""

from __future__ import annotations

from pathlib import Path

# (int8 row, float32 row) pairs whose size ratio is a converters target or sits next to one.
SIZE_PAIRS = (("tflite-int8", "tflite-fp32"), ("tflite-int8-fused", "tflite-fp32"), ("onnx-int8", "onnx-fp32"))


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


def size_floors(report, model: str | Path, models_dir: str | Path) -> dict[str, float]:
    """``{"<int8 row>_vs_fp32_size_stripped": ratio}`` for each pair of ``SIZE_PAIRS`` measured in ``report``,
    from the files the benchmark exported for ``model`` under ``models_dir`` (``prepare.expected_files``)."""
    from edge_rcnn.benchmark.formats import FORMATS
    from edge_rcnn.benchmark.prepare import expected_files

    measured = {row.format for row in report.rows if row.ok}
    pairs = [pair for pair in SIZE_PAIRS if set(pair) <= measured]
    sizes = {name: stripped_size(expected_files(FORMATS[name], Path(model), Path(models_dir))["model"])
             for name in {name for pair in pairs for name in pair}}  # a float file shared by two pairs: stripped once
    return {f"{q.replace('-', '_')}_vs_fp32_size_stripped": sizes[q] / sizes[f] for q, f in pairs}
