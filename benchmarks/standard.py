#!/usr/bin/env python
"""The project's performance record: the standard configuration, measured in one run.

Standard configuration: the built-in dataset with the defaults of ``edge-rcnn data moving-digits``,
the default model and training of ``edge-rcnn train`` (seed 0), benchmarked in every format with
``edge_rcnn.benchmark`` (int8 calibrated on the train split, accuracy on the val split). Prints
the table, the ratios that matter (each from two numbers measured in this run on this machine),
the int8 encoder's achieved MAC/s next to an estimate of the CPU's int8 peak, and every target of
the issues with PASS/FAIL; writes ``benchmarks/results/<date>.json`` and ``.png``.

    python benchmarks/standard.py                      # data, training and benchmark from scratch
    python benchmarks/standard.py --run runs/demo      # reuse a trained RUN (its metrics.json)

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
from edge_rcnn.benchmark.machine import MachineInfo, peak_int8_macs  # noqa: E402
from edge_rcnn.benchmark.report import plot_rows  # noqa: E402
from edge_rcnn.benchmark.targets import evaluate_targets, ratios  # noqa: E402


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
    from edge_rcnn.config import ModelConfig
    from edge_rcnn.train import TrainConfig, _tc_dict

    defaults = vars(build_parser().parse_args(["data", "moving-digits", "DATA"]))
    same_data = all(dataset.get(key) == (list(defaults[key]) if isinstance(defaults[key], tuple) else defaults[key])
                    for key in ("digits", "directions", "clips_per_class", "frames", "size", "seed"))
    config = metrics.get("config") or {}
    default_model = ModelConfig(labels=tuple(config.get("labels") or ("a", "b"))).to_dict()
    return same_data and config == default_model and metrics.get("train_config") == _tc_dict(TrainConfig())


def fmt(value, spec: str = ".3g", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def print_ratios(r: dict, report, peak) -> None:
    frames = report.settings["model_config"]["frames"]
    speed = lambda x: "" if not x else f"  ({1 / x:.2f}x faster)" if x < 1 else f"  ({x:.2f}x slower)"  # noqa: E731
    print("\nratios (both sides measured in this run):")
    for label, key in (("int8 vs fp32 TFLite clip latency", "tflite_int8_vs_fp32_latency"),
                       ("int8 TFLite vs Keras float model(x)", "tflite_int8_vs_keras_latency"),
                       ("int8 vs fp32 ONNX Runtime clip latency", "onnx_int8_vs_fp32_latency"),
                       ("stream push vs window recompute per frame", "stream_frame_vs_window_frame"),
                       ("stream push vs one int8 clip call", "stream_frame_vs_int8_clip")):
        print(f"  {label:<44} {fmt(r[key], '.3f', 'x')}{speed(r[key])}")
    print(f"  {'int8 vs fp32 size: TFLite / ONNX':<44} {fmt(r['tflite_int8_vs_fp32_size'], '.3f', 'x')} / "
          f"{fmt(r['onnx_int8_vs_fp32_size'], '.3f', 'x')}")
    print(f"  {'accuracy drop vs Keras: int8 TFLite / ONNX':<44} {fmt(r['tflite_int8_accuracy_drop'], '.1f', ' pt')} / "
          f"{fmt(r['onnx_int8_accuracy_drop'], '.1f', ' pt')}")
    print(f"  {'top-1 agreement: int8 TFLite / ONNX / stream':<44} {fmt(r['tflite_int8_agreement'], '.1f', '%')} / "
          f"{fmt(r['onnx_int8_agreement'], '.1f', '%')} / {fmt(r['stream_int8_agreement'], '.1f', '%')}")
    macs = report.macs or {}
    print(f"\nMACs (from the Keras layers): {fmt(macs.get('frame'), ',')} per frame (encoder), "
          f"{fmt(macs.get('head'), ',')} per clip (RNN + classifier), {fmt(macs.get('clip'), ',')} per clip")
    peak_s = f"{peak.macs_per_s / 1e9:.0f} GMAC/s" if peak.macs_per_s else "unknown"
    for label, key in (("int8 frame encoder (stream part)", "int8_encoder_macs_per_s"),
                       ("int8 clip model (whole clip)", "int8_clip_macs_per_s")):
        achieved = r[key]
        share = f" = {achieved / peak.macs_per_s:.2%} of peak" if achieved and peak.macs_per_s else ""
        print(f"  {label:<34} {fmt(achieved and achieved / 1e9, '.2f', ' GMAC/s')}{share}")
    print(f"  CPU int8 peak estimate {peak_s}: {peak.assumption}")
    cnn, rnn = r["int8_cnn_ms_per_clip"], r["int8_rnn_head_ms"]
    if cnn is not None and rnn is not None:
        print(f"  stream parts (int8): encoder {cnn / frames:.4f} ms per frame ({frames} calls: {cnn:.3f} ms), "
              f"unrolled head {rnn:.4f} ms per window")


def print_parts(rows, report, peak) -> dict:
    """The clip's CNN and RNN halves, fp32 vs int8 (benchmarks/parts.py); returns their ratios."""
    from edge_rcnn.benchmark.report import format_table

    p50 = {r.format: r.p50_ms for r in rows if r.ok}
    print("\nwhere the int8 clip latency goes (each half converted and timed alone, same worker as the rows):")
    print(format_table(rows))
    out = {f"{part}_int8_vs_fp32": (p50[f"{part}-int8"] / p50[f"{part}-fp32"])
           if p50.get(f"{part}-int8") and p50.get(f"{part}-fp32") else None
           for part in ("cnn", "rnn-fused", "rnn-unrolled", "clip-unrolled")}
    frames_macs = (report.macs or {}).get("frames")
    if p50.get("cnn-int8") and frames_macs:
        achieved = frames_macs / (p50["cnn-int8"] / 1000)
        out["int8_cnn_macs_per_s"] = achieved
        share = f" = {achieved / peak.macs_per_s:.1%} of the {peak.macs_per_s / 1e9:.0f} GMAC/s peak estimate" if peak.macs_per_s else ""
        print(f"  int8 CNN half ({report.settings['model_config']['frames']} frames in one call): "
              f"{achieved / 1e9:.1f} GMAC/s{share}")
    for key, value in out.items():
        if key.endswith("_int8_vs_fp32"):
            print(f"  {key.replace('_int8_vs_fp32', ''):<14} int8 / fp32 latency {fmt(value, '.2f', 'x')}")
    return out


def explain(targets, r: dict) -> list[str]:
    """What the part timings say about a missed int8-vs-fp32 latency target."""
    missed = {t.name for t in targets if t.status == "FAIL"}
    notes = []
    cnn, fused, unrolled = r.get("cnn_int8_vs_fp32"), r.get("rnn-fused_int8_vs_fp32"), r.get("clip-unrolled_int8_vs_fp32")
    if "int8 vs fp32 TFLite clip latency" in missed and cnn and fused and fused > 1 > cnn:
        notes.append(f"int8 TFLite is held back by the RNN: the CNN half is {cnn:.2f}x fp32 but the fused int8 LSTM "
                     f"kernel is {fused:.2f}x fp32; the whole clip with the LSTM unrolled is {fmt(unrolled, '.2f', 'x')} fp32")
    return notes


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
    args = p.parse_args(argv)

    training = ensure_run(args.data, args.run)
    report = benchmark(args.run / "model.keras", args.data, args.out, formats=DEFAULT_FORMATS, threads=args.threads,
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
    part_rows = []
    if not args.no_parts:
        from parts import measure_parts

        part_rows = measure_parts(args.run / "model.keras", args.data, args.out / "parts", threads=args.threads,
                                  runs=args.runs, repeat=args.repeat)
        r.update(print_parts(part_rows, report, peak))
    targets = evaluate_targets(report, training)
    print("\ntargets:")
    for t in targets:
        print("  " + t.line())
    for note in explain(targets, r):
        print(f"  note: {note}")

    stamp = datetime.date.today().isoformat()
    args.results.mkdir(parents=True, exist_ok=True)
    doc = {"date": stamp, "standard_config": training["standard"], "training": training, "ratios": r,
           "peak_int8": {"macs_per_s": peak.macs_per_s, "assumption": peak.assumption},
           "targets": [t.to_dict() for t in targets], "notes": explain(targets, r),
           "parts": [row.to_dict() for row in part_rows], "benchmark": report.to_dict()}
    from edge_rcnn._util import write_json_atomic

    json_path = write_json_atomic(args.results / f"{stamp}.json", doc)
    plot_rows(report.rows, args.results / f"{stamp}.png", title=f"{machine.summary()}")
    print(f"\nresults: {json_path}  chart: {args.results / f'{stamp}.png'}")
    return 0 if all(t.status == "PASS" for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
