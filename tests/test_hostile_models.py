"""Hostile model files, metadata and input: every one is a prediction or an ``EdgeRcnnError``.

A camera service loads whatever file is on the disk and predicts on whatever the capture code
hands it. Nothing here may end in another exception type, a crashed process or a hang:

- model files: empty, truncated at many lengths, random bytes behind a valid TFLite or ONNX
  start, single-byte flips across whole files (run in a worker process, so a crash or a hang in
  native code is seen and counted rather than taking the test run down);
- foreign models: valid files without our metadata, of shapes we do not make;
- metadata: mistyped, damaged, or disagreeing with the model's own tensors (``info`` warns);
- a bounded, derandomized ``hypothesis`` run over the metadata reader and over ``predict``'s
  input checks.

Tiny files are made once per session here (TensorFlow in the test process only; the worker and
``runtimes`` never import it). ``CASES`` counts what ran, for the README's reliability section
(``pytest -s`` prints it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from conftest import tiny_model_files  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import runtimes  # noqa: E402
from runtimes import EdgeRcnnError, InputError, MetadataError, ModelFileError, ModelOutputError  # noqa: E402
from runtimes.base import TensorInfo  # noqa: E402
from runtimes.metadata import FileMetadata, parse_metadata, read_metadata  # noqa: E402
from runtimes.spec import resolve_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CASES: Counter = Counter()  # kind of hostile case -> how many ran (summed over the file's tests)


# ---------------------------------------------------------------- files made once per session

def _metadata(config, mode: str = "float", **changes) -> dict:
    """The document converters write for ``config``, with ``changes`` applied (``None``: key removed)."""
    from converters.metadata import build_metadata, tensor_entry

    meta = build_metadata(
        config, mode=mode, source_sha256="0" * 64,
        input=tensor_entry("frames", (1, *config.input_shape), "float32"),
        output=tensor_entry("probs", (1, len(config.labels)), "float32"),
    ).to_dict()
    meta.update(changes)
    return {k: v for k, v in meta.items() if v is not None}


@pytest.fixture(scope="session")
def models(tmp_path_factory, tiny_converted):
    """Our tiny clip model as float/int8 TFLite and float ONNX with metadata, the same without
    metadata, and foreign models: a rank-2 classifier, an image classifier, one that answers NaN."""
    import onnx
    import tf2onnx

    from edge_rcnn.core._keras import keras, tf

    tf_, k = tf(), keras()
    out = tmp_path_factory.mktemp("hostile")
    _, config, _, raw, proto, _ = tiny_model_files(out, _metadata, tiny_converted)

    def foreign(name: str, inputs, outputs):
        net = k.Model(inputs, outputs)
        (out / f"{name}.tflite").write_bytes(tf_.lite.TFLiteConverter.from_keras_model(net).convert())
        spec = (tf_.TensorSpec(tuple(inputs.shape), tf_.float32, name="x"),)
        onnx.save(tf2onnx.convert.from_keras(net, input_signature=spec, opset=17)[0], out / f"{name}.onnx")

    flat = k.Input((10,), batch_size=1)
    foreign("rank2", flat, k.layers.Dense(3, activation="softmax")(flat))
    image = k.Input((16, 16, 3), batch_size=1)
    pooled = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3)(image))
    foreign("image", image, k.layers.Dense(5, activation="softmax")(pooled))
    nan_init = k.initializers.Constant(float("nan"))
    foreign("nan", image, k.layers.Dense(5, kernel_initializer=nan_init)(k.layers.Flatten()(image)))
    return {"dir": out, "config": config, "raw_tflite": raw, "onnx_proto": proto}


def _clip(seed: int = 0, frames: int = 8, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- hostile bytes, in a worker

# Loads and predicts each file in turn; one JSON line when a case starts and one when it ends.
# SIGALRM without a handler ends the process: a hang in native code is seen as that signal.
WORKER = textwrap.dedent("""
    import faulthandler, json, resource, signal, sys
    import numpy as np
    import runtimes
    from runtimes.errors import EdgeRcnnError, first_line

    faulthandler.enable()  # a crash in native code leaves the Python stack on stderr
    limit = 6 * 2**30  # a flipped shape that asks for terabytes fails to allocate, not swaps
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    paths, start, seconds = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    clip = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    for i in range(start, len(paths)):
        print(json.dumps({"i": i, "at": "start"}), flush=True)
        signal.alarm(seconds)
        try:
            probs = runtimes.load(paths[i], num_threads=1).predict(clip).probs
            out = {"result": "predicted", "finite": bool(np.isfinite(probs).all()), "n": len(probs),
                   "sum": float(probs.sum())}
        except EdgeRcnnError as exc:
            out = {"result": "typed", "type": type(exc).__name__, "message": str(exc)}
        except BaseException as exc:
            out = {"result": "untyped", "type": type(exc).__name__, "message": first_line(exc)}
        signal.alarm(0)
        print(json.dumps({"i": i, "at": "end", **out}), flush=True)
""")
CASE_SECONDS = 20


def run_cases(paths: list[Path]) -> list[dict]:
    """Each file loaded and predicted in a worker process; a case that kills the worker is
    recorded as a ``crash`` (or a ``hang``, on SIGALRM) and the worker restarts after it.

    A crash is tried again alone in a fresh worker: one that does not happen again is kept as
    ``crash_once`` (counted and printed, not failed: see ``_check``), one that does stays a crash.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    results: dict[int, dict] = {}
    start = 0
    while start < len(paths):
        done = subprocess.run(
            [sys.executable, "-c", WORKER, json.dumps([str(p) for p in paths]), str(start), str(CASE_SECONDS)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=CASE_SECONDS * (len(paths) - start) + 120,
        )
        current = None
        for line in done.stdout.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a native library's own line
            if record["at"] == "start":
                current = record["i"]
            else:
                results[record["i"]] = record
        if done.returncode == 0:
            break
        if current is None or current in results:  # died outside a case: the worker itself is broken
            raise AssertionError(f"worker failed (exit {done.returncode}): {done.stderr[-2000:]}")
        hang = done.returncode == -signal.SIGALRM
        results[current] = {"result": "hang" if hang else "crash", "rc": done.returncode, "stderr": done.stderr[-1500:]}
        if not hang and len(paths) > 1:
            again = run_cases([paths[current]])[0]
            if again["result"] in ("predicted", "typed"):
                results[current] |= {"result": "crash_once", "alone": again}
        start = current + 1
    return [results[i] | {"path": str(paths[i])} for i in range(len(paths))]


def _check(results: list[dict], kind: str, labels: int = 4) -> Counter:
    """Every case a prediction of ``labels`` finite scores or a typed error; counts by outcome."""
    # A native crash that a fresh process does not repeat on the same file is the runtime
    # library's (heap state left by earlier damaged files); it is reported, a repeatable one fails.
    once = [r for r in results if r["result"] == "crash_once"]
    bad = [r for r in results if r["result"] not in ("predicted", "typed", "crash_once")
           or r["result"] == "predicted" and not (r["finite"] and r["n"] == labels)]
    assert not bad, f"{kind}: {len(bad)} of {len(results)} cases failed, first: {bad[:3]}"
    assert len(once) <= 1, f"{kind}: {len(once)} crashes that did not repeat alone: {once}"
    messages = [r["message"] for r in results if r["result"] == "typed"]
    assert all(m and "\n" not in m for m in messages), [m for m in messages if not m or "\n" in m][:3]
    outcome = Counter(r["type"] if r["result"] == "typed" else r["result"] for r in results)
    for r in once:
        print(f"\n{kind}: crashed once, not alone: {r['path']}: {r['stderr'][-800:]}")
    sums = [abs(r["sum"] - 1) < 1e-3 for r in results if r["result"] == "predicted"]
    CASES[kind] += len(results)
    print(f"\n{kind}: {len(results)} cases: {dict(outcome)}; predictions summing to 1: {sum(sums)} of {len(sums)}")
    return outcome


SOURCES = ("float.tflite", "int8.tflite", "float.onnx")


def test_empty_and_truncated_files(models, tmp_path):
    paths = []
    for name in SOURCES:
        data = (models["dir"] / name).read_bytes()
        n = len(data)
        for cut in sorted({0, 1, 4, 7, 8, 16, 64, 256, n // 4, n // 2, 3 * n // 4, n - 64, n - 16, n - 1}):
            path = tmp_path / f"cut{cut}_{name}"
            path.write_bytes(data[:cut])
            paths.append(path)
    outcome = _check(run_cases(paths), "truncated files")
    assert outcome["ModelFileError"] >= len(paths) - 2 * len(SOURCES)  # the last bytes may be padding


def test_random_bytes_behind_a_valid_start(models, tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(40):
        data = bytearray(rng.integers(0, 256, int(rng.integers(8, 4096)), dtype=np.uint8).tobytes())
        data[4:8] = b"TFL3"  # the TFLite file identifier
        if i % 2:
            data[0:4] = int(rng.integers(8, len(data))).to_bytes(4, "little")  # a root table inside the file
        (path := tmp_path / f"random{i}.tflite").write_bytes(bytes(data))
        paths.append(path)
    for i in range(40):
        # An ONNX ModelProto starts with ir_version (field 1) then producer_name (field 2).
        body = rng.integers(0, 256, int(rng.integers(8, 4096)), dtype=np.uint8).tobytes()
        (path := tmp_path / f"random{i}.onnx").write_bytes(b"\x08\x08\x12\x04edge" + body)
        paths.append(path)
    outcome = _check(run_cases(paths), "random bytes with a valid start")
    assert outcome["predicted"] == 0


def _flip_positions(data: bytes, rng) -> list[int]:
    """Every byte of the header, a spread over the whole file, and bytes of the metadata's JSON."""
    spread = np.linspace(0, len(data) - 1, 300).astype(int)
    start = data.find(b'{"channels"')  # the sorted JSON document, in the TFLite buffer or the ONNX string
    in_meta = start + rng.integers(0, 400, 24) if start >= 0 else []
    return sorted({*range(32), *spread.tolist(), *[int(p) for p in in_meta if p < len(data)]})


@pytest.mark.slow  # the hostile-file battery's largest part: a thousand flipped files, loaded in a worker
def test_byte_flips_across_whole_files(models, tmp_path):
    rng = np.random.default_rng(2)
    masks = (0xFF, 0x01, 0x80, 0x7F)  # every bit, the lowest, the sign, the exponent of a float's top byte
    paths = []
    for name in SOURCES:
        data = (models["dir"] / name).read_bytes()
        for j, pos in enumerate(_flip_positions(data, rng)):
            flipped = bytearray(data)
            flipped[pos] ^= masks[j % len(masks)]
            (path := tmp_path / f"flip{pos}_{j % 4}_{name}").write_bytes(bytes(flipped))
            paths.append(path)
    results = run_cases(paths)
    _check(results, "single-byte flips")
    # Most flips land in weights and still predict: the check above is what keeps them honest.
    assert any(r["result"] == "predicted" for r in results) and any(r["result"] == "typed" for r in results)


# ---------------------------------------------------------------- foreign models

@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_foreign_models(models, suffix):
    d = models["dir"]
    with pytest.raises(MetadataError, match=r"no edge_rcnn metadata for: labels .*normalization"):
        runtimes.load(d / f"raw{suffix}")
    with pytest.raises(ModelFileError, match=r"rank2.*input of rank 2; expected a clip \(5\), image \(4\)"):
        runtimes.load(d / f"rank2{suffix}", labels=list("abc"), normalization="unit")
    image = runtimes.load(d / f"image{suffix}", labels=list("abcde"), normalization="unit", num_threads=1)
    r = image.predict(np.random.default_rng(3).integers(0, 256, (1, 40, 30, 3), dtype=np.uint8))
    assert len(r.probs) == 5 and np.isfinite(r.probs).all() and abs(r.probs.sum() - 1) < 1e-4
    with pytest.raises(InputError, match="labels: 'a' appears more than once"):
        runtimes.load(d / f"image{suffix}", labels=list("abcda"), normalization="unit")
    nan = runtimes.load(d / f"nan{suffix}", labels=list("abcde"), normalization="unit", num_threads=1)
    with pytest.raises(ModelOutputError, match="5 of its 5 scores are NaN or infinite") as raised:
        nan.predict(np.zeros((1, 16, 16, 3), np.uint8) + 7)
    assert str(raised.value).startswith(str(d / f"nan{suffix}"))
    stream = nan.stream()  # an image model streams one frame per prediction
    with pytest.raises(ModelOutputError, match=f"^{d / f'nan{suffix}'}: 5 of its 5 scores"):
        stream.push(np.zeros((16, 16, 3), np.uint8) + 7)
    CASES["foreign models"] += 5


def test_cli_names_the_file_whose_outputs_are_nan(models, tmp_path, capsys):
    import cv2

    from edge_rcnn.cli import main

    cv2.imwrite(str(tmp_path / "frame.png"), np.full((16, 16, 3), 7, np.uint8))
    nan = models["dir"] / "nan.tflite"
    assert main(["predict", str(nan), str(tmp_path / "frame.png"), "--labels", "a,b,c,d,e",
                 "--normalization", "unit", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(nan) in err and "NaN or infinite" in err, err


# ---------------------------------------------------------------- metadata: damaged, mistyped, inconsistent

# (change to the document, what the one-line MetadataError says)
BAD_METADATA = [
    ({"labels": "abcd"}, "metadata labels: expected a list of class names, got the string 'abcd'"),
    ({"labels": 4}, "metadata labels: expected a non-empty list of class names, got 4"),
    ({"labels": ["a", "b", "a", "c"]}, "metadata labels: 'a' appears more than once"),
    ({"labels": ["a", "", "b", "c"]}, "metadata labels: expected non-empty strings, got ''"),
    ({"labels": ["a", "b", "c"]}, "metadata labels: 3 names for a model with 4 outputs"),
    ({"channels": "3"}, "metadata channels: expected a positive integer, got '3'"),
    ({"channels": 1}, r"metadata channels: 1, but input '.*' \[1, 8, 32, 32, 3\] takes 3"),
    ({"frames": 16}, r"metadata frames: 16, but input .* takes 8"),
    ({"frames": 8.5}, "metadata frames: expected a positive integer, got 8.5"),
    ({"input_size": [32, 48]}, r"metadata input_size: \[32, 48\], but input .* takes \[32, 32\]"),
    ({"input_size": "32x32"}, r"metadata input_size: expected \[height, width\]"),
    ({"kind": "image"}, r"metadata kind: image takes an input of rank 4, but input .* is \[1, 8, 32, 32, 3\]"),
    ({"kind": "movie"}, "metadata kind: 'movie'; expected one of: clip, image"),
    ({"kind": 5}, "metadata kind: expected a string, got 5"),
    ({"color_order": "hsv"}, "metadata color_order: 'hsv'; expected one of: rgb, bgr"),
    ({"normalization": "symmetric"}, "metadata normalization: expected an object"),
    ({"normalization": {"name": "symmetric", "mean": [0.5] * 3, "std": ["0.5"] * 3}},
     "metadata normalization.std: expected a number or a list of numbers"),
    ({"normalization": {"mean": [0.5] * 3, "std": [0.5, 0.0, 0.5]}}, "metadata normalization.std: expected positive values"),
    ({"normalization": {"mean": [0.5, 0.5], "std": [0.5] * 3}},
     "metadata normalization.mean: 2 values for a 3-channel input; expected 1 or 3"),
    ({"normalization": {"name": "zscore"}}, "metadata normalization.name: 'zscore'; expected one of: unit"),
    ({"stream": {"inputs": "feature", "outputs": ["probs"]}}, "metadata stream.inputs: expected a list of tensor names"),
    ({"input": {"scale": "big"}}, "metadata input.scale: expected a positive number or null"),
]


@pytest.fixture(scope="session")
def bad_metadata_files(models, tmp_path_factory):
    """One .tflite and one .onnx per ``BAD_METADATA`` entry (our model, that document)."""
    import onnx

    from converters.metadata import embed_onnx_metadata, embed_tflite_metadata

    out = tmp_path_factory.mktemp("bad_metadata")
    files = []
    for i, (change, _) in enumerate(BAD_METADATA):
        meta = _metadata(models["config"], **change)
        (out / f"bad{i}.tflite").write_bytes(embed_tflite_metadata(models["raw_tflite"], meta))
        proto = onnx.ModelProto()
        proto.CopyFrom(models["onnx_proto"])
        onnx.save(embed_onnx_metadata(proto, meta), out / f"bad{i}.onnx")
        files.append((out / f"bad{i}.tflite", out / f"bad{i}.onnx"))
    return files


@pytest.mark.parametrize("case", range(len(BAD_METADATA)))
def test_bad_metadata_is_one_metadata_error_at_load(bad_metadata_files, case):
    for path in bad_metadata_files[case]:
        with pytest.raises(MetadataError, match=BAD_METADATA[case][1]) as err:
            runtimes.load(path, num_threads=1)
        assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
        CASES["mistyped or inconsistent metadata"] += 1


def test_info_shows_an_inconsistent_file_and_warns(models, bad_metadata_files, capsys):
    from edge_rcnn.cli import main

    good = models["dir"] / "float.onnx"
    inconsistent = [i for i, (_, said) in enumerate(BAD_METADATA) if ", but input" in said or " names for " in said]
    for i in inconsistent:
        for path in bad_metadata_files[i]:
            with pytest.warns(UserWarning, match=f"{path}: metadata ") as warned:
                assert main(["info", str(path)]) == 2
            out = capsys.readouterr().out
            assert out.startswith(str(path)) and "labels (" in out  # the whole record is still shown
            assert all("\n" not in str(w.message) for w in warned)
    labels = bad_metadata_files[[i for i, (c, _) in enumerate(BAD_METADATA) if c.get("labels") == ["a", "b", "c"]][0]]
    with pytest.warns(UserWarning, match="3 names for a model with 4 outputs"):
        assert main(["info", str(labels[0]), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["problems"] == ["labels: 3 names for a model with 4 outputs"]
    # Mistyped metadata cannot be shown: one error line naming the field.
    assert main(["info", str(bad_metadata_files[1][0])]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "metadata labels: expected a non-empty list of class names, got 4" in err
    # A file without problems: exit 0 and no warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["info", str(good)]) == 0
    assert not [w for w in caught if ": metadata " in str(w.message)]


def test_damaged_metadata_bytes(models, tmp_path):
    data = (models["dir"] / "float.tflite").read_bytes()
    at = data.find(b'{"channels"')
    assert at > 0
    # Not UTF-8; a cut multi-byte sequence; a NUL inside a string; the document's first brace gone.
    for offset, byte in ((5, 0xFF), (5, 0xC3), (5, 0x00), (0, ord("}"))):
        damaged = bytearray(data)
        damaged[at + offset] = byte
        (path := tmp_path / f"damaged{byte}.tflite").write_bytes(bytes(damaged))
        with pytest.raises(MetadataError, match=r"damaged.*: the edge_rcnn metadata is not (UTF-8 text|valid JSON)"):
            read_metadata(path)
        with pytest.raises(MetadataError):
            runtimes.load(path, num_threads=1)
        CASES["damaged metadata bytes"] += 1


def test_cli_predict_refuses_overrides_of_embedded_metadata(models, tmp_path, capsys):
    import cv2

    from edge_rcnn.cli import main

    clip = tmp_path / "clip"
    clip.mkdir()
    for i, frame in enumerate(_clip(4)):
        cv2.imwrite(str(clip / f"{i:03d}.png"), frame)
    path = models["dir"] / "float.tflite"
    assert main(["predict", str(path), str(clip), "--normalization", "imagenet", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--normalization:" in err and "carries its own" in err, err
    assert main(["predict", str(path), str(clip), "--threads", "1"]) == 0
    raw = models["dir"] / "raw.tflite"  # without metadata the flags are what makes it run
    assert main(["predict", str(raw), str(clip), "--labels", "a,b,c,d", "--normalization", "symmetric",
                 "--threads", "1"]) == 0


# ---------------------------------------------------------------- fuzz: the metadata reader

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ("kind", "labels", "frames", "input_size", "channels", "color_order", "normalization", "mode", "input",
          "output", "stream", "model_config", "source_sha256", "quantized_for", "edge_rcnn_version")
# Plausible values next to arbitrary ones, so that the checks past the first field are reached too.
PLAUSIBLE = {
    "kind": st.sampled_from(["clip", "image", "stream_encoder", "stream_head", "movie"]),
    "labels": st.lists(st.sampled_from(["a", "b", "c", "d", "", " "]), max_size=6),
    "frames": st.integers(-2, 20), "channels": st.integers(-1, 4),
    "input_size": st.lists(st.integers(-1, 40), max_size=3),
    "normalization": st.fixed_dictionaries({}, optional={
        "name": st.sampled_from(["unit", "symmetric", "imagenet", "zscore"]),
        "mean": st.lists(st.floats(-1, 1), max_size=4), "std": st.lists(st.floats(-1, 1), max_size=4)}),
}
DOCUMENT = st.fixed_dictionaries({"format_version": st.just(1)}, optional={
    key: (PLAUSIBLE[key] | JSON) if key in PLAUSIBLE else JSON for key in FIELDS})
CLIP_IN = TensorInfo("frames", (1, 8, 32, 32, 3), "float32")
CLIP_OUT = TensorInfo("probs", (1, 4), "float32")


@FUZZ
@given(DOCUMENT)
def test_fuzz_metadata_documents(meta):
    """Any JSON document: a ``MetadataError`` at read or at load, or a spec that is whole."""
    CASES["fuzzed metadata documents"] += 1
    try:
        text = json.dumps(meta)
    except ValueError:
        return
    try:
        read = parse_metadata(text, "fuzz.tflite")
        spec = resolve_spec("fuzz.tflite", read, CLIP_IN, CLIP_OUT)
    except MetadataError as exc:
        assert str(exc).startswith("fuzz.tflite: ") and "\n" not in str(exc)
        return
    assert len(spec.labels) == 4 and len(set(spec.labels)) == 4 and spec.frames == 8
    assert spec.frame.channels == 3 and spec.frame.input_size == (32, 32) and min(spec.frame.std) > 0


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_fuzz_metadata_bytes_in_a_tflite_file(tflite_with_metadata_slot, raw):
    """Arbitrary bytes as the metadata buffer of a real file: a document, or a ``MetadataError``."""
    CASES["fuzzed metadata bytes"] += 1
    path, data, at, room = tflite_with_metadata_slot
    raw = raw[:room]
    patched = bytearray(data)
    patched[at - 4: at] = len(raw).to_bytes(4, "little")  # the buffer's vector length
    patched[at: at + len(raw)] = raw
    path.write_bytes(bytes(patched))
    try:
        meta = read_metadata(path)
    except MetadataError as exc:
        assert "\n" not in str(exc)
        return
    assert meta is None or isinstance(meta, FileMetadata)


@pytest.fixture(scope="module")
def tflite_with_metadata_slot(models, tmp_path_factory):
    """Our float file, where its metadata buffer's bytes start, and how many bytes it has."""
    data = (models["dir"] / "float.tflite").read_bytes()
    at = data.find(b'{"channels"')
    room = int.from_bytes(data[at - 4: at], "little")
    assert at > 0 and data[at: at + room].endswith(b"}")
    return tmp_path_factory.mktemp("slot") / "slot.tflite", data, at, room


# ---------------------------------------------------------------- fuzz: predict's input checks

@pytest.fixture(scope="module")
def predictor(models):
    return runtimes.load(models["dir"] / "float.tflite", num_threads=1)


FRAMES = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.float32, np.float64, np.int16, np.bool_, np.int64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9),
    elements=None,
) | hnp.arrays(np.float32, st.sampled_from([(8, 4, 4, 3), (8, 9, 7, 1), (8, 2, 2, 3)]),
               elements=st.floats(-2, 300, width=32) | st.sampled_from([np.nan, np.inf, 0.5]))


@FUZZ
@given(FRAMES, st.sampled_from(["rgb", "bgr"]))
def test_fuzz_predict_input(predictor, frames, color):
    """Any array as a clip: an ``InputError``, or 4 finite probabilities that sum to 1."""
    CASES["fuzzed predict inputs"] += 1
    try:
        r = predictor.predict(frames, color=color)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert len(r.probs) == 4 and np.isfinite(r.probs).all() and abs(float(r.probs.sum()) - 1) < 1e-4


def test_float_frames_scaled_to_0_1_are_refused(predictor):
    clip = _clip(5)
    with pytest.raises(InputError, match=r"float values in 0\.\.1, an image scaled to 0\.\.1; .* multiply by 255"):
        predictor.predict(clip.astype(np.float32) / 255.0)
    scaled = predictor.predict(clip.astype(np.float32) / 255.0 * 255.0).probs  # the fix the message names
    np.testing.assert_allclose(scaled, predictor.predict(clip).probs, atol=1e-5)
    dark = clip.astype(np.float32)
    dark[0] = 0.5  # one dark frame in a clip of pixels is not a 0..1 image
    assert predictor.predict(dark).probs.shape == (4,)
    assert predictor.predict(np.zeros((8, 32, 32, 3), np.float32)).probs.shape == (4,)  # black is black in any scale


@pytest.fixture(scope="module", autouse=True)
def print_case_counts():
    """After the file's last test: the counts for the README (``pytest -s``). A fixture, not a test:
    it checks nothing."""
    yield
    print("\nhostile cases run:", dict(CASES))
