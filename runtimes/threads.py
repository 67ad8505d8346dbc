"""``num_threads="auto"``: every core or one, whichever runs this model faster here, timed at load.

A small model's operators are often too small to split across cores, and where the line falls
depends on the model, the runtime, the CPU and the moment (measurements:
``benchmarks/results/``). So the choice is the caller's: the default is the runtime's own thread
count, and ``"auto"`` times both on the device. Models slower than ``AUTO_LIMIT_S`` per call keep
every core (they are big enough to split, and timing them would slow the load).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Callable, Sequence, TypeVar

import numpy as np

from runtimes.backends import load_runtime
from runtimes.base import DeviceKind, check_threads
from runtimes.errors import InputError

T = TypeVar("T")
AUTO = "auto"

AUTO_LIMIT_S = 0.005  # a call slower than this keeps every core without timing one thread
ROUNDS = 3  # alternating rounds: a burst of noise on the shared machine hits both candidates
ROUND_S = 0.005  # about this long per candidate per round: 15 calls of a 0.3 ms clip, 3 of a 3 ms one


def check_auto(num_threads: int | str | None) -> bool:
    """Whether ``num_threads`` asks for timing (``"auto"``); otherwise it must be ``None`` or a
    positive integer (``InputError`` naming the value)."""
    if num_threads == AUTO:
        return True
    if isinstance(num_threads, str):
        raise InputError(f"num_threads: expected a positive integer, None or 'auto', got {num_threads!r}")
    check_threads(num_threads)
    return False


def fastest(candidates: Sequence[T], cost: Callable[[T], float], rounds: int = ROUNDS) -> T:
    """The candidate with the lowest ``cost`` (seconds; the best of ``rounds`` alternating rounds)."""
    costs: list[list[float]] = [[] for _ in candidates]
    for _ in range(rounds):
        for spent, candidate in zip(costs, candidates):
            spent.append(cost(candidate))
    return candidates[min(range(len(candidates)), key=lambda i: min(costs[i]))]


def median_seconds(call: Callable[[], object], calls: int, warmup: int) -> float:
    """Median seconds of ``call()`` over ``calls`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def call_seconds(runtime, x: np.ndarray, calls: int = 15, warmup: int = 3) -> float:
    """Median seconds of ``reset`` + ``run(x)``: one clip, as ``Predictor.predict`` calls it."""

    def clip() -> None:
        runtime.reset()
        runtime.run(x)

    return median_seconds(clip, calls, warmup)


def can_choose(runtime) -> bool:
    """Whether one thread against every core is a choice here: a CPU runtime on a multi-core machine."""
    return (os.cpu_count() or 1) > 1 and runtime.device.kind is DeviceKind.CPU


def one_thread_copy(loaded, /, **load_options):
    """The file of the runtime ``loaded`` again, on its device and one thread (``load_options``:
    the other ``load_runtime`` arguments), without repeating the warnings the first load gave."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_runtime(loaded.path, loaded.device, num_threads=1, **load_options)


def auto_threads(runtime, one_thread: Callable[[], object]):
    """``runtime`` (loaded on every core), or the runtime ``one_thread()`` loads on one core if
    that runs a clip faster. Only CPU runtimes of single-input models on a multi-core machine are
    timed; anything else comes back as it is."""
    inputs = getattr(runtime, "inputs", None) or (runtime.input,)  # a third-party runtime may set only ``input``
    if not can_choose(runtime) or len(inputs) != 1:
        return runtime
    x = np.zeros([s or 1 for s in runtime.input.shape], runtime.input.dtype)
    first = call_seconds(runtime, x, calls=3, warmup=1)
    if first > AUTO_LIMIT_S:
        return runtime
    calls = int(min(15, max(3, ROUND_S / max(first, 1e-6))))  # keeps the load's extra time to ~30 ms
    return fastest([runtime, one_thread()], lambda rt: call_seconds(rt, x, calls=calls))
