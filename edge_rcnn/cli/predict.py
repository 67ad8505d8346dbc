"""``edge-rcnn predict`` and ``edge-rcnn devices``: thin wrappers over ``runtimes``; and the
metadata check that ``edge-rcnn info`` warns with."""

from __future__ import annotations

import argparse
import json
import warnings
from typing import Any

import runtimes
from edge_rcnn.cli import THREADS_HELP, csv_list, threads_arg
from runtimes import list_devices
from runtimes.base import TensorInfo
from runtimes.metadata import FileMetadata
from runtimes.spec import check_metadata

DEVICE_HELP = "auto (default), cpu, edgetpu[:usb|:pci|:N], cuda[:N] or tensorrt[:N]"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify one clip with an exported .tflite/.onnx model")
    p.add_argument("model", help="a .tflite or .onnx file (exported by edge-rcnn, or third-party with --labels)")
    p.add_argument("clip", help="a video file, a folder of frame images, or (image models) one image")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--topk", type=int, default=3, help="classes to show (default 3)")
    p.add_argument("--threads", type=threads_arg, help=THREADS_HELP)
    p.add_argument("--labels", type=csv_list, help="class names a,b,c (files without edge-rcnn metadata; refused for files with it)")
    p.add_argument("--normalization", help="unit, symmetric or imagenet (files without edge-rcnn metadata; refused for files with it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_predict)

    d = sub.add_parser("devices", help="list runtimes, Edge TPUs and ONNX Runtime providers on this machine")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(func=cmd_devices)


def cmd_predict(args) -> int:
    predictor = runtimes.load(args.model, args.device, num_threads=args.threads, labels=args.labels,
                              normalization=args.normalization)
    # The flags stand in for missing metadata; over a file's own they would quietly change its answers.
    given = [flag for flag, value in (("--labels", args.labels), ("--normalization", args.normalization)) if value]
    if given and predictor.runtime.metadata is not None:
        raise runtimes.InputError(f"{' and '.join(given)}: {predictor.runtime.path} carries its own labels and "
                                  "normalization (edge-rcnn metadata); the flags are for files without it")
    try:
        result = predictor.predict(args.clip, topk=args.topk)
    except runtimes.ModelOutputError as exc:
        if str(predictor.runtime.path) in str(exc):
            raise
        raise runtimes.ModelOutputError(f"{predictor.runtime.path}: {exc}") from None
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
    report = list_devices()
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    print(f"platform     {report.platform} {report.machine}, {report.cpu_threads} CPU threads")
    print(f"cpu          {report.cpu.line()}")
    for use in report.uses:
        print(f"uses         {use}")
    for rt in report.runtimes:
        print(f"{rt.name:<12} {f'{rt.package} {rt.version}' if rt.package else 'not installed'}")
    print(f"providers    {', '.join(report.onnx_providers) or '-'}")
    lib = f"{report.edgetpu_library} {'loaded' if report.edgetpu_library_loaded else 'not installed'}"
    tpus = ", ".join(f"{t.type} {t.path}" for t in report.edgetpus) or "none found"
    print(f"edge tpu     {tpus} ({lib})")
    return 0


def metadata_problems(details: dict[str, Any]) -> list[str]:
    """What ``runtimes.load`` would refuse in an ``info`` record: the metadata against the file's
    own first input and output (``runtimes.spec.check_metadata``); ``[]`` without metadata."""
    meta, inputs, outputs = details.get("metadata"), details.get("inputs"), details.get("outputs")
    if not meta or not inputs or not outputs:
        return []

    def tensor(found: list[dict[str, Any]], names) -> TensorInfo:
        # The first of the metadata's call order (a step head names its tensors), else the file's first.
        t = next((t for t in found if names and t.get("name") == names[0]), found[0])
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in t.get("shape") or ())  # -1, "N": dynamic
        return TensorInfo(str(t.get("name")), shape, str(t.get("dtype")))

    record = FileMetadata.from_dict(meta, details["file"], strict=False)
    names = record.io_names() or (None, None)
    return check_metadata(record, tensor(inputs, names[0]), tensor(outputs, names[1]))


def warn_problems(details: dict[str, Any]) -> int:
    """One warning per metadata problem of an ``info`` record; the exit code: 2 when the file
    would be refused by ``runtimes.load`` (what ``info`` showed is all there is to see), else 0."""
    for problem in details.get("problems", ()):
        warnings.warn(f"{details['file']}: metadata {problem}", stacklevel=2)
    return 2 if details.get("problems") else 0
