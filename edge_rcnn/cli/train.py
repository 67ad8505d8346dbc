"""``edge-rcnn data`` and ``edge-rcnn train``."""

from __future__ import annotations

import argparse
import sys

from edge_rcnn.cli import Terminated, csv_list
from edge_rcnn.core.data.motion import KINDS, LABELS, make_motion
from edge_rcnn.core.data.moving_digits import make_moving_digits
from edge_rcnn.core.errors import ConfigError
from edge_rcnn.core.train import TrainConfig, train


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="write a built-in dataset as a folder of clips")
    data_sub = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    d = data_sub.add_parser("moving-digits", help="moving handwritten digits (label = digit + direction)")
    d.add_argument("out", help="output folder (OUT/train/<label>/*.mp4, OUT/val/<label>/*.mp4)")
    d.add_argument("--digits", type=lambda s: tuple(int(x) for x in csv_list(s)), default=(0, 1, 2, 3),
                   help="digits to use (default: 0,1,2,3)")
    d.add_argument("--directions", type=lambda s: tuple(csv_list(s)), default=("right", "left", "down", "up"),
                   help="motions (default: right,left,down,up)")
    d.add_argument("--clips-per-class", type=int, default=80, help="clips per label, 20%% of them val (default: 80)")
    d.add_argument("--frames", type=int, default=16, help="frames per clip (default: 16)")
    d.add_argument("--size", type=int, default=32, help="frame side in pixels (default: 32)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--overwrite", action="store_true", help="replace an earlier moving-digits dataset in OUT")
    d.set_defaults(func=cmd_data)

    blurbs = {"translate": "an object moving inside the frame over a photograph (label = direction)",
              "approach": "an object growing, shrinking or keeping its size (label = approach, recede, still)",
              "camera": "the camera panning or zooming over real photographs; val photographs unseen in train"}
    for kind in KINDS:
        m = data_sub.add_parser(kind, help=blurbs[kind])
        m.add_argument("out", help="output folder (OUT/train/<label>/*.mp4, OUT/val/<label>/*.mp4)")
        m.add_argument("--clips-per-class", type=int, default=80, help="clips per label, 25%% of them val (default: 80)")
        m.add_argument("--frames", type=int, default=16, help="frames per clip (default: 16)")
        m.add_argument("--size", type=int, default=64, help="frame side in pixels (default: 64)")
        m.add_argument("--seed", type=int, default=0)
        m.add_argument("--overwrite", action="store_true", help=f"replace an earlier {kind} dataset in OUT")
        m.set_defaults(func=cmd_motion, labels=LABELS[kind])

    t = sub.add_parser("train", help="train a CNN+RNN model on a folder of clips")
    t.add_argument("data", help="DATA/<label>/*.mp4 or DATA/<label>/<clip>/*.jpg (DATA/train, DATA/val if present)")
    t.add_argument("--out", "-o", required=True, help="run folder (RUN/model.keras, curves, confusion matrix)")
    t.add_argument("--frames", type=int, help="frames per clip T (default 16)")
    t.add_argument("--size", type=int, help="input side in pixels (default 32)")
    t.add_argument("--channels", type=int, choices=(1, 3), help="1 (grey) or 3 (colour, default)")
    t.add_argument("--mode", help="clip (T frames -> label, default) or image")
    t.add_argument("--backbone", help="tiny, mobilenet (default), resnet, or ImageNet ones (96..224 px): mobilenetv2_035, "
                                      "mobilenetv2_050, mobilenetv2_100, mobilenetv3_small, mobilenetv3_large")
    t.add_argument("--width", type=int, help="backbone base filters (default 16)")
    t.add_argument("--rnn", help="lstm (default) or gru")
    t.add_argument("--units", type=int, help="RNN units (default 64)")
    t.add_argument("--layers", type=int, help="stacked RNN layers (default 1)")
    t.add_argument("--dropout", type=float, help="dropout before the classifier (default 0)")
    t.add_argument("--normalization", help="unit, symmetric (default) or imagenet; an ImageNet backbone sets its own")
    t.add_argument("--motion", help="gradient (default: frame pairs plus fixed brightness-gradient cues), pair (frame "
                   "pairs only) or none (one frame per step)")
    t.add_argument("--grid", type=int, help="cells per side of the encoder's layout (default 4; 0: one global average)")
    t.add_argument("--projection", type=int, help="channels per grid cell (default 16)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--patience", type=int, default=8, help="early stopping patience in epochs (default 8)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-augment", action="store_true", help="no crop/brightness/flip augmentation")
    t.add_argument("--flip", choices=("auto", "yes", "no"), default="auto",
                   help="horizontal flip augmentation; auto: only when dataset.json says flip_invariant, "
                        "or there are flip pairs")
    t.add_argument("--flip-pairs", metavar="A:B,C:D",
                   help="labels a mirror swaps (e.g. left:right,pan_left:pan_right); others keep theirs. "
                        "Turns flips on unless --flip no; default: dataset.json's flip_pairs")
    t.add_argument("--weights", default="none",
                   help="starting weights: none (default), imagenet (Keras' cache, ~/.keras/models or $KERAS_HOME), "
                        "a Keras weights file for the backbone, or a previous run's model.keras")
    t.add_argument("--freeze-epochs", type=int, default=0,
                   help="epochs with the backbone frozen before fine-tuning it at 0.1x --lr (default 0)")
    t.add_argument("--strategy", default="none", help="none, mirrored (all GPUs) or multiworker (TF_CONFIG)")
    t.set_defaults(func=cmd_train)


MODEL_FLAGS = ("frames", "channels", "mode", "backbone", "width", "rnn", "units", "layers", "dropout", "normalization",
               "motion", "grid", "projection")


def parse_flip_pairs(text: str | None) -> tuple[tuple[str, str], ...] | None:
    """``"left:right,pan_left:pan_right"`` -> ``(("left", "right"), ("pan_left", "pan_right"))``."""
    if text is None:
        return None
    pairs = []
    for item in csv_list(text):
        a, sep, b = (part.strip() for part in item.partition(":"))
        if not (sep and a and b) or ":" in b:
            raise ConfigError(f"--flip-pairs: expected label:mirrored_label pairs separated by commas "
                              f"(e.g. left:right,pan_left:pan_right), got {item!r}")
        pairs.append((a, b))
    return tuple(pairs)


def cmd_data(args) -> int:
    out = make_moving_digits(args.out, digits=args.digits, directions=args.directions,
                             clips_per_class=args.clips_per_class, frames=args.frames, size=args.size,
                             seed=args.seed, overwrite=args.overwrite)
    print(f"wrote the moving-digits dataset to {out}")
    return 0


def cmd_motion(args) -> int:
    out = make_motion(args.dataset, args.out, clips_per_class=args.clips_per_class, frames=args.frames,
                      size=args.size, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote the {args.dataset} motion dataset to {out}")
    return 0


def cmd_train(args) -> int:
    overrides = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    if args.size is not None:
        overrides["input_size"] = (args.size, args.size)
    tc = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed, patience=args.patience,
                     strategy=args.strategy, augment=not args.no_augment,
                     flip={"auto": None, "yes": True, "no": False}[args.flip],
                     flip_pairs=parse_flip_pairs(args.flip_pairs), weights=args.weights,
                     freeze_epochs=args.freeze_epochs)
    try:
        result = train(args.data, args.out, overrides, tc)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (main raises Terminated for it): the same stop

        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"{stopped}: {args.out} holds the last finished epoch; run the same command to resume",
              file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    print(f"best val top-1 {result.best_val_accuracy:.1%} after {result.epochs_run} epochs "
          f"({result.seconds:.0f} s); model: {result.model_path}")
    if result.temporal_check is not None:  # clip models; a FrameOrderWarning comes with an order-blind one
        print(result.temporal_check.summary())
    print(f"curves: {result.run_dir / 'training_curves.png'}  confusion: {result.run_dir / 'confusion_matrix.png'}")
    return 0
