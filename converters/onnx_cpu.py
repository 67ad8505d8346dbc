"""What the ``--onnx-int8 cpu`` file does differently: it is for ONNX Runtime's CPU kernels only.

- ORT's int8 convolution is slower than its float one at the very start of a CNN: the stem conv
  reads a few channels (a short dot product) and a narrow depthwise conv fills a fraction of a
  vector register. Deeper depthwise convs and every pointwise conv are faster in int8. So the
  leading run of such convs stays float (``leading_float_convs``); a float island further in
  would cost two more layout changes and a quantize.
- ORT's ``DynamicQuantizeLSTM`` (int8 weights, int8 products, activations quantized per call)
  beats a float LSTM reading weight-only int8 (whose DequantizeLinear ORT runs on every call).

The TensorRT file keeps every conv int8 and the RNN as weight-only int8: TensorRT has its own
kernels and no DynamicQuantizeLSTM. Per-node profiles and the resulting latencies:
``benchmarks/results/design-notes-2026-12-02.md`` and the ``onnx-int8`` rows of the record.
"""

from __future__ import annotations

from onnx import numpy_helper

FIRST_LAYER_CHANNELS = 6  # a first conv reading this few channels (RGB, grey, or a pair of frames) is a stem
NARROW_DEPTHWISE = 32  # a depthwise conv over fewer channels than this is slower in int8 on ORT


def leading_float_convs(proto) -> list[str]:
    """Names of the backbone's first convs that ORT runs faster in float: the stem and the narrow
    depthwise convs right after it, up to the first conv that is neither."""
    weights = {init.name: init for init in proto.graph.initializer}
    names = []
    for node in proto.graph.node:  # topological order: the backbone's first Conv is the stem
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in weights or "backbone/" not in node.name:
            continue  # the fixed motion-cue convs read the pixels too, but are not the CNN
        out_channels, in_per_group = numpy_helper.to_array(weights[node.input[1]]).shape[:2]
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        depthwise = group > 1 and group == out_channels and in_per_group == 1
        stem = not names and in_per_group * group <= FIRST_LAYER_CHANNELS
        if stem or (names and depthwise and out_channels < NARROW_DEPTHWISE):
            names.append(node.name)
        else:
            break
    return names


def quantize_lstms_dynamically(src: str, dst: str) -> None:
    """``LSTM`` nodes of the QDQ model at ``src`` -> ORT's ``DynamicQuantizeLSTM``, written to ``dst``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
