"""Weight-only int8 for ONNX ``LSTM``/``GRU`` nodes, which ONNX Runtime's static QDQ leaves float.

Each float ``W`` (input 1, ``[num_directions, gates*hidden, input]``) and ``R`` (input 2,
``[num_directions, gates*hidden, hidden]``) initializer becomes an int8 initializer read through a
``DequantizeLinear``: symmetric (zero point 0, int8), one scale per gate row (``axis=1``, shared by
the directions of a bidirectional node). The bias ``B`` stays float (tiny) and the RNN math stays
float: only the stored weights shrink, 4x, and they hold most of a small CNN+RNN's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RNN_OPS = ("LSTM", "GRU")
WEIGHT_INPUTS = (1, 2)  # W and R; B (input 3) stays float
ROW_AXIS = 1  # gates*hidden: one scale per gate row
INT8_MAX = 127  # symmetric range [-127, 127], as ORT's symmetric weights


@dataclass(frozen=True)
class RowQuantized:
    """``values * scale[None, :, None]`` approximates the float weight."""

    values: np.ndarray  # int8, the weight's shape
    scale: np.ndarray  # float32, one per row along ROW_AXIS


def quantize_rows(weight: np.ndarray) -> RowQuantized:
    """Symmetric per-row int8: each row's scale is its largest magnitude (all directions) / 127."""
    if weight.ndim != 3:
        raise ValueError(f"RNN weight: expected [num_directions, gates*hidden, size], got shape {weight.shape}")
    peak = np.abs(weight).max(axis=(0, 2))
    scale = np.where(peak > 0, peak / INT8_MAX, 1.0).astype(np.float32)  # an all-zero row stays zero
    values = np.clip(np.rint(weight / scale[None, :, None]), -INT8_MAX, INT8_MAX).astype(np.int8)
    return RowQuantized(values, scale)


def quantize_rnn_weights(proto) -> list[str]:
    """In place: every float LSTM/GRU ``W``/``R`` initializer -> int8 + DequantizeLinear; returns their names.

    The DequantizeLinear output keeps the initializer's name, so the RNN nodes (and any other
    reader) are untouched; the float initializer is removed. A weight that is also a graph input
    (overridable at run time) is left alone.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    initializers = {init.name: init for init in graph.initializer}
    graph_inputs = {value.name for value in graph.input}
    names = [node.input[i] for node in graph.node if node.op_type in RNN_OPS for i in WEIGHT_INPUTS
             if len(node.input) > i and node.input[i] in initializers and node.input[i] not in graph_inputs]
    names = [name for name in dict.fromkeys(names) if initializers[name].data_type == TensorProto.FLOAT]
    dequantize = []
    for name in names:
        quantized = quantize_rows(numpy_helper.to_array(initializers[name]))
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([
            numpy_helper.from_array(quantized.values, f"{name}_quantized"),
            numpy_helper.from_array(quantized.scale, f"{name}_scale"),
            numpy_helper.from_array(np.zeros_like(quantized.scale, dtype=np.int8), f"{name}_zero_point"),
        ])
        dequantize.append(helper.make_node(
            "DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"], [name],
            name=f"{name}_DequantizeLinear", axis=ROW_AXIS))
    if dequantize:  # they read initializers only: first in the node list keeps it topologically sorted
        nodes = [*dequantize, *graph.node]
        del graph.node[:]
        graph.node.extend(nodes)
    return names
