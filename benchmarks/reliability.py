#!/usr/bin/env python
"""The reliability record: what sharing a Predictor between threads costs, and a long soak.

- **Threads.** ``predict`` holds a per-runtime lock around LiteRT's reset + invoke (an
  interpreter keeps tensors and LSTM state between calls), so threads sharing one Predictor
  take turns; ONNX Runtime's sessions run concurrently. Measured: clips per second for one
  thread, for 4 threads sharing one Predictor, for 4 threads with a Predictor each, and the
  uncontended lock's cost as a share of one call.
- **Soak.** ``--frames`` frames (default 50,000) through ``runtimes.camera.run`` from a video file,
  events written as ``edge-rcnn run --events`` does: RSS every 1,000 frames, its growth over the
  second half, dropped frames and predictions; then up to 20,000 frames again with an annotated
  video (``--save``), whose container keeps an index entry per frame until it is closed.

    python benchmarks/reliability.py                 # out/translate from `make demo`, else a stand-in
    python benchmarks/reliability.py --model OUT/ --frames 50000

Without ``--model`` and without the demo's export, an untrained default model (the demo's
layout, 64 px) is quantized on a small built-in set: speed and memory do not depend on training.
Writes ``benchmarks/results/reliability-<date>.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THREADS = 4
MIN_FRAMES = 10_000


def stand_in_export(work: Path) -> Path:
    """An int8 TFLite + ONNX export (with streaming parts) of an untrained default model at 64 px."""
    out = work / "out"
    if (out / "manifest.json").is_file():
        return out
    data = work / "data"
    if not (data / "dataset.json").is_file():
        subprocess.run([sys.executable, "-m", "edge_rcnn", "data", "translate", str(data), "--clips-per-class", "8"],
                       check=True)
    from converters import quantize
    from edge_rcnn.core.config import ModelConfig
    from edge_rcnn.core.model import build_model, save_model

    labels = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    config = ModelConfig(labels=tuple(labels), input_size=(64, 64))
    model_path = save_model(build_model(config), config, work / "model.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration clips, an untrained model: warned on purpose
        quantize(model_path, data, out, formats="tflite,onnx", streaming=True, samples=16, verify_samples=8,
                 max_drop=100, progress=False)
    return out


def clips_per_second(predictors, clips, seconds: float = 3.0) -> float:
    """Clips per second over ``seconds`` with one thread per predictor (the same object may repeat)."""
    done = [0] * len(predictors)
    stop = threading.Event()
    barrier = threading.Barrier(len(predictors) + 1)

    def worker(i: int, p) -> None:
        barrier.wait()
        n = 0
        while not stop.is_set():
            p.predict(clips[n % len(clips)])
            n += 1
        done[i] = n

    threads = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(predictors)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def lock_share(p, clip, calls: int = 200) -> float:
    """The uncontended lock's acquire + release as a share of one ``predict``."""
    lock = p.runtime.lock
    start = time.perf_counter()
    for _ in range(calls * 100):
        with lock:
            pass
    per_lock = (time.perf_counter() - start) / (calls * 100)
    start = time.perf_counter()
    for _ in range(calls):
        p.predict(clip)
    return per_lock / ((time.perf_counter() - start) / calls)


def measure_threads(out: Path) -> list[dict]:
    import runtimes

    rows = []
    for name in ("model_int8.tflite", "model_int8.onnx"):
        if not (out / name).is_file():
            continue
        load = lambda: runtimes.load(out / name, num_threads=1)  # noqa: E731  one core per Predictor
        p = load()
        rng = np.random.default_rng(0)
        (h, w), frames = p.spec.frame.input_size, p.spec.frames
        clips = [rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8) for _ in range(4)]
        one = clips_per_second([p], clips)
        shared = clips_per_second([p] * THREADS, clips)
        own = clips_per_second([load() for _ in range(THREADS)], clips)
        rows.append({"file": name, "one_thread": one, "shared": shared, "own": own,
                     "shared_vs_one": shared / one, "own_vs_one": own / one, "lock_share": lock_share(p, clips[0])})
    return rows


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def soak(out: Path, frames: int, work: Path, *, save: bool = False) -> dict:
    """``frames`` frames from a video file through ``runtimes.camera.run``, events written as JSON lines
    and, with ``save``, an annotated video as ``edge-rcnn run --save`` writes it; RSS every 1,000."""
    import cv2

    import runtimes
    import runtimes.camera
    from runtimes.camera.recording import AnnotatedVideo, EventLog

    p = runtimes.load(out)
    (h, w) = p.spec.frame.input_size
    video = work / f"soak-{frames}.mp4"
    if not video.is_file():
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (64, h, w, 3), dtype=np.uint8)
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (w, h))
        for i in range(frames):
            writer.write(base[i % len(base)])
        writer.release()
    samples: list[tuple[int, int]] = []
    run = runtimes.camera.run(p, video, threshold=0.5, hold=3)
    log = EventLog(work / "soak-events.jsonl")
    annotated = AnnotatedVideo(work / "soak-annotated.mp4", run.source.fps) if save else None
    from tqdm import tqdm

    seen = 0
    for result in tqdm(run, total=frames, unit="frame", disable=bool(os.environ.get("EDGE_RCNN_QUIET"))):
        log.write(result.events)
        if annotated is not None:
            annotated.write(result.frame.image, result.frame.color, "", result.fps)
        seen += 1
        if seen % 1000 == 0:
            samples.append((seen, rss_bytes()))
    log.close()
    if annotated is not None:
        annotated.close(keep=False)
    summary = run.summary()
    # Growth over the second half: allocator pools and caches fill during the first frames.
    warm = [(n, rss) for n, rss in samples if n >= frames // 2]
    growth = warm[-1][1] - warm[0][1]
    return {"frames": summary.frames, "dropped": summary.dropped, "predictions": summary.predictions,
            "events": summary.events, "save": save, "rss_mib": [[n, rss / 2**20] for n, rss in samples],
            "growth_after_warmup_mib": growth / 2**20, "bytes_per_frame": growth / (warm[-1][0] - warm[0][0])}


def write_record(record: dict, stem: Path) -> None:
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# Reliability record, {record['date']}", "", f"Model: {record['model']}. {record['machine']}.", "",
             "## Threads sharing one Predictor", "",
             f"Clips per second relative to one thread, {THREADS} threads (each Predictor on one core).", "",
             "| file | 4 threads, one shared Predictor | 4 threads, a Predictor each | lock / one predict |",
             "|---|---|---|---|"]
    for r in record["threads"]:
        lines.append(f"| {r['file']} | {r['shared_vs_one']:.2f}x | {r['own_vs_one']:.2f}x | {r['lock_share']:.4%} |")
    lines += ["", "## Soak", "",
              f"Frames from a video file through `runtimes.camera.run`, events written as JSON lines; RSS growth counted "
              f"over the second half of each run (pools and caches fill first).", "",
              "| run | frames | dropped | predictions | RSS first -> last | growth, 2nd half | per frame, 2nd half |",
              "|---|---|---|---|---|---|---|"]
    for s in (record["soak"], record["soak_save"]):
        what = "loop + events + annotated mp4 (`--save`)" if s["save"] else "loop + events"
        lines.append(f"| {what} | {s['frames']} | {s['dropped']} | {s['predictions']} | {s['rss_mib'][0][1]:.0f} -> "
                     f"{s['rss_mib'][-1][1]:.0f} MiB | {s['growth_after_warmup_mib']:.2f} MiB | "
                     f"{s['bytes_per_frame']:.0f} B |")
    lines.append("")
    s = record["soak"]
    stem.with_suffix(".md").write_text("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    top = 0.0
    for run, name in ((record["soak"], "loop + events"), (record["soak_save"], "+ annotated mp4 (--save)")):
        xs, ys = zip(*run["rss_mib"])
        ax.plot(xs, ys, marker=".", label=f"{name}: {run['dropped']} dropped")
        top = max(top, *ys)
    ax.set_xlabel("frames through the camera loop")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(0, top * 1.15)
    ax.legend(loc="lower right")
    ax.set_title(f"Soak: RSS over {s['frames']} frames")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="an export folder with int8 TFLite/ONNX files and streaming parts")
    parser.add_argument("--frames", type=int, default=50_000, help=f"soak frames (default 50000; at least {MIN_FRAMES})")
    parser.add_argument("--work", default="bench/reliability", help="scratch folder (default bench/reliability)")
    args = parser.parse_args(argv)
    if args.frames < MIN_FRAMES:
        parser.error(f"--frames: expected at least {MIN_FRAMES}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    demo = ROOT / "out" / "translate"
    if args.model or (demo / "manifest.json").is_file():
        out = Path(args.model) if args.model else demo
        model = str(out)
    else:
        out = stand_in_export(work)
        model = "stand-in: an untrained default model at 64 px, int8 (speed and memory do not depend on training)"
    import platform

    record = {"date": datetime.date.today().isoformat(), "model": model,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    record["threads"] = measure_threads(out)
    record["soak"] = soak(out, args.frames, work)
    record["soak_save"] = soak(out, min(args.frames, 20_000), work, save=True)
    stem = ROOT / "benchmarks" / "results" / f"reliability-{record['date']}"
    write_record(record, stem)
    print(stem.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
