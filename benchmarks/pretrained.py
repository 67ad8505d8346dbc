"""The ImageNet backbones measured: the frame encoder's size, MACs and fp32/int8 latency, and
starting from a previous run in the small-data regime.

    python -m benchmarks.pretrained latency --sizes 96,160 --out benchmarks/results/pretrained-DATE.json
    python -m benchmarks.pretrained reuse --out benchmarks/results/pretrained-DATE.json

``latency``: per backbone and input side, the frame encoder (backbone + grid + gradient cues: what
a stream runs once per frame) with random weights, converted to float32 and to full int8 TFLite
(calibrated on random frames: latency does not depend on the values) and invoked on one thread;
the median of ``--runs`` invokes after a warm-up. MACs count every Conv2D, DepthwiseConv2D and
Dense of the encoder from its layers' shapes.

``reuse``: a first run trains on one built-in set (moving digits 0-3, left/right); then, on a
second set (digits 4-7) with only ``--clips`` train clips per class, a run starting from the first run's
``model.keras`` (``--weights PATH``: its frame encoder) against one from scratch, same seeds
(and with ``--freeze-epochs N`` a third start: the previous run's encoder frozen for N epochs).
Results are merged into the ``--out`` JSON (one key per subcommand).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def encoder_macs(encoder) -> int:
    """Multiply-accumulates of one frame through ``encoder`` (convolutions and dense layers)."""
    from edge_rcnn.core._keras import keras

    L, total = keras().layers, 0

    def walk(layer):
        nonlocal total
        if isinstance(layer, keras().Model):
            for inner in layer.layers:
                walk(inner)
            return
        if isinstance(layer, L.DepthwiseConv2D):
            _, h, w, c = layer.output_shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, L.Conv2D):
            _, h, w, c = layer.output_shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw * int(layer.input_shape[-1])
        elif isinstance(layer, L.Dense):
            total += int(layer.input_shape[-1]) * layer.units

    walk(encoder)
    return total


def _convert(model, int8: bool, shape) -> bytes:
    from edge_rcnn.core._keras import tf

    tf_ = tf()
    converter = tf_.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf_.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, *shape)).astype("float32")] for _ in range(8))
        converter.target_spec.supported_ops = [tf_.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf_.int8
    return converter.convert()


def _time(tflite: bytes, runs: int) -> float:
    from edge_rcnn.core._keras import tf

    interpreter = tf().lite.Interpreter(model_content=tflite, num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    for _ in range(3):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def latency(backbones: list[str], sizes: list[int], runs: int) -> list[dict]:
    from edge_rcnn.core.config import ModelConfig
    from edge_rcnn.core.model import build_frame_encoder

    rows = []
    for backbone in backbones:
        for size in sizes:
            config = ModelConfig(labels=("a", "b"), backbone=backbone, input_size=(size, size), frames=8)
            encoder = build_frame_encoder(config, batch_size=1)
            shape = tuple(encoder.input_shape[1:])
            row = {"backbone": backbone, "size": size, "params": int(encoder.count_params()),
                   "macs_per_frame": encoder_macs(encoder), "features": int(encoder.output_shape[-1])}
            for name, int8 in (("fp32", False), ("int8", True)):
                data = _convert(encoder, int8, shape)
                row[f"{name}_bytes"] = len(data)
                row[f"{name}_ms"] = round(_time(data, runs), 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def reuse(clips: int, seeds: list[int], epochs: int, first_epochs: int, size: int, freeze_epochs: int) -> dict:
    from edge_rcnn.core.data.moving_digits import make_moving_digits
    from edge_rcnn.core.train import TrainConfig, train

    work = Path(tempfile.mkdtemp(prefix="pretrained_reuse_"))
    model = {"frames": 8, "input_size": (size, size), "backbone": "mobilenet", "width": 8, "units": 32}
    directions = ("right", "left")
    first_data = make_moving_digits(work / "first", digits=(0, 1, 2, 3), directions=directions, clips_per_class=40,
                                    frames=8, size=size, seed=0, progress=False)
    # Second set: other digits, so the labels differ and only the frame encoder is reused; 20% of
    # its clips are val, the train split is then cut to `clips` per class.
    second = make_moving_digits(work / "second", digits=(4, 5, 6, 7), directions=directions,
                                clips_per_class=max(40, 2 * clips), frames=8, size=size, seed=1, progress=False)
    _keep_train_clips(second, clips)
    first = train(first_data, work / "first_run", model, TrainConfig(epochs=first_epochs, batch=16, seed=0))
    out = {"first_run": {"val_top1": first.best_val_accuracy, "epochs": first.epochs_run, "seconds": round(first.seconds, 1)},
           "clips_per_class": clips, "epochs": epochs, "model": model, "runs": []}
    starts = [("scratch", "none", 0), ("previous run", str(first.model_path), 0)]
    if freeze_epochs:
        starts.append((f"previous run, {freeze_epochs} epochs frozen", str(first.model_path), freeze_epochs))
    for seed in seeds:
        for n, (start, weights, frozen) in enumerate(starts):
            result = train(second, work / f"start{n}_{seed}", model,
                           TrainConfig(epochs=epochs, batch=8, seed=seed, patience=epochs, weights=weights,
                                       freeze_epochs=frozen))
            out["runs"].append({"start": start, "seed": seed, "val_top1": result.best_val_accuracy,
                                "epochs": result.epochs_run, "seconds": round(result.seconds, 1)})
            print(json.dumps(out["runs"][-1]), flush=True)
    return out


def _keep_train_clips(data: Path, per_class: int) -> None:
    """Leave ``per_class`` train clips per class (the val split keeps its clips)."""
    for label in sorted(p for p in (data / "train").iterdir() if p.is_dir()):
        for extra in sorted(label.iterdir())[per_class:]:
            extra.unlink()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--backbones", default="mobilenet,mobilenetv2_035,mobilenetv2_050,mobilenetv2_100,"
                                            "mobilenetv3_small,mobilenetv3_large")
    lat.add_argument("--sizes", default="96,160")
    lat.add_argument("--runs", type=int, default=30)
    re_ = sub.add_parser("reuse")
    re_.add_argument("--clips", type=int, default=12, help="train clips per class in the second set")
    re_.add_argument("--seeds", default="0,1,2")
    re_.add_argument("--epochs", type=int, default=12)
    re_.add_argument("--first-epochs", type=int, default=15)
    re_.add_argument("--size", type=int, default=32)
    re_.add_argument("--freeze-epochs", type=int, default=0, help="also a run from the previous one, frozen this long")
    for p in (lat, re_):
        p.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.what == "latency":
        doc["latency"] = latency(args.backbones.split(","), [int(s) for s in args.sizes.split(",")], args.runs)
    else:
        entry = reuse(args.clips, [int(s) for s in args.seeds.split(",")], args.epochs, args.first_epochs,
                      args.size, args.freeze_epochs)
        doc["reuse"] = [e for e in doc.get("reuse", []) if e["clips_per_class"] != args.clips] + [entry]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
