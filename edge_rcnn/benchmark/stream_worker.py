"""The streaming measurement (worker side): int8 frame encoder + step head, one push per frame.

A stream of frames is made by playing the val clips one after another (a long video). After the
first T-1 pushes every push returns a prediction for the last T frames, so every timed push is a
full step: one encoder pass, one head step over the T windows in flight. Measured in the same process:

- ``frame_times_ms``: ``FeatureStream.push`` (the row's per-frame latency). The stream's encoder
  and the window's clip model both get the benchmark's thread count as ``num_threads``
  (``encoder_threads``, ``window_threads``; the head keeps its own, ``head_threads``), so the
  streaming target compares the two sides at the same threads, on every core and on one;
- ``window_frame_ms``: ``WindowStream.push`` over the int8 clip model exported beside the parts
  (same runtime, same precision, same frame conversion) -- the per-frame cost without streaming,
  i.e. recomputing the whole T-frame window on every frame;
- ``parts``: the encoder alone on one frame and the head alone on one step (CNN vs RNN), each
  called back to back, the head on the stream's own thread count
  (``runtimes.streaming.HEAD_THREADS``) and, to show why that is the default, on the
  benchmark's thread count too (``head_ms_all_threads``);
- ``in_push``: the same two calls timed inside real pushes (medians of encoder, head, the whole
  push, and the rest: frame conversion, feature lookup, slot reset, scores, ``Prediction``). Inside a push a
  multi-threaded encoder is slower than back to back: its thread pool has gone idle while the
  head and Python ran, so the parts alone understate what a push pays;
- ``probs``: for each clip, the prediction after pushing its T frames into a reset stream.

Peak RSS is read before the window stream is loaded, so it is the streaming pair's own.
"""

from __future__ import annotations

import time
from typing import Any

import runtimes
from edge_rcnn.benchmark.timing import TIME_POOL, load_inputs, peak_rss_mb, record_first, time_calls
from runtimes.streaming import WindowStream


def _frames(frames, clips: int):
    """The first ``clips`` clips' frames as one list: a video to push frame by frame."""
    import numpy as np

    return [np.array(f) for clip in frames[:clips] for f in clip]


def _filled(stream, video: list, frames: int) -> list:
    """Reset ``stream`` and push the video's first T-1 frames (pushes before the window is full
    return nothing); returns the frames to time, every one a full push."""
    stream.reset()
    for frame in video[: frames - 1]:
        stream.push(frame)
    return video[frames - 1 :] + video[: frames - 1]


def _push_times(stream, video: list, frames: int, warmup: int, runs: int) -> list[float]:
    return time_calls(stream.push, _filled(stream, video, frames), warmup, runs)


def _in_push_times(stream, video: list, frames: int, runs: int) -> dict[str, float]:
    """Medians over ``runs`` full pushes of the encoder call, the head call, the push, and the rest."""
    import numpy as np

    spent = {"encoder": 0.0, "head": 0.0}

    def timed(name: str, run):
        def call(x):
            start = time.perf_counter()
            out = run(x)
            spent[name] += time.perf_counter() - start
            return out
        return call

    rest = _filled(stream, video, frames)
    rows = []
    stream.encoder.run, stream.head.run_all = timed("encoder", stream.encoder.run), timed("head", stream.head.run_all)
    try:
        for i in range(runs):
            spent.update(encoder=0.0, head=0.0)
            start = time.perf_counter()
            stream.push(rest[i % len(rest)])
            total = time.perf_counter() - start
            rows.append((spent["encoder"], spent["head"], total, total - spent["encoder"] - spent["head"]))
    finally:
        del stream.encoder.run, stream.head.run_all  # the runtimes' own methods again
    medians = np.median(np.asarray(rows) * 1000.0, axis=0)
    return dict(zip(("encoder_ms", "head_ms", "push_ms", "rest_ms"), (float(m) for m in medians)))


def measure_stream(job: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    import numpy as np


    threads, files = int(job["threads"]), job["files"]
    stream = runtimes.open_stream(files["encoder"], files["head"], "cpu", num_threads=threads)
    loaded = time.perf_counter()
    frames, _ = load_inputs(job)
    T = stream.frames
    for frame in frames[0]:
        first = stream.push(np.array(frame))
    if first is None:
        raise RuntimeError(f"the stream gave no prediction after {T} frames")
    enc = stream.encoder
    result: dict[str, Any] = {"runtime": enc.details().get("package", enc.name), "threads": threads, "frames": T,
                              "head_threads": getattr(stream.head, "num_threads", None),
                              "encoder_threads": getattr(enc, "num_threads", None)}
    record_first(job, result, start, loaded)
    video = _frames(frames, min(TIME_POOL, len(frames)))
    runs, warmup = int(job["runs"]), int(job["warmup"])
    result["frame_times_ms"] = _push_times(stream, video, T, warmup, runs * T)
    result["rss_mb"] = peak_rss_mb()

    result["in_push"] = _in_push_times(stream, video, T, runs * T)
    inputs = [stream.convert(f, "rgb").copy() for f in video[:TIME_POOL]]  # convert reuses one buffer
    if stream.pair:  # a pair encoder reads [frame | previous frame]: any two frames time the same
        inputs = [np.concatenate([x, x], axis=-1) for x in inputs]
    step = [[np.zeros(t.shape, np.float32) for t in stream.head.inputs]]  # one feature and the T windows' states
    parts = {"encoder_ms": time_calls(enc.run, inputs, warmup, runs),
             "head_ms": time_calls(stream.head.run_all, step, warmup, runs)}
    if result["head_threads"] != threads:
        head_all = runtimes.load_runtime(files["head"], "cpu", num_threads=threads)
        parts["head_ms_all_threads"] = time_calls(head_all.run_all, step, warmup, runs)
    result["parts"] = {k: float(np.median(v)) for k, v in parts.items()}

    if job.get("accuracy", True):
        probs = []
        for clip in frames:
            stream.reset()
            for frame in clip:
                last = stream.push(np.array(frame))
            probs.append(last.probs.tolist())
        result["probs"] = probs

    if files.get("window"):
        window_rt = runtimes.load(files["window"], "cpu", num_threads=threads)
        result["window_threads"] = getattr(window_rt.runtime, "num_threads", None)
        window_stream = WindowStream(window_rt)
        times = _push_times(window_stream, video, T, warmup, runs * T)
        result["window_frame_ms"] = float(np.median(times))
        result["window_frame_p90_ms"] = float(np.percentile(times, 90))
    return result
