"""``edge-rcnn benchmark``: a thin wrapper over ``edge_rcnn.benchmark.benchmark``."""

from __future__ import annotations

import argparse

from edge_rcnn.benchmark import benchmark
from edge_rcnn.benchmark.formats import DEFAULT_FORMATS, FORMATS
from edge_rcnn.cli import csv_list


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("benchmark", help="size, accuracy, latency, FPS and memory of every format of a model, side by side")
    b.add_argument("model", help="RUN/model.keras")
    b.add_argument("--data", required=True, help="data folder: accuracy on its val split, int8 calibration on train")
    b.add_argument("--formats", type=csv_list, default=list(DEFAULT_FORMATS),
                   help=f"comma-separated, of: {', '.join(FORMATS)} (default: {','.join(DEFAULT_FORMATS)})")
    b.add_argument("--threads", type=int, default=None, help="CPU threads for every runtime (default: all cores, each model loaded as a user loads it: every core or one, whichever runs it faster)")
    b.add_argument("--runs", type=int, default=50, help="timed calls per format after the warm-up (default 50)")
    b.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    b.add_argument("--repeat", type=int, default=1,
                   help="measure every format this many times, interleaved, keeping each one's least disturbed round (default 1)")
    b.add_argument("--split", default="val", help="split of --data to measure accuracy on (default val)")
    b.add_argument("--limit", type=int, default=None, help="at most this many clips of the split (default: all)")
    b.add_argument("-o", "--out", required=True, help="output folder (benchmark.json/.csv/.png, models/<format>/)")
    b.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args) -> int:
    report = benchmark(args.model, args.data, args.out, formats=args.formats, threads=args.threads, runs=args.runs,
                       warmup=args.warmup, repeat=args.repeat, split=args.split, limit=args.limit)
    m = report.machine
    print(f"{m['cpu']}, {m['logical_cpus']} CPUs, {' '.join(m['flags'])}; {report.settings['threads']} threads, "
          f"{report.settings['runs']} timed runs after {report.settings['warmup']} warm-up (best of {report.settings['repeat']} rounds), "
          f"{report.settings['clips']} {report.settings['split']} clips; load {m['loadavg'][0] if m.get('loadavg') else '?'}")
    print(report.table())
    print("  ".join(f"{kind}: {path}" for kind, path in report.paths.items()))
    return 0
