"""``edge-rcnn predict`` and ``edge-rcnn devices``: thin wrappers over ``runtimes``."""

from __future__ import annotations

import argparse
import json

from edge_rcnn.cli import csv_list

DEVICE_HELP = "auto (default), cpu, edgetpu[:usb|:pci|:N], cuda[:N] or tensorrt[:N]"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify one clip with an exported .tflite/.onnx model")
    p.add_argument("model", help="a .tflite or .onnx file (exported by edge-rcnn, or third-party with --labels)")
    p.add_argument("clip", help="a video file, a folder of frame images, or (image models) one image")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--topk", type=int, default=3, help="classes to show (default 3)")
    p.add_argument("--threads", type=int, help="CPU threads for LiteRT/ONNX Runtime (default: every core or one, whichever runs a clip of this model faster, timed at load)")
    p.add_argument("--labels", type=csv_list, help="class names a,b,c (files without edge-rcnn metadata)")
    p.add_argument("--normalization", help="unit, symmetric or imagenet (files without edge-rcnn metadata)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_predict)

    d = sub.add_parser("devices", help="list runtimes, Edge TPUs and ONNX Runtime providers on this machine")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(func=cmd_devices)


def cmd_predict(args) -> int:
    import runtimes

    predictor = runtimes.load(args.model, args.device, num_threads=args.threads, labels=args.labels,
                              normalization=args.normalization)
    result = predictor.predict(args.clip, topk=args.topk)
    if args.json:
        out = {"model": args.model, "clip": args.clip, "runtime": predictor.runtime.name,
               "device": str(predictor.runtime.device), **result.to_dict()}
        print(json.dumps(out))
        return 0
    print(f"{args.clip}: {result.label} ({result.score:.3f})  [{predictor.runtime.name} on {predictor.runtime.device}]")
    width = max(len(c.label) for c in result.topk)
    for rank, c in enumerate(result.topk, 1):
        print(f"  {rank}. {c.label:<{width}}  {c.score:.3f}")
    return 0


def cmd_devices(args) -> int:
    from runtimes import list_devices

    report = list_devices()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"platform     {report.platform} {report.machine}, {report.cpu_threads} CPU threads")
    for rt in report.runtimes:
        print(f"{rt.name:<12} {f'{rt.package} {rt.version}' if rt.package else 'not installed'}")
    print(f"providers    {', '.join(report.onnx_providers) or '-'}")
    lib = f"{report.edgetpu_library} {'loaded' if report.edgetpu_library_loaded else 'not installed'}"
    tpus = ", ".join(f"{t.type} {t.path}" for t in report.edgetpus) or "none found"
    print(f"edge tpu     {tpus} ({lib})")
    return 0
