"""The camera loop as a service runs it: stopped by SIGTERM, writing to a full disk, fed broken
files and bad settings, and running long without growing.

Each failure must be one line and exit 2 (or a clean stop with a summary), never a traceback.
Processes are stopped on a condition they print (the first event line), not after a sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runtimes
import runtimes.camera
from runtimes.camera.loop import run_camera
from runtimes.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "edge_rcnn"]


@pytest.fixture
def export_dir(tiny_float_stream_dir):
    """The tiny model as a float export folder with its streaming parts (the session's shared one,
    read only here; on a CPU the folder runs its TFLite file)."""
    return tiny_float_stream_dir


def _video(path: Path, frames: int, size: int = 32, seed: int = 0) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (size, size))
    base = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    for i in range(frames):
        writer.write(base[i % len(base)])
    writer.release()
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "EDGE_RCNN_QUIET": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_sigterm_stops_run_cleanly_with_summary_and_video(export_dir, tmp_path):
    """SIGTERM (systemd's stop) ends `edge-rcnn run` as Ctrl-C does: exit 0, the summary marked
    interrupted, a complete annotated video under its final name, whole event lines."""
    video = _video(tmp_path / "long.mp4", 6000)
    saved, events = tmp_path / "annotated.mp4", tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [*CLI, "run", str(export_dir), "--source", str(video), "--save", str(saved), "--events", str(events),
         "--threshold", "0.01", "--hold", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path,
    )
    first = proc.stdout.readline()  # the first event: the loop is running
    assert json.loads(first)["event"] == "start"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] and 0 < summary["frames"] < 6000
    assert summary["saved"] == str(saved) and saved.is_file()
    assert not list(tmp_path.glob(".annotated.tmp*")), "the temporary video was left behind"
    import cv2

    cap = cv2.VideoCapture(str(saved))
    written = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert written == summary["frames"]
    lines = events.read_text().splitlines()
    assert lines and all(json.loads(line)["label"] for line in lines)


def test_events_to_a_full_disk_is_one_line_exit_2(export_dir, tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    video = _video(tmp_path / "clip.mp4", 40)
    proc = subprocess.run([*CLI, "run", str(export_dir), "--source", str(video), "--events", "/dev/full",
                           "--threshold", "0.01", "--hold", "1", "--quiet"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["edge-rcnn run: error: --events /dev/full: cannot write it "
                                                "(No space left on device)"]


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1"])
def test_bad_smoothing_is_refused_before_the_loop(export_dir, tmp_path, value):
    video = _video(tmp_path / "clip.mp4", 20)
    proc = subprocess.run([*CLI, "run", str(export_dir), "--source", str(video), f"--smoothing={value}", "--quiet"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"edge-rcnn run: error: smoothing: expected a number in [0.0, 1.0), "
                                                f"got {float(value)!r}"]


@pytest.mark.parametrize("smoothing", [float("nan"), float("inf"), -1e-9])
def test_stream_refuses_smoothing_that_is_not_a_number_in_range(export_dir, smoothing):
    with pytest.raises(InputError, match="smoothing"):
        runtimes.load(export_dir).stream(smoothing=smoothing)


@pytest.mark.parametrize("command", ["predict", "run"])
def test_a_broken_video_is_our_line_alone(export_dir, tmp_path, command):
    """FFmpeg ("moov atom not found") and OpenCV print their own lines for a file they cannot read;
    ours says it, so theirs are silenced."""
    broken = tmp_path / "broken.mp4"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    data[4:12] = b"ftypisom"
    broken.write_bytes(bytes(data))
    args = [str(broken)] if command == "predict" else ["--source", str(broken)]
    proc = subprocess.run([*CLI, command, str(export_dir), *args], capture_output=True, text=True, env=_env(),
                          timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"edge-rcnn {command}: error: {broken}: not a readable video"]


SOAK = """
import json, os, sys
import runtimes
import runtimes.camera

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

model, video, marks = sys.argv[1], sys.argv[2], {int(m) for m in sys.argv[3].split(",")}
run = runtimes.camera.run(runtimes.load(model), video, threshold=0.01, hold=1)
samples = [rss() for result in run if result.frame.index in marks]
summary = run.summary()
print(json.dumps({"frames": summary.frames, "dropped": summary.dropped, "rss": samples}))
"""


@pytest.mark.slow  # a soak: thousands of frames in a process of its own
def test_long_run_memory_stays_flat_and_drops_nothing(export_dir, tmp_path):
    """The soak benchmark's short form, in a process of its own (only numpy, OpenCV and the
    runtime, as on a device): after a warm-up, RSS is read at the ends of three equal stretches of
    frames through the loop. Something kept per frame grows every stretch; a one-off step (an
    allocator arena) grows one, so the smallest stretch's growth must stay under 512 KiB."""
    warm, stretch = 300, 1000
    marks = [warm + k * stretch for k in range(4)]
    video = _video(tmp_path / "soak.mp4", marks[-1] + 1)
    proc = subprocess.run([sys.executable, "-c", SOAK, str(export_dir), str(video), ",".join(map(str, marks))],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["frames"] == marks[-1] + 1 and result["dropped"] == 0
    growth = [b - a for a, b in zip(result["rss"], result["rss"][1:])]
    # One 32x32x3 frame is 3 KB: keeping every frame would add 3 MB a stretch; 512 KiB is 0.5 KB a frame.
    assert len(growth) == 3 and min(growth) < 2**19, f"RSS grew {growth} bytes over three stretches of {stretch} frames"


def test_a_killed_recordings_temporary_video_is_removed_by_the_next(tmp_path):
    """kill -9 skips AnnotatedVideo.close(): its temporary file is removed by the next recording of
    that name, once its writer is gone; a live writer's is kept."""
    from runtimes.camera.recording import AnnotatedVideo

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".clip.tmp{dead_pid}.mp4"
    live = tmp_path / f".clip.tmp{os.getppid()}.mp4"  # our parent is alive
    other = tmp_path / f".other.tmp{dead_pid}.mp4"
    for f in (stale, live, other):
        f.write_bytes(b"half a video")
    video = AnnotatedVideo(tmp_path / "clip.mp4", 10.0)
    video.write(np.zeros((32, 32, 3), np.uint8), "rgb", "x", 1.0)
    assert video.close() == tmp_path / "clip.mp4"
    assert not stale.exists() and live.exists() and other.exists()
