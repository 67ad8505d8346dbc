"""One loaded model shared by threads: every answer equals the one a single thread gets.

A camera app has a capture thread and a web handler calling the same ``Predictor``; a LiteRT
interpreter keeps its tensors and the LSTM's state between calls, so two callers can swap
inputs, states and outputs. Threads start together on a barrier and call as fast as they can
(no sleeps): each result is compared, bit for bit, with the sequential result for its clip.
"""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

import runtimes
from runtimes.streaming import FeatureStream, WindowStream

THREADS = 8
CALLS = 24  # per thread
CLIPS = 6  # distinct clips, so a swapped answer shows


@pytest.fixture
def export_dir(request):
    """``export_dir(mode)``: the tiny model in ``mode`` ("float" or "int8") with its streaming parts,
    the session's shared export folder (tests here only read it; int8 is made on first use)."""
    return lambda mode: request.getfixturevalue(f"tiny_{mode}_stream_dir")


def _clips(predictor, n: int = CLIPS) -> list[np.ndarray]:
    frames, (h, w) = predictor.spec.frames, predictor.spec.frame.input_size
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8) for _ in range(n)]


def _hammer(call, jobs_per_thread: list[list[int]]) -> tuple[list[tuple[int, object]], list[BaseException]]:
    """Run ``call(job)`` for every job, one list of jobs per thread, all threads released at once."""
    results: list[tuple[int, object]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs_per_thread))
    guard = threading.Lock()

    def worker(jobs: list[int]) -> None:
        barrier.wait()
        for job in jobs:
            try:
                out = call(job)
            except BaseException as exc:  # collected: the test reports every kind that happened
                with guard:
                    errors.append(exc)
                continue
            with guard:
                results.append((job, out))

    threads = [threading.Thread(target=worker, args=(jobs,)) for jobs in jobs_per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results, errors


def _jobs(threads: int = THREADS, calls: int = CALLS, clips: int = CLIPS) -> list[list[int]]:
    # Each thread walks the clips from its own offset, so neighbours call with different clips.
    return [[(t + i) % clips for i in range(calls)] for t in range(threads)]


# int8 cases are slow: the shared int8 export (with streaming parts) is the costliest fixture of the fast loop.
INT8 = pytest.mark.slow


@pytest.mark.parametrize("name", ["float/model_float.tflite", pytest.param("int8/model_int8.tflite", marks=INT8),
                                  "float/model_float.onnx"])
def test_predict_from_many_threads_equals_sequential(export_dir, name):
    mode, file = name.split("/")
    p = runtimes.load(export_dir(mode) / file, num_threads=1)
    clips = _clips(p)
    expected = [p.predict(c).probs.copy() for c in clips]
    assert len({e.tobytes() for e in expected}) > 1, "the clips must give different answers, or a swap cannot show"

    results, errors = _hammer(lambda i: p.predict(clips[i]).probs, _jobs())
    assert not errors, f"{len(errors)} calls raised, e.g. {errors[0]!r}"
    assert len(results) == THREADS * CALLS
    wrong = [i for i, probs in results if not np.array_equal(probs, expected[i])]
    assert not wrong, f"{len(wrong)} of {len(results)} answers differ from the sequential ones"


@INT8
def test_invoke_batch_from_many_threads_equals_sequential(export_dir):
    p = runtimes.load(export_dir("int8") / "model_int8.tflite", num_threads=1)
    batch = np.stack([p.prepare(c)[0] for c in _clips(p)])
    expected = p.invoke(batch)
    results, errors = _hammer(lambda _: p.invoke(batch), [[0] * 6 for _ in range(4)])
    assert not errors and all(np.array_equal(out, expected) for _, out in results)


@pytest.mark.parametrize("mode", ["float", pytest.param("int8", marks=INT8)])
def test_one_stream_pushed_from_many_threads(export_dir, mode):
    """Pushes from several threads on one stream each run whole: with the same frame pushed by
    every thread, every prediction equals the one a single thread gets for that frame."""
    p = runtimes.load(export_dir(mode) / f"model_{mode}.tflite", num_threads=1)
    frame = _clips(p, 1)[0][0]

    single = p.stream()
    assert isinstance(single, FeatureStream)
    for _ in range(single.frames):
        expected = single.push(frame)
    assert expected is not None

    shared = p.stream()
    results, errors = _hammer(lambda _: shared.push(frame), [[0] * 20 for _ in range(4)])
    assert not errors, f"{len(errors)} pushes raised, e.g. {errors[0]!r}"
    predictions = [out for _, out in results if out is not None]
    assert len(predictions) == 4 * 20 - (shared.frames - 1) and shared.frames_seen == 4 * 20
    assert all(np.array_equal(pr.probs, expected.probs) for pr in predictions)


@INT8
def test_window_stream_and_predict_share_one_runtime(export_dir, tmp_path):
    """A model without streaming parts streams through the predictor's own runtime: pushes in one
    thread and predicts in others must not see each other's state."""
    alone = tmp_path / "model_int8.tflite"
    shutil.copy(export_dir("int8") / "model_int8.tflite", alone)
    p = runtimes.load(alone, num_threads=1)
    clips = _clips(p)
    expected = [p.predict(c).probs.copy() for c in clips]
    with pytest.warns(RuntimeWarning, match="no streaming parts"):
        stream = p.stream()
    assert isinstance(stream, WindowStream)
    video = clips[0]  # pushing clip 0 frame by frame: the last push's answer is predict(clip 0)
    stream_probs: list[np.ndarray] = []

    def call(job: int):
        if job >= 0:
            return p.predict(clips[job]).probs
        for frame in video:
            out = stream.push(frame)
        stream_probs.append(out.probs)
        stream.reset()
        return None

    jobs = [[-1] * 8] + _jobs(threads=3, calls=16)
    results, errors = _hammer(call, jobs)
    assert not errors, f"{len(errors)} calls raised, e.g. {errors[0]!r}"
    assert all(np.array_equal(probs, expected[i]) for i, probs in results if i >= 0)
    assert len(stream_probs) == 8 and all(np.array_equal(s, expected[0]) for s in stream_probs)
