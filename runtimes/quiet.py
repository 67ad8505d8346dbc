"""Drop known noise that native libraries print on stderr, and pass everything else on.

LiteRT's and TensorFlow's C++ code write INFO lines straight to file descriptor 2, where no
Python logging setting reaches them: "Created TensorFlow Lite XNNPACK delegate for CPU" on every
first interpreter, and, on every ``import tensorflow``, absl's "All log messages before
absl::InitializeLog()", oneDNN's and the CUDA stub's INFO lines (``TF_CPP_MIN_LOG_LEVEL`` does not
cover them in TF 2.21). While such a call runs, fd 2 goes to a temporary file; afterwards the
lines that match the given patterns are left out and the rest is written to the real stderr, in
order.
Warnings and errors (absl ``W``/``E`` lines, Python tracebacks) are never dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

XNNPACK_BANNER = rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
TENSORFLOW_IMPORT_NOISE = (
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    rb"I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ",  # absl INFO lines: "I0000 00:00:17.. 25618 port.cc:153] ..."
    rb"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
)


@contextlib.contextmanager
def dropping_stderr_lines(*patterns: bytes) -> Iterator[None]:
    """Within the block, lines written to fd 2 that start with one of ``patterns`` (regexes) are
    dropped; ``TF_CPP_MIN_LOG_LEVEL=0`` (TensorFlow's own "show everything") keeps them all."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real descriptor (captured, embedded): leave it
        fd = None
    if fd is None or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    drop = re.compile(b"|".join(b"(?:" + p + b")" for p in patterns))
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            held.seek(0)
            rest = b"".join(line for line in held.read().splitlines(keepends=True) if not drop.match(line))
            if rest:
                os.write(fd, rest)
