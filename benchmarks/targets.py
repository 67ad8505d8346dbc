"""The project's measured targets, judged from one benchmark run (and the training run's metrics).

Every ratio is of two numbers measured in the same run on the same machine. ``ratios`` names
them; ``evaluate_targets`` (the standard configuration), ``latency_targets`` and
``stream_targets`` (any configuration, the camera one included) turn them into ``Target``
records with PASS / FAIL (N/A when a number is missing because a row failed: the reason is in
that row's status). Every limit is stated here, once, with why it sits where it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.floors import TensorData
from edge_rcnn.benchmark.report import BenchReport

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

# The limits.
VAL_TOP1 = 95.0  # %: the default model must learn the built-in task, not only run
TRAIN_SECONDS = 600.0  # a first training run on a 2-core machine ends while its user waits
INT8_DROP = 1.0  # points of val top-1: a deployed int8 file is as accurate as the float model, within noise
INT8_AGREEMENT = 98.0  # %: int8 picks the float model's class; a drop alone can hide swapped mistakes
# Below this many weights (the values in the float32 file's constant tensors), the per-tensor
# records, scales, zero points and graph weigh as much as the int8 weights: the file ratio then
# measures the format, the tensor data ratio what quantization stores.
SMALL_MODEL_WEIGHTS = 1_000_000
INT8_TENSOR_DATA = 0.27  # x float32: int8 weights are 0.25x; 0.02 for int32 biases and quantization params
INT8_FILE = 0.30  # x float32: the tensor data's 0.27x plus a graph that weights outweigh from 1 M up
RSS_MB = 150.0  # an int8 model and its runtime leave a small board's memory to the camera pipeline
COLD_START_S = 1.0  # a device service restarts without a noticeable gap
INT8_VS_FP32_VNNI = 0.67  # where the CPU has int8 dot products, int8 must be clearly faster: >= 1.5x
INT8_VS_FP32_PLAIN = 1.0  # without them int8 still saves memory, so it only has to not be slower
INT8_VS_KERAS = 0.05  # exporting must pay: >= 20x faster than calling the float model in its training framework
ONNX_INT8_VS_FP32 = 0.8  # ONNX Runtime's int8 file is worth deploying only if it is >= 1.25x faster
# A push's speed-up over recomputing the window, as a share of the MAC bound (``ratios``'
# ``stream_speedup_mac_bound``): the arithmetic caps the speed-up, so the target is how much of
# it the implementation keeps; 20% pays for a push's two calls and its frame conversion.
STREAM_OF_MAC_BOUND = 0.8


@dataclass(frozen=True)
class Target:
    area: str  # training | converters | runtimes | streaming | benchmark
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
        return f"[{self.status:4}] {self.area:<10} {self.name:<44} {shown:>9}  {self.op} {self.limit:g}{self.unit}{detail}"

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
        # (int8), same threads, both pushing frames through runtimes streams in the same worker process.
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
        "int8_cnn_ms_per_clip": encoder_ms * frames if encoder_ms and frames else None,
        "int8_rnn_head_ms": head_ms,
    }
    return out


def evaluate_targets(report: BenchReport, training: dict[str, Any] | None = None,
                     tensor_data: Mapping[str, TensorData] | None = None) -> list[Target]:
    """The standard configuration's targets, measured in ``report``, ``training`` metrics and the
    ``tensor_data`` of each row's file (``floors.tensor_data_by_row``; without it the size targets
    are N/A). The streaming speed-up is judged at the camera configuration: ``stream_targets``."""
    r = ratios(report)
    files = tensor_data or {}
    keras_cold, keras_rss = _get(report, "keras", "cold_start_s"), _extra(report, "keras", "rss_first_mb")
    vs_keras = (f"TensorFlow + Keras: {keras_cold:.2f} s, {keras_rss:.0f} MB" if keras_cold and keras_rss
                else "Keras row missing")
    targets = []
    if training:
        acc, seconds = training.get("best_val_accuracy"), training.get("seconds")
        targets += [
            Target("training", "default config val top-1", None if acc is None else acc * 100, ">=", VAL_TOP1, "%",
                   f"{training.get('epochs_run', '?')} epochs"),
            Target("training", "training time", seconds, "<=", TRAIN_SECONDS, " s",
                   f"{report.machine.get('logical_cpus')} CPUs"),
        ]
    for fmt, key in (("TFLite", "tflite"), ("ONNX", "onnx")):
        targets += [
            size_target(fmt, r[f"{key}_int8_vs_fp32_size"], files.get(f"{key}-int8"), files.get(f"{key}-fp32")),
            Target("converters", f"int8 {fmt} accuracy drop vs Keras", r[f"{key}_int8_accuracy_drop"], "<=", INT8_DROP,
                   " pt"),
            Target("converters", f"int8 {fmt} top-1 agreement with Keras", r[f"{key}_int8_agreement"], ">=",
                   INT8_AGREEMENT, "%"),
        ]
    speed = latency_targets(report)
    targets += [
        Target("runtimes", "int8 TFLite process peak RSS (load + 1 clip)", _extra(report, "tflite-int8", "rss_first_mb"),
               "<=", RSS_MB, " MB", vs_keras),
        Target("runtimes", "int8 TFLite cold start (spawn to 1st clip)", _get(report, "tflite-int8", "cold_start_s"),
               "<=", COLD_START_S, " s", vs_keras),
        Target("streaming", "stream int8 top-1 agreement with Keras", r["stream_int8_agreement"], ">=", INT8_AGREEMENT,
               "%"),
        speed[0],
        Target("benchmark", "int8 TFLite vs Keras model(x) clip latency", r["tflite_int8_vs_keras_latency"], "<=",
               INT8_VS_KERAS, "x"),
        speed[1],
    ]
    return targets


def size_target(fmt: str, file_ratio: float | None, int8: TensorData | None, fp32: TensorData | None) -> Target:
    """The size target of one int8 / float32 pair of ``fmt`` files: the tensor data ratio below
    ``SMALL_MODEL_WEIGHTS`` (counted in the float32 file), the whole-file ratio from there up.
    The detail gives the other ratio and the int8 file's overhead per tensor."""
    small = fp32 is None or fp32.weights < SMALL_MODEL_WEIGHTS  # unknown: N/A under the small-model name
    name, limit = ((f"int8 {fmt} tensor data vs float32", INT8_TENSOR_DATA) if small
                   else (f"int8 {fmt} file size vs float32", INT8_FILE))
    if int8 is None or fp32 is None:
        return Target("converters", name, None, "<=", limit, "x", "tensor data not read")
    data_ratio = int8.data_bytes / fp32.data_bytes
    shown_file = "-" if file_ratio is None else f"{file_ratio:.3f}x"
    other = f"whole file {shown_file}" if small else f"tensor data {data_ratio:.3f}x"
    detail = (f"{fp32.weights:,} weights; {other}; int8 file overhead {int8.overhead_bytes:,} B over {int8.tensors} "
              f"tensors = {int8.overhead_per_tensor:.0f} B per tensor")
    return Target("converters", name, data_ratio if small else file_ratio, "<=", limit, "x", detail)


def latency_targets(report: BenchReport, config: str = "") -> list[Target]:
    """The clip latency targets that hold for any input size: int8 vs fp32 in LiteRT and in ONNX
    Runtime. ``config`` names a second configuration (e.g. ``"96x96 camera"``) in the target names."""
    r = ratios(report)
    vnni = any(f in (report.machine.get("flags") or []) for f in VNNI_FLAGS)
    at = f" ({config})" if config else ""
    return [
        Target("benchmark", f"int8 vs fp32 TFLite clip latency{at}", r["tflite_int8_vs_fp32_latency"], "<=",
               INT8_VS_FP32_VNNI if vnni else INT8_VS_FP32_PLAIN, "x",
               "CPU with VNNI" if vnni else "CPU without VNNI: not slower"),
        Target("benchmark", f"int8 vs fp32 ONNX Runtime clip latency{at}", r["onnx_int8_vs_fp32_latency"], "<=",
               ONNX_INT8_VS_FP32, "x", "onnx-int8 = --onnx-int8 cpu"),
    ]


def stream_targets(reports: Sequence[BenchReport], config: str = "") -> list[Target]:
    """A push's speed-up over a window recompute as a share of the MAC bound, one target per thread
    count among ``reports`` (one configuration measured on every core and on one; the stream
    worker gives the encoder and the window clip model the same count). ``config`` as in
    ``latency_targets``."""
    at = f" ({config})" if config else ""
    targets, seen = [], set()
    for report in reports:
        threads = report.settings.get("threads")
        if threads in seen:
            continue
        seen.add(threads)
        r = ratios(report)
        speedup, bound = _div(1.0, r["stream_frame_vs_window_frame"]), r["stream_speedup_mac_bound"]
        row = report.row("stream-int8")
        extra = row.extra if row is not None and row.ok else {}
        shown = f"push {speedup:.2f}x faster, MAC bound {bound:.1f}x; " if speedup and bound else ""
        detail = (f"{shown}encoder on {extra.get('encoder_threads', '?')}, window clip model on "
                  f"{extra.get('window_threads', '?')}, head on {extra.get('head_threads', '?')} thread(s)")
        name = f"push speed-up / MAC bound, {threads} thread{'' if threads == 1 else 's'}{at}"
        targets.append(Target("streaming", name, _div(speedup, bound), ">=", STREAM_OF_MAC_BOUND, "x", detail))
    return targets
