"""Write the ``edge_rcnn`` metadata document into exported files (schema: ``runtimes.metadata``)."""

from __future__ import annotations

import json
from typing import Any

from runtimes.metadata import METADATA_KEY


def embed_tflite_metadata(model_bytes: bytes, meta: dict[str, Any]) -> bytes:
    """Return ``model_bytes`` with ``meta`` as the ``edge_rcnn`` metadata entry (replacing an old one)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(meta, sort_keys=True).encode("utf-8"))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_KEY
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_KEY, METADATA_KEY.encode())]
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def embed_onnx_metadata(model, meta: dict[str, Any]):
    """Set ``model.metadata_props['edge_rcnn']`` on an ``onnx.ModelProto`` (in place; returned)."""
    for prop in list(model.metadata_props):
        if prop.key == METADATA_KEY:
            model.metadata_props.remove(prop)
    prop = model.metadata_props.add()
    prop.key, prop.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    return model
