"""The one place that imports Keras, and why it is Keras 2 (``tf_keras``).

With TF 2.21 / Keras 3.15 / tf_keras 2.21 (README "Supported devices"; the tests check it):
- A Keras 3 ``LSTM`` that is not unrolled becomes a TFLite ``WHILE`` loop, and full-int8
  conversion of it crashes the converter (segfault). ``unroll=True`` converts, but as T copies of
  the cell's ops.
- A ``tf_keras`` ``LSTM`` converts to the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` builtin, which
  quantizes to int8, is smaller than the unrolled graph, and becomes a native ONNX ``LSTM``
  node through tf2onnx (Keras 3 gives a ``Loop``).
- GRU has no fused TFLite op in either Keras; we unroll it (T is small: 8-32 frames).
So models are built with ``tf_keras``. TensorFlow is imported only when a function needs it, which
keeps ``import edge_rcnn`` and the CLI's ``--help`` fast.
"""

from __future__ import annotations

import os
import sys

from edge_rcnn.core.errors import RuntimeUnavailableError
from runtimes.quiet import TENSORFLOW_IMPORT_NOISE, dropping_stderr_lines

TRAIN_HINT = "install the training extra: pip install 'edge-rcnn[train]'"


def keras():
    """Return the ``tf_keras`` module (Keras 2 on TensorFlow), importing TensorFlow on first use."""
    # Must be set before TensorFlow is first imported for tf.keras to mean tf_keras too.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    # 3 hides C++ INFO/WARNING/ERROR lines such as "failed call to cuInit" on a CPU-only machine;
    # set TF_CPP_MIN_LOG_LEVEL=0 to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tf_keras" in sys.modules:
        return sys.modules["tf_keras"]

    try:
        # Some INFO lines ignore TF_CPP_MIN_LOG_LEVEL=3 (absl before InitializeLog, oneDNN, the CUDA
        # stub); they are dropped here (runtimes.quiet), unless the variable is 0.
        with dropping_stderr_lines(*TENSORFLOW_IMPORT_NOISE):
            import tf_keras
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeUnavailableError(f"TensorFlow/tf_keras is not installed ({exc}); {TRAIN_HINT}") from None
    return tf_keras


def tf():
    """Return the ``tensorflow`` module (after :func:`keras` has set the legacy-Keras switch)."""
    keras()
    import tensorflow

    return tensorflow
