"""Run one format's worker in a fresh Python process and turn what it reports into a ``Row``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_rcnn.benchmark.formats import BenchFormat, Measure
from edge_rcnn.benchmark.report import Row

WORKER = "edge_rcnn.benchmark.worker"
WORKER_TIMEOUT_S = 900


def worker_env() -> dict[str, str]:
    """The parent's environment, with this checkout first on the path and TensorFlow's logs quiet."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("EDGE_RCNN_QUIET", "1")
    return env


def run_worker(job: dict[str, Any], workdir: Path, name: str, timeout: float = WORKER_TIMEOUT_S) -> dict[str, Any]:
    """The worker's result dict: ``{"ok": True, ...}`` or ``{"ok": False, "error": "one line"}``."""
    job_path, result_path = workdir / f"{name}.job.json", workdir / f"{name}.result.json"
    result_path.unlink(missing_ok=True)
    job = {**job, "result": str(result_path), "spawned_at": time.time()}
    job_path.write_text(json.dumps(job))
    try:
        proc = subprocess.run([sys.executable, "-m", WORKER, str(job_path)], capture_output=True, text=True,
                              timeout=timeout, env=worker_env())
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"worker timed out after {timeout:.0f} s"}
    if result_path.is_file():
        return json.loads(result_path.read_text())
    if proc.returncode < 0:
        return {"ok": False, "error": f"worker killed by {signal.Signals(-proc.returncode).name}"}
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return {"ok": False, "error": f"worker exited with code {proc.returncode}: {(lines or ['no output'])[-1][:300]}"}


def percentile(times: list[float], q: float) -> float | None:
    return float(np.percentile(times, q)) if times else None


def make_row(fmt: BenchFormat, result: dict[str, Any], *, file: str | None, size_bytes: int | None,
             labels: np.ndarray, reference: np.ndarray | None, notes: tuple[str, ...] = ()) -> Row:
    """A table row from a worker result; accuracy and agreement against the labels and the float model."""
    if not result.get("ok"):
        return Row.failed(fmt.name, fmt.runtime, result.get("error") or "unknown failure", file=file,
                          size_bytes=size_bytes, notes=notes)
    probs = np.asarray(result.get("probs") or [], dtype=np.float32)
    accuracy = agreement = None
    if probs.size and probs.shape[:1] == labels.shape:
        accuracy = float(np.mean(probs.argmax(-1) == labels) * 100)
        if reference is not None and reference.shape == probs.shape:
            agreement = float(np.mean(probs.argmax(-1) == reference.argmax(-1)) * 100)
    streaming = fmt.measure is Measure.STREAM
    times = result.get("frame_times_ms" if streaming else "times_ms") or []
    p50, p90 = percentile(times, 50), percentile(times, 90)
    extra = {k: v for k, v in result.items() if k not in ("ok", "probs", "times_ms", "frame_times_ms")}
    extra.update(runs=len(times), mean_ms=float(np.mean(times)) if times else None, notes=list(notes))
    if fmt.about:
        extra["about"] = fmt.about
    if streaming:
        extra["frame_p90_ms"] = p90
    return Row(
        format=fmt.name, runtime=str(result.get("runtime") or fmt.runtime), status="ok", file=file,
        size_mb=None if size_bytes is None else size_bytes / 1e6, accuracy=accuracy, agreement=agreement,
        p50_ms=None if streaming else p50, p90_ms=None if streaming else p90, frame_ms=p50 if streaming else None,
        fps=1000.0 / p50 if p50 else None, rss_mb=result.get("rss_mb"), cold_start_s=result.get("cold_start_s"),
        extra=extra,
    )
