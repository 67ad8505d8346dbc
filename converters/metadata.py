"""Write the ``edge_rcnn`` metadata record into exported files (the record: ``runtimes.metadata.FileMetadata``)."""

from __future__ import annotations

import json
from typing import Any

from edge_rcnn.core.version import __version__
from runtimes.metadata import METADATA_KEY, FileMetadata, Normalization, TensorEntry


def metadata_json(meta: FileMetadata | dict[str, Any]) -> str:
    """The JSON text written into a file: the record's, or a raw document's (tests write damaged ones)."""
    return meta.to_json() if isinstance(meta, FileMetadata) else json.dumps(meta, sort_keys=True)


def embed_tflite_metadata(model_bytes: bytes, meta: FileMetadata | dict[str, Any], *, drop_ranges: bool = False) -> bytes:
    """Return ``model_bytes`` with ``meta`` as the ``edge_rcnn`` metadata entry (replacing an old one).

    ``drop_ranges`` also removes the calibration ``min``/``max`` that the converter leaves on every
    quantized tensor (per channel on weights and biases). No TFLite kernel reads them -- the
    arithmetic uses ``scale``/``zero_point`` -- and they are about 5% of an int8 file.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    if drop_ranges:
        for subgraph in model.subgraphs:
            for tensor in subgraph.tensors:
                if tensor.quantization is not None:
                    tensor.quantization.min = tensor.quantization.max = None
    buffer = schema.BufferT()
    buffer.data = list(metadata_json(meta).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_KEY, METADATA_KEY.encode())]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def embed_onnx_metadata(model, meta: FileMetadata | dict[str, Any]):
    """Set ``model.metadata_props['edge_rcnn']`` on an ``onnx.ModelProto`` (in place; returned)."""
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    prop = model.metadata_props.add()
    prop.key, prop.value = METADATA_KEY, metadata_json(meta)
    return model


def tensor_entry(name: str, shape, dtype, scale: float | None = None, zero_point: int | None = None) -> TensorEntry:
    """One ``input``/``output`` entry; ``scale``/``zero_point`` stay ``None`` for float tensors."""
    import numpy as np

    dtype = np.dtype(dtype).name
    quantized = dtype in ("int8", "uint8", "int16") and scale not in (None, 0.0)
    return TensorEntry(str(name), tuple(int(d) for d in shape), dtype,
                       float(scale) if quantized else None, int(zero_point) if quantized else None)


def build_metadata(config, *, mode: str, input: TensorEntry, output: TensorEntry, source_sha256: str,
                   kind: str | None = None) -> FileMetadata:
    """The ``edge_rcnn`` record for ``config`` (``kind``: the model's input mode unless given)."""
    mean, std = config.mean_std
    return FileMetadata(
        kind=kind or config.mode.value,
        labels=tuple(config.labels),
        frames=config.frames,
        input_size=tuple(config.input_size),
        channels=config.channels,
        color_order=config.color_order,
        normalization=Normalization(config.normalization.value, tuple(mean), tuple(std)),
        mode=mode,
        input=input,
        output=output,
        model_config=config.to_dict(),
        source_sha256=source_sha256,
        edge_rcnn_version=__version__,
    )
