"""Benchmark results: one ``Row`` per format, the table, and the JSON / CSV / PNG files.

Columns: status ("ok" or the one-line reason the format failed), size in MB (10^6 bytes; the
stream row counts encoder + head), top-1 accuracy on the val clips, agreement with the float
Keras model (same top-1 class), latency per clip p50/p90 in ms (clip formats), per-frame ms
(streaming: one ``push``), FPS (frames per second with a prediction at every frame: a clip format
recomputes its T-frame window per frame, a stream pushes one frame), peak RSS of the worker
process in MB (after loading and the timed calls) and its cold start (spawn to first prediction).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_rcnn.core._util import atomic_path, write_json_atomic

SCHEMA_VERSION = 1
COLUMNS = ("format", "runtime", "status", "size_mb", "accuracy", "agreement", "p50_ms", "p90_ms", "frame_ms",
           "fps", "rss_mb", "cold_start_s")
HEADERS = ("format", "runtime", "status", "size MB", "top-1 %", "agree %", "p50 ms", "p90 ms", "frame ms",
           "FPS", "RSS MB", "cold s")
DIGITS = {"size_mb": 3, "accuracy": 1, "agreement": 1, "p50_ms": 2, "p90_ms": 2, "frame_ms": 3, "fps": 1,
          "rss_mb": 0, "cold_start_s": 2}


@dataclass(frozen=True)
class Row:
    format: str
    runtime: str
    status: str
    file: str | None = None
    size_mb: float | None = None
    accuracy: float | None = None
    agreement: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    frame_ms: float | None = None
    fps: float | None = None
    rss_mb: float | None = None
    cold_start_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def failed(cls, name: str, runtime: str, reason: str, *, file: str | None = None, size_bytes: int | None = None,
               notes: tuple[str, ...] = ()) -> "Row":
        one_line = " ".join(str(reason).split())[:300]
        return cls(name, runtime, one_line or "failed", file=file,
                   size_mb=None if size_bytes is None else size_bytes / 1e6, extra={"notes": list(notes)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BenchReport:
    rows: tuple[Row, ...]
    machine: dict[str, Any]
    settings: dict[str, Any]
    macs: dict[str, int] | None = None
    created: str = ""
    paths: dict[str, Path] = field(default_factory=dict, compare=False)

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.format == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "created": self.created, "machine": self.machine,
                "settings": self.settings, "macs": self.macs, "columns": list(COLUMNS),
                "rows": [r.to_dict() for r in self.rows]}

    def table(self) -> str:
        return format_table(self.rows)


def _cell(row: Row, column: str) -> str:
    value = getattr(row, column)
    if value is None:
        return "-"
    if column in DIGITS:
        return f"{value:.{DIGITS[column]}f}"
    return str(value)


def format_table(rows) -> str:
    """Fixed-width table; a failed row shows its reason in the status column."""
    body = [[_cell(r, c) for c in COLUMNS] for r in rows]
    status_at = COLUMNS.index("status")
    widths = [max([len(h)] + [len(b[i]) for b in body if i != status_at or b[i] == "ok"]) for i, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    for cells in body:
        if cells[status_at] != "ok":  # the reason goes last, unpadded, so the columns stay aligned
            reason = cells[status_at]
            cells = cells[:status_at] + ["FAILED"] + cells[status_at + 1 :]
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() + f"  <- {reason}")
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def csv_text(rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_csv_value(getattr(r, c)) for c in COLUMNS])
    return buf.getvalue()


def _csv_value(value) -> Any:
    if value is None:
        return ""
    return round(value, 4) if isinstance(value, float) else value


def write_results(report: BenchReport, out: Path, stem: str = "benchmark") -> dict[str, Path]:
    """``OUT/<stem>.json``, ``.csv`` and ``.png`` (each written atomically); returns their paths."""
    paths = {"json": out / f"{stem}.json", "csv": out / f"{stem}.csv", "png": out / f"{stem}.png"}
    write_json_atomic(paths["json"], report.to_dict())
    with atomic_path(paths["csv"]) as tmp:
        tmp.write_text(csv_text(report.rows))
    with atomic_path(paths["png"]) as tmp:
        plot_rows(report.rows, tmp, title=report.machine.get("cpu", ""))
    return paths


def plot_rows(rows, path: Path, title: str = "") -> None:
    """Three bar charts (latency p50 with p90 whiskers, size, top-1 accuracy) for the rows that ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.ok] or list(rows)
    names = [r.format for r in ok]
    latency = [r.frame_ms if r.frame_ms is not None else (r.p50_ms or 0.0) for r in ok]
    spread = [max((r.extra.get("frame_p90_ms") if r.frame_ms is not None else r.p90_ms) or lat, lat) - lat
              for r, lat in zip(ok, latency)]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = (("ms per prediction (p50, whisker p90; log scale)\nstream: per frame", latency, spread),
              ("size MB", [r.size_mb or 0.0 for r in ok], None),
              ("val top-1 %", [r.accuracy or 0.0 for r in ok], None))
    for ax, (label, values, err) in zip(axes, panels):
        bars = ax.bar(names, values, yerr=[[0] * len(err), err] if err else None, color="#4c72b0", capsize=3)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", rotation=35, labelsize=8)
        if err is not None and min(values, default=0) > 0:
            ax.set_yscale("log")  # Keras is ~100x the exported files: a linear axis hides them
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
