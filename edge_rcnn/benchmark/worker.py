"""``python -m edge_rcnn.benchmark.worker SPEC.json``: measure one format in a fresh process.

Run by ``edge_rcnn.benchmark.measure`` once per format, so each row's peak RSS and cold start
are its own (the Keras row's TensorFlow import does not land in the LiteRT row). The job names
the model file(s), a ``.npy`` of uint8 val clips and one of the same clips normalized to float32,
the number of warm-up and timed calls and the thread count. The worker:

1. imports the runtime, loads the model and predicts the first clip from its uint8 frames, as a
   user's process would (``cold_start_s`` counts from the parent's spawn to that first result);
2. makes ``warmup`` calls that are not timed, then ``runs`` timed calls on prepared inputs
   (already in the file's input dtype: the timing is the model, not the preprocessing), cycling
   over a few clips; peak RSS (``ru_maxrss``) is read after these;
3. predicts every clip for accuracy and agreement (not timed; skipped when the job says
   ``"accuracy": false``, as in the benchmark's repeated timing rounds) and writes the result JSON.

Only the standard library and numpy are imported up front; TensorFlow is imported by the Keras
measurement only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import runtimes
from edge_rcnn.benchmark.macs import count_macs, split_clip_macs
from edge_rcnn.benchmark.stream_worker import measure_stream
from edge_rcnn.benchmark.timing import TIME_POOL, load_inputs, peak_rss_mb, record_first, time_calls
from edge_rcnn.core._keras import tf
from edge_rcnn.core.model import load_model


def measure_keras(job: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    import numpy as np


    tf_ = tf()
    threads = int(job["threads"])
    tf_.config.threading.set_intra_op_parallelism_threads(threads)
    tf_.config.threading.set_inter_op_parallelism_threads(threads)
    model, config = load_model(job["files"]["model"])
    loaded = time.perf_counter()
    frames, inputs = load_inputs(job)
    mean, std = (np.asarray(v, np.float32) for v in config.mean_std)
    np.asarray(model((np.asarray(frames[:1], np.float32) / 255.0 - mean) / std, training=False))
    result: dict[str, Any] = {"runtime": f"tensorflow {tf_.__version__}", "threads": threads}
    record_first(job, result, start, loaded)
    pool = [np.array(inputs[i : i + 1]) for i in range(min(TIME_POOL, len(inputs)))]
    result["times_ms"] = time_calls(lambda x: np.asarray(model(x, training=False)), pool, job["warmup"], job["runs"])
    result["rss_mb"] = peak_rss_mb()
    if job.get("accuracy", True):
        batches = [np.asarray(model(np.array(inputs[i : i + 16]), training=False)) for i in range(0, len(inputs), 16)]
        result["probs"] = np.concatenate(batches).tolist()
        result["macs"] = _macs(model, config)
    return result


def _macs(model, config) -> dict[str, int]:
    if config.mode.value == "clip":
        return split_clip_macs(model)
    return {"clip": count_macs(model).total}


def load_threads(threads: int) -> int | None:
    """The ``num_threads`` a clip row loads its model with: ``None`` (what a user gets from
    ``runtimes.load``: the runtime's own default) when the benchmark runs on every core, else
    ``threads`` as given. (The stream row pins ``threads`` on both of its sides: ``stream_worker``.)"""
    import os

    return None if threads >= (os.cpu_count() or 1) > 1 else threads


def measure_clip(job: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    import numpy as np


    threads = int(job["threads"])
    predictor = runtimes.load(job["files"]["model"], "cpu", num_threads=load_threads(threads))
    loaded = time.perf_counter()
    frames, inputs = load_inputs(job)
    predictor.predict(np.array(frames[0]))
    rt = predictor.runtime
    result: dict[str, Any] = {"runtime": rt.details().get("package", rt.name), "threads": threads,
                              "threads_used": getattr(rt, "num_threads", None), "threads_default": load_threads(threads) is None,
                              "details": {k: v for k, v in rt.details().items() if k != "package"}}
    record_first(job, result, start, loaded)
    pool = [rt.to_input(np.array(inputs[i : i + 1])) for i in range(min(TIME_POOL, len(inputs)))]

    def call(x):
        rt.reset()
        return rt.run(x)

    result["times_ms"] = time_calls(call, pool, job["warmup"], job["runs"])
    result["rss_mb"] = peak_rss_mb()
    if job.get("accuracy", True):
        result["probs"] = [rt.invoke(np.array(inputs[i : i + 1]))[0].tolist() for i in range(len(inputs))]
    return result


def measure_raw(job: dict[str, Any]) -> dict[str, Any]:
    """Any model file (no metadata needed) on seeded random input of its input shape: timing only."""
    start = time.perf_counter()
    import numpy as np


    rt = runtimes.load_runtime(job["files"]["model"], "cpu", num_threads=int(job["threads"]))
    loaded = time.perf_counter()
    shape = [s or 1 for s in rt.input.shape]
    x = rt.to_input(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    rt.invoke(x)
    result: dict[str, Any] = {"runtime": rt.details().get("package", rt.name), "threads": int(job["threads"])}
    record_first(job, result, start, loaded)

    def call(a):
        rt.reset()
        return rt.run(a)

    result["times_ms"] = time_calls(call, [x], job["warmup"], job["runs"])
    result["rss_mb"] = peak_rss_mb()
    return result


MEASURES = {"keras": measure_keras, "clip": measure_clip, "raw": measure_raw}


def _stream_measure():
    return measure_stream


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    measure = job["measure"]
    if measure == "stream":
        return _stream_measure()(job)
    if measure not in MEASURES:
        raise ValueError(f"measure: unknown value {measure!r}; expected one of: {', '.join([*MEASURES, 'stream'])}")
    return MEASURES[measure](job)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m edge_rcnn.benchmark.worker SPEC.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        result = {"ok": True, **run_job(job)}
        code = 0
    except Exception as exc:  # one row's failure: reported as its reason, never raised further
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        result = {"ok": False, "error": f"{type(exc).__name__}: {first}" if first else type(exc).__name__}
        code = 1
    result.update(tensorflow_imported="tensorflow" in sys.modules, peak_rss_mb=peak_rss_mb())
    Path(job["result"]).write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
