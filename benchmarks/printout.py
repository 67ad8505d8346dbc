"""What ``standard.py`` prints: the ratios, the MAC figures, the file sizes, the part timings, the notes
on missed targets."""

from __future__ import annotations

from edge_rcnn.benchmark import FORMATS
from benchmarks.floors import SIZE_PAIRS


def fmt(value, spec: str = ".3g", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def print_ratios(r: dict, report, peak) -> None:
    speed = lambda x: "" if not x else f"  ({1 / x:.2f}x faster)" if x < 1 else f"  ({x:.2f}x slower)"  # noqa: E731
    print("\nratios (both sides measured in this run):")
    for label, key in (("int8 vs fp32 TFLite clip latency", "tflite_int8_vs_fp32_latency"),
                       ("int8 TFLite vs Keras float model(x)", "tflite_int8_vs_keras_latency"),
                       ("int8 vs fp32 ONNX Runtime clip latency", "onnx_int8_vs_fp32_latency"),
                       ("stream push vs window recompute per frame", "stream_frame_vs_window_frame"),
                       ("stream push vs one int8 clip call", "stream_frame_vs_int8_clip")):
        print(f"  {label:<44} {fmt(r[key], '.3f', 'x')}{speed(r[key])}")
    for label, key in (("int8 (fused LSTM) vs fp32 TFLite clip latency", "tflite_int8_fused_vs_fp32_latency"),
                       ("int8 for TensorRT vs fp32 ONNX (on this CPU)", "onnx_int8_trt_vs_fp32_latency")):
        if r.get(key) is not None:
            print(f"  {label:<44} {fmt(r[key], '.3f', 'x')}{speed(r[key])}")
    print(f"  {'int8 vs fp32 size: TFLite / ONNX':<44} {fmt(r['tflite_int8_vs_fp32_size'], '.3f', 'x')} / "
          f"{fmt(r['onnx_int8_vs_fp32_size'], '.3f', 'x')}  (fused-LSTM TFLite {fmt(r.get('tflite_int8_fused_vs_fp32_size'), '.3f', 'x')}, "
          f"ONNX for TensorRT {fmt(r.get('onnx_int8_trt_vs_fp32_size'), '.3f', 'x')})")
    print(f"  {'accuracy drop vs Keras: int8 TFLite / ONNX':<44} {fmt(r['tflite_int8_accuracy_drop'], '.1f', ' pt')} / "
          f"{fmt(r['onnx_int8_accuracy_drop'], '.1f', ' pt')}")
    print(f"  {'top-1 agreement: int8 TFLite / ONNX / stream':<44} {fmt(r['tflite_int8_agreement'], '.1f', '%')} / "
          f"{fmt(r['onnx_int8_agreement'], '.1f', '%')} / {fmt(r['stream_int8_agreement'], '.1f', '%')}")
    macs = report.macs or {}
    print(f"\nMACs (from the Keras layers): {fmt(macs.get('frame'), ',')} per frame (encoder), "
          f"{fmt(macs.get('head'), ',')} per clip (RNN + classifier), {fmt(macs.get('step'), ',')} per stream step "
          f"(the T windows in flight), {fmt(macs.get('clip'), ',')} per clip")
    peak_s = f"{peak.macs_per_s / 1e9:.0f} GMAC/s" if peak.macs_per_s else "unknown"
    for label, key in (("int8 frame encoder (stream part)", "int8_encoder_macs_per_s"),
                       ("int8 clip model (whole clip)", "int8_clip_macs_per_s")):
        achieved = r[key]
        share = f" = {achieved / peak.macs_per_s:.2%} of peak" if achieved and peak.macs_per_s else ""
        print(f"  {label:<34} {fmt(achieved and achieved / 1e9, '.2f', ' GMAC/s')}{share}")
    print(f"  CPU int8 peak estimate {peak_s}: {peak.assumption}")
    stream = report.row("stream-int8")
    if stream is not None and stream.ok:
        for line in push_lines(stream):
            print("  " + line)
        bound, ratio = r["stream_speedup_mac_bound"], r["stream_frame_vs_window_frame"]
        measured = 1 / ratio if ratio else None
        share = f" = {measured / bound:.2f} of the bound" if measured and bound else ""
        print(f"  a push does {fmt(bound, '.1f', 'x')} fewer MACs than a window recompute (MAC bound; measured "
              f"{fmt(measured, '.2f', 'x')}{share}, encoder and window on {stream.extra.get('threads')} thread(s))")
    print("\nrows:")
    for name in report.settings["formats"]:
        if FORMATS[name].about:
            print(f"  {name:<18} {FORMATS[name].about}")


FLOOR_NAMES = {"tflite_int8": "int8 TFLite (unrolled LSTM, the int8 default)", "tflite_int8_fused": "int8 TFLite, fused LSTM",
               "onnx_int8": "int8 ONNX (cpu flavour)"}


def print_sizes(r: dict, tensor_data: dict) -> None:
    """Each file's tensor data and per-tensor overhead (``floors.TensorData``), the int8 / float32
    tensor data ratios, and the floors under the whole-file ratios (every name stripped)."""
    if tensor_data:
        print("\nfile bytes = tensor data (constant tensors and quantization parameters) + overhead:")
    for name, td in tensor_data.items():
        print(f"  {name:<17} {td.file_bytes:>9,} B = {td.data_bytes:,} B + {td.overhead_bytes:,} B over {td.tensors} "
              f"tensors ({td.overhead_per_tensor:.0f} B per tensor); {td.weights:,} weights")
    for int8, fp32 in SIZE_PAIRS:
        if int8 in tensor_data and fp32 in tensor_data:
            ratio = tensor_data[int8].data_bytes / tensor_data[fp32].data_bytes
            print(f"  {int8} vs {fp32} tensor data: {ratio:.3f}x")
    for key, ratio in r.items():
        if key.endswith("_vs_fp32_size_stripped"):
            name = FLOOR_NAMES.get(key.removesuffix("_vs_fp32_size_stripped"), key)
            print(f"  floor: {name} vs float32 with every name stripped in both (metadata kept): {ratio:.3f}x")


def push_lines(stream) -> list[str]:
    """Where a push's time goes: the two model calls inside real pushes, and alone back to back."""
    parts, inside = stream.extra.get("parts") or {}, stream.extra.get("in_push") or {}
    lines = []
    if inside:
        lines.append(f"push (int8, medians timed inside pushes): encoder {inside['encoder_ms']:.4f} + head "
                     f"{inside['head_ms']:.4f} + the rest (frame conversion, feature lookup, slot reset, scores, Prediction) "
                     f"{inside['rest_ms']:.4f} = {inside['push_ms']:.4f} ms")
    if parts:
        lines.append(f"the same calls alone, back to back: encoder {parts['encoder_ms']:.4f} ms per frame, head "
                     f"{parts['head_ms']:.4f} ms per step (a multi-threaded encoder's pool idles between pushes)")
    return lines + [head_threads_line(stream)]


def head_threads_line(stream) -> str:
    """The stream's thread counts, and what the head costs on the benchmark's thread count."""
    parts, threads = stream.extra.get("parts") or {}, stream.extra.get("threads")
    line = (f"stream head on {stream.extra.get('head_threads')} thread(s), encoder on "
            f"{stream.extra.get('encoder_threads')}, window clip model on {stream.extra.get('window_threads')}")
    if parts.get("head_ms_all_threads"):
        line += f" (the head on {threads} threads: {parts['head_ms_all_threads']:.4f} ms vs {parts['head_ms']:.4f} ms)"
    return line


def threads_line(report) -> str:
    """Which thread count each clip row's model ran on (the runtime's default when not told)."""
    used = [f"{r.format} {r.extra['threads_used'] or 'default'}" for r in report.rows
            if r.ok and "threads_used" in r.extra]
    default = any(r.extra.get("threads_default") for r in report.rows if r.ok)
    how = "loaded as a user loads them: the runtime's default" if default else "as given"
    return f"threads per row ({how}): {', '.join(used)}"


def print_parts(rows, report, peak) -> dict:
    """The clip's CNN and RNN halves, fp32 vs int8 (benchmarks/parts.py); returns their ratios."""
    from edge_rcnn.benchmark.report import format_table

    p50 = {r.format: r.p50_ms for r in rows if r.ok}
    print("\nwhere the int8 clip latency goes (each half converted and timed alone, same worker as the rows):")
    print(format_table(rows))
    out = {f"{part}_int8_vs_fp32": (p50[f"{part}-int8"] / p50[f"{part}-fp32"])
           if p50.get(f"{part}-int8") and p50.get(f"{part}-fp32") else None
           for part in ("cnn", "rnn-fused", "rnn-unrolled", "clip-fused", "clip-unrolled")}
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
    """What the part timings and the other int8 rows say about a missed int8-vs-fp32 latency target."""
    missed = {t.name for t in targets if t.status == "FAIL"}
    notes = []
    parts = {part: r.get(f"{part}_int8_vs_fp32") for part in ("cnn", "rnn-unrolled", "rnn-fused", "clip-unrolled", "clip-fused")}
    if "int8 vs fp32 TFLite clip latency" in missed and any(parts.values()):
        notes.append("int8 TFLite row = unrolled LSTM, fp32 row = fused LSTM (each precision's default); int8 / fp32 "
                     "latency of each piece converted alone: " + ", ".join(f"{k} {fmt(v, '.2f', 'x')}" for k, v in parts.items()))
    if "int8 vs fp32 ONNX Runtime clip latency" in missed and r.get("onnx_int8_trt_vs_fp32_latency"):
        notes.append(f"the symmetric int8 ONNX file (for TensorRT) runs at {r['onnx_int8_trt_vs_fp32_latency']:.2f}x fp32 "
                     f"on this CPU, the uint8-activation one (onnx-int8) at {fmt(r.get('onnx_int8_vs_fp32_latency'), '.2f', 'x')}")
    return notes
