"""``edge-rcnn run``: the camera loop (``runtimes.camera.run_camera``).

    edge-rcnn run OUT/ --source 0 | /dev/video0 | clip.mp4 | rtsp://... | frames_dir/
                  [--every K] [--threshold 0.8] [--save annotated.mp4] [--events events.jsonl]
                  [--max-frames N] [--device auto]

Events go to stdout as they happen (and to ``--events`` as JSON lines), a progress line with the
live FPS to stderr when it is a terminal, the summary to stdout at the end. Ctrl-C stops cleanly
(exit 0 with the summary); a source that cannot be opened, or a live one lost for good, is one
error line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

import runtimes
from edge_rcnn.cli import THREADS_HELP, threads_arg
from runtimes.camera import run_camera
from runtimes.errors import SourceError

DEVICE_HELP = "auto (default), cpu, edgetpu[:usb|:pci|:N], cuda[:N] or tensorrt[:N]"


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a model on a camera, stream, video or frame folder (streaming, events)")
    r.add_argument("model", help="an export folder (OUT/, uses its streaming parts) or a .tflite/.onnx clip model")
    r.add_argument("--source", required=True,
                   help="camera index (0), /dev/videoN, rtsp:// or http(s):// URL, a video file, or a frame folder")
    r.add_argument("--every", type=int, default=1, help="a prediction every K frames (default 1; every frame still goes through the model)")
    r.add_argument("--smoothing", type=float, default=0.0, help="moving average of the probabilities, 0..1 (default 0: none)")
    r.add_argument("--threshold", type=float, default=0.8, help="score a label must hold to start an event (default 0.8)")
    r.add_argument("--release", type=float, default=None, help="score below which an event ends (default threshold - 0.2)")
    r.add_argument("--hold", type=int, default=3, help="predictions in a row above the threshold before an event (default 3)")
    r.add_argument("--save", default=None, metavar="VIDEO", help="write the annotated video here (.mp4/.avi; atomic)")
    r.add_argument("--events", default=None, metavar="JSONL", help="write events as JSON lines here")
    r.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    r.add_argument("--device", default="auto", help=DEVICE_HELP)
    r.add_argument("--threads", type=threads_arg, help=THREADS_HELP)
    r.add_argument("--quiet", action="store_true", help="no progress line and no event lines")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=cmd_run)


def _print_events(events) -> None:
    for event in events:
        print(json.dumps(event.to_dict()), flush=True)


def cmd_run(args) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        predictor = runtimes.load(args.model, args.device, num_threads=args.threads)
        stream_options = dict(every=args.every, smoothing=args.smoothing, threshold=args.threshold,
                              release=args.release, hold=args.hold, max_frames=args.max_frames)
        progress = not args.quiet and sys.stderr.isatty() and not os.environ.get("EDGE_RCNN_QUIET")
        try:
            summary = run_camera(predictor, args.source, save=args.save, events=args.events, progress=progress,
                                 on_events=None if args.quiet else _print_events, **stream_options)
        except SourceError as exc:
            if getattr(exc, "summary", None) is not None:
                print(exc.summary.line())
            raise
        finally:
            for w in caught:
                print(f"edge-rcnn run: warning: {w.message}", file=sys.stderr)
    print(json.dumps(summary.to_dict()) if args.json else summary.line())
    return 0
