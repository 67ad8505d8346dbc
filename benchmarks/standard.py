#!/usr/bin/env python
"""The project's performance record: the standard configuration, measured in one run.

Standard configuration: the built-in dataset with the defaults of ``edge-rcnn data moving-digits``,
the default model and training of ``edge-rcnn train`` (seed 0), benchmarked in every format with
``edge_rcnn.benchmark`` (int8 calibrated on the train split, accuracy on the val split). Prints
the table, the ratios that matter (each from two numbers measured in this run on this machine),
the int8 encoder's achieved MAC/s next to an estimate of the CPU's int8 peak, and every target of
the issues with PASS/FAIL. Then the camera-size configuration (``camera.py``: the same
architecture at 96x96, weights from one epoch) for the speed targets, the streaming one judged
there only, on every core and on one. Writes ``benchmarks/results/<date>.json``, ``.png`` and
``.txt`` (what was printed).

    python benchmarks/standard.py                      # data, training and benchmark from scratch
    python benchmarks/standard.py --run runs/demo      # reuse a trained RUN (its metrics.json)
    python benchmarks/standard.py --camera-size 0      # the standard configuration only

Timings are only as quiet as the machine: the load average is recorded with the results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from edge_rcnn.benchmark import DEFAULT_FORMATS, benchmark  # noqa: E402
from benchmarks.floors import size_floors, tensor_data_by_row  # noqa: E402
from edge_rcnn.benchmark.machine import MachineInfo, peak_int8_macs  # noqa: E402
from edge_rcnn.benchmark.report import plot_rows  # noqa: E402
from benchmarks.targets import evaluate_targets, ratios, stream_targets  # noqa: E402
from camera import camera_summary, measure_camera, one_thread_ratios, one_thread_rows, stream_line  # noqa: E402
from printout import explain, print_parts, print_ratios, print_sizes, threads_line  # noqa: E402


# The CLI's default rows plus the other int8 layout and flavour: the TFLite LSTM fused (smallest
# file) and the symmetric int8 ONNX file made for TensorRT, both measured on this CPU.
STANDARD_FORMATS = (*DEFAULT_FORMATS, "tflite-int8-fused", "onnx-int8-trt")
ONE_THREAD_FORMATS = ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8", "stream-int8")  # ratios on one core too


class Tee:
    """Everything printed goes to the terminal and into ``text`` (the record's .txt)."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    @property
    def text(self) -> str:
        return "".join(self.parts)


def cli(*args: str) -> float:
    """Run ``edge-rcnn ARGS`` in a fresh process; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edge_rcnn", *args], check=True, cwd=ROOT)
    return time.perf_counter() - start


def ensure_run(data: Path, run: Path) -> dict:
    """RUN/metrics.json, training the default model first if RUN holds no finished run."""
    if not (data / "dataset.json").is_file():
        print(f"generating the built-in dataset (edge-rcnn data moving-digits defaults) in {data}")
        cli("data", "moving-digits", str(data))
    if not (run / "model.keras").is_file() or not (run / "metrics.json").is_file():
        print(f"training the default model (edge-rcnn train defaults, seed 0) into {run}")
        wall = cli("train", str(data), "--out", str(run), "--seed", "0")
        print(f"training process: {wall:.0f} s wall")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["standard"] = is_standard(metrics, json.loads((data / "dataset.json").read_text()))
    return metrics


def is_standard(metrics: dict, dataset: dict) -> bool:
    """Whether the data has the CLI's default moving-digits settings and the run the default model and training."""
    from edge_rcnn.cli import build_parser
    from edge_rcnn.core.config import ModelConfig
    from edge_rcnn.core.train import TrainConfig, _tc_dict

    defaults = vars(build_parser().parse_args(["data", "moving-digits", "DATA"]))
    same_data = all(dataset.get(key) == (list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key])
                    for key in ("digits", "directions", "clips_per_class", "frames", "size", "seed"))
    config = metrics.get("config") or {}
    default_model = ModelConfig(labels=tuple(config.get("labels") or ("a", "b"))).to_dict()
    # A run records the flips it used (resolved from dataset.json), where the defaults say "auto".
    resolved = ("flip", "flip_pairs")
    train_config = {k: v for k, v in (metrics.get("train_config") or {}).items() if k not in resolved}
    default_training = {k: v for k, v in _tc_dict(TrainConfig()).items() if k not in resolved}
    return same_data and config == default_model and train_config == default_training


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "standard-digits",
                   help="built-in dataset folder (generated with the CLI defaults if empty)")
    p.add_argument("--run", type=Path, default=ROOT / "runs" / "standard", help="trained RUN (trained here if empty)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "standard", help="benchmark output folder")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--runs", type=int, default=200, help="timed calls per format (default 200)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=3,
                   help="rounds per format, interleaved; each keeps its least disturbed round (default 3)")
    p.add_argument("--no-parts", action="store_true", help="skip timing the clip's CNN and RNN halves alone")
    p.add_argument("--camera-size", type=int, default=96,
                   help="frame side of the camera-size configuration (default 96; 0 skips it)")
    p.add_argument("--camera-epochs", type=int, default=1, help="training epochs of the camera-size model (default 1)")
    args = p.parse_args(argv)
    tee = Tee(sys.stdout)
    sys.stdout = tee
    try:
        code, stamp = record(args)
    finally:
        sys.stdout = tee.stream
    (args.results / f"{stamp}.txt").write_text(tee.text)
    return code


def record(args) -> tuple[int, str]:
    """Measure both configurations, print everything, write the JSON and the chart; (exit code, date)."""
    training = ensure_run(args.data, args.run)
    report = benchmark(args.run / "model.keras", args.data, args.out, formats=STANDARD_FORMATS, threads=args.threads,
                       runs=args.runs, repeat=args.repeat)
    m = report.machine
    machine = MachineInfo(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in m.items() if k != "loadavg_start"})
    peak = peak_int8_macs(machine)
    print(f"\n{machine.summary()} (load at start {m.get('loadavg_start')})")
    print(f"run {args.run} (standard config: {'yes' if training['standard'] else 'NO'}), {report.settings['clips']} val "
          f"clips, {args.threads} threads, {args.runs} timed runs per format after {report.settings['warmup']} warm-up, "
          f"best of {args.repeat} interleaved rounds\n")
    print(report.table())
    r = ratios(report)
    print_ratios(r, report, peak)
    print(threads_line(report))
    files = tensor_data_by_row(report, args.run / "model.keras", args.out / "models")
    r.update(size_floors(report, args.run / "model.keras", args.out / "models"))
    print_sizes(r, files)
    one_thread = one_thread_rows(report, args.out.parent / f"{args.out.name}-1-thread", args.runs, args.repeat,
                                   formats=ONE_THREAD_FORMATS)
    print(stream_line(one_thread))
    print(one_thread_ratios(one_thread))
    r.update({f"one_thread_{k}": v for k, v in ratios(one_thread).items()
              if k in ("tflite_int8_vs_fp32_latency", "onnx_int8_vs_fp32_latency", "stream_frame_vs_window_frame")})
    part_rows = []
    if not args.no_parts:
        from parts import measure_parts

        part_rows = measure_parts(args.run / "model.keras", args.data, args.out / "parts", threads=args.threads,
                                  runs=args.runs, repeat=args.repeat)
        r.update(print_parts(part_rows, report, peak))
    targets = evaluate_targets(report, training, files)
    camera = None
    if args.camera_size:
        camera_report = measure_camera(cli, ROOT, args.out.parent / f"camera-{args.camera_size}", size=args.camera_size,
                                       epochs=args.camera_epochs, threads=args.threads, runs=args.runs, repeat=args.repeat)
        lines, camera_ratios, camera_targets = camera_summary(camera_report, args.camera_size, args.camera_epochs)
        print("\n".join(lines))
        camera_one = one_thread_rows(camera_report, args.out.parent / f"camera-{args.camera_size}-1-thread", args.runs,
                                       args.repeat)
        print(stream_line(camera_one))
        print(f"  load at start {camera_report.machine.get('loadavg_start')}, at end {camera_report.machine.get('loadavg')}")
        camera_name = f"{args.camera_size}x{args.camera_size} camera"
        targets += camera_targets + stream_targets((camera_report, camera_one), camera_name)
        camera = {"size": args.camera_size, "epochs": args.camera_epochs, "ratios": camera_ratios,
                  "benchmark": camera_report.to_dict(), "stream_one_thread": camera_one.to_dict()}
    print("\ntargets:")
    for t in targets:
        print("  " + t.line())
    notes = explain(targets, r)
    for note in notes:
        print(f"  note: {note}")

    stamp = datetime.date.today().isoformat()
    args.results.mkdir(parents=True, exist_ok=True)
    doc = {"date": stamp, "standard_config": training["standard"], "training": training, "ratios": r,
           "peak_int8": {"macs_per_s": peak.macs_per_s, "assumption": peak.assumption},
           "targets": [t.to_dict() for t in targets], "notes": notes,
           "tensor_data": {name: td.to_dict() for name, td in files.items()},
           "parts": [row.to_dict() for row in part_rows], "benchmark": report.to_dict(),
           "stream_one_thread": one_thread.to_dict(), "camera": camera}
    from edge_rcnn.core._util import write_json_atomic

    json_path = write_json_atomic(args.results / f"{stamp}.json", doc)
    plot_rows(report.rows, args.results / f"{stamp}.png", title=f"{machine.summary()}")
    print(f"\nresults: {json_path}  chart: {args.results / f'{stamp}.png'}  printed: {args.results / f'{stamp}.txt'}")
    return (0 if all(t.status == "PASS" for t in targets) else 1), stamp


if __name__ == "__main__":
    sys.exit(main())
