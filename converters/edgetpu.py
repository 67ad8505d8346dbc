"""Edge TPU target: compile the full-int8 TFLite file with ``edgetpu_compiler``.

The compiler exists only for x86-64 Linux. When it is not on PATH the step is skipped with a
message that says how to install it and the exact command to run on such a machine; the int8
``.tflite`` it needs is written anyway. Before compiling, the file is checked against the Edge
TPU's constraints: full int8 (int8/uint8 IO), static shapes, batch 1, unidirectional LSTM only;
a warning when the RNN reads many features per step (large LSTM weights spill out of the TPU's
on-chip memory and run slowly).
"""

from __future__ import annotations

import logging
import platform
import shlex
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from converters.config import Format, IoType, Mode
from converters.job import ExportedFile, ExportJob
from converters.metadata import embed_tflite_metadata
from converters.parts import Part
from converters.tflite import check_ops, make_interpreter
from edge_rcnn.core._util import write_bytes_atomic
from edge_rcnn.core.errors import ConversionError
from runtimes.metadata import read_metadata

log = logging.getLogger(__name__)

COMPILER = "edgetpu_compiler"
LARGE_RNN_FEATURES = 1000
TIMEOUT_S = 900
INSTALL = (
    "on x86-64 Debian/Ubuntu add Coral's apt repo "
    "(echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list; "
    "curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -) "
    "and run: sudo apt-get update && sudo apt-get install edgetpu-compiler"
)


def find_compiler() -> str | None:
    return shutil.which(COMPILER)


def compile_command(tflite_path: Path, out_dir: Path, compiler: str = COMPILER) -> list[str]:
    """``edgetpu_compiler -s -o OUT model_int8.tflite`` (``-s``: print which ops map to the TPU)."""
    return [compiler, "-s", "-o", str(out_dir), str(tflite_path)]


def unavailable_message(tflite_path: Path, out_dir: Path) -> str:
    here = f"{platform.system()} {platform.machine()}"
    command = shlex.join(compile_command(tflite_path, out_dir))
    return (f"{COMPILER} not found on PATH (this machine: {here}); it runs only on x86-64 Linux: {INSTALL}; "
            f"then compile there with: {command}")


def check_constraints(job: ExportJob, tflite_path: Path) -> list[str]:
    """Edge TPU constraints the int8 file breaks (empty: compilable); warns about large RNN inputs."""
    content = tflite_path.read_bytes()
    problems = check_ops(content, full_integer=True)
    interpreter = make_interpreter(content)
    for detail in (*interpreter.get_input_details(), *interpreter.get_output_details()):
        shape = [int(d) for d in detail["shape_signature"]]
        if any(d < 1 for d in shape):
            problems.append(f"tensor {detail['name']} has a dynamic shape {shape} (expected static)")
        elif shape[0] != 1:
            problems.append(f"tensor {detail['name']} has batch {shape[0]} (expected 1)")
        if detail["dtype"].__name__ not in (IoType.INT8.value, IoType.UINT8.value):
            problems.append(f"tensor {detail['name']} is {detail['dtype'].__name__} (expected int8 or uint8 IO)")
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    for op in sorted(ops & {"BIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_RNN"}):
        problems.append(f"{op} is not supported (Edge TPU runs unidirectional LSTM only)")
    features = rnn_input_features(job.model) if job.part is Part.CLIP else None
    if features is not None and features > LARGE_RNN_FEATURES:
        warnings.warn(
            f"{tflite_path.name}: the RNN reads {features} features per step (> ~{LARGE_RNN_FEATURES}); its weights "
            "may not fit the Edge TPU's on-chip memory and run slowly; a narrower backbone (--width) helps",
            UserWarning, stacklevel=2,
        )
    return problems


def rnn_input_features(model) -> int | None:
    """Features per time step entering the first RNN layer (``rnn_0``), if the model has one."""
    try:
        return int(model.get_layer("rnn_0").input_shape[-1])
    except (ValueError, AttributeError, TypeError):
        return None


def convert(job: ExportJob) -> ExportedFile:
    """Compile ``model_int8.tflite`` (written by the TFLite target first) to ``model_int8_edgetpu.tflite``."""
    if job.settings.mode is not Mode.INT8:
        raise ConversionError(f"edgetpu: needs --mode int8, got {job.settings.mode.value!r}")
    source = job.path_for(Format.TFLITE)
    if not source.is_file():
        raise ConversionError(f"edgetpu: {source} is missing (the int8 TFLite file is compiled from it)")
    problems = check_constraints(job, source)
    if problems:
        raise ConversionError(f"{source.name}: breaks Edge TPU constraints: {'; '.join(problems)}")
    target = job.path_for(Format.EDGETPU)
    compiler = find_compiler()
    final_source = job.final_dir / source.name  # what the user finds once the folder is in place
    if compiler is None:
        message = unavailable_message(final_source, job.final_dir)
        log.warning("%s", message)
        command = shlex.join(compile_command(final_source, job.final_dir))
        return ExportedFile(None, Format.EDGETPU, Mode.INT8, notes=(message,), runnable=False, part=job.part,
                            details={"status": "skipped", "command": command,
                                     "summary": f"skipped: {COMPILER} not on PATH; on x86-64 Linux run: {command}"})
    with tempfile.TemporaryDirectory(prefix=".edgetpu_", dir=job.out_dir) as tmp:
        command = compile_command(source, Path(tmp), compiler)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConversionError(f"{COMPILER}: could not run {shlex.join(command)} ({exc})") from None
        tail = (done.stdout + done.stderr).strip().splitlines()
        produced = Path(tmp) / f"{source.stem}_edgetpu.tflite"
        if done.returncode != 0 or not produced.is_file():
            why = tail[-1] if tail else f"exit code {done.returncode}"
            raise ConversionError(f"{COMPILER} failed on {source.name}: {why}")
        content = produced.read_bytes()
        log_file = Path(tmp) / f"{source.stem}_edgetpu.log"
        compiler_log = log_file.read_text(errors="replace") if log_file.is_file() else "\n".join(tail)
    path = write_bytes_atomic(target, content)
    if read_metadata(path) is None:  # the compiler dropped it: put it back from the source file

        write_bytes_atomic(target, embed_tflite_metadata(content, read_metadata(source)))
    write_bytes_atomic(target.with_suffix(".log"), compiler_log.encode("utf-8"))
    return ExportedFile(path, Format.EDGETPU, Mode.INT8, runnable=False, part=job.part,
                        notes=("needs an Edge TPU to run; verify on the device with edge-rcnn verify",),
                        details={"status": "compiled", "command": shlex.join(compile_command(final_source, job.final_dir)),
                                 "log": target.with_suffix(".log").name})
