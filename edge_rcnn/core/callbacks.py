"""The training loop's bookkeeping as one Keras callback (imports TensorFlow: load it lazily).

Per epoch it shows a progress bar, keeps ``best.keras`` (best val accuracy, the lower val loss
among equals) and ``last.keras`` plus ``state.json`` for resuming, and stops early after
``patience`` epochs without progress. Progress is a better val accuracy or a val loss at least
``LOSS_PROGRESS`` below the best so far: while a model climbs out of a plateau its accuracy
stays flat for epochs while its loss already falls, and stopping there would keep the plateau.
All writes go through temp-file-then-rename. The loop's state also travels inside ``last.keras``
(``STATE_ENTRY``), so that one rename commits an epoch: a kill between writing ``last.keras`` and
``state.json`` cannot pair one epoch's weights with another epoch's counters.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from edge_rcnn.core._keras import keras
from edge_rcnn.core._util import STATE_ENTRY, atomic_path, kill_point, progress, write_json_atomic
from edge_rcnn.core.config import ModelConfig

LOSS_PROGRESS = 0.01  # relative fall of the best val loss that counts as progress


class RunKeeper(keras().callbacks.Callback):
    """``lr_at(step)``: the learning rate at an optimizer step; each epoch's first one goes into
    ``history["lr"]``, so a run resumed with another ``--lr`` records the rate each epoch used."""

    def __init__(self, out: Path, config: ModelConfig, train_config: dict[str, Any],
                 state: dict[str, Any] | None, steps: int, lr_at: Callable[[Any], float] | None = None):
        super().__init__()
        self.out, self.config, self.train_config, self.steps = Path(out), config, train_config, steps
        state = state or {}
        self.history: dict[str, list[float]] = state.get("history", {})
        self.best: float = state.get("best", -1.0)
        self.best_loss: float = state.get("best_loss", float("inf"))
        self.best_model_loss: float = state.get("best_model_loss", float("inf"))
        self.wait: int = state.get("wait", 0)
        self.seconds: float = state.get("seconds", 0.0)
        # One entry per train() call that ran epochs: the epoch it started at and its settings.
        self.runs: list[dict[str, Any]] = list(state.get("runs", []))
        self.patience: int = train_config["patience"]
        self.epochs: int = train_config["epochs"]
        self.stopped_early: bool = self.wait >= self.patience
        self.lr_at = lr_at
        self._run_recorded = False
        self._bar = None
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._lr = float(self.lr_at(self.model.optimizer.iterations)) if self.lr_at is not None else None
        self._bar = progress(total=self.steps, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch", leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            if logs:
                self._bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}")
        kill_point("train-batch")

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        if self._lr is not None:
            logs["lr"] = self._lr
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if not self._run_recorded:
            self.runs.append({"from_epoch": epoch, "train_config": self.train_config})
            self._run_recorded = True
        self.seconds += time.perf_counter() - self._t0
        val_acc = logs.get("val_accuracy", 0.0)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}",
                                  val_acc=f"{val_acc:.3f}")
            self._bar.close()
        val_loss = logs.get("val_loss", float("inf"))
        better_loss = val_loss < self.best_loss * (1.0 - LOSS_PROGRESS)
        self.best_loss = min(self.best_loss, val_loss)
        if val_acc > self.best or (val_acc == self.best and val_loss < self.best_model_loss):
            self.wait = 0 if val_acc > self.best or better_loss else self.wait + 1
            self.best, self.best_model_loss = val_acc, val_loss
            self._save(self.out / "best.keras")
        else:
            self.wait = 0 if better_loss else self.wait + 1
        state = {
            "epoch": epoch + 1, "best": self.best, "best_loss": self.best_loss,
            "best_model_loss": self.best_model_loss, "wait": self.wait, "seconds": self.seconds,
            "history": self.history, "config": self.config.to_dict(), "train_config": self.train_config,
            "runs": self.runs,
        }
        self._save(self.out / "last.keras", state)  # with the optimizer state, for resume: the commit point
        write_json_atomic(self.out / "state.json", state)  # the same state, for people and tools
        kill_point("train-epoch")
        if self.wait >= self.patience:
            self.stopped_early = True
            self.model.stop_training = True

    def _save(self, path: Path, state: dict[str, Any] | None = None) -> None:
        with atomic_path(path) as tmp:
            keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras wants the .keras suffix
            try:
                self.model.save(keras_tmp)
                if state is not None:
                    with zipfile.ZipFile(keras_tmp, "a") as zf:
                        zf.writestr(STATE_ENTRY, json.dumps(state))
                kill_point(f"train-save-{path.stem}")  # train-save-last, train-save-best: the temp is complete
                keras_tmp.replace(tmp)
            finally:
                keras_tmp.unlink(missing_ok=True)
