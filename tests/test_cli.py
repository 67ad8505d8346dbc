"""The CLI shell: every command is registered and documented, and --help never loads TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_rcnn.cli import build_parser, main

COMMANDS = ("data", "train", "quantize", "export", "verify", "info", "predict", "devices", "run", "benchmark")


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_command_of_the_readme_is_registered():
    assert set(COMMANDS) <= set(_subcommands())


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: edge-rcnn {command}" in capsys.readouterr().out


def test_help_is_fast_and_tensorflow_free():
    code = "import sys; from edge_rcnn.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print('TF' if 'tensorflow' in sys.modules else 'noTF')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip().endswith("noTF")
    assert "quantize" in out and "benchmark" in out


def test_unknown_command_and_missing_argument_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["quantize"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "required" in err


def test_python_dash_m_and_version():
    out = subprocess.run([sys.executable, "-m", "edge_rcnn", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("edge-rcnn ")
