"""``benchmark(model, data, out)``: export what is missing, measure every format, write the results.

All exports happen first, in this process (TensorFlow is imported only if something must be
exported); then each format is measured in its own worker process, one after the other, so a
measurement never shares the CPU with a conversion or another measurement. The float Keras
model's probabilities are the reference for agreement: when ``keras`` is not among the formats
it still runs, without timed calls, and gets no row.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converters.api import check_out_dir
from edge_rcnn.benchmark.formats import DEFAULT_FORMATS, FORMATS, parse_formats
from edge_rcnn.benchmark.machine import machine_info
from edge_rcnn.benchmark.measure import make_row, run_worker
from edge_rcnn.benchmark.prepare import Prepared, prepare_format
from edge_rcnn.benchmark.report import BenchReport, Row, write_results
from edge_rcnn.core.data import load_arrays, normalize
from edge_rcnn.core.errors import ConfigError, DataError
from edge_rcnn.core.model import file_sha256, read_config

log = logging.getLogger(__name__)
DEFAULT_RUNS = 50
DEFAULT_WARMUP = 5


def _check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
    return value


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def benchmark(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *,
              formats=DEFAULT_FORMATS, threads: int | None = None, runs: int = DEFAULT_RUNS,
              warmup: int = DEFAULT_WARMUP, repeat: int = 1, split: str = "val", limit: int | None = None,
              progress: bool = True) -> BenchReport:
    """Benchmark ``model`` (a ``model.keras``) in every format on the ``split`` clips of ``data``.

    Writes ``out/benchmark.json``, ``.csv`` and ``.png`` and exported files under
    ``out/models/<format>/``; returns the report. ``threads`` (default: every CPU) goes to
    LiteRT, ONNX Runtime and TensorFlow alike. ``repeat`` > 1 measures every format that many
    times, round after round, and keeps each format's least disturbed round (``best_round``).
    A format that cannot be exported or run is a row
    whose status says why; bad arguments and unreadable model or data fail before any work.
    """
    chosen = parse_formats(formats)
    runs, warmup = _check_count("runs", runs, 1), _check_count("warmup", warmup, 0)
    repeat = _check_count("repeat", repeat, 1)
    threads = _check_count("threads", threads if threads is not None else (os.cpu_count() or 1), 1)
    model, data = Path(model), Path(data)
    config = read_config(model)
    if not data.is_dir():
        raise DataError(f"--data {data}: no such folder (expected DATA/<label>/<clips> or DATA/{{train,val}}/...)")
    out = check_out_dir(out)
    started = machine_info()
    frames, labels = load_arrays(data, config, split=split, limit=limit, progress=progress)
    sha = file_sha256(model)

    prepared: dict[str, Prepared | str] = {}
    for fmt in chosen:
        try:
            prepared[fmt.name] = prepare_format(fmt, model, data, out / "models", sha, progress=progress)
        except Exception as exc:  # a converter's failure is this row's status, not the command's
            log.debug("export of %s failed", fmt.name, exc_info=True)
            prepared[fmt.name] = _reason(exc)

    rows: dict[str, Row] = {}
    macs = None
    with tempfile.TemporaryDirectory(prefix=".bench-", dir=out) as tmp:
        work = Path(tmp)
        np.save(work / "frames.npy", frames)
        np.save(work / "inputs.npy", normalize(frames, config))
        base = {"frames": str(work / "frames.npy"), "inputs": str(work / "inputs.npy"),
                "threads": threads, "runs": runs, "warmup": warmup}
        keras_fmt = FORMATS["keras"]
        results: dict[str, dict[str, Any]] = {}
        if keras_fmt not in chosen:  # the reference only
            results["keras"] = run_worker({**base, "measure": "keras", "files": {"model": str(model)}, "runs": 0,
                                           "warmup": 0}, work, "reference")
        rounds: dict[str, list[dict[str, Any]]] = {}
        for round_ in range(repeat):  # interleaved: a burst of load from elsewhere hits one round, not one format
            for fmt in chosen:
                item = prepared[fmt.name]
                if isinstance(item, str) or (round_ and not rounds[fmt.name][0].get("ok")):
                    continue
                job = {**base, "measure": fmt.measure.value, "files": {k: str(v) for k, v in item.files.items()},
                        "accuracy": round_ == 0}
                rounds.setdefault(fmt.name, []).append(run_worker(job, work, f"{fmt.name}.{round_}"))
        results.update({name: best_round(found) for name, found in rounds.items()})
        reference_result = results.get("keras") or {}
        reference = np.asarray(reference_result["probs"], np.float32) if reference_result.get("ok") else None
        macs = reference_result.get("macs")
        for fmt in chosen:
            item = prepared[fmt.name]
            if isinstance(item, str):
                rows[fmt.name] = Row.failed(fmt.name, fmt.runtime, item)
                continue
            name = _display_name(item, model)
            rows[fmt.name] = make_row(fmt, results[fmt.name], file=name, size_bytes=item.size_bytes,
                                      labels=labels, reference=reference, notes=item.notes)
    settings = {"model": str(model), "model_sha256": sha, "data": str(data), "split": split, "clips": int(len(labels)),
                "formats": [f.name for f in chosen], "threads": threads, "runs": runs, "warmup": warmup, "repeat": repeat,
                "model_config": config.to_dict()}
    finished = machine_info()
    machine = {**finished.to_dict(), "loadavg_start": list(started.loadavg) if started.loadavg else None}
    report = BenchReport(tuple(rows[f.name] for f in chosen), machine, settings, macs,
                         created=_dt.datetime.now().astimezone().isoformat(timespec="seconds"))
    paths = write_results(report, out)
    return BenchReport(report.rows, report.machine, report.settings, report.macs, report.created, paths)


TIMING_KEYS = ("times_ms", "frame_times_ms", "window_frame_ms", "window_frame_p90_ms", "parts", "rss_mb")


def best_round(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The first round's result (accuracy, cold start) with the timings of the round whose p50 is lowest.

    Other processes on a shared machine only ever add time, so the least disturbed round is the
    one closest to what the model costs; all rounds' p50s stay in ``round_p50_ms``. A stream's
    push and window-recompute timings come from the same round (the same process).
    """
    first = found[0]
    ok = [r for r in found if r.get("ok")]
    if not first.get("ok") or len(found) == 1:
        return first
    key = "frame_times_ms" if "frame_times_ms" in first else "times_ms"
    p50s = [float(np.median(r[key])) if r.get(key) else float("inf") for r in ok]
    best = ok[int(np.argmin(p50s))]
    merged = {**first, **{k: best[k] for k in TIMING_KEYS if k in best}}
    merged["round_p50_ms"] = p50s
    merged["cold_start_s"] = float(np.median([r["cold_start_s"] for r in ok]))
    merged["rss_first_mb"] = max(r["rss_first_mb"] for r in ok)
    merged["rss_mb"] = max(r["rss_mb"] for r in ok)
    if len(ok) < len(found):
        merged["failed_rounds"] = [r.get("error") for r in found if not r.get("ok")]
    return merged


def _display_name(item: Prepared, model: Path) -> str:
    return " + ".join(p.name for p in item.measured.values()) if item.measured else model.name
