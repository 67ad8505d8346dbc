#!/usr/bin/env python
"""The motion record: which frame encoder sees which motion, on data built to make it fail.

Trains each encoder layout on each built-in dataset with ``edge-rcnn train``'s defaults (only the
layout, ``--size`` and, for the comparison, the epochs change) and records val top-1 next to the
top-1 on the same clips with their frames shuffled or reversed (``metrics.json``). Writes
``benchmarks/results/motion-<date>.json`` and ``.md`` (the tables the README quotes).

    python benchmarks/motion.py                          # the layout comparison (one seed)
    python benchmarks/motion.py --recipe --seeds 0,1,2   # the default model over three seeds
    python benchmarks/motion.py --sets camera --layouts default --epochs 15

Each run writes its folder under ``--work`` (default ``bench/motion``); a rerun of the same
command resumes or reuses finished runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (generator, edge-rcnn data arguments, the --size the issue measures it at)
SETS = {
    "digits": ("moving-digits", {}, 32),
    "translate": ("translate", {"size": 64}, 64),
    "approach": ("approach", {"size": 64}, 64),
    "camera": ("camera", {"size": 96}, 96),
}
# name -> model overrides; "default" is ModelConfig's defaults
LAYOUTS = {
    "global": {"motion": "none", "grid": 0},
    "grid": {"motion": "none"},
    "grid+pair": {"motion": "pair"},
    "default": {},
}


def make_data(name: str, work: Path) -> Path:
    from edge_rcnn.core.data.motion import make_motion
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    kind, args, _ = SETS[name]
    out = work / "data" / name
    if (out / "dataset.json").is_file():
        return out
    if kind == "moving-digits":
        return make_moving_digits(out, **args)
    return make_motion(kind, out, **args)


def run_one(data: Path, run: Path, layout: str, size: int, epochs: int | None, seed: int) -> dict:
    from edge_rcnn.core.train import TrainConfig, train

    overrides = {**LAYOUTS[layout], "input_size": (size, size)}
    tc = TrainConfig(seed=seed) if epochs is None else TrainConfig(seed=seed, epochs=epochs)
    train(data, run, overrides, tc)
    metrics = json.loads((run / "metrics.json").read_text())
    check = metrics.get("temporal_check") or {}
    val = json.loads((run / "history.json").read_text()).get("val_accuracy", [])
    return {"val_top1": round(100 * metrics["best_val_accuracy"], 1), "epochs_run": metrics["epochs_run"],
            "best_epoch": 1 + val.index(max(val)) if val else None, "seconds": metrics["seconds"],
            "shuffled_top1": round(100 * check.get("shuffled_top1", float("nan")), 1),
            "reversed_top1": round(100 * check.get("reversed_top1", float("nan")), 1)}


def quantize_one(run: Path, data: Path) -> dict:
    """int8 TFLite and ONNX, clip and streaming files, calibrated on half the val clips and verified
    on the other half; the drop and agreement of each against the float model."""
    import warnings

    from converters import quantize

    val = json.loads((data / "dataset.json").read_text())["counts"]["val"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = quantize(run / "model.keras", data, run / "int8", formats="tflite,onnx", mode="int8", streaming=True,
                          samples=val // 2, verify_samples=val - val // 2, max_drop=100.0, progress=False)
    return {c.file: {"drop": round(c.accuracy_drop, 1), "agreement": round(c.agreement, 1)} for c in report.comparisons}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--layouts", default=",".join(LAYOUTS))
    p.add_argument("--epochs", type=int, default=None, help="default: edge-rcnn train's")
    p.add_argument("--seeds", default="0")
    p.add_argument("--recipe", action="store_true", help="the default layout only, mean and minimum over the seeds")
    p.add_argument("--quantize", action="store_true", help="also int8 (clip and streaming files) for the first seed")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "motion")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    sets = args.sets.split(",")
    layouts = ["default"] if args.recipe else args.layouts.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    for name in sets:
        data = make_data(name, args.work)
        size = SETS[name][2]
        for layout in layouts:
            for seed in seeds:
                tag = f"{name}-{layout}-e{args.epochs or 'default'}-s{seed}"
                run = args.work / "runs" / tag
                row = {"set": name, "layout": layout, "size": size, "epochs": args.epochs, "seed": seed,
                       **run_one(data, run, layout, size, args.epochs, seed)}
                if args.quantize and seed == seeds[0]:
                    row["int8"] = quantize_one(run, data)
                print(json.dumps(row), flush=True)
                results.append(row)
    stamp = datetime.date.today().isoformat()
    kind = "recipe" if args.recipe else "layouts"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"motion-{kind}-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    table = recipe_table(results, sets, seeds) if args.recipe else layout_table(results, sets, layouts)
    (args.out / f"motion-{kind}-{stamp}.md").write_text(table + "\n")
    print(table)
    return 0


def layout_table(results, sets, layouts) -> str:
    head = "| encoder | " + " | ".join(f"{s} {SETS[s][2]} px" for s in sets) + " |"
    lines = [head, "|---" * (len(sets) + 1) + "|"]
    for layout in layouts:
        cells = []
        for s in sets:
            rows = [r for r in results if r["set"] == s and r["layout"] == layout]
            cells.append(" / ".join(f"{r['val_top1']:.1f}% (rev {r['reversed_top1']:.0f}%)" for r in rows) or "-")
        lines.append(f"| {layout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def recipe_table(results, sets, seeds) -> str:
    lines = ["| set | val top-1, mean | minimum | epochs run | best epoch | int8 drop / agreement (seed 0) |",
             "|---|---|---|---|---|---|"]
    for s in sets:
        rows = [r for r in results if r["set"] == s]
        tops = [r["val_top1"] for r in rows]
        int8 = rows[0].get("int8") or {}
        quant = "; ".join(f"{f.split('_int8')[0].replace('stream_encoder', 'stream')}.{f.rsplit('.', 1)[-1]} "
                          f"{q['drop']:.1f} pt / {q['agreement']:.1f}%" for f, q in int8.items()) or "-"
        lines.append(f"| {s} {SETS[s][2]} px | {statistics.mean(tops):.1f}% | {min(tops):.1f}% | "
                     f"{', '.join(str(r['epochs_run']) for r in rows)} | {', '.join(str(r['best_epoch']) for r in rows)} | "
                     f"{quant} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
