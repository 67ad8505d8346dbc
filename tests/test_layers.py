"""The layers hold at run time too, not only in import-linter's static graph.

import-linter (``make test`` runs ``lint-imports`` first; contracts in ``pyproject.toml``) checks
the import statements. What it cannot see is the order Python runs packages' ``__init__`` files
in: importing ``edge_rcnn.core.model`` runs ``edge_rcnn/__init__.py`` first, so a facade that
imported ``converters`` eagerly would be a cycle that only shows when a module is imported first.
So every module is imported first here, each in a clean slate of our packages.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge_rcnn", "converters", "runtimes")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, prefix=f"{package}.")
                  if not m.name.endswith("__main__")]
    return sorted(names)


# Modules that import TensorFlow when imported, and why (each is itself imported lazily).
IMPORT_TENSORFLOW = {
    "edge_rcnn.core.callbacks": "its RunKeeper subclasses a Keras callback; train() imports it inside",
}


def test_every_module_imports_first_and_only_the_listed_ones_load_tensorflow():
    """Each module imported as the first of our modules in this process: no partly initialised
    package (an import cycle through an ``__init__``), and no TensorFlow or Keras at import time
    (they load inside the functions that need them) except in ``IMPORT_TENSORFLOW``, imported last."""
    names = sorted(_modules(), key=lambda name: name in IMPORT_TENSORFLOW)
    assert set(IMPORT_TENSORFLOW) <= set(names)
    code = f"""
import importlib, sys
problems = []
for name in {names!r}:
    for loaded in [m for m in sys.modules if m.split('.')[0] in {PACKAGES!r}]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        problems.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
    heavy = [m for m in ('tensorflow', 'keras', 'tf_keras', 'tf2onnx') if m in sys.modules]
    if heavy and name not in {sorted(IMPORT_TENSORFLOW)!r}:
        problems.append(f"{{name}} imports {{heavy}} at import time")
        break
print("\\n".join(problems))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", done.stdout


def test_the_device_core_never_loads_the_camera_app_or_the_layers_above():
    code = """
import sys, runtimes
above = sorted({m.split('.')[0] if not m.startswith('runtimes.') else m for m in sys.modules
                if m.split('.')[0] in ('edge_rcnn', 'converters') or m.startswith('runtimes.camera')})
print(above)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout and " 0 broken" in done.stdout
