"""The metadata document checked on its own: every field's type and value (``field_problems``).

Read by ``runtimes.metadata`` before a document is handed to anything, so that code further in
can trust a field's type; ``runtimes.spec.tensor_problems`` then checks the document against the
model's tensors. Each problem is one phrase naming the field, what it holds and what was expected.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from runtimes.preprocess import COLOR_ORDERS, NORMALIZATIONS


def describe_problems(path: str | Path, problems: list[str]) -> str:
    """One line for a ``MetadataError``: the file, the first problem, and how many more there are."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{path}: metadata {problems[0]}{more}"


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool); an int too large for a float is not one."""
    if _is_int(value):
        return abs(value) <= 1e308
    return isinstance(value, float) and math.isfinite(value)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value > 0


def _numbers(value: Any) -> list[float] | None:
    """A number or a non-empty list of numbers as a list; ``None`` for anything else."""
    values = value if isinstance(value, list) else [value]
    return [float(v) for v in values] if values and all(_is_number(v) for v in values) else None


def label_problem(labels: Any) -> str | None:
    """What is wrong with a list of class names (``None``: nothing): a non-empty list of distinct,
    non-empty strings. A string is not a list of one-letter labels."""
    if isinstance(labels, str):
        return f"labels: expected a list of class names, got the string {_short(labels)}"
    if not isinstance(labels, (list, tuple)) or not labels:
        return f"labels: expected a non-empty list of class names, got {_short(labels)}"
    bad = [x for x in labels if not isinstance(x, str) or not x.strip()]
    if bad:
        return f"labels: expected non-empty strings, got {_short(bad[0])}"
    seen: set[str] = set()
    twice = [x for x in labels if x in seen or seen.add(x)]
    if twice:
        return f"labels: {_short(twice[0])} appears more than once; class names must be distinct"
    return None


def _normalization_problems(norm: Any) -> list[str]:
    if not isinstance(norm, dict):
        return [f"normalization: expected an object with name and/or mean and std, got {_short(norm)}"]
    problems = []
    name = norm.get("name")
    if name is not None and (not isinstance(name, str) or name not in NORMALIZATIONS):
        problems.append(f"normalization.name: {_short(name)}; expected one of: {', '.join(NORMALIZATIONS)}")
    has = [key for key in ("mean", "std") if norm.get(key) is not None]
    if len(has) == 1:
        problems.append(f"normalization: {has[0]} without {({'mean', 'std'} - set(has)).pop()}; expected both or neither")
    if not has and name is None:
        problems.append("normalization: expected a name or mean and std")
    for key in has:
        values = _numbers(norm[key])
        if values is None:
            problems.append(f"normalization.{key}: expected a number or a list of numbers, got {_short(norm[key])}")
        elif key == "std" and min(values) <= 0:
            problems.append(f"normalization.std: expected positive values, got {_short(norm[key])}")
    return problems


def _tensor_problems(key: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{key}: expected an object (name, shape, dtype, scale, zero_point), got {_short(entry)}"]
    problems = []
    for field, ok, want in (
        ("name", lambda v: isinstance(v, str), "a string"),
        ("shape", lambda v: isinstance(v, list) and all(_is_int(d) for d in v), "a list of integers"),
        ("dtype", lambda v: isinstance(v, str), "a string"),
        ("scale", lambda v: _is_number(v) and v > 0, "a positive number or null"),
        ("zero_point", _is_int, "an integer or null"),
    ):
        if entry.get(field) is not None and not ok(entry[field]):
            problems.append(f"{key}.{field}: expected {want}, got {_short(entry[field])}")
    return problems


def _stream_problems(stream: Any) -> list[str]:
    if not isinstance(stream, dict):
        return [f"stream: expected an object, got {_short(stream)}"]
    problems = []
    for field, ok, want in (
        ("role", lambda v: v in ("encoder", "head"), "'encoder' or 'head'"),
        ("feature_dim", _positive_int, "a positive integer"),
        ("frames", _positive_int, "a positive integer"),
        ("encoder", lambda v: isinstance(v, str), "a file name"),
        ("head", lambda v: isinstance(v, str), "a file name"),
        ("inputs", lambda v: isinstance(v, list) and v and all(isinstance(n, str) for n in v), "a list of tensor names"),
        ("outputs", lambda v: isinstance(v, list) and v and all(isinstance(n, str) for n in v), "a list of tensor names"),
    ):
        if field in stream and not ok(stream[field]):
            problems.append(f"stream.{field}: expected {want}, got {_short(stream[field])}")
    if ("inputs" in stream) != ("outputs" in stream):
        problems.append("stream: inputs and outputs go together; one of them is missing")
    return problems


def field_problems(meta: dict[str, Any]) -> list[str]:
    """Every field of the document whose type or value is wrong, one phrase each (``[]``: none).

    Only the document itself is checked here; ``runtimes.spec.tensor_problems`` checks it
    against the model's tensors. Absent fields are not problems (a caller may supply them).
    """
    problems = []
    strings = ("edge_rcnn_version", "kind", "mode", "source_sha256", "quantized_for")
    for key in strings:
        if meta.get(key) is not None and not isinstance(meta[key], str):
            problems.append(f"{key}: expected a string, got {_short(meta[key])}")
    if "labels" in meta:
        problem = label_problem(meta["labels"])
        if problem:
            problems.append(problem)
    for key in ("frames", "channels"):
        if key in meta and not _positive_int(meta[key]):
            problems.append(f"{key}: expected a positive integer, got {_short(meta[key])}")
    size = meta.get("input_size")
    if "input_size" in meta and not (isinstance(size, list) and len(size) == 2 and all(_positive_int(s) for s in size)):
        problems.append(f"input_size: expected [height, width] as positive integers, got {_short(size)}")
    if "color_order" in meta and meta["color_order"] not in COLOR_ORDERS:
        problems.append(f"color_order: {_short(meta['color_order'])}; expected one of: {', '.join(COLOR_ORDERS)}")
    if "normalization" in meta:
        problems += _normalization_problems(meta["normalization"])
    for key in ("input", "output"):
        if meta.get(key) is not None:
            problems += _tensor_problems(key, meta[key])
    if meta.get("model_config") is not None and not isinstance(meta["model_config"], dict):
        problems.append(f"model_config: expected an object, got {_short(meta['model_config'])}")
    if meta.get("stream") is not None:
        problems += _stream_problems(meta["stream"])
    return problems
