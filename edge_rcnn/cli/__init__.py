"""The ``edge-rcnn`` command line: thin argparse subcommands over the public Python functions.

Each module in this package adds its subcommands with ``register(subparsers)`` and sets
``func`` on them; ``main`` turns every ``EdgeRcnnError`` into one line on stderr and its exit
code (2 for bad input, 3 for an accuracy drop over ``--max-drop``). Nothing here imports
TensorFlow, so ``edge-rcnn --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings

from edge_rcnn import __version__
from edge_rcnn.core.errors import EdgeRcnnError, first_line

# Order is the order of --help.
COMMAND_MODULES = ("edge_rcnn.cli.train", "edge_rcnn.cli.convert", "edge_rcnn.cli.predict", "edge_rcnn.cli.run",
                   "edge_rcnn.cli.bench")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edge-rcnn", description="Train, quantize and run CNN+RNN video models on edge devices.")
    parser.add_argument("--version", action="version", version=f"edge-rcnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a command group that is not built yet
        module.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (what systemd and ``docker stop`` send), raised where Ctrl-C's KeyboardInterrupt is,
    so every command stops the same clean way: a camera loop finishes its video and summary,
    training keeps a resumable run folder. The CLI exits 143 (128 + SIGTERM) unless the command
    finished cleanly on it."""


def _terminate(signum, frame):
    raise Terminated()


THREADS_HELP = ("CPU threads for LiteRT/ONNX Runtime: a number, or 'auto' (every core or one, whichever runs "
                "this model faster here, timed at load); default: the runtime's own (LiteRT every core, "
                "ONNX Runtime one per physical core)")


def threads_arg(text: str) -> int | str:
    """argparse type for ``--threads``: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def csv_list(text: str) -> list[str]:
    """argparse type for ``a,b,c``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Warnings are for people here: one line each, without the source line Python adds.
    warnings.formatwarning = lambda message, category, *rest, **kw: f"edge-rcnn: warning: {message}\n"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = args.func(args)
    except EdgeRcnnError as exc:
        print(f"edge-rcnn {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"edge-rcnn {args.command}: {stopped}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:
        if os.environ.get("EDGE_RCNN_DEBUG"):
            raise
        first = first_line(exc, 300)
        print(
            f"edge-rcnn {args.command}: internal error: {type(exc).__name__}: {first} "
            "(set EDGE_RCNN_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return int(result or 0)
