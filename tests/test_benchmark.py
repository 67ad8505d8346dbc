"""edge-rcnn benchmark: the command on a tiny model, its files, failing formats, the MAC counter.

Timings are not asserted (they belong in benchmarks/, not in tests); what is checked is that
every format's row is measured and written well-formed, that a failure becomes a row with its
reason, and that MACs match numbers counted by hand.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from edge_rcnn.benchmark.formats import DEFAULT_FORMATS, FORMATS, parse_formats
from edge_rcnn.benchmark.report import COLUMNS
from edge_rcnn.core.errors import ConfigError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BENCH_FORMATS = ("keras", "tflite-int8", "onnx-fp32", "stream-int8")


@pytest.fixture(scope="module")
def bench_dir(tiny_model_file, digits_dir, tmp_path_factory):
    """One ``edge-rcnn benchmark`` run on the tiny model (exports included); its output folder and stdout."""
    import contextlib
    import io

    from edge_rcnn.cli import main

    out = tmp_path_factory.mktemp("bench")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["benchmark", str(tiny_model_file), "--data", str(digits_dir), "--formats", ",".join(BENCH_FORMATS),
                     "--runs", "2", "--warmup", "1", "--threads", "1", "-o", str(out)])
    assert code == 0
    return out, stdout.getvalue()


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_benchmark_command_writes_json_csv_png(bench_dir):
    out, printed = bench_dir
    doc = json.loads((out / "benchmark.json").read_text())
    assert doc["schema_version"] == 1
    assert doc["columns"] == list(COLUMNS)
    assert doc["settings"]["threads"] == 1 and doc["settings"]["runs"] == 2
    assert doc["machine"]["logical_cpus"] >= 1 and "versions" in doc["machine"]
    assert [r["format"] for r in doc["rows"]] == list(BENCH_FORMATS)
    for row in doc["rows"]:
        assert row["status"] == "ok", row
        assert row["frame_ms"] is not None or 0 < row["p50_ms"] <= row["p90_ms"]
        assert 0 <= row["accuracy"] <= 100 and 0 <= row["agreement"] <= 100
        assert row["size_mb"] > 0 and row["rss_mb"] > 0 and row["cold_start_s"] > 0
    assert [r["extra"]["runs"] for r in doc["rows"]] == [2, 2, 2, 2 * 8]  # the stream: runs x T pushes
    keras, tflite, onnx, stream = doc["rows"]
    assert keras["agreement"] == 100.0  # the reference agrees with itself
    assert onnx["agreement"] == 100.0  # float32 ONNX picks the float model's class on every clip
    for row in (tflite, onnx, stream):
        assert not row["extra"]["tensorflow_imported"]
    assert keras["extra"]["tensorflow_imported"]
    # The stream row: per-frame push latency instead of per-clip, its window-recompute twin and its parts.
    assert stream["p50_ms"] is None and 0 < stream["frame_ms"] <= stream["extra"]["frame_p90_ms"]
    assert stream["extra"]["window_frame_ms"] > 0 and set(stream["extra"]["parts"]) == {"encoder_ms", "head_ms"}
    assert stream["extra"]["encoder_threads"] == stream["extra"]["window_threads"] == 1  # same threads on both sides
    in_push = stream["extra"]["in_push"]
    assert 0 < in_push["encoder_ms"] < in_push["push_ms"] and 0 < in_push["head_ms"] < in_push["push_ms"]
    assert in_push["rest_ms"] > 0
    assert stream["file"] == "stream_encoder_int8.tflite + stream_head_int8.tflite"
    assert doc["macs"]["clip"] == doc["macs"]["frames"] + doc["macs"]["head"] > 0
    assert (out / "models" / "tflite-int8" / "model_int8.tflite").is_file()

    with open(out / "benchmark.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(COLUMNS)
    assert [r[0] for r in rows[1:]] == list(BENCH_FORMATS)
    assert all(r[COLUMNS.index("status")] == "ok" for r in rows[1:])
    assert float(rows[2][COLUMNS.index("p50_ms")]) == pytest.approx(doc["rows"][1]["p50_ms"], abs=1e-4)
    assert rows[4][COLUMNS.index("p50_ms")] == ""  # the stream row has no per-clip latency

    assert (out / "benchmark.png").read_bytes()[:8] == PNG_MAGIC
    for name in BENCH_FORMATS:
        assert name in printed


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_failing_format_is_a_row_with_its_reason(bench_dir, tiny_model_file, digits_dir, monkeypatch):
    from edge_rcnn.benchmark import benchmark, prepare
    from edge_rcnn.core.errors import ConversionError

    out, _ = bench_dir

    def broken_export(fmt, *args, **kwargs):
        raise ConversionError(f"{fmt.name}: the converter broke on purpose")

    monkeypatch.setattr(prepare, "_export", broken_export)
    # tflite-int8 is reused from the first run (same model sha256), onnx-fp16 must be exported and fails.
    report = benchmark(tiny_model_file, digits_dir, out, formats=["tflite-int8", "onnx-fp16"], runs=2, warmup=0,
                       threads=1, progress=False)
    ok, failed = report.rows
    assert ok.ok and ok.agreement is not None  # agreement needs the Keras reference, run without a row
    assert not failed.ok
    assert failed.status == "ConversionError: onnx-fp16: the converter broke on purpose"
    assert failed.p50_ms is None and failed.accuracy is None
    doc = json.loads((out / "benchmark.json").read_text())
    assert [r["status"] for r in doc["rows"]] == ["ok", failed.status]
    assert "converter broke on purpose" in report.table()


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_stale_export_is_not_reused(bench_dir, tiny_model_file, digits_dir, tmp_path, monkeypatch):
    """Same model, other conversion settings (an int8 file from when the fused LSTM was the default):
    exported again, never measured as if it were today's file."""
    import shutil

    from edge_rcnn.benchmark import benchmark, prepare
    from edge_rcnn.core.errors import ConversionError
    from edge_rcnn.core.model import file_sha256

    out, _ = bench_dir
    fmt, sha = FORMATS["tflite-int8"], file_sha256(tiny_model_file)
    shutil.copytree(out / "models" / fmt.name, tmp_path / "models" / fmt.name)
    files = prepare.expected_files(fmt, tiny_model_file, tmp_path / "models")
    assert prepare.stale_reason(fmt, files, sha) is None  # the first run's export, as it was written
    report_path = tmp_path / "models" / fmt.name / "report.json"
    report = json.loads(report_path.read_text())
    assert report["settings"]["tflite_lstm"] == "unrolled"
    report["settings"]["tflite_lstm"] = "fused"
    report_path.write_text(json.dumps(report))
    assert prepare.stale_reason(fmt, files, sha) == "conversion settings changed (tflite_lstm: 'fused' -> 'unrolled')"
    assert "onnx_int8: 'tensorrt' -> 'cpu'" in prepare.stale_reason(
        FORMATS["onnx-int8"], {"model": files["model"]}, sha)  # another row's wish, same folder: not reusable
    del report["settings"]["onnx_int8"]  # a report from before the setting existed
    report_path.write_text(json.dumps(report))
    assert "onnx_int8: '<absent>' -> 'tensorrt'" in prepare.stale_reason(fmt, files, sha)
    assert prepare.stale_reason(fmt, files, "0" * 64) == "report.json names another model.keras (sha256 differs)"

    exported = []

    def fake_export(fmt_, model, data, folder, progress):
        exported.append(fmt_.name)
        assert not (folder / "report.json").exists()  # the stale report is gone before the export starts
        raise ConversionError(f"{fmt_.name}: export attempted")

    monkeypatch.setattr(prepare, "_export", fake_export)
    report = benchmark(tiny_model_file, digits_dir, tmp_path, formats=["tflite-int8"], runs=1, warmup=0, threads=1,
                       progress=False)
    assert exported == ["tflite-int8"] and report.rows[0].status == "ConversionError: tflite-int8: export attempted"


def test_rows_pin_the_converter_settings_they_measure():
    from edge_rcnn.benchmark.prepare import convert_settings, expected_report_settings

    assert expected_report_settings(FORMATS["onnx-int8"])["onnx_int8"] == "cpu"  # what one deploys on ORT CPU
    assert expected_report_settings(FORMATS["onnx-int8-trt"])["onnx_int8"] == "tensorrt"
    assert expected_report_settings(FORMATS["tflite-int8"])["tflite_lstm"] == "unrolled"
    assert expected_report_settings(FORMATS["tflite-int8-fused"])["tflite_lstm"] == "fused"
    assert expected_report_settings(FORMATS["tflite-fp32"])["tflite_lstm"] == "fused"
    assert convert_settings(FORMATS["stream-int8"])["streaming"] and convert_settings(FORMATS["tflite-int8"])["split"] == "train"
    assert "onnx-int8-trt" not in DEFAULT_FORMATS and all(FORMATS[n].about for n in ("onnx-int8", "onnx-int8-trt"))


def test_worker_failure_is_a_row(tmp_path):
    from edge_rcnn.benchmark.measure import make_row, run_worker

    bad = tmp_path / "model_int8.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    frames = tmp_path / "frames.npy"
    np.save(frames, np.zeros((1, 8, 32, 32, 3), np.uint8))
    spec = {"measure": "clip", "files": {"model": str(bad)}, "frames": str(frames), "inputs": str(frames),
            "threads": 1, "runs": 1, "warmup": 0}
    result = run_worker(spec, tmp_path, "bad")
    assert result["ok"] is False and result["error"].startswith("ModelFileError: ")
    row = make_row(FORMATS["tflite-int8"], result, file=bad.name, size_bytes=bad.stat().st_size,
                   labels=np.zeros(1, np.int64), reference=None)
    assert not row.ok and "ModelFileError" in row.status and row.size_mb == pytest.approx(23e-6)


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_raw_worker_times_any_file(bench_dir):
    from edge_rcnn.benchmark.measure import run_worker

    out, _ = bench_dir
    spec = {"measure": "raw", "files": {"model": str(out / "models" / "tflite-int8" / "model_int8.tflite")},
            "threads": 1, "runs": 3, "warmup": 1}
    result = run_worker(spec, out, "raw")
    assert result["ok"] and len(result["times_ms"]) == 3 and "probs" not in result


def test_bad_arguments_fail_before_any_work(tiny_model_file, digits_dir, tmp_path):
    from edge_rcnn.benchmark import benchmark

    with pytest.raises(ConfigError, match="formats: unknown value 'tflite-int4'.*tflite-int8"):
        parse_formats("keras,tflite-int4")
    with pytest.raises(ConfigError, match="runs: expected an integer >= 1, got 0"):
        benchmark(tiny_model_file, digits_dir, tmp_path / "b", runs=0)
    assert not (tmp_path / "b").exists()
    assert parse_formats(",".join(DEFAULT_FORMATS)) == tuple(FORMATS[n] for n in DEFAULT_FORMATS)


def test_mac_counter_on_a_known_stack():
    from edge_rcnn.benchmark.macs import count_macs, split_clip_macs
    from edge_rcnn.core._keras import keras

    k = keras()
    frame_in = k.Input((8, 8, 3))
    x = k.layers.Conv2D(4, 3, padding="same")(frame_in)  # 8*8 positions * 4 filters * 3*3*3 = 6912
    x = k.layers.BatchNormalization()(x)  # folded into the conv by converters: 0
    x = k.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 4*4 positions * 4 channels * 3*3 = 576
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(5)(x)  # 4 * 5 = 20
    frame = k.Model(frame_in, x)
    assert count_macs(frame).total == 6912 + 576 + 20

    clip_in = k.Input((6, 8, 8, 3))
    y = k.layers.TimeDistributed(frame, name="frames_cnn")(clip_in)  # 6 frames * 7508 = 45048
    y = k.layers.LSTM(7, return_sequences=True)(y)  # 6 steps * 4 gates * 7 units * (5 + 7) = 2016
    y = k.layers.Dense(4)(y)  # on each of 6 steps: 6 * 7 * 4 = 168
    y = k.layers.GRU(3)(y)  # 6 steps * 3 gates * 3 units * (4 + 3) = 378
    y = k.layers.Dense(2)(y)  # 3 * 2 = 6
    clip = k.Model(clip_in, y)
    counted = count_macs(clip)
    assert counted.total == 45048 + 2016 + 168 + 378 + 6
    assert counted.by_type() == {"Conv2D": 6 * 6912, "DepthwiseConv2D": 6 * 576, "Dense": 6 * 20 + 168 + 6,
                                 "LSTM": 2016, "GRU": 378}
    assert split_clip_macs(clip) == {"frame": 7508, "frames": 45048, "head": 2016 + 168 + 378 + 6, "clip": 47616,
                                     "step": None}  # not an edge-rcnn model: no step head to count


@pytest.mark.parametrize("rnn, gates, layers, motion", [("lstm", 4, 1, "none"), ("gru", 3, 2, "pair")])
def test_step_head_macs_count_one_projection_and_s_recurrent_products(rnn, gates, layers, motion):
    from conftest import tiny_model_config

    from edge_rcnn.benchmark.macs import split_clip_macs
    from edge_rcnn.core.model import build_model

    # tiny backbone and one global average: F = 2 * width = 8 features; S = T steps, or T - 1 pairs
    config = tiny_model_config(rnn=rnn, layers=layers, motion=motion, grid=0)
    S, F, U, C = config.steps, 2 * config.width, config.units, config.num_classes
    assert S == (config.frames - 1 if motion == "pair" else config.frames)
    macs = split_clip_macs(build_model(config))
    deeper = (layers - 1) * S * (U * gates * U + U * gates * U)  # layers >= 2 read each window's own h
    assert macs["step"] == F * gates * U + S * U * gates * U + deeper + S * U * C
    assert macs["step"] < macs["head"]  # one step for S windows beats S steps for one


def test_peak_int8_macs_uses_the_best_flag():
    from edge_rcnn.benchmark.machine import MachineInfo, peak_int8_macs

    vnni = MachineInfo("Test CPU", "x86_64", "Linux", 4, 4, 2000.0, ("avx2", "avx512_vnni"), "3.11")
    est = peak_int8_macs(vnni)
    assert est.macs_per_cycle_per_core == 64 and est.macs_per_s == pytest.approx(4 * 2.0e9 * 64)
    assert "VNNI" in est.assumption
    plain = MachineInfo("Old CPU", "x86_64", "Linux", 2, 2, None, ("sse4_2",), "3.11")
    assert peak_int8_macs(plain).macs_per_s is None


def test_best_round_keeps_the_least_disturbed_timings():
    from edge_rcnn.benchmark.run import best_round

    first = {"ok": True, "probs": [[1.0, 0.0]], "times_ms": [5.0, 6.0, 7.0], "cold_start_s": 0.3, "rss_first_mb": 40.0,
             "rss_mb": 41.0}
    quiet = {"ok": True, "times_ms": [2.0, 2.0, 9.0], "cold_start_s": 0.1, "rss_first_mb": 42.0, "rss_mb": 43.0}
    broken = {"ok": False, "error": "RuntimeError: boom"}
    merged = best_round([first, quiet, broken])
    assert merged["times_ms"] == [2.0, 2.0, 9.0] and merged["probs"] == [[1.0, 0.0]]
    assert merged["round_p50_ms"] == [6.0, 2.0]
    assert merged["cold_start_s"] == pytest.approx(0.2) and merged["rss_mb"] == 43.0
    assert merged["failed_rounds"] == ["RuntimeError: boom"]
    assert best_round([broken, quiet]) is broken  # the first round decides whether the format runs at all


def test_targets_from_one_report():
    from edge_rcnn.benchmark.report import BenchReport, Row
    from benchmarks.targets import evaluate_targets, ratios

    rows = (
        Row("keras", "tensorflow", "ok", size_mb=1.0, accuracy=99.0, agreement=100.0, p50_ms=20.0,
            cold_start_s=3.0, extra={"rss_first_mb": 600.0}),
        Row("tflite-fp32", "litert", "ok", size_mb=0.4, accuracy=99.0, agreement=100.0, p50_ms=1.0),
        Row("tflite-int8", "litert", "ok", size_mb=0.1, accuracy=98.5, agreement=99.0, p50_ms=0.5,
            cold_start_s=0.2, extra={"rss_first_mb": 50.0}),
        Row("onnx-fp32", "onnxruntime", "ok", size_mb=0.4, accuracy=99.0, agreement=100.0, p50_ms=1.0),
        Row.failed("onnx-int8", "onnxruntime", "ConversionError: no"),
        Row("stream-int8", "litert", "ok", size_mb=0.2, accuracy=98.0, agreement=97.0, frame_ms=0.1,
            extra={"window_frame_ms": 0.6, "parts": {"encoder_ms": 0.02, "head_ms": 0.05}}),
    )
    report = BenchReport(rows, {"flags": ["avx2"]}, {"model_config": {"frames": 8}},
                         {"frame": 100, "frames": 800, "head": 100, "clip": 900})
    r = ratios(report)
    assert r["tflite_int8_vs_fp32_latency"] == 0.5 and r["tflite_int8_vs_keras_latency"] == 0.025
    assert r["tflite_int8_vs_fp32_size"] == 0.25 and r["tflite_int8_accuracy_drop"] == 0.5
    assert r["onnx_int8_vs_fp32_latency"] is None  # the failed row gives no number, not a zero
    assert r["stream_frame_vs_window_frame"] == pytest.approx(1 / 6) and r["stream_speedup_mac_bound"] == 4.5
    assert r["int8_encoder_macs_per_s"] == pytest.approx(100 / 0.02e-3)
    status = {t.name: t.status for t in evaluate_targets(report, {"best_val_accuracy": 0.97, "seconds": 700.0})}
    assert status["default config val top-1"] == "PASS" and status["training time"] == "FAIL"
    assert status["int8 vs fp32 TFLite clip latency"] == "PASS"  # no VNNI flag: "not slower" (<= 1.0x)
    assert status["int8 vs fp32 ONNX Runtime clip latency"] == "N/A"
    assert status["int8 TFLite tensor data vs float32"] == "N/A"  # no tensor data given: weights unknown
    assert status["stream int8 top-1 agreement with Keras"] == "FAIL"
    assert status["int8 TFLite process peak RSS (load + 1 clip)"] == "PASS"
    assert not any(name.startswith("push speed-up") for name in status)  # judged at the camera configuration


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
@pytest.mark.parametrize("fmt", ["tflite-int8", "onnx-fp32"])
def test_stripped_files_are_smaller_and_compute_the_same(bench_dir, fmt, tmp_path):
    """The size floor's files: names gone, metadata and outputs unchanged."""
    import runtimes
    from benchmarks.floors import strip_onnx, strip_tflite, stripped_size

    original = next((bench_dir[0] / "models" / fmt).glob("model_*"))
    stripped = tmp_path / original.name
    stripped.write_bytes((strip_tflite if fmt.startswith("tflite") else strip_onnx)(original.read_bytes()))
    assert stripped.stat().st_size == stripped_size(original) < original.stat().st_size
    if fmt.startswith("onnx"):
        import onnx

        onnx.checker.check_model(onnx.load(str(stripped)), full_check=True)
    before, after = runtimes.load_runtime(original, "cpu"), runtimes.load_runtime(stripped, "cpu")
    assert after.metadata == before.metadata and after.metadata.kind == "clip"
    x = np.random.default_rng(0).integers(-128, 128, [s or 1 for s in before.input.shape]).astype(before.input.dtype)
    np.testing.assert_array_equal(after.run(x), before.run(x))


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_size_floors_pair_each_int8_row_with_its_float_row(bench_dir, tiny_model_file, tmp_path):
    import shutil

    from benchmarks.floors import size_floors
    from edge_rcnn.benchmark.formats import FORMATS
    from edge_rcnn.benchmark.prepare import expected_files
    from edge_rcnn.benchmark.report import BenchReport, Row

    int8 = next((bench_dir[0] / "models" / "tflite-int8").glob("model_*.tflite"))
    for fmt in ("tflite-int8", "tflite-fp32"):  # the same file on both sides, where the benchmark puts each: ratio 1
        target = expected_files(FORMATS[fmt], tiny_model_file, tmp_path)["model"]
        target.parent.mkdir()
        shutil.copy(int8, target)
    rows = (Row("tflite-int8", "litert", "ok"), Row("tflite-fp32", "litert", "ok"),
            Row("onnx-int8", "onnxruntime", "ok"))  # no onnx-fp32 row: no ONNX floor
    floors = size_floors(BenchReport(rows, {}, {}), tiny_model_file, tmp_path)
    assert floors == {"tflite_int8_vs_fp32_size_stripped": 1.0}


def test_a_second_configuration_is_judged_on_the_speed_targets_under_its_own_name():
    from edge_rcnn.benchmark.report import BenchReport, Row
    from benchmarks.targets import latency_targets

    rows = (Row("tflite-fp32", "litert", "ok", p50_ms=1.0), Row("tflite-int8", "litert", "ok", p50_ms=0.6),
            Row("onnx-fp32", "onnxruntime", "ok", p50_ms=1.0), Row("onnx-int8", "onnxruntime", "ok", p50_ms=0.9))
    report = BenchReport(rows, {"flags": ["avx512_vnni"]}, {"model_config": {"frames": 16}})
    got = {t.name: (t.status, round(t.measured, 3)) for t in latency_targets(report, "96x96 camera")}
    assert got == {"int8 vs fp32 TFLite clip latency (96x96 camera)": ("PASS", 0.6),
                   "int8 vs fp32 ONNX Runtime clip latency (96x96 camera)": ("FAIL", 0.9)}


def test_stream_target_is_a_share_of_the_mac_bound_on_each_thread_count():
    from edge_rcnn.benchmark.report import BenchReport, Row
    from benchmarks.targets import stream_targets

    macs = {"frame": 90, "frames": 1440, "head": 50, "step": 10, "clip": 1000}  # MAC bound 1000 / (90 + 10) = 10x

    def measured(threads: int, frame_ms: float) -> BenchReport:
        extra = {"window_frame_ms": 1.0, "encoder_threads": threads, "window_threads": threads, "head_threads": 1}
        return BenchReport((Row("stream-int8", "litert", "ok", frame_ms=frame_ms, extra=extra),), {},
                           {"threads": threads}, macs)

    # 8x faster is 0.8 of the bound (on the line); 1 / 0.128 = 7.8x is 0.78 of it. A second
    # report on a thread count already judged adds nothing.
    targets = stream_targets((measured(2, 0.125), measured(1, 0.128), measured(1, 0.125)), "96x96 camera")
    assert [(t.name, t.status) for t in targets] == [("push speed-up / MAC bound, 2 threads (96x96 camera)", "PASS"),
                                                     ("push speed-up / MAC bound, 1 thread (96x96 camera)", "FAIL")]
    assert targets[0].measured == 0.8 and targets[1].measured == pytest.approx(0.78125)
    assert targets[0].detail == "push 8.00x faster, MAC bound 10.0x; encoder on 2, window clip model on 2, head on 1 thread(s)"
    assert "push 7.81x faster" in targets[1].detail and "encoder on 1, window clip model on 1" in targets[1].detail
    no_window = BenchReport((Row("stream-int8", "litert", "ok", frame_ms=0.1),), {}, {"threads": 1}, macs)
    assert stream_targets([no_window])[0].status == "N/A"


def test_size_target_judges_tensor_data_below_1m_weights_and_the_whole_file_from_there():
    from benchmarks.floors import TensorData
    from edge_rcnn.benchmark.report import BenchReport, Row
    from benchmarks.targets import SMALL_MODEL_WEIGHTS, evaluate_targets

    rows = (Row("tflite-fp32", "litert", "ok", size_mb=4.1), Row("tflite-int8", "litert", "ok", size_mb=1.6),
            Row("onnx-fp32", "onnxruntime", "ok", size_mb=4.01), Row("onnx-int8", "onnxruntime", "ok", size_mb=1.21))
    report = BenchReport(rows, {}, {})
    small, big = SMALL_MODEL_WEIGHTS - 1, SMALL_MODEL_WEIGHTS

    def judged(int8_data: int) -> dict:
        files = {"tflite-fp32": TensorData(4_100_000, 4_000_000, 60, small),
                 "tflite-int8": TensorData(1_600_000, int8_data, 300, small),
                 "onnx-fp32": TensorData(4_010_000, 4_000_000, 70, big),
                 "onnx-int8": TensorData(1_210_000, 1_000_000, 200, big)}
        return {t.name: t for t in evaluate_targets(report, tensor_data=files)}

    passed, failed = judged(1_080_000), judged(1_084_000)
    # Under 1 M weights: the tensor data, 0.27x (on the line) passes although the whole file is 0.39x.
    tflite = passed["int8 TFLite tensor data vs float32"]
    assert (tflite.status, tflite.measured, tflite.limit) == ("PASS", 0.27, 0.27)
    assert tflite.detail == (f"{small:,} weights; whole file 0.390x; int8 file overhead 520,000 B over 300 tensors = "
                             "1733 B per tensor")
    assert failed["int8 TFLite tensor data vs float32"].status == "FAIL"  # 0.271x
    # From 1 M weights: the whole file, 0.302x, fails although the tensor data is 0.25x.
    onnx = passed["int8 ONNX file size vs float32"]
    assert (onnx.status, onnx.measured, onnx.limit) == ("FAIL", pytest.approx(1.21 / 4.01), 0.30)
    assert onnx.detail.startswith(f"{big:,} weights; tensor data 0.250x; int8 file overhead 210,000 B over 200 tensors")


@pytest.mark.slow  # bench_dir: a benchmark run, every format exported and timed in workers
def test_tensor_data_of_real_files_matches_counts_made_another_way(bench_dir, tmp_path):
    """The int8 TFLite file against LiteRT's interpreter (its constant tensors and quantization
    parameters); the float32 ONNX file against the bytes onnx writes when it moves every tensor
    to an external data file."""
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    from benchmarks.floors import tensor_data

    tflite = bench_dir[0] / "models" / "tflite-int8" / "model_int8.tflite"
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()  # no public call tells constants from activations
    computed = {i for op in ops for i in op["outputs"]} | {d["index"] for d in interpreter.get_input_details()}
    constants = [interpreter.get_tensor(i) for i in {i for op in ops for i in op["inputs"] if i >= 0} - computed]
    quant = [d["quantization_parameters"] for d in interpreter.get_tensor_details()]
    assert any(q["scales"].size > 1 for q in quant)  # per-channel scales: the quantization parameters count
    quant_bytes = sum(q["scales"].size * 4 + q["zero_points"].size * 8 for q in quant)  # stored float32, int64
    got = tensor_data(tflite)
    assert got.data_bytes == sum(c.nbytes for c in constants) + quant_bytes
    assert got.weights == sum(c.size for c in constants) and got.tensors == len(quant)

    onnx_file = bench_dir[0] / "models" / "onnx-fp32" / "model_float.onnx"
    onnx.save(onnx.load(str(onnx_file)), str(tmp_path / "model.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="tensors.bin", size_threshold=0, convert_attribute=True)
    assert tensor_data(onnx_file).data_bytes == (tmp_path / "tensors.bin").stat().st_size

    for td in (got, tensor_data(onnx_file)):
        assert 0 < td.data_bytes < td.file_bytes
        assert 0 < td.overhead_per_tensor < td.file_bytes
