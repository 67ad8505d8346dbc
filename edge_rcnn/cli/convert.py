"""``edge-rcnn quantize | export | verify | info``: thin wrappers over ``converters``.

Choices (formats, modes, IO types) are checked by ``converters.ConvertConfig`` so the CLI and
Python callers get the same one-line error listing the valid values. A verification failure
still prints the comparison table before the error line (exit 3 for an accuracy drop).

``-o OUT`` is replaced as a whole when a run ends (built in a temporary folder beside it, then
swapped in): files an earlier run left in OUT that this run does not write are removed, and a
run that fails or is killed leaves OUT as it was. Two runs into one OUT at once: the second is
refused (exit 2).
"""

from __future__ import annotations

import argparse

from converters import export, info, quantize, verify
from converters.api import ExportReport
from converters.describe import format_info, info_json
from edge_rcnn.cli import csv_list
from edge_rcnn.cli.predict import metadata_problems, warn_problems
from edge_rcnn.core.errors import ValidationError

FORMATS_HELP = "comma-separated: tflite, onnx, edgetpu (default: tflite,onnx)"


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("quantize", help="calibrate and convert a model.keras to int8 (or fp16/dynamic) TFLite/ONNX")
    q.add_argument("model", help="RUN/model.keras")
    q.add_argument("--calib", required=True, metavar="DATA", help="data folder with real clips (calibration + verification)")
    q.add_argument("--format", type=csv_list, default=["tflite", "onnx"], help=FORMATS_HELP)
    q.add_argument("--mode", default="int8", help="int8 (default), fp16, dynamic or float")
    q.add_argument("--io", default=None, help="int8 file IO dtype: int8 (default; uint8 with edgetpu) or uint8 or float")
    q.add_argument("--samples", type=int, default=200, help="calibration clips (default 200; fewer than 100 warns)")
    q.add_argument("--verify-samples", type=int, default=200, help="other clips of the split to verify on (default 200)")
    q.add_argument("--split", default="val", help="split of DATA to use: val (default), train or all")
    q.add_argument("--edgetpu", action="store_true", help="also compile for the Edge TPU (same as adding format edgetpu)")
    q.add_argument("--streaming", action="store_true",
                   help="also export the frame encoder + step head for frame-by-frame streaming (stream_encoder_/stream_head_<mode> files)")
    _common(q, dynamic_batch=True)
    q.set_defaults(func=cmd_quantize)

    e = sub.add_parser("export", help="float (or fp16/dynamic) export of a model.keras, no calibration")
    e.add_argument("model", help="RUN/model.keras")
    e.add_argument("--format", type=csv_list, default=["tflite", "onnx"], help=FORMATS_HELP.replace(", edgetpu", ""))
    e.add_argument("--mode", default="float", help="float (default), fp16 or dynamic")
    e.add_argument("--data", default=None, help="data folder to verify on (default: synthetic clips, outputs only)")
    e.add_argument("--verify-samples", type=int, default=200, help="clips of the split to verify on (default 200)")
    e.add_argument("--split", default="val", help="split of --data: val (default), train or all")
    e.add_argument("--streaming", action="store_true", help="also export the frame encoder + step head for frame-by-frame streaming")
    _common(e, dynamic_batch=True)
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", help="compare an exported file with its float model.keras on real clips")
    v.add_argument("file", help="OUT/model_int8.tflite or .onnx")
    v.add_argument("--reference", required=True, help="RUN/model.keras the file was exported from")
    v.add_argument("--data", required=True, help="data folder")
    v.add_argument("--split", default="val", help="val (default), train or all")
    v.add_argument("--samples", type=int, default=200, help="clips to compare on (default 200)")
    v.add_argument("--device", default="auto", help="runtimes device: auto (default), cpu, edgetpu, cuda, tensorrt")
    v.add_argument("--report", default=None, help="also write the comparison as JSON to this file path")
    _common(v, dynamic_batch=False)
    v.set_defaults(func=cmd_verify)

    i = sub.add_parser("info", help="metadata, inputs/outputs, quantization parameters and ops of an exported file; "
                                    "a warning per metadata problem that load would refuse (exit 2)")
    i.add_argument("file", help=".tflite or .onnx file")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def _common(p: argparse.ArgumentParser, *, dynamic_batch: bool) -> None:
    p.add_argument("--max-drop", type=float, default=1.0, help="allowed top-1 accuracy drop in points (default 1.0; exit 3 above)")
    p.add_argument("--min-top1", type=float, default=0.0,
                   help="least top-1 %% every file must reach on the held-out clips (default 0: off; exit 3 below)")
    p.add_argument("--seed", type=int, default=0, help="seed for picking and splitting clips (0..2**32-1; default 0)")
    if dynamic_batch:
        p.add_argument("--dynamic-batch", action="store_true", help="ONNX: dynamic batch axis (default: static batch 1)")
        p.add_argument("--tflite-lstm", dest="lstm_kernel", default=None,
                       help="TFLite LSTM layout: unrolled (default for int8: fastest int8 on CPUs) or fused "
                            "(default otherwise: one op, smallest file)")
        p.add_argument("--onnx-int8", default="tensorrt",
                       help="int8 ONNX for tensorrt (default: symmetric activations, Jetson) or cpu "
                            "(uint8 activations: ONNX Runtime's fast CPU path)")
        p.add_argument("-o", "--out", required=True,
                       help="output folder (model_<mode>.<ext>, manifest.json, report.json); replaced whole at the "
                            "end: files in it that this run does not write are removed")


def _print_report(call):
    try:
        report = call()
    except ValidationError as exc:
        if getattr(exc, "report", None) is not None:
            print(exc.report.table())
        raise
    print(report.table())
    if report.report_path is not None:
        print(f"report: {report.report_path}")
    return 0


def cmd_quantize(args) -> int:
    formats = list(args.format) + (["edgetpu"] if args.edgetpu else [])
    return _print_report(lambda: quantize(
        args.model, args.calib, args.out, formats=formats, mode=args.mode, io=args.io, samples=args.samples,
        verify_samples=args.verify_samples, max_drop=args.max_drop, min_top1=args.min_top1,
        dynamic_batch=args.dynamic_batch, split=args.split, seed=args.seed, streaming=args.streaming,
        lstm_kernel=args.lstm_kernel, onnx_int8=args.onnx_int8,
    ))


def cmd_export(args) -> int:
    return _print_report(lambda: export(
        args.model, args.out, data=args.data, formats=args.format, mode=args.mode,
        verify_samples=args.verify_samples, max_drop=args.max_drop, min_top1=args.min_top1,
        dynamic_batch=args.dynamic_batch, split=args.split, seed=args.seed, streaming=args.streaming,
        lstm_kernel=args.lstm_kernel, onnx_int8=args.onnx_int8,
    ))


def cmd_verify(args) -> int:
    def call():
        comparison = verify(args.file, args.reference, args.data, split=args.split, samples=args.samples,
                            max_drop=args.max_drop, min_top1=args.min_top1, seed=args.seed, device=args.device,
                            report=args.report)
        return ExportReport(None, args.report, (), (comparison,))

    return _print_report(call)


def cmd_info(args) -> int:

    details = info(args.file)
    details["problems"] = metadata_problems(details)  # what runtimes.load would refuse: warned, exit 2
    print(info_json(details) if args.json else format_info(details))
    return warn_problems(details)
