"""The metadata and manifest records: the JSON on disk stays what it was (format_version 1, manifest
version 2), a document written before the records existed reads as the same record, and a TFLite
file is read with LiteRT's own schema (its op names are the interpreter's)."""

from __future__ import annotations

import json
import sys

import pytest

from runtimes.errors import MetadataError, ModelFileError, RuntimeUnavailableError
from runtimes.manifest import Manifest, ManifestFile
from runtimes.metadata import FileMetadata, Normalization, StreamPart, TensorEntry, parse_metadata, read_metadata

# A step head's document as the converters wrote it as a plain dict (sorted keys, nulls for float IO).
OLD_DOCUMENT = {
    "format_version": 1, "edge_rcnn_version": "0.1.0", "kind": "stream_head", "labels": ["0_right", "1_left"],
    "frames": 8, "input_size": [32, 32], "channels": 3, "color_order": "rgb",
    "normalization": {"name": "symmetric", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    "mode": "int8", "quantized_for": "cpu",
    "input": {"name": "feature", "shape": [1, 48], "dtype": "float32", "scale": None, "zero_point": None},
    "output": {"name": "probs", "shape": [1, 2], "dtype": "int8", "scale": 0.00390625, "zero_point": -128},
    "model_config": {"frames": 8, "labels": ["0_right", "1_left"], "rnn": {"cell": "lstm", "units": 16}},
    "source_sha256": "ab" * 32,
    "stream": {"role": "head", "feature_dim": 48, "frames": 8, "steps": 7, "motion": "gradient",
               "encoder": "stream_encoder_int8.onnx", "head": "stream_head_int8.onnx",
               "inputs": ["feature", "h0", "c0"], "outputs": ["probs", "h0_out", "c0_out"]},
}
OLD_TEXT = json.dumps(OLD_DOCUMENT, sort_keys=True)  # what the old writer put in the file


def test_an_old_document_reads_as_the_same_record_and_writes_the_same_json():
    meta = parse_metadata(OLD_TEXT, "old.onnx")
    assert meta == FileMetadata(
        kind="stream_head", labels=("0_right", "1_left"), frames=8, input_size=(32, 32), channels=3, color_order="rgb",
        normalization=Normalization("symmetric", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), mode="int8",
        input=TensorEntry("feature", (1, 48), "float32"), output=TensorEntry("probs", (1, 2), "int8", 0.00390625, -128),
        model_config=OLD_DOCUMENT["model_config"], source_sha256="ab" * 32, quantized_for="cpu",
        edge_rcnn_version="0.1.0",
        stream=StreamPart("head", 48, 8, 7, "gradient", "stream_encoder_int8.onnx", "stream_head_int8.onnx",
                          ("feature", "h0", "c0"), ("probs", "h0_out", "c0_out")),
    )
    assert meta.to_json() == OLD_TEXT and meta.to_dict() == OLD_DOCUMENT
    assert meta.io_names() == (["feature", "h0", "c0"], ["probs", "h0_out", "c0_out"])
    assert parse_metadata(meta.to_json(), "again.onnx") == meta


def test_optional_fields_are_none_and_stay_out_of_the_json():
    minimal = {"format_version": 1, "labels": ["a", "b"], "normalization": {"name": "unit"}}
    meta = parse_metadata(json.dumps(minimal), "third_party.tflite")
    assert meta.kind is meta.stream is meta.quantized_for is meta.input is None and meta.normalization.mean is None
    assert meta.io_names() is None and meta.to_dict() == minimal


def test_the_field_checks_run_at_parse_and_strict_false_keeps_a_damaged_document():
    bad = dict(OLD_DOCUMENT, labels=4, channels="3")
    with pytest.raises(MetadataError, match=r"^bad.tflite: metadata labels: expected a non-empty list .* \(and 1 more\)$"):
        parse_metadata(json.dumps(bad), "bad.tflite")
    shown = parse_metadata(json.dumps(bad), "bad.tflite", strict=False)
    assert shown.labels == 4 and shown.to_dict() == bad
    assert shown.problems() == ["labels: expected a non-empty list of class names, got 4",
                                "channels: expected a positive integer, got '3'"]
    with pytest.raises(MetadataError, match="unknown format"):
        FileMetadata.from_dict(dict(OLD_DOCUMENT, format_version=2), "new.tflite")


def test_a_tflite_file_written_the_old_way_reads_as_the_record(tiny_converted, tmp_path):
    from converters.metadata import embed_tflite_metadata

    int8 = tiny_converted[4]
    (old := tmp_path / "old.tflite").write_bytes(embed_tflite_metadata(int8, OLD_DOCUMENT))
    (new := tmp_path / "new.tflite").write_bytes(embed_tflite_metadata(int8, parse_metadata(OLD_TEXT, "x")))
    assert old.read_bytes() == new.read_bytes()  # the record writes the very same bytes
    assert read_metadata(old) == parse_metadata(OLD_TEXT, "x")


@pytest.mark.parametrize("which", [3, 4], ids=["float", "int8"])
def test_tflite_ops_are_the_interpreters_op_names(tiny_converted, tmp_path, which):
    from ai_edge_litert.interpreter import Interpreter

    from runtimes.metadata import tflite_ops

    (path := tmp_path / "model.tflite").write_bytes(tiny_converted[which])
    interpreter = Interpreter(model_path=str(path))
    expected = [op["op_name"] for op in interpreter._get_ops_details()]
    assert expected and tflite_ops(path) == expected


def test_the_manifest_record_round_trip(tmp_path):
    doc = {"format_version": 2, "source_sha256": "cd" * 32, "files": [
        {"file": "model_int8.tflite", "format": "tflite", "mode": "int8", "kind": "clip", "source_sha256": "cd" * 32,
         "sha256": "01" * 32, "size_bytes": 52344, "verified": True, "passed": True},
        {"file": "model_int8_edgetpu.tflite", "format": "edgetpu", "mode": "int8", "kind": "clip",
         "source_sha256": "cd" * 32, "sha256": "02" * 32, "size_bytes": 60000, "verified": False, "passed": None}]}
    manifest = Manifest.from_dict(doc)
    assert manifest.files[1] == ManifestFile("model_int8_edgetpu.tflite", "edgetpu", "int8", "clip", "cd" * 32,
                                             "02" * 32, 60000, False, None)
    assert manifest.to_dict() == doc
    (path := tmp_path / "manifest.json").write_text(json.dumps(doc))
    assert Manifest.read(path) == manifest
    for broken in ("{not json", json.dumps({"format_version": 3, "files": []}), json.dumps([1])):
        path.write_text(broken)
        with pytest.raises(MetadataError, match="manifest.json: not an edge-rcnn manifest"):
            Manifest.read(path)


def test_a_large_models_metadata_after_the_flatbuffer_is_read(tiny_converted, tmp_path):
    """Over 2 GB, the converter keeps buffers after the flatbuffer: the buffer holds offset and size."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from converters.metadata import embed_tflite_metadata

    model = schema.ModelT.InitFromPackedBuf(bytearray(embed_tflite_metadata(tiny_converted[4], OLD_DOCUMENT)), 0)
    entry = next(m for m in model.metadata if m.name in (b"edge_rcnn", "edge_rcnn"))
    buffer = model.buffers[entry.buffer]
    buffer.data, buffer.size = None, len(OLD_TEXT)

    def pack(offset: int) -> bytes:
        buffer.offset = offset
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    end = len(pack(1))  # the same size with any offset > 1: the JSON goes right after it
    assert OLD_TEXT.encode() not in pack(end)  # the flatbuffer itself holds no copy
    (path := tmp_path / "large.tflite").write_bytes(pack(end) + OLD_TEXT.encode())
    assert read_metadata(path) == parse_metadata(OLD_TEXT, "x")
    path.write_bytes(pack(end))  # the bytes it points at are missing: a damaged file, one line
    with pytest.raises(ModelFileError, match=r"large.tflite: truncated or corrupt TFLite file$"):
        read_metadata(path)


def test_without_ai_edge_litert_a_tflite_file_says_what_to_install(tiny_converted, tmp_path, monkeypatch):
    from runtimes.metadata import tflite_ops

    (path := tmp_path / "model.tflite").write_bytes(tiny_converted[3])
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # the import fails as on a machine without it
    for read in (read_metadata, tflite_ops):
        with pytest.raises(RuntimeUnavailableError, match=r"model.tflite: .*pip install 'edge-rcnn\[pi\]'$"):
            read(path)
