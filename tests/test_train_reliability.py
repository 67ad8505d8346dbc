"""Training and dataset writing under hostile conditions: bad outputs, damaged run folders, changed
settings on resume, kills (SIGKILL and SIGTERM at named points) and resume determinism.

Kills use the ``EDGE_RCNN_TEST_KILL_AT`` hook (``edge_rcnn.core._util.kill_point``): the process signals
itself at a named point, so each test knows where it stopped without racing a timer.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DIGITS, TINY_DIRECTIONS, TINY_FRAMES, tiny_model_config

from edge_rcnn.cli import main
from edge_rcnn.core.errors import ConfigError, DataError
from edge_rcnn.core.train import TrainConfig, train

BATCH = 8
TRAIN_ARGS = ["--frames", str(TINY_FRAMES), "--size", "32", "--backbone", "tiny", "--width", "4", "--units", "8",
              "--batch", str(BATCH), "--epochs", "2", "--seed", "1"]
DATA_ARGS = ["--digits", "0,1", "--directions", "up,down", "--clips-per-class", "3", "--frames", "4"]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """4 classes x (5 train + 1 val) clips: 3 training steps per epoch of BATCH."""
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    return make_moving_digits(tmp_path_factory.mktemp("small") / "data", digits=TINY_DIGITS,
                              directions=TINY_DIRECTIONS, clips_per_class=6, frames=TINY_FRAMES, size=32,
                              seed=0, progress=False)


def _stop_after_first_epoch(monkeypatch):
    """Ctrl-C right after the first epoch is committed (as the user would press it)."""
    from edge_rcnn.core import callbacks

    real = callbacks.RunKeeper.on_epoch_end

    def end_then_interrupt(self, epoch, logs=None):
        real(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.RunKeeper, "on_epoch_end", end_then_interrupt)


@pytest.fixture(scope="module")
def runs(small_data, tmp_path_factory):
    """``whole``: 2 epochs in one go; ``resumed``: the same run stopped after epoch 1, then resumed;
    ``one_epoch``: a copy of the stopped folder before the resume (for the damage and settings tests)."""
    root = tmp_path_factory.mktemp("runs")
    tc = TrainConfig(epochs=2, batch=BATCH, seed=1)
    train(small_data, root / "whole", tiny_model_config(), tc)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _stop_after_first_epoch(monkeypatch)
        with pytest.raises(KeyboardInterrupt):
            train(small_data, root / "resumed", tiny_model_config(), tc)
    shutil.copytree(root / "resumed", root / "one_epoch")
    train(small_data, root / "resumed", tiny_model_config(), tc)
    return root


def _weights(path: Path) -> list[np.ndarray]:
    from edge_rcnn.core._keras import keras

    return keras().models.load_model(str(path), compile=False).get_weights()


def _files(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` and its content hash."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _one_line_exit_2(capsys, argv, *words) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


# --- resume: deterministic, and what it does with changed settings ---------------------------------


@pytest.mark.slow  # runs: three training runs, one killed and resumed
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(runs):
    """Epoch 2's order and augmentation come from (seed, 2), the optimizer's moments and step from
    last.keras: the weights match to float rounding. Replaying epoch 1's order instead (what a
    resumed tf.data shuffle does) moved weights by more than 1e-2 here, far outside 1e-5."""
    whole, resumed = runs / "whole", runs / "resumed"
    for name in ("last.keras", "best.keras"):
        for a, b in zip(_weights(whole / name), _weights(resumed / name), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    h_whole = json.loads((whole / "history.json").read_text())
    h_resumed = json.loads((resumed / "history.json").read_text())
    assert h_whole.keys() == h_resumed.keys() and len(h_whole["val_loss"]) == 2
    for key in h_whole:
        np.testing.assert_allclose(h_resumed[key], h_whole[key], atol=1e-5, rtol=0, err_msg=key)
    runs_record = json.loads((resumed / "metrics.json").read_text())["runs"]
    assert [r["from_epoch"] for r in runs_record] == [0, 1]


@pytest.mark.slow  # runs: three training runs, one killed and resumed
def test_resume_with_another_lr_applies_it_and_records_it(runs, small_data, tmp_path):
    run = shutil.copytree(runs / "one_epoch", tmp_path / "run")
    result = train(small_data, run, tiny_model_config(), TrainConfig(epochs=2, batch=BATCH, seed=1, lr=5e-4))
    steps = 3  # 20 train clips, batch 8
    floor = 0.05
    # CosineDecay(lr, decay_steps=2 * steps, alpha) at the step epoch 2 starts from: cos(pi / 2) = 0.
    expected = 5e-4 * (floor + (1 - floor) * 0.5)
    np.testing.assert_allclose(result.history["lr"], [2e-3, expected], rtol=1e-5)
    whole = json.loads((runs / "whole" / "history.json").read_text())
    assert whole["lr"][1] == pytest.approx(2e-3 * (floor + (1 - floor) * 0.5), rel=1e-5)  # the old rate differs
    # The optimizer ran on it: it keeps the new schedule, and (resume being deterministic, see above)
    # the weights part from the run that kept 2e-3 only because of the rate.
    from edge_rcnn.core._keras import keras

    optimizer = keras().models.load_model(str(run / "last.keras")).optimizer
    schedule = optimizer.get_config()["learning_rate"]["config"]
    assert (schedule["initial_learning_rate"], schedule["decay_steps"]) == (5e-4, 2 * steps)
    assert int(optimizer.iterations.numpy()) == 2 * steps
    moved = max(float(np.abs(a - b).max()) for a, b in zip(_weights(run / "last.keras"),
                                                             _weights(runs / "whole" / "last.keras")))
    assert moved > 1e-4
    metrics = json.loads((run / "metrics.json").read_text())
    assert [(r["from_epoch"], r["train_config"]["lr"]) for r in metrics["runs"]] == [(0, 2e-3), (1, 5e-4)]
    assert metrics["train_config"]["lr"] == 5e-4


@pytest.mark.slow  # runs: three training runs, one killed and resumed
@pytest.mark.parametrize("flags, name, before, asked", [
    (["--seed", "2"], "seed", "1", "2"),
    (["--batch", "4"], "batch", "8", "4"),
    (["--no-augment"], "augment", "True", "False"),
    (["--flip", "yes"], "flip", "False", "True"),
])
def test_resume_refuses_a_setting_that_decides_the_data(runs, small_data, tmp_path, capsys, flags, name, before,
                                                         asked):
    run = shutil.copytree(runs / "one_epoch", tmp_path / "run")
    files = _files(run)
    argv = ["train", str(small_data), "--out", str(run), *TRAIN_ARGS, *flags]
    _one_line_exit_2(capsys, argv, f"{name}:", before, asked, "new --out")
    assert _files(run) == files


# --- damaged run folders, unwritable outputs, negative seeds: exit 2 before any work --------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.slow  # runs: three training runs, one killed and resumed
@pytest.mark.parametrize("damage, file", [
    (lambda run: (run / "state.json").write_text("{}"), "state.json"),
    (lambda run: (run / "state.json").write_text("[1]"), "state.json"),
    (lambda run: (run / "state.json").write_text("\x00garbage{"), "state.json"),
    (lambda run: (run / "state.json").write_text('{"epoch": "1"}'), "state.json"),
    (lambda run: _truncate(run / "last.keras"), "last.keras"),
    (lambda run: _flip_a_byte(run / "last.keras"), "last.keras"),
    (lambda run: _truncate(run / "best.keras"), "best.keras"),
    (lambda run: (run / "best.keras").unlink(), "best.keras"),
    (lambda run: (run / "last.keras").write_bytes(b"PK\x03\x04" + b"\x00" * 64), "last.keras"),
])
def test_a_damaged_run_folder_is_named_and_left_alone(runs, small_data, tmp_path, capsys, damage, file):
    run = shutil.copytree(runs / "one_epoch", tmp_path / "run")
    damage(run)
    files = _files(run)
    err = _one_line_exit_2(capsys, ["train", str(small_data), "--out", str(run), *TRAIN_ARGS],
                           str(run / file), "afresh")
    assert "damaged" in err or "missing" in err or "complete" in err
    assert _files(run) == files
    with pytest.raises(DataError):  # the same from Python
        train(small_data, run, tiny_model_config(), TrainConfig(epochs=2, batch=BATCH, seed=1))


def _unwritable(tmp_path: Path) -> list[Path]:
    (tmp_path / "a_file").write_text("x")
    places = [tmp_path / "a_file" / "run", Path("/proc/edge-rcnn-test/run")]
    if os.geteuid() != 0:  # root writes into a read-only mode folder anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        places.append(locked / "run")
    return places


def test_an_unwritable_out_stops_train_and_data_before_any_work(small_data, tmp_path, capsys):
    for out in _unwritable(tmp_path):
        parent_entries = sorted(out.parent.iterdir()) if out.parent.is_dir() else None
        _one_line_exit_2(capsys, ["train", str(small_data), "--out", str(out), *TRAIN_ARGS], str(out))
        _one_line_exit_2(capsys, ["data", "moving-digits", str(out), *DATA_ARGS], str(out))
        _one_line_exit_2(capsys, ["data", "translate", str(out), "--clips-per-class", "2", "--frames", "4",
                                  "--size", "16"], str(out))
        assert not out.exists()
        if parent_entries is not None:
            assert sorted(out.parent.iterdir()) == parent_entries  # no probe file, no staging left
    with pytest.raises(ConfigError, match="--out"):
        train(small_data, tmp_path / "a_file", tiny_model_config(), TrainConfig(epochs=1))


def test_a_negative_seed_is_one_line_and_exit_2(small_data, tmp_path, capsys):
    out = tmp_path / "out"
    _one_line_exit_2(capsys, ["train", str(small_data), "--out", str(out), *TRAIN_ARGS, "--seed", "-1"], "seed", "-1")
    _one_line_exit_2(capsys, ["data", "moving-digits", str(out), *DATA_ARGS, "--seed", "-1"], "seed", "-1")
    assert not out.exists()
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(ConfigError, match="seed"):
            TrainConfig(seed=seed)


def test_overwrite_drops_what_killed_runs_left_and_keeps_other_files_safe(tmp_path):
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    small = dict(digits=(0, 1), directions=("up",), clips_per_class=2, frames=4, progress=False)
    out = make_moving_digits(tmp_path / "data", **small)
    old = out / ".moving-digits-abcd1234"  # the staging folder of an earlier version, killed
    (old / "train").mkdir(parents=True)
    beside = tmp_path / ".data.moving-digits-efgh5678.tmp"  # this version's, killed
    beside.mkdir()
    os.utime(old, (0, 0))
    os.utime(beside, (0, 0))
    make_moving_digits(out, overwrite=True, seed=1, **small)
    assert _hidden(out) == [] and _hidden(tmp_path) == []
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="notes.txt"):
        make_moving_digits(out, overwrite=True, seed=2, **small)
    assert (out / "notes.txt").read_text() == "mine" and json.loads((out / "dataset.json").read_text())["seed"] == 1


# --- kill tests: SIGKILL and SIGTERM at named points, then a rerun -----------------------------------


def _cli(argv, kill_at=None, sig="KILL", timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "EDGE_RCNN_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("EDGE_RCNN_TEST_KILL_AT", None)
    if kill_at:
        env.update(EDGE_RCNN_TEST_KILL_AT=kill_at, EDGE_RCNN_TEST_KILL_SIGNAL=sig)
    return subprocess.run([sys.executable, "-m", "edge_rcnn", *argv], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[1])


@pytest.mark.slow  # a kill test: training runs in processes of their own
def test_a_killed_training_run_resumes_and_leaves_no_temps(small_data, tmp_path):
    """SIGKILL while epoch 2's last.keras is written, then SIGTERM in the middle of epoch 2 of the
    resumed run, then a rerun: each stop keeps epoch 1 committed, and the last run finishes."""
    run = tmp_path / "run"
    argv = ["train", str(small_data), "--out", str(run), *TRAIN_ARGS]
    killed = _cli(argv, "train-save-last:2", "KILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert _hidden(run), "the kill should leave the temps of the write it interrupted"
    terminated = _cli(argv, "train-batch:1", "TERM")  # the first batch of the resumed epoch 2
    assert terminated.returncode == 143, terminated.stderr[-2000:]
    assert "terminated:" in terminated.stderr and "resume" in terminated.stderr
    assert "Traceback" not in terminated.stderr
    assert json.loads((run / "state.json").read_text())["epoch"] == 1
    assert _hidden(run) == []  # the killed run's temps went at the start, SIGTERM left none
    rerun = _cli(argv)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and [r["from_epoch"] for r in metrics["runs"]] == [0, 1]
    assert _hidden(run) == []


@pytest.mark.slow  # a kill test: a process per case
@pytest.mark.parametrize("kill_at, sig, code, expect", [
    ("data-clip:3", "TERM", 143, "old"),  # while writing clips (SIGKILL there: the next test)
    ("data-swap", "KILL", -signal.SIGKILL, "old"),  # the new dataset complete, not yet in place
    ("replace-folder", "KILL", -signal.SIGKILL, "new"),  # in place, the old one not yet deleted
    ("replace-folder", "TERM", 143, "new"),
])
def test_a_killed_dataset_write_leaves_the_old_folder_or_the_new_one(tmp_path, kill_at, sig, code, expect):
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    out = make_moving_digits(tmp_path / "data", digits=(0, 1), directions=("up", "down"), clips_per_class=3,
                             frames=4, seed=0, progress=False)  # what DATA_ARGS ask for
    old = _files(out)
    argv = ["data", "moving-digits", str(out), *DATA_ARGS, "--seed", "1", "--overwrite"]
    killed = _cli(argv, kill_at, sig)
    assert killed.returncode == code, killed.stderr[-2000:]
    now = _files(out)
    assert (now == old) == (expect == "old")
    assert json.loads((out / "dataset.json").read_text())["seed"] == (0 if expect == "old" else 1)
    assert len([name for name in now if name.endswith(".mp4")]) == 2 * 2 * 3  # complete either way
    if code == 143:
        assert _hidden(tmp_path) == [] and _hidden(out) == []  # SIGTERM cleans up on the way out
    rerun = _cli(argv)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _hidden(tmp_path) == [] and _hidden(out) == []
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1


@pytest.mark.slow  # a kill test
def test_a_dataset_killed_on_its_first_write_leaves_no_folder(tmp_path):
    out = tmp_path / "data"
    killed = _cli(["data", "moving-digits", str(out), *DATA_ARGS], "data-clip:2")
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists() and _hidden(tmp_path)  # only the staging folder beside it
    assert _cli(["data", "moving-digits", str(out), *DATA_ARGS]).returncode == 0
    assert _hidden(tmp_path) == [] and (out / "dataset.json").is_file()
