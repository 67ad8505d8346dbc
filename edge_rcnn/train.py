"""Train the CNN+RNN model from a folder of clips.

``train(DATA, RUN)`` writes into RUN/:
  model.keras            the best-on-val model, with its config and labels inside
  last.keras, state.json the latest epoch and the loop's state, for ``resume``
  history.json, training_curves.png, confusion_matrix.png, metrics.json
Every file is written atomically, so an interrupted run leaves the previous files intact and a
rerun of the same command resumes from the last finished epoch.
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from edge_rcnn._util import write_json_atomic
from edge_rcnn.config import InputMode, ModelConfig, parse_enum
from edge_rcnn.data.pipeline import check_flip_pairs
from edge_rcnn.errors import ConfigError, DataError
from edge_rcnn.temporal_check import TemporalCheck, predict_frame_orders, warn_if_order_blind


LR_FLOOR = 0.05  # the learning rate decays to this share of --lr by the last planned epoch


class Strategy(str, enum.Enum):
    """How training is spread: TensorFlow's own distribution engine, nothing of ours."""

    NONE = "none"
    MIRRORED = "mirrored"  # all GPUs of this machine (or its logical CPUs when there are none)
    MULTIWORKER = "multiworker"  # a cluster described by the TF_CONFIG environment variable


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model's shape lives in ``ModelConfig``)."""

    epochs: int = 30
    batch: int = 16
    lr: float = 2e-3
    seed: int = 0
    patience: int = 8  # early stopping: epochs without a better val accuracy
    val_fraction: float = 0.2  # used when DATA has no train/ and val/ folders
    strategy: Strategy = Strategy.NONE
    augment: bool = True
    flip: bool | None = None  # None (auto): when dataset.json says flip_invariant, or there are flip pairs
    flip_pairs: tuple[tuple[str, str], ...] | None = None  # (label, its mirror's label); None: dataset.json's

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", parse_enum(Strategy, self.strategy, "strategy"))
        for name, low in (("epochs", 1), ("batch", 1), ("patience", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 10:
            raise ConfigError(f"lr: expected a learning rate in (0, 10), got {self.lr!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected a number in (0, 1), got {self.val_fraction!r}")
        if self.flip is not None and not isinstance(self.flip, bool):
            raise ConfigError(f"flip: expected True, False or None (from the dataset), got {self.flip!r}")
        if self.flip_pairs is not None:
            object.__setattr__(self, "flip_pairs", check_flip_pairs(self.flip_pairs))


@dataclass
class TrainResult:
    run_dir: Path
    model_path: Path
    config: ModelConfig
    best_val_accuracy: float
    epochs_run: int
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)
    temporal_check: TemporalCheck | None = None  # val top-1 with frames shuffled/reversed; None: image mode


def resolve_model_config(labels: tuple[str, ...], config: ModelConfig | Mapping[str, Any] | None) -> ModelConfig:
    """The model config for a data folder's labels: defaults, overrides, or a full config."""
    if config is None or isinstance(config, Mapping):
        overrides = dict(config or {})
        overrides.pop("labels", None)
        return ModelConfig(labels=labels, **overrides)
    if set(config.labels) != set(labels):
        raise ConfigError(
            f"labels: the model config has {sorted(config.labels)} but the data folder has {sorted(labels)}"
        )
    return config


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    config: ModelConfig | Mapping[str, Any] | None = None,
    train_config: TrainConfig | None = None,
) -> TrainResult:
    """Train on the clips in ``data`` and write the run into ``out`` (resuming if it holds one)."""
    from edge_rcnn.data import scan_folder

    tc = train_config or TrainConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: expected a folder, found a file")
    # Check the model settings before reading any clip: a typo should not cost a folder scan.
    draft = resolve_model_config(config.labels if isinstance(config, ModelConfig) else ("?", "??"), config)
    index = scan_folder(data, frames=draft.frames, mode=draft.mode.value, val_fraction=tc.val_fraction, seed=tc.seed)
    if not index.val:
        raise DataError(f"{data}: no validation clips (add DATA/val/ or more clips per class)")
    # Mirror clips only when the labels survive it (flip_invariant) or pairs say what each becomes.
    pairs = index.flip_pairs if tc.flip_pairs is None else check_flip_pairs(tc.flip_pairs, index.labels)
    flip = (index.flip_invariant or bool(pairs)) if tc.flip is None else tc.flip
    tc = replace(tc, flip=flip, flip_pairs=pairs)  # the run records the flips it used
    mc = resolve_model_config(index.labels, config)
    state = _load_state(out, mc)
    if state is not None:
        mc = ModelConfig.from_dict(state["config"])
    out.mkdir(parents=True, exist_ok=True)

    from edge_rcnn._keras import keras, tf
    from edge_rcnn.callbacks import RunKeeper
    from edge_rcnn.data.pipeline import make_dataset
    from edge_rcnn.model import build_model, save_model

    k, tf_ = keras(), tf()
    k.utils.set_random_seed(tc.seed)
    train_ds = make_dataset(index.train, mc, batch=tc.batch, training=True, augment=tc.augment, seed=tc.seed,
                            flip=tc.flip, flip_pairs=tc.flip_pairs)
    val_ds = make_dataset(index.val, mc, batch=tc.batch, training=False, seed=tc.seed)

    steps = -(-len(index.train) // tc.batch)
    with _strategy(tc.strategy, tf_).scope():
        if state is not None:
            model = k.models.load_model(str(out / "last.keras"), safe_mode=True)
        else:
            model = build_model(mc)
            # Cosine decay from lr to LR_FLOOR * lr over the planned epochs: a constant rate left
            # val accuracy swinging by several points between the late epochs.
            schedule = k.optimizers.schedules.CosineDecay(tc.lr, decay_steps=tc.epochs * steps, alpha=LR_FLOOR)
            model.compile(
                optimizer=k.optimizers.Adam(schedule),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
    keeper = RunKeeper(out, mc, _tc_dict(tc), state, steps=steps)
    start_epoch = state["epoch"] if state else 0
    started = time.perf_counter()
    if start_epoch < tc.epochs and not keeper.stopped_early:
        model.fit(train_ds, validation_data=val_ds, epochs=tc.epochs, initial_epoch=start_epoch,
                  callbacks=[keeper], verbose=0)
    seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - started  # wall time, resumes added

    best_model = k.models.load_model(str(out / "best.keras"), compile=False, safe_mode=True)
    save_model(best_model, mc, out / "model.keras")
    check = _write_reports(out, best_model, mc, val_ds, keeper.history, tc.seed)
    write_json_atomic(out / "metrics.json", {
        "best_val_accuracy": keeper.best, "epochs_run": len(keeper.history.get("loss", [])),
        "seconds": round(seconds, 1), "train_clips": len(index.train), "val_clips": len(index.val),
        "skipped_clips": len(index.skipped), "config": mc.to_dict(), "train_config": _tc_dict(tc),
        "temporal_check": check.to_dict() if check else None,
    })
    if check is not None:
        warn_if_order_blind(check, stacklevel=2)
    return TrainResult(out, out / "model.keras", mc, keeper.best, len(keeper.history.get("loss", [])),
                       seconds, keeper.history, check)


def _tc_dict(tc: TrainConfig) -> dict[str, Any]:
    d = dict(tc.__dict__)
    d["strategy"] = tc.strategy.value
    return d


def _strategy(kind: Strategy, tf_):
    if kind is Strategy.NONE:
        return tf_.distribute.get_strategy()
    if kind is Strategy.MULTIWORKER:
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("--strategy multiworker: the TF_CONFIG environment variable is not set "
                              "(it describes the cluster: see TensorFlow's MultiWorkerMirroredStrategy)")
        return tf_.distribute.MultiWorkerMirroredStrategy()
    gpus = tf_.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf_.config.list_logical_devices("CPU"))]
    return tf_.distribute.MirroredStrategy(devices=devices)


def _load_state(out: Path, mc: ModelConfig) -> dict[str, Any] | None:
    state_file = out / "state.json"
    if not state_file.is_file() or not (out / "last.keras").is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except json.JSONDecodeError:
        raise DataError(f"{state_file}: not valid JSON; delete the run folder to start afresh") from None
    saved = ModelConfig.from_dict(state["config"])
    if saved.labels != mc.labels and set(saved.labels) == set(mc.labels):
        mc = mc.replace(labels=saved.labels)
    if saved != mc:
        raise ConfigError(f"--out {out}: holds a run with another model config; use a new folder to start afresh")
    return state


def _write_reports(out: Path, model, mc: ModelConfig, val_ds, history: dict[str, list[float]],
                   seed: int) -> TemporalCheck | None:
    """History, curves and confusion matrix; for clip models the frame-order check, from the same pass."""
    import numpy as np

    from edge_rcnn.plots import plot_confusion, plot_history

    check = None
    if mc.mode is InputMode.CLIP:
        orders = predict_frame_orders(model, val_ds, seed)
        y_true, y_pred, check = orders.labels, orders.normal, orders.check()
    else:  # image mode: the RNN reads the rows of one image; there are no frames to reorder
        ys, ps = [], []
        for x, y in val_ds:
            ps.append(model.predict_on_batch(x).argmax(-1))
            ys.append(y.numpy())
        y_true, y_pred = np.concatenate(ys), np.concatenate(ps)
    write_json_atomic(out / "history.json", history)
    plot_history(history, out / "training_curves.png")
    plot_confusion(y_true, y_pred, mc.labels, out / "confusion_matrix.png")
    return check
