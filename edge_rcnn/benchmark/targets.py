"""The project's measured targets, judged from one benchmark run (and the training run's metrics).

Every ratio is of two numbers measured in the same run on the same machine. ``ratios`` names
them; ``evaluate_targets`` turns them into ``Target`` records with PASS / FAIL (N/A when a
number is missing because a row failed: the reason is in that row's status).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edge_rcnn.benchmark.report import BenchReport

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Target:
    issue: str  # training | converters | runtimes | streaming | benchmark
    name: str
    measured: float | None
    op: str  # "<=" or ">="
    limit: float
    unit: str = ""
    detail: str = ""

    @property
    def status(self) -> str:
        if self.measured is None:
            return "N/A"
        ok = self.measured <= self.limit if self.op == "<=" else self.measured >= self.limit
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        shown = "-" if self.measured is None else f"{self.measured:.3g}{self.unit}"
        detail = f"  ({self.detail})" if self.detail else ""
        return f"[{self.status:4}] {self.issue:<10} {self.name:<44} {shown:>9}  {self.op} {self.limit:g}{self.unit}{detail}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _get(report: BenchReport, name: str, attr: str) -> float | None:
    row = report.row(name)
    return getattr(row, attr) if row is not None and row.ok else None


def _extra(report: BenchReport, name: str, *keys: str) -> Any:
    row = report.row(name)
    value: Any = row.extra if row is not None and row.ok else None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def ratios(report: BenchReport) -> dict[str, float | None]:
    """Latency, size and accuracy ratios between rows of one run (None where a row is missing)."""
    p50 = lambda name: _get(report, name, "p50_ms")  # noqa: E731
    size = lambda name: _get(report, name, "size_mb")  # noqa: E731
    acc = lambda name: _get(report, name, "accuracy")  # noqa: E731
    frame_ms = _get(report, "stream-int8", "frame_ms")
    macs = report.macs or {}
    encoder_ms = _extra(report, "stream-int8", "parts", "encoder_ms")
    head_ms = _extra(report, "stream-int8", "parts", "head_ms")
    frames = (report.settings.get("model_config") or {}).get("frames")
    out = {
        "tflite_int8_vs_fp32_latency": _div(p50("tflite-int8"), p50("tflite-fp32")),
        "tflite_int8_vs_keras_latency": _div(p50("tflite-int8"), p50("keras")),
        "onnx_int8_vs_fp32_latency": _div(p50("onnx-int8"), p50("onnx-fp32")),
        "onnx_int8_vs_tflite_int8_latency": _div(p50("onnx-int8"), p50("tflite-int8")),
        # Rows measured only when asked for (None otherwise): the other int8 layouts and flavours.
        "tflite_int8_fused_vs_fp32_latency": _div(p50("tflite-int8-fused"), p50("tflite-fp32")),
        "tflite_int8_fused_vs_fp32_size": _div(size("tflite-int8-fused"), size("tflite-fp32")),
        "onnx_int8_trt_vs_fp32_latency": _div(p50("onnx-int8-trt"), p50("onnx-fp32")),
        "onnx_int8_trt_vs_fp32_size": _div(size("onnx-int8-trt"), size("onnx-fp32")),
        # Streaming against recomputing the window per frame: same runtime (LiteRT), same precision
        # (int8), both pushing frames through runtimes streams in the same worker process.
        "stream_frame_vs_window_frame": _div(frame_ms, _extra(report, "stream-int8", "window_frame_ms")),
        "stream_frame_vs_int8_clip": _div(frame_ms, p50("tflite-int8")),
        "tflite_int8_vs_fp32_size": _div(size("tflite-int8"), size("tflite-fp32")),
        "onnx_int8_vs_fp32_size": _div(size("onnx-int8"), size("onnx-fp32")),
        "tflite_int8_accuracy_drop": None if acc("keras") is None or acc("tflite-int8") is None
        else acc("keras") - acc("tflite-int8"),
        "onnx_int8_accuracy_drop": None if acc("keras") is None or acc("onnx-int8") is None
        else acc("keras") - acc("onnx-int8"),
        "tflite_int8_agreement": _get(report, "tflite-int8", "agreement"),
        "onnx_int8_agreement": _get(report, "onnx-int8", "agreement"),
        "stream_int8_agreement": _get(report, "stream-int8", "agreement"),
        "int8_encoder_macs_per_s": _div(macs.get("frame"), encoder_ms / 1000 if encoder_ms else None),
        "int8_clip_macs_per_s": _div(macs.get("clip"), p50("tflite-int8") / 1000 if p50("tflite-int8") else None),
        # A push is one encoder pass and one step of the T windows in flight, so it does
        # clip / (frame + step) times fewer MACs than a window recompute (the time ratio can
        # differ: the two sides run different kernels and a push makes two calls, not one).
        "stream_speedup_mac_bound": _div(macs.get("clip"), (macs.get("frame") or 0) + (macs.get("step") or macs.get("head") or 0)),
        # A bound in time: the window recompute over a push's two model calls alone, back to
        # back -- what a push would gain if its frame conversion and Python were free.
        "stream_speedup_calls_bound": _div(_extra(report, "stream-int8", "window_frame_ms"),
                                           encoder_ms + head_ms if encoder_ms and head_ms else None),
        "int8_cnn_ms_per_clip": encoder_ms * frames if encoder_ms and frames else None,
        "int8_rnn_head_ms": head_ms,
    }
    return out


def evaluate_targets(report: BenchReport, training: dict[str, Any] | None = None) -> list[Target]:
    """Every target of the issues with its measured value from ``report`` and ``training`` metrics."""
    r = ratios(report)
    speed = latency_targets(report)  # streaming push, int8 vs fp32 TFLite, int8 vs fp32 ONNX
    keras_cold, keras_rss = _get(report, "keras", "cold_start_s"), _extra(report, "keras", "rss_first_mb")
    vs_keras = (f"TensorFlow + Keras: {keras_cold:.2f} s, {keras_rss:.0f} MB" if keras_cold and keras_rss
                else "Keras row missing")
    targets = []
    if training:
        acc, seconds = training.get("best_val_accuracy"), training.get("seconds")
        targets += [
            Target("training", "default config val top-1", None if acc is None else acc * 100, ">=", 95.0, "%",
                   f"{training.get('epochs_run', '?')} epochs"),
            Target("training", "training time", seconds, "<=", 600.0, " s",
                   f"{report.machine.get('logical_cpus')} CPUs"),
        ]
    for fmt, key in (("TFLite", "tflite"), ("ONNX", "onnx")):
        targets += [
            Target("converters", f"int8 {fmt} size vs float32", r[f"{key}_int8_vs_fp32_size"], "<=", 0.30, "x"),
            Target("converters", f"int8 {fmt} accuracy drop vs Keras", r[f"{key}_int8_accuracy_drop"], "<=", 1.0, " pt"),
            Target("converters", f"int8 {fmt} top-1 agreement with Keras", r[f"{key}_int8_agreement"], ">=", 98.0, "%"),
        ]
    targets += [
        Target("runtimes", "int8 TFLite process peak RSS (load + 1 clip)", _extra(report, "tflite-int8", "rss_first_mb"),
               "<=", 150.0, " MB", vs_keras),
        Target("runtimes", "int8 TFLite cold start (spawn to 1st clip)", _get(report, "tflite-int8", "cold_start_s"),
               "<=", 1.0, " s", vs_keras),
        speed[0],
        Target("streaming", "stream int8 top-1 agreement with Keras", r["stream_int8_agreement"], ">=", 98.0, "%"),
        speed[1],
        Target("benchmark", "int8 TFLite vs Keras model(x) clip latency", r["tflite_int8_vs_keras_latency"], "<=",
               0.05, "x"),
        speed[2],
    ]
    return targets


def latency_targets(report: BenchReport, config: str = "") -> list[Target]:
    """The speed targets that hold for any input size: streaming push vs window recompute, int8 vs
    fp32 clip latency in LiteRT and in ONNX Runtime. ``config`` names a second configuration
    (e.g. ``"96x96 camera"``) in the target names."""
    r = ratios(report)
    vnni = any(f in (report.machine.get("flags") or []) for f in VNNI_FLAGS)
    frames = (report.settings.get("model_config") or {}).get("frames") or 16
    at = f" ({config})" if config else ""
    bound = r["stream_speedup_mac_bound"]
    stream_detail = f"0.8 T, T={frames}; int8 LiteRT both sides" + (
        f"; MAC bound {bound:.1f}x (a push: one encoder pass + one step of the T windows)" if bound else "")
    return [
        Target("streaming", f"push speed-up vs window recompute{at}", _div(1.0, r["stream_frame_vs_window_frame"]), ">=",
               0.8 * frames, "x", stream_detail),
        Target("benchmark", f"int8 vs fp32 TFLite clip latency{at}", r["tflite_int8_vs_fp32_latency"], "<=",
               0.67 if vnni else 1.0, "x", "CPU with VNNI" if vnni else "CPU without VNNI: not slower"),
        Target("benchmark", f"int8 vs fp32 ONNX Runtime clip latency{at}", r["onnx_int8_vs_fp32_latency"], "<=", 0.8, "x",
               "onnx-int8 = --onnx-int8 cpu"),
    ]
