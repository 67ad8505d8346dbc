"""Data for edge-rcnn: the built-in moving-digits dataset, data folders, and the tf.data pipeline.

Importing this package does not import TensorFlow (``make_dataset`` imports it when called) and
loads OpenCV / scikit-learn only when a function needs them.
"""

from __future__ import annotations

from edge_rcnn.core.data.arrays import load_arrays
from edge_rcnn.core.data.clips import ClipKind, ClipRef, DataWarning, read_clip, read_image
from edge_rcnn.core.data.folder import DatasetIndex, normalize, read_dataset_json, scan_folder
from edge_rcnn.core.data.moving_digits import digit_samples, generate_moving_digits, make_moving_digits
from edge_rcnn.core.data.pipeline import make_dataset

__all__ = [
    "ClipKind",
    "ClipRef",
    "DataWarning",
    "DatasetIndex",
    "digit_samples",
    "generate_moving_digits",
    "load_arrays",
    "make_dataset",
    "make_moving_digits",
    "normalize",
    "read_clip",
    "read_dataset_json",
    "read_image",
    "scan_folder",
]
