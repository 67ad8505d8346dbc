"""Where an int8 clip's latency goes: the clip model's CNN and RNN halves converted and timed alone.

The clip model runs the frame encoder over T frames (one batched pass) and then the RNN. An
LSTM has two TFLite layouts (converters ``LstmKernel``): the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``
op (the float32 default and ``--tflite-lstm fused``) and the LSTM unrolled into plain builtins
(the int8 default since the fused op's int8 kernel was measured 5.7x slower than its float one;
the stream head is always unrolled). So the ``tflite-fp32`` row is a fused clip and the
``tflite-int8`` row an unrolled one. This converts, float32 and int8, each layout alone:

- ``cnn``: TimeDistributed(frame encoder) over T frames -- the clip's CNN half;
- ``rnn-fused``: the temporal head with the LSTM as the fused op;
- ``rnn-unrolled``: the same head unrolled (plain builtins, as the stream head);
- ``clip-fused``: the whole clip model with the fused LSTM (what ``tflite-fp32`` runs);
- ``clip-unrolled``: the whole clip model with the RNN unrolled (what ``tflite-int8`` runs).

int8 settings are the converters' (builtin int8 ops only, int8 IO, the legacy quantizer first;
calibrated on train clips, the head on the float encoder's features). Each file is timed in a
fresh worker (``measure="raw"``: random input, reset + run), as the benchmark rows are.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edge_rcnn.benchmark.formats import BenchFormat, Measure
from edge_rcnn.benchmark.measure import make_row, run_worker
from edge_rcnn.benchmark.report import Row

CALIBRATION_CLIPS = 100
PARTS = ("cnn", "rnn-fused", "rnn-unrolled", "clip-fused", "clip-unrolled")


def part_models(model, config) -> dict[str, object]:
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import rebuild

    k = keras()
    static = rebuild(model, config, batch_size=1)
    out = {"cnn": k.Model(static.input, static.get_layer("frames_cnn").output, name="cnn")}
    for name, unroll in (("rnn-fused", False), ("rnn-unrolled", True)):
        clip = rebuild(model, config, batch_size=1, unroll=unroll)  # the RNN + classifier: the clip after its CNN
        features = k.Input(clip.get_layer("frames_cnn").output.shape[1:], batch_size=1, name="features")
        x = features
        for layer in clip.layers[clip.layers.index(clip.get_layer("frames_cnn")) + 1:]:
            x = layer(x)
        out[name] = k.Model(features, x, name=name)
    out["clip-fused"] = rebuild(model, config, batch_size=1)  # the model default: the LSTM not unrolled
    out["clip-unrolled"] = rebuild(model, config, batch_size=1, unroll=True)
    return out


def convert(keras_model, samples: np.ndarray | None) -> bytes:
    """float32 TFLite (``samples`` None) or full int8 calibrated on ``samples`` (one per call)."""
    from edge_rcnn.core._keras import tf

    tf_ = tf()
    converter = tf_.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS]
    if samples is not None:
        converter.optimizations = [tf_.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[None]] for s in samples)
        converter.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf_.int8
        converter.experimental_new_quantizer = False  # the converters' first choice (legacy quantizer)
    with warnings.catch_warnings():  # int8 IO without input statistics: expected, the scale comes from calibration
        warnings.simplefilter("ignore", UserWarning)
        return bytes(converter.convert())


def measure_parts(model_path: Path, data: Path, out: Path, *, threads: int, runs: int, warmup: int = 5,
                  repeat: int = 1) -> list[Row]:
    """One row per part and precision (``cnn-int8``, ``rnn-fused-fp32``, ...), timed like the benchmark rows."""
    from edge_rcnn.benchmark.run import best_round
    from edge_rcnn.core.data import load_arrays, normalize
    from edge_rcnn.core.model import load_model

    model, config = load_model(model_path)
    clips, _ = load_arrays(data, config, split="train", limit=CALIBRATION_CLIPS, progress=False)
    inputs = normalize(clips, config)
    models = part_models(model, config)
    features = np.asarray(models["cnn"].predict(inputs, batch_size=16, verbose=0), np.float32)
    calibration = {"cnn": inputs, "clip-fused": inputs, "clip-unrolled": inputs, "rnn-fused": features,
                   "rnn-unrolled": features}
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path | str] = {}
    for part in PARTS:
        for precision in ("fp32", "int8"):
            path = out / f"{part}-{precision}.tflite"
            try:
                path.write_bytes(convert(models[part], calibration[part] if precision == "int8" else None))
                files[path.stem] = path
            except Exception as exc:  # a part that does not convert is a row with its reason
                files[path.stem] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    results: dict[str, list] = {}
    for round_ in range(repeat):  # interleaved rounds, each part keeps its least disturbed one
        for name, path in files.items():
            if isinstance(path, Path):
                spec = {"measure": "raw", "files": {"model": str(path)}, "threads": threads, "runs": runs,
                        "warmup": warmup}
                results.setdefault(name, []).append(run_worker(spec, out, f"{name}.{round_}"))
    rows = []
    for name, path in files.items():
        if isinstance(path, str):
            rows.append(Row.failed(name, "litert", path))
            continue
        fmt = BenchFormat(name, Measure.CLIP, "tflite", name.rsplit("-", 1)[1])
        rows.append(make_row(fmt, best_round(results[name]), file=path.name, size_bytes=path.stat().st_size,
                             labels=np.zeros(0), reference=None))
    return rows
