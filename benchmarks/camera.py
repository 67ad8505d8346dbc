"""The camera-size configuration: the default architecture at a realistic camera input.

Why a second configuration: with exact last-T-frames semantics a streaming push runs one
encoder pass and one RNN step for each of the S windows in flight (``edge_rcnn.core.stepper``). At
the standard 32x32 input that step is a sizeable share of one frame's CNN, so the MAC bound on a
push's speed-up over recomputing the window is low whatever the code does, and each frame's CNN
is so small that the fixed cost of two interpreter calls from Python weighs as much as the
arithmetic. At a camera size the CNN grows with the pixels while the step does not, so the
streaming target (a share of the MAC bound, ``benchmarks/targets.py``) tests the
implementation rather than the arithmetic; it is judged here only.

Configuration: ``edge-rcnn data moving-digits --size S --clips-per-class 20`` (16 classes, T=16,
S x S frames; 20 clips per class is enough for calibration and a val split) and ``edge-rcnn
train --size S --epochs 1 --seed 0``: the default model (mobilenet width 16, LSTM 64 units) --
same width and units as the standard configuration -- trained for ONE epoch. The weights are
close to chance on purpose: latency does not depend on accuracy, and one epoch gives real
activation ranges to calibrate int8 on (unlike random weights). Accuracy columns of this
configuration mean nothing; its speed ratios are what it is for. Measured like the standard
rows: int8 calibrated on its train split, each format in its own worker, both sides of every
ratio in the same run (push and window recompute in the same worker, same runtime, same
precision).
"""

from __future__ import annotations

from pathlib import Path

from edge_rcnn.benchmark import benchmark
from benchmarks.targets import latency_targets, ratios
from printout import push_lines

CAMERA_FORMATS = ("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8", "stream-int8")
CLIPS_PER_CLASS = 20


def ensure_camera_run(cli, root: Path, size: int, epochs: int) -> tuple[Path, Path]:
    """``(data, run)`` of the camera configuration at ``size``, generated and trained when missing."""
    data, run = root / "data" / f"camera-digits-{size}", root / "runs" / f"camera-{size}-e{epochs}"
    if not (data / "dataset.json").is_file():
        print(f"generating the camera-size dataset ({size}x{size}, {CLIPS_PER_CLASS} clips per class) in {data}")
        cli("data", "moving-digits", str(data), "--size", str(size), "--clips-per-class", str(CLIPS_PER_CLASS))
    if not (run / "model.keras").is_file():
        print(f"training the default model at {size}x{size} for {epochs} epoch(s) into {run} (speed only)")
        cli("train", str(data), "--out", str(run), "--size", str(size), "--epochs", str(epochs), "--seed", "0")
    return data, run


def measure_camera(cli, root: Path, out: Path, *, size: int, epochs: int, threads: int, runs: int, repeat: int):
    """The camera configuration's benchmark report (formats ``CAMERA_FORMATS``)."""
    data, run = ensure_camera_run(cli, root, size, epochs)
    return benchmark(run / "model.keras", data, out, formats=CAMERA_FORMATS, threads=threads, runs=runs, repeat=repeat)


def one_thread_rows(report, threads_out: Path, runs: int, repeat: int, formats=("stream-int8",)):
    """``formats`` (default the ``stream-int8`` row) again with every model on one thread (encoder,
    head, the window-recompute clip model, the clip rows): the ratios on one core, where batched
    convolutions cannot use a second one. Reuses the files of ``report`` (copied)."""
    import shutil

    settings = report.settings
    for fmt in formats:
        models = Path(report.paths["json"]).parent / "models" / fmt
        shutil.copytree(models, threads_out / "models" / fmt, dirs_exist_ok=True)
    return benchmark(settings["model"], settings["data"], threads_out, formats=tuple(formats), threads=1, runs=runs,
                     repeat=repeat, progress=False)


def one_thread_ratios(one_thread) -> str:
    """One line: the int8 / fp32 clip latency ratios with every model on one thread."""
    p50 = {r.format: r.p50_ms for r in one_thread.rows if r.ok and r.p50_ms}
    parts = [f"{name} int8/fp32 {p50[f'{key}-int8'] / p50[f'{key}-fp32']:.2f}x"
             for key, name in (("tflite", "TFLite"), ("onnx", "ONNX Runtime"))
             if p50.get(f"{key}-int8") and p50.get(f"{key}-fp32")]
    return f"  on one thread: {', '.join(parts) or 'no clip rows'}"


def stream_line(one_thread) -> str:
    """One line: push vs window recompute on one thread."""
    row = one_thread.row("stream-int8")
    if row is None or not row.ok or not row.extra.get("window_frame_ms"):
        return f"  on one thread: {row.status if row is not None else 'not measured'}"
    window = row.extra["window_frame_ms"]
    return (f"  on one thread (encoder, head and clip model): push {row.frame_ms:.3f} ms vs window recompute "
            f"{window:.3f} ms per frame: {window / row.frame_ms:.2f}x faster")


def camera_summary(report, size: int, epochs: int) -> tuple[list[str], dict, list]:
    """Printed lines, ratios and targets of the camera configuration."""
    from edge_rcnn.benchmark.report import format_table

    r = ratios(report)
    macs = report.macs or {}
    config = report.settings["model_config"]
    stream = report.row("stream-int8")
    lines = [f"\ncamera-size configuration: {size}x{size}, default architecture ({config['backbone']} width "
             f"{config['width']}, {config['rnn']} {config['units']} units, T={config['frames']}), weights from "
             f"{epochs} epoch(s) of training (speed only: accuracy is near chance by design), "
             f"{report.settings['clips']} val clips\n", format_table(report.rows)]
    bound, measured = r["stream_speedup_mac_bound"], r["stream_frame_vs_window_frame"]
    lines.append(f"  MACs: {macs.get('frame', 0):,} per frame (encoder), {macs.get('step', 0):,} per stream step (head), "
                 f"{macs.get('clip', 0):,} per clip")
    if stream is not None and stream.ok and measured:
        window = stream.extra.get("window_frame_ms")
        lines.append(f"  stream push {stream.frame_ms:.3f} ms vs window recompute {window:.3f} ms per frame "
                     f"(int8 LiteRT, same worker): {1 / measured:.2f}x faster; MAC bound {bound:.1f}x")
        lines += ["  " + line for line in push_lines(stream)]
    for label, key in (("int8 vs fp32 TFLite clip latency", "tflite_int8_vs_fp32_latency"),
                       ("int8 vs fp32 ONNX Runtime clip latency", "onnx_int8_vs_fp32_latency")):
        value = r[key]
        lines.append(f"  {label:<40} {'-' if value is None else f'{value:.3f}x'}")
    return lines, r, latency_targets(report, f"{size}x{size} camera")
