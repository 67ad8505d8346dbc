"""Train the CNN+RNN model from a folder of clips.

``train(DATA, RUN)`` writes into RUN/:
  model.keras            the best-on-val model, with its config and labels inside
  last.keras, state.json the latest epoch and the loop's state, for ``resume``
  history.json, training_curves.png, confusion_matrix.png, metrics.json
Every file is written atomically, so an interrupted run leaves the previous files intact and a
rerun of the same command resumes from the last finished epoch (see :func:`train` for what a
resume keeps, applies or refuses, and how close it comes to an uninterrupted run).
"""

from __future__ import annotations

import enum
import json
import math
import os
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from edge_rcnn.core._keras import keras, tf
from edge_rcnn.core._util import STATE_ENTRY, check_writable_folder, remove_stale_temps, write_json_atomic
from edge_rcnn.core.config import InputMode, ModelConfig, parse_enum
from edge_rcnn.core.data import scan_folder
from edge_rcnn.core.data.pipeline import check_flip_pairs, make_dataset, make_epoch_datasets
from edge_rcnn.core.errors import ConfigError, DataError, first_line
from edge_rcnn.core.model import (
    backbone_frozen,
    build_model,
    initialise_weights,
    resolve_weights,
    save_model,
    set_backbone_trainable,
)
from edge_rcnn.core.plots import plot_confusion, plot_history
from edge_rcnn.core.temporal_check import TemporalCheck, predict_frame_orders, warn_if_order_blind

LR_FLOOR = 0.05  # the learning rate decays to this share of --lr by the last planned epoch
# After --freeze-epochs the backbone trains too, at this share of --lr: pretrained features should
# move a little towards the new clips, not be overwritten by a head's large early gradients.
FINE_TUNE_LR_FACTOR = 0.1
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's global seeds take 32 bits
# Resuming keeps these: they decide which clips each epoch sees, and how (the split, the order,
# the augmentation). A resume that asks for other values is refused.
RESUME_KEPT = ("seed", "batch", "val_fraction", "augment", "flip", "flip_pairs", "weights", "freeze_epochs")
# Resuming applies these from the next epoch on: lr and epochs reshape the learning-rate schedule
# from the step the run reached, patience the early stop; strategy only spreads the same work.
RESUME_APPLIED = ("lr", "epochs", "patience", "strategy")


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
    weights: str = "none"  # imagenet, none, or a file: Keras weights for the backbone, or a run's model.keras
    freeze_epochs: int = 0  # first epochs with the backbone frozen, then all of it at FINE_TUNE_LR_FACTOR * lr

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", parse_enum(Strategy, self.strategy, "strategy"))
        for name, low in (("epochs", 1), ("batch", 1), ("patience", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed: expected an integer in 0..{MAX_SEED}, got {self.seed!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 10:
            raise ConfigError(f"lr: expected a learning rate in (0, 10), got {self.lr!r}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected a number in (0, 1), got {self.val_fraction!r}")
        if self.flip is not None and not isinstance(self.flip, bool):
            raise ConfigError(f"flip: expected True, False or None (from the dataset), got {self.flip!r}")
        if self.flip_pairs is not None:
            object.__setattr__(self, "flip_pairs", check_flip_pairs(self.flip_pairs))
        object.__setattr__(self, "weights", os.fspath(self.weights))
        if isinstance(self.freeze_epochs, bool) or not isinstance(self.freeze_epochs, int) or self.freeze_epochs < 0:
            raise ConfigError(f"freeze_epochs: expected an integer >= 0, got {self.freeze_epochs!r}")
        if self.freeze_epochs and self.weights == "none":
            raise ConfigError(f"--freeze-epochs {self.freeze_epochs}: the backbone starts from random weights "
                              "(--weights none); expected --weights imagenet or a weights file to freeze")


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
    """Train on the clips in ``data`` and write the run into ``out`` (resuming if it holds one).

    Resume: a folder with ``last.keras`` and ``state.json`` continues after its last finished epoch,
    with the weights, the optimizer's moments and step, and the early-stopping counters of that
    epoch. Epoch k's order and augmentation depend on (seed, k) alone, and the learning rate on the
    optimizer step, so on one CPU device a run stopped at any point and resumed (an epoch cut short
    is redone from its start) ends with the same weights and val metrics as the uninterrupted run,
    to float rounding. What still differs: dropout masks (``dropout`` > 0), whose random state Keras
    keeps inside the running graph, so a resumed run draws them afresh; GPU kernels that are not
    deterministic; and ``seconds``, the wall time.

    Settings: a resume keeps the model config and :data:`RESUME_KEPT`, and refuses other values
    with a ``ConfigError`` naming the setting and both values. It applies :data:`RESUME_APPLIED`:
    the cosine schedule becomes the one of this call's ``lr`` and ``epochs``, continued from the
    step reached (``history["lr"]`` records each epoch's starting rate, ``runs`` in
    ``metrics.json`` each call's settings and first epoch).

    A damaged run folder (``state.json`` or a ``.keras`` file truncated or not what it should be)
    raises a ``DataError`` naming the file before anything is written. Temp files that a killed run
    left in ``out`` are removed at the start.
    """
    started_at = time.time()
    tc = train_config or TrainConfig()
    out = Path(out)
    check_writable_folder(out, "--out")
    # Check the model settings before reading any clip: a typo should not cost a folder scan.
    draft = resolve_model_config(config.labels if isinstance(config, ModelConfig) else ("?", "??"), config)
    state = _read_state(out)

    # The starting weights are found (or downloaded) before any clip is read; a resume has its own.
    source = resolve_weights(draft, tc.weights) if state is None else None
    index = scan_folder(data, frames=draft.frames, mode=draft.mode.value, val_fraction=tc.val_fraction, seed=tc.seed)
    if not index.val:
        raise DataError(f"{data}: no validation clips (add DATA/val/ or more clips per class)")
    # Mirror clips only when the labels survive it (flip_invariant) or pairs say what each becomes.
    pairs = index.flip_pairs if tc.flip_pairs is None else check_flip_pairs(tc.flip_pairs, index.labels)
    flip = (index.flip_invariant or bool(pairs)) if tc.flip is None else tc.flip
    tc = replace(tc, flip=flip, flip_pairs=pairs)  # the run records the flips it used
    mc = resolve_model_config(index.labels, config)
    if state is not None:
        mc = _check_resume(out, state, mc, tc, split_by_seed=not (Path(data) / "val").is_dir())
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out, older_than=started_at)


    k, tf_ = keras(), tf()
    k.utils.set_random_seed(tc.seed)
    epoch_data = make_epoch_datasets(index.train, mc, batch=tc.batch, augment=tc.augment, seed=tc.seed,
                                     flip=tc.flip, flip_pairs=tc.flip_pairs)
    val_ds = make_dataset(index.val, mc, batch=tc.batch, training=False, seed=tc.seed)

    steps = -(-len(index.train) // tc.batch)
    # Cosine decay from lr to LR_FLOOR * lr over the planned epochs: a constant rate left val
    # accuracy swinging by several points between the late epochs. A function of the optimizer's
    # step, which last.keras keeps, so a resumed run continues where it was.
    # With --freeze-epochs each phase has its own schedule: the head alone over the frozen epochs,
    # then everything at FINE_TUNE_LR_FACTOR * lr over the rest, on a fresh optimizer (its step
    # counts from the switch; last.keras keeps it, and the backbone's trainable flags say the phase).
    frozen_epochs = min(tc.freeze_epochs, tc.epochs)
    schedule = k.optimizers.schedules.CosineDecay(tc.lr, decay_steps=(frozen_epochs or tc.epochs) * steps, alpha=LR_FLOOR)
    fine_tune = schedule if not frozen_epochs else k.optimizers.schedules.CosineDecay(
        tc.lr * FINE_TUNE_LR_FACTOR, decay_steps=max(1, tc.epochs - frozen_epochs) * steps, alpha=LR_FLOOR)
    strategy = _strategy(tc.strategy, tf_)
    with strategy.scope():
        if state is not None:
            model = _load_keras(out / "last.keras", compile=True)
            # this call's lr and epochs, from the step reached
            model.optimizer.learning_rate = schedule if backbone_frozen(model, mc) else fine_tune
        else:
            model = build_model(mc)
            note = initialise_weights(model, mc, source)
            if note:
                warnings.warn(note, stacklevel=2)
            if frozen_epochs:
                set_backbone_trainable(model, mc, False)  # its BatchNorm layers run in inference mode too
            model.compile(
                optimizer=k.optimizers.Adam(schedule),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
    from edge_rcnn.core.callbacks import RunKeeper  # subclasses a Keras class: imports TensorFlow

    keeper = RunKeeper(out, mc, _tc_dict(tc), state, steps=steps,
                       lr_at=schedule if backbone_frozen(model, mc) else fine_tune)
    start_epoch = state["epoch"] if state else 0
    started = time.perf_counter()
    # One fit() per epoch, each on that epoch's own dataset (see make_epoch_datasets), repeated and
    # cut at `steps`: a dataset of unknown length (clips that fail to decode are dropped) costs
    # Keras one probe past its end that counts as an optimizer step and would shift the schedule.
    for epoch in range(start_epoch, tc.epochs):
        if keeper.stopped_early:
            break
        if epoch >= frozen_epochs and backbone_frozen(model, mc):
            with strategy.scope():  # the frozen phase's optimizer has no moments for the backbone
                set_backbone_trainable(model, mc, True)
                model.compile(optimizer=k.optimizers.Adam(fine_tune), loss="sparse_categorical_crossentropy",
                              metrics=["accuracy"])
            keeper.lr_at = fine_tune
        model.fit(epoch_data(epoch).repeat(), steps_per_epoch=steps, validation_data=val_ds, epochs=epoch + 1,
                  initial_epoch=epoch, callbacks=[keeper], verbose=0)
    seconds = (state or {}).get("seconds", 0.0) + time.perf_counter() - started  # wall time, resumes added

    best_model = _load_keras(out / "best.keras", compile=False)
    set_backbone_trainable(best_model, mc, True)  # model.keras as built, whichever phase was best
    save_model(best_model, mc, out / "model.keras")
    check = _write_reports(out, best_model, mc, val_ds, keeper.history, tc.seed)
    write_json_atomic(out / "metrics.json", {
        "best_val_accuracy": keeper.best, "epochs_run": len(keeper.history.get("loss", [])),
        "seconds": round(seconds, 1), "train_clips": len(index.train), "val_clips": len(index.val),
        "skipped_clips": len(index.skipped), "config": mc.to_dict(), "train_config": _tc_dict(tc),
        "runs": keeper.runs, "temporal_check": check.to_dict() if check else None,
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


_START_AFRESH = "delete the run folder (or choose a new --out) to start afresh"
_NUMBER = (int, float)
# state.json's fields and their types; a file without them is not a run state.
_STATE_FIELDS = {"epoch": int, "best": _NUMBER, "best_loss": _NUMBER, "best_model_loss": _NUMBER, "wait": int,
                 "seconds": _NUMBER, "history": dict, "config": dict, "train_config": dict}


def _read_state(out: Path) -> dict[str, Any] | None:
    """The loop state of the run in ``out``, or None when it holds none; ``DataError`` for a damaged one.

    Reads and checks ``state.json`` and both ``.keras`` files without TensorFlow, so a damaged
    folder stops the run before any work. The state inside ``last.keras`` is the one used: it was
    committed with those weights in one rename (``state.json`` can lag one epoch behind after a kill).
    """
    state_file, last, best = out / "state.json", out / "last.keras", out / "best.keras"
    if not state_file.is_file() or not last.is_file():
        return None
    state = _check_state(state_file, state_file.read_bytes())
    for path in (last, best):
        _check_keras_file(path)
    inside = _state_entry(last)
    return _check_state(last, inside) if inside is not None else state


def _check_state(source: Path, raw: bytes) -> dict[str, Any]:
    def damaged(why: str) -> DataError:
        return DataError(f"{source}: {why}; the run folder is damaged: {_START_AFRESH}")

    try:
        state = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise damaged("not valid JSON") from None
    if not isinstance(state, dict):
        raise damaged(f"expected a JSON object with the run's state, got {type(state).__name__}")
    for name, kind in _STATE_FIELDS.items():
        value = state.get(name)
        if name not in state or isinstance(value, bool) or not isinstance(value, kind):
            raise damaged(f"{name}: expected a {getattr(kind, '__name__', 'number')}, got {value!r}")
    if state["epoch"] < 1 or state["wait"] < 0 or math.isnan(state["best"]):
        raise damaged(f"epoch {state['epoch']}, wait {state['wait']}, best {state['best']}: not a finished epoch's state")
    if not all(isinstance(v, list) and len(v) <= state["epoch"] for v in state["history"].values()):
        raise damaged(f"history: expected at most one value per finished epoch ({state['epoch']})")
    try:
        ModelConfig.from_dict(state["config"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise damaged(f"config: {first_line(exc)}") from None
    return state


def _check_keras_file(path: Path) -> None:
    """A complete .keras zip (every entry's checksum) holding a Keras config and weights."""
    if not path.is_file():
        raise DataError(f"{path}: missing from a run folder that has a state.json; {_START_AFRESH}")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            bad = zf.testzip()
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DataError(f"{path}: not a complete .keras file ({first_line(exc)}); {_START_AFRESH}") from None
    if bad is not None or not {"config.json", "model.weights.h5"} <= names:
        why = f"{bad} fails its checksum" if bad is not None else "no Keras config and weights inside"
        raise DataError(f"{path}: damaged .keras file ({why}); {_START_AFRESH}")


def _state_entry(path: Path) -> bytes | None:
    with zipfile.ZipFile(path) as zf:
        return zf.read(STATE_ENTRY) if STATE_ENTRY in zf.namelist() else None


def _load_keras(path: Path, compile: bool):
    try:
        return keras().models.load_model(str(path), compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError for a bad config, OSError for bad weights
        raise DataError(f"{path}: cannot be loaded ({first_line(exc)}); {_START_AFRESH}") from None


def _check_resume(out: Path, state: dict[str, Any], mc: ModelConfig, tc: TrainConfig, *,
                  split_by_seed: bool) -> ModelConfig:
    """The saved model config, after checking that this call asks for the run that ``out`` holds."""
    saved = ModelConfig.from_dict(state["config"])
    if saved.labels != mc.labels and set(saved.labels) == set(mc.labels):
        mc = mc.replace(labels=saved.labels)
    if saved != mc:
        raise ConfigError(f"--out {out}: holds a run with another model config; use a new folder to start afresh")
    before, asked = state["train_config"], json.loads(json.dumps(_tc_dict(tc)))
    for name in RESUME_KEPT:
        if name == "val_fraction" and not split_by_seed:
            continue  # DATA/val exists: the fraction does not pick the val clips
        if name in before and before[name] != asked[name]:
            raise ConfigError(
                f"{name}: the run in {out} used {before[name]!r} and this call asks {asked[name]!r}; a resumed run "
                f"keeps its {name} (it decides which clips each epoch sees, and how): ask for {before[name]!r} "
                "again, or use a new --out to start afresh")
    return saved


def _write_reports(out: Path, model, mc: ModelConfig, val_ds, history: dict[str, list[float]],
                   seed: int) -> TemporalCheck | None:
    """History, curves and confusion matrix; for clip models the frame-order check, from the same pass."""
    import numpy as np


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
