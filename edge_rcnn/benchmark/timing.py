"""Timing and memory helpers shared by the benchmark's workers (clip rows and stream rows)."""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

TIME_POOL = 8  # timed calls cycle over this many clips (few pages touched: RSS stays the model's)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (2^20 bytes).

    On Linux ``VmHWM`` from ``/proc/self/status``: ``ru_maxrss`` survives ``exec`` and so starts
    at the parent's peak (a worker spawned by a process holding TensorFlow would report ~1 GB).
    Elsewhere ``ru_maxrss`` (bytes on macOS, KiB on other systems).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


def time_calls(call: Callable[[Any], Any], pool: list, warmup: int, runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls after ``warmup`` untimed ones, cycling over ``pool``."""
    for i in range(warmup):
        call(pool[i % len(pool)])
    times = []
    for i in range(runs):
        x = pool[i % len(pool)]
        start = time.perf_counter()
        call(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def load_inputs(job: dict[str, Any]):
    """The row's decoded frames and model inputs, memory-mapped (``prepare`` wrote them)."""
    return np.load(job["frames"], mmap_mode="r"), np.load(job["inputs"], mmap_mode="r")


def record_first(job: dict[str, Any], result: dict[str, Any], start: float, loaded: float) -> None:
    """Load time, first call, cold start (since the worker was spawned) and RSS after it, into ``result``."""
    now = time.perf_counter()
    result.update(load_s=loaded - start, first_predict_s=now - loaded,
                  cold_start_s=time.time() - float(job["spawned_at"]), rss_first_mb=peak_rss_mb())
