"""``info``: what an exported file holds: metadata, inputs/outputs with quantization, ops.

TFLite op lists come from the flatbuffer (``runtimes.tflite_file.tflite_ops``, no TensorFlow); IO
details from a LiteRT interpreter when one loads the file (an Edge TPU file needs the TPU's
delegate, so its IO comes from the metadata). ONNX details come from the ``onnx`` package.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from converters.onnx_export import float_compute_nodes, op_counts, weight_only_nodes
from converters.tflite import make_interpreter
from edge_rcnn.core.errors import ModelFileError, first_line
from runtimes.base import order_io
from runtimes.errors import RuntimeUnavailableError
from runtimes.metadata import FileMetadata, io_names, read_metadata, tflite_ops
from runtimes.modeldir import check_listed_file


def info(path: str | os.PathLike) -> dict[str, Any]:
    """``{"file", "format", "size_bytes", "metadata", "inputs", "outputs", "ops", ...}`` for a .tflite/.onnx file.

    A file listed in a ``manifest.json`` beside it must match its sha256 there (ModelFileError)."""
    path = Path(path)
    check_listed_file(path)
    meta = read_metadata(path)  # also rejects missing, empty and unknown files
    base = {"file": str(path), "size_bytes": path.stat().st_size, "metadata": meta.to_dict() if meta else None}
    if path.suffix.lower() == ".onnx":
        return {**base, "format": "onnx", **_onnx_details(path)}
    fmt = "edgetpu" if path.name.endswith("_edgetpu.tflite") else "tflite"
    return {**base, "format": fmt, **_tflite_details(path, meta)}


def _tflite_details(path: Path, meta: FileMetadata | None) -> dict[str, Any]:
    ops = tflite_ops(path)
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    details: dict[str, Any] = {"ops": counts, "op_count": len(ops)}
    try:
        interpreter = make_interpreter(path.read_bytes())
    except Exception as exc:  # custom ops (edgetpu-custom-op) need their delegate to load
        details["io_source"] = f"metadata (the interpreter cannot load it here: {first_line(exc, 120)})"
        details["inputs"] = [meta.input.to_dict()] if meta and meta.input else []
        details["outputs"] = [meta.output.to_dict()] if meta and meta.output else []
        return details
    details["io_source"] = "interpreter"
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    names = io_names(meta)
    if names:  # a step head: its tensors in call order, as the runtimes read them
        by_name = lambda d: d["name"]  # noqa: E731
        inputs = order_io(inputs, names[0], by_name, path, "input")
        outputs = order_io(outputs, names[1], by_name, path, "output")
    details["inputs"] = [_tflite_tensor(d) for d in inputs]
    details["outputs"] = [_tflite_tensor(d) for d in outputs]
    float_ops = sorted({op["op_name"] for op in interpreter._get_ops_details()
                        if any(t.__name__ == "float32" for t in (*op.get("operand_types", ()), *op.get("result_types", ())))})
    details["ops_with_float_tensors"] = float_ops
    return details


def _tflite_tensor(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape_signature"]],
            "dtype": detail["dtype"].__name__, "scale": float(scale) if scale else None,
            "zero_point": int(zero_point) if scale else None}


def _onnx_details(path: Path) -> dict[str, Any]:
    try:
        import onnx
    except ImportError:
        raise RuntimeUnavailableError("info on ONNX files needs the onnx package: pip install onnx") from None

    try:
        proto = onnx.load(str(path))
    except Exception:
        raise ModelFileError(f"{path}: not a readable ONNX model") from None

    def tensor(value_info) -> dict[str, Any]:
        t = value_info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in t.shape.dim]
        return {"name": value_info.name, "shape": dims,
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else None}

    return {
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "inputs": [tensor(v) for v in proto.graph.input],
        "outputs": [tensor(v) for v in proto.graph.output],
        "ops": op_counts(proto), "op_count": len(proto.graph.node),
        "float_compute_nodes": float_compute_nodes(proto),
        "weight_only_nodes": weight_only_nodes(proto),
    }


_NODE_LISTS = {  # details key -> its line in ``format_info``
    "ops_with_float_tensors": "ops with float tensors",
    "float_compute_nodes": "float compute nodes",
    "weight_only_nodes": "weight-only int8 (math float)",  # LSTM/GRU: int8 W/R behind DequantizeLinear
}


def format_info(details: dict[str, Any]) -> str:
    """Human-readable lines for ``edge-rcnn info``."""
    meta = details.get("metadata") or {}
    lines = [f"{details['file']}  ({details['format']}, {details['size_bytes']} bytes)"]
    if meta:
        made_for = f" (quantized for {meta['quantized_for']})" if meta.get("quantized_for") else ""
        lines.append(f"  mode {meta.get('mode')}{made_for}, kind {meta.get('kind')}, edge-rcnn {meta.get('edge_rcnn_version')}, "
                     f"source sha256 {str(meta.get('source_sha256'))[:12]}")
        lines.append(f"  labels ({len(meta.get('labels', []))}): {', '.join(meta.get('labels', []))}")
        norm = meta.get("normalization", {})
        lines.append(f"  frames {meta.get('frames')}, input {meta.get('input_size')} x {meta.get('channels')} "
                     f"{meta.get('color_order')}, normalization {norm.get('name')} mean {norm.get('mean')} std {norm.get('std')}")
    else:
        lines.append("  no edge_rcnn metadata")
    for kind in ("inputs", "outputs"):
        for t in details.get(kind, []):
            quant = f" scale {t['scale']:.6g} zero_point {t['zero_point']}" if t.get("scale") else ""
            lines.append(f"  {kind[:-1]} {t['name']}: {t['shape']} {t['dtype']}{quant}")
    ops = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in details.get("ops", {}).items())
    lines.append(f"  ops ({details.get('op_count')}): {ops}")
    for key, label in _NODE_LISTS.items():
        if key in details:
            lines.append(f"  {label}: {', '.join(details[key]) or 'none'}")
    return "\n".join(lines)


def info_json(details: dict[str, Any]) -> str:
    return json.dumps(details, indent=2, default=str)
