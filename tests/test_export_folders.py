"""Export folders: replaced whole (kill tests), one source model, checked at load, one writer at a time.

Kill tests run ``edge-rcnn quantize``/``export`` as a subprocess into a folder that holds another
model's export and SIGKILL it at a named stage (``EDGE_RCNN_TEST_KILL_AT``, see
``edge_rcnn.core._util.kill_point``). Afterwards the folder must be the old export or the new one,
never a mix: every model file, the manifest and the report name one source model, the manifest
lists exactly the files there with their sha256, and ``runtimes.load`` runs it. A rerun then
clears the leftovers and writes the new export.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DIRECTIONS, TINY_FRAMES, tiny_model_config

REPO = Path(__file__).resolve().parents[1]
FAST = dict(samples=4, verify_samples=8)
QUANTIZE_FAST = ("--format", "tflite", "--samples", "4", "--verify-samples", "8")


def run_cli(*argv) -> tuple[int, str, str]:
    """The real CLI in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from edge_rcnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_exit_2(argv, *expect) -> str:
    code, _, err = run_cli(*argv)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in expect:
        assert part in err, err
    return err


def run_killed(argv, stage: str, tmp_path: Path, patch: str = "") -> Path:
    """Run the CLI in a subprocess that SIGKILLs itself at ``stage``; returns its (empty at start) TMPDIR."""
    from edge_rcnn.core._util import KILL_AT_ENV as KILL_ENV

    sys_tmp = tmp_path / "sys_tmp"
    sys_tmp.mkdir(exist_ok=True)
    env = {**os.environ, KILL_ENV: stage, "TMPDIR": str(sys_tmp), "EDGE_RCNN_QUIET": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    script = "\n".join(["import sys", patch, "from edge_rcnn.cli import main", "sys.exit(main(sys.argv[1:]))"])
    done = subprocess.run([sys.executable, "-c", script, *map(str, argv)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return sys_tmp


def folder_source(out: Path) -> str:
    """The one source model of ``out``: every model file's embedded hash, the manifest and the report
    agree on it, the manifest lists exactly the files there with their own sha256, and it loads."""
    import runtimes
    from runtimes.metadata import read_metadata
    from runtimes.modeldir import file_sha256

    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    models = sorted(p.name for p in out.iterdir() if p.suffix in (".tflite", ".onnx"))
    assert sorted(r["file"] for r in manifest["files"]) == models
    assert sorted(f["file"] for f in report["files"] if f["file"]) == models
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files inside
    for row in manifest["files"]:
        assert file_sha256(out / row["file"]) == row["sha256"], row["file"]
    sources = {read_metadata(out / name).source_sha256 for name in models}
    sources |= {manifest["source_sha256"], report["source_sha256"]}
    assert len(sources) == 1, sources
    predictor = runtimes.load(out, "cpu")
    clip = np.zeros((predictor.spec.frames, 32, 32, 3), np.uint8)  # any frame size: the runtime resizes
    assert len(predictor.predict(clip).probs) == len(predictor.labels)
    return sources.pop()


def leftovers(out: Path) -> list[Path]:
    from converters.outdir import leftover_pattern

    return sorted(p for p in out.parent.iterdir() if leftover_pattern(out.name).match(p.name))


def sha(path: Path) -> str:
    from edge_rcnn.core.model import file_sha256

    return file_sha256(path)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def other_model_file(tmp_path_factory):
    """Another tiny model (2 labels): its export is what a new run replaces."""
    from edge_rcnn.core._keras import keras
    from edge_rcnn.core.model import build_model, save_model

    keras().utils.set_random_seed(1)
    config = tiny_model_config(labels=("a", "b"))
    return save_model(build_model(config), config, tmp_path_factory.mktemp("other") / "model.keras")


@pytest.fixture(scope="module")
def old_export(tmp_path_factory, other_model_file):
    """The other model exported (float TFLite clip model + streaming parts): 3 files the new runs do not write."""
    from converters import export

    out = tmp_path_factory.mktemp("old") / "out"
    export(other_model_file, out, formats="tflite", streaming=True, verify_samples=4, progress=False)
    return out


@pytest.fixture
def out(tmp_path, old_export):
    """A fresh copy of the old export for one test to overwrite."""
    folder = tmp_path / "work" / "out"
    shutil.copytree(old_export, folder)
    return folder


@pytest.fixture
def float_export(tiny_float_stream_dir):
    """The tiny model exported to float TFLite + ONNX (with streaming parts: the session's shared
    folder), to tamper with (copied per test)."""
    return tiny_float_stream_dir


@pytest.fixture
def tampered(tmp_path, float_export):
    folder = tmp_path / "t" / "out"
    shutil.copytree(float_export, folder)
    return folder


# --------------------------------------------------------------------------- kill tests


@pytest.mark.slow  # kill tests: a TensorFlow process each
@pytest.mark.parametrize("stage, expect", [("calibrating", "old"), ("file_written", "old"), ("staged", "old"),
                                           ("swapped", "new")])
def test_quantize_killed_leaves_the_old_or_the_new_folder_and_a_rerun_recovers(
        stage, expect, out, other_model_file, tiny_model_file, digits_dir, tmp_path):
    from converters import quantize
    from runtimes.errors import ModelFileError

    old_sha, new_sha = sha(other_model_file), sha(tiny_model_file)
    sys_tmp = run_killed(("quantize", tiny_model_file, "--calib", digits_dir, *QUANTIZE_FAST, "-o", out), stage, tmp_path)
    assert folder_source(out) == (old_sha if expect == "old" else new_sha)
    left = leftovers(out)
    assert left, "a kill leaves the temporary (or replaced) folder beside OUT"
    for folder in left:
        with pytest.raises(ModelFileError, match="unfinished or replaced export folder"):
            __import__("runtimes").load(folder)
    saved_models = [p for p in sys_tmp.rglob("saved_model.pb")]
    assert saved_models == []  # TensorFlow's SavedModel temp folder was never in TMPDIR
    if stage == "calibrating":  # it was inside the staged folder, which the next run removes
        assert any(folder.rglob("saved_model.pb") for folder in left)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize(tiny_model_file, digits_dir, out, formats="tflite", progress=False, **FAST)
    assert folder_source(out) == new_sha and leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_int8.tflite", "report.json"]
    assert not (out.parent / ".out.lock").exists()


@pytest.mark.slow  # kill tests: a TensorFlow process each
@pytest.mark.parametrize("stage, expect", [("file_written", "old"), ("swapped", "new")])
def test_export_killed_leaves_the_old_or_the_new_folder(stage, expect, out, other_model_file, tiny_model_file,
                                                        tmp_path):
    run_killed(("export", tiny_model_file, "--format", "tflite", "--verify-samples", "4", "-o", out), stage, tmp_path)
    assert folder_source(out) == sha(other_model_file if expect == "old" else tiny_model_file)
    if expect == "new":  # the same file name, and none of the old streaming parts left
        assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_float.tflite", "report.json"]


@pytest.mark.slow  # a kill test: a TensorFlow process
def test_without_an_atomic_exchange_a_kill_between_the_renames_is_undone_by_the_next_run(
        out, other_model_file, tiny_model_file, tmp_path):
    from converters.outdir import clean_leftovers, out_lock

    patch = "import converters.outdir as o; o.exchange_paths = lambda a, b: False"  # as on macOS
    run_killed(("export", tiny_model_file, "--format", "tflite", "--verify-samples", "4", "-o", out), "aside",
               tmp_path, patch)
    assert not out.exists() and len(leftovers(out)) == 2  # the old folder aside, the new one staged
    with out_lock(out):
        clean_leftovers(out)
    assert folder_source(out) == sha(other_model_file) and leftovers(out) == []


@pytest.mark.slow  # an export over an earlier one, verified
def test_the_new_run_replaces_the_folder_whole(out, tiny_model_file, digits_dir):
    from converters import export

    (out / "notes.txt").write_text("mine")
    report = export(tiny_model_file, out, formats="tflite", data=digits_dir, verify_samples=4, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_float.tflite", "report.json"]
    assert report.paths == {"model_float.tflite": out / "model_float.tflite"} and report.report_path == out / "report.json"
    assert folder_source(out) == sha(tiny_model_file)


# --------------------------------------------------------------------------- one writer at a time


@pytest.mark.slow  # two exports through the CLI
def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(out, other_model_file, tiny_model_file):
    from converters.outdir import out_lock

    before = {p.name: sha(p) for p in out.iterdir()}
    with out_lock(out):
        err = assert_one_line_exit_2(("export", tiny_model_file, "--format", "tflite", "-o", out),
                                     str(out), "another edge-rcnn run", f"pid {os.getpid()}")
    assert "lock" in err and {p.name: sha(p) for p in out.iterdir()} == before
    (out.parent / ".out.lock").write_text("999999999\n")  # left by a killed run: nobody holds it
    code, _, err = run_cli("export", tiny_model_file, "--format", "tflite", "--verify-samples", "4", "-o", out)
    assert code == 0, err
    assert folder_source(out) == sha(tiny_model_file) and not (out.parent / ".out.lock").exists()


# --------------------------------------------------------------------------- what a folder load trusts


@pytest.mark.slow  # old_export: another model exported with streaming parts
def test_a_swapped_in_foreign_file_or_a_flipped_byte_is_refused(tampered, old_export, tiny_model_file, digits_dir):
    import runtimes
    from runtimes.errors import ModelFileError

    target = tampered / "model_float.tflite"
    good, good_manifest = target.read_bytes(), (tampered / "manifest.json").read_text()
    shutil.copy(old_export / "model_float.tflite", target)  # the other model's file of the same name
    with pytest.raises(ModelFileError, match=r"model_float.tflite: its sha256 differs from manifest.json"):
        runtimes.load(tampered, "cpu")
    manifest = json.loads(good_manifest)  # a manifest rewritten for the new bytes: the embedded hash still tells
    for row in manifest["files"]:
        row["sha256"] = sha(tampered / row["file"])
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=r"model_float.tflite: exported from another model"):
        runtimes.load(tampered, "cpu")

    (tampered / "manifest.json").write_text(good_manifest)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF  # in the weights: the file still parses and runs
    target.write_bytes(bytes(flipped))
    clip = np.zeros((TINY_FRAMES, 32, 32, 3), np.uint8)
    assert runtimes.load(target, "cpu").predict(clip) is not None  # a lone file: nothing to compare with
    with pytest.raises(ModelFileError, match="model_float.tflite: its sha256 differs"):
        runtimes.load(tampered, "cpu")
    assert_one_line_exit_2(("info", target), "model_float.tflite", "sha256 differs")
    assert_one_line_exit_2(("verify", target, "--reference", tiny_model_file, "--data", digits_dir),
                           "model_float.tflite", "sha256 differs")
    code, out, err = run_cli("info", tampered / "model_float.onnx")
    assert code == 0 and "model_float.onnx" in out, err  # the untouched file of the same folder


@pytest.mark.parametrize("entry", ["../elsewhere/model_float.tflite", "ABSOLUTE", "sub/../../elsewhere/model_float.tflite"])
def test_a_manifest_path_outside_the_folder_is_refused(tampered, entry):
    import runtimes
    from runtimes.errors import ModelFileError

    outside = tampered.parent / "elsewhere"
    outside.mkdir()
    shutil.copy(tampered / "model_float.tflite", outside / "model_float.tflite")  # it exists and would load
    entry = str(outside / "model_float.tflite") if entry == "ABSOLUTE" else entry
    manifest = json.loads((tampered / "manifest.json").read_text())
    manifest["files"][0]["file"] = entry
    (tampered / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="is outside the folder") as caught:
        runtimes.load(tampered, "cpu")
    assert entry in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow  # two exports of its own through the CLI
def test_a_file_that_failed_verification_is_never_chosen(tmp_path, monkeypatch, tiny_model_file, digits_dir):
    import dataclasses

    import converters.api as api
    import runtimes
    from runtimes.errors import ModelFileError

    real = api.verify_files

    def tflite_fails(files, *args, **kwargs):  # as if int8 rounding had cost the TFLite file its accuracy
        for c in real(files, *args, **kwargs):
            yield dataclasses.replace(c, problems=("forced drop",), error="AccuracyDropError") if c.format == "tflite" else c

    monkeypatch.setattr(api, "verify_files", tflite_fails)
    out = tmp_path / "out"
    code, _, err = run_cli("export", tiny_model_file, "--format", "tflite,onnx", "--data", digits_dir,
                           "--verify-samples", "4", "-o", out)
    assert code == 3 and err.count("\n") == 1, err
    rows = {r["file"]: r["passed"] for r in json.loads((out / "manifest.json").read_text())["files"]}
    assert rows == {"model_float.tflite": False, "model_float.onnx": True}
    assert runtimes.load(out, "cpu").runtime.path.name == "model_float.onnx"  # not the failed TFLite file

    def all_fail(files, *args, **kwargs):
        for c in real(files, *args, **kwargs):
            yield dataclasses.replace(c, problems=("forced drop",), error="AccuracyDropError")

    monkeypatch.setattr(api, "verify_files", all_fail)
    code, _, err = run_cli("export", tiny_model_file, "--format", "tflite", "--data", digits_dir,
                           "--verify-samples", "4", "-o", out)
    assert code == 3, err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model_float.tflite", "report.json"]
    with pytest.raises(ModelFileError, match="no clip model that passed verification .*model_float.tflite"):
        runtimes.load(out, "cpu")
    runtimes.load(out / "model_float.tflite", "cpu")  # asked for by name: the user takes it anyway


# --------------------------------------------------------------------------- bad input: exit 2, nothing written


@pytest.fixture(scope="module")
def mismatched_model(tmp_path_factory, tiny_model_file):
    """``model.keras`` whose edge-rcnn config says 6 frames while its Keras graph takes 8."""
    from edge_rcnn.core.model import CONFIG_ENTRY

    bad = tmp_path_factory.mktemp("mismatch") / "model.keras"
    with zipfile.ZipFile(tiny_model_file) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == CONFIG_ENTRY:
                data = tiny_model_config(frames=6).to_json().encode()
            dst.writestr(item, data)
    return bad


def test_bad_output_and_input_fail_before_anything_is_written(tmp_path, tiny_model_file, digits_dir, mismatched_model):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    new = tmp_path / "deep" / "new_out"
    q = ("quantize", tiny_model_file, "--calib", digits_dir, *QUANTIZE_FAST)
    cases = [
        ((*q, "-o", a_file / "out"), "afile is a file"),
        ((*q, "--seed", "-1", "-o", new), "seed: expected an integer in 0..4294967295, got -1"),
        (("export", tiny_model_file, "--seed", "-5", "-o", new), "seed"),
        (("quantize", tiny_model_file, "--calib", tmp_path / "empty", "-o", new), "empty"),
        (("quantize", mismatched_model, "--calib", digits_dir, *QUANTIZE_FAST, "-o", new), str(mismatched_model),
         "(6, 32, 32, 3) input", "(8, 32, 32, 3) input"),
        (("export", mismatched_model, "--format", "tflite", "-o", new), "model.keras", "disagrees"),
        ((*q, "-o", tmp_path), "not empty and not an earlier export"),  # replaced whole: it would be lost
        (("export", tiny_model_file, "--format", "tflite", "-o", tiny_model_file.parent), "holds the model"),
        ((*q, "-o", digits_dir), "holds the data"),
        (("verify", a_file, "--reference", tiny_model_file, "--data", digits_dir, "--report", tmp_path), "--report",
         "is a folder"),
        (("verify", a_file, "--reference", tiny_model_file, "--data", digits_dir, "--report", a_file / "r.json"),
         "afile is a file"),
    ]
    if Path("/proc/self").is_dir():  # a folder nobody can write in, even root
        cases += [((*q, "-o", "/proc/edge_rcnn_out"), "cannot write the output folder in /proc"),
                  (("export", tiny_model_file, "-o", "/proc/x/out"), "cannot write the output folder in /proc"),
                  (("verify", a_file, "--reference", tiny_model_file, "--data", digits_dir, "--report",
                    "/proc/r.json"), "cannot write the report in /proc")]
    if os.geteuid() != 0:  # permissions only bind a normal user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        cases.append(((*q, "-o", locked / "out"), "cannot write the output folder"))
    for argv, *expect in cases:
        assert_one_line_exit_2(argv, *expect)
    assert not (tmp_path / "deep").exists()  # -o and its parents are created only after the checks
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["afile", "empty", *(["locked"] * (os.geteuid() != 0))])
    assert sorted(p.name for p in mismatched_model.parent.iterdir()) == ["model.keras"]


# --------------------------------------------------------------------------- label coverage


@pytest.mark.slow  # a data set, an int8 conversion and an export of its own
def test_calibrating_on_some_of_the_labels_warns_with_the_coverage(tmp_path, tiny_model_file):
    from converters import export, quantize
    from edge_rcnn.core.data.moving_digits import make_moving_digits

    some = make_moving_digits(tmp_path / "some", digits=(0,), directions=TINY_DIRECTIONS, clips_per_class=12,
                              frames=TINY_FRAMES, size=32, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize(tiny_model_file, some, tmp_path / "q", formats="tflite", samples=2, verify_samples=4, max_drop=100,
                 progress=False)
    coverage = [str(w.message) for w in caught if "labels" in str(w.message) and "cover" in str(w.message)]
    assert len(coverage) == 1 and "\n" not in coverage[0], coverage
    assert "calibration clips cover 2 of 4 labels and verification clips cover 2 of 4 labels" in coverage[0]
    assert "missing: 1_right, 1_left" in coverage[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export(tiny_model_file, tmp_path / "e", formats="tflite", data=some, verify_samples=4, progress=False)
    assert [str(w.message) for w in caught if "verification clips cover 2 of 4 labels" in str(w.message)]
