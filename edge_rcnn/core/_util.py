"""Small shared helpers: atomic file and folder writes, their leftovers, progress bars, kill-test points."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from edge_rcnn.core.errors import ConfigError

# The names atomic_path gives its temp files (".NAME.<8 random chars>.tmp"), those of writers that
# add a suffix for a library that wants one (".NAME.<8>.tmp.keras"), and model.save_model's
# (".STEM.tmp<pid>.keras"). Nothing else matches.
_TEMP_NAME = re.compile(r"^\..+\.([a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?|tmp[0-9]+\.keras)$")
# A training run's loop state (epoch, history, early stopping) lives inside last.keras under this
# name, so that one rename commits an epoch's weights and state together.
STATE_ENTRY = "edge_rcnn_state.json"
KILL_AT_ENV = "EDGE_RCNN_TEST_KILL_AT"
KILL_SIGNAL_ENV = "EDGE_RCNN_TEST_KILL_SIGNAL"
_kill_counts: dict[str, int] = {}


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    An interrupted or failed write leaves the old file (if any) untouched and no partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_stale_temps(folder: str | os.PathLike, older_than: float) -> list[Path]:
    """Delete the temp files :func:`atomic_path` left in ``folder`` (not below) before ``older_than``.

    A ``kill -9`` skips the clean-up of ``atomic_path``; its temps have their own name pattern and are
    never read, so a writer calls this when it starts (with its start time, so that files another
    live writer made since are kept). Returns the paths removed.
    """
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in Path(folder).iterdir():
            with contextlib.suppress(FileNotFoundError):
                if (_TEMP_NAME.match(entry.name) and entry.is_file() and not entry.is_symlink()
                        and entry.stat().st_mtime < older_than):
                    entry.unlink()
                    removed.append(entry)
    return removed


def check_writable_folder(path: str | os.PathLike, argument: str) -> Path:
    """``path`` if it is a folder this process can write in, or one it can create; else ``ConfigError``.

    Called before long work, so that an unwritable output fails in a second and not after the work.
    Tried by creating an unnamed file there (or in the nearest existing parent): ``os.access``
    answers yes to root on ``/proc`` and to anyone where a file system refuses writes later. Creates
    nothing that stays.
    """
    path = Path(path)
    here = path
    while not here.exists() and not here.is_symlink() and here != here.parent:
        here = here.parent
    if here.exists() and not here.is_dir():
        found = "a file" if here == path else f"a file at {here}"
        raise ConfigError(f"{argument} {path}: expected a folder, found {found}")
    try:
        with tempfile.TemporaryFile(dir=here):
            pass
    except OSError as exc:
        where = "it" if here == path else str(here)
        raise ConfigError(f"{argument} {path}: cannot write in {where} ({exc.strerror or exc})") from None
    return path


def replace_folder(staged: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the complete folder ``staged`` at ``target``, replacing what is there as a whole.

    Both must be on one file system (make ``staged`` a sibling of ``target``). On Linux an existing
    ``target`` is swapped with ``staged`` in one step (``renameat2`` with ``RENAME_EXCHANGE``), so a
    kill at any moment leaves the old folder or the new one at ``target``; the old one is then
    deleted from ``staged``. Elsewhere (or on a file system without the call) the old folder is
    renamed aside first, so a kill between the two renames leaves ``target`` missing for that instant,
    with the old folder beside it.
    """
    staged, target = Path(staged), Path(target)
    if not target.exists():
        os.replace(staged, target)
        return
    if not exchange_paths(staged, target):
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, aside / target.name)
        os.replace(staged, target)
        staged = aside  # holds the old folder now
    kill_point("replace-folder")  # the new folder is in place, the old one not yet deleted
    shutil.rmtree(staged, ignore_errors=True)


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # glibc before 2.28, or another C library
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def kill_point(stage: str) -> None:
    """A named point where kill tests stop this process; a dictionary lookup when not testing.

    With ``EDGE_RCNN_TEST_KILL_AT=STAGE`` (or ``STAGE:N``, the N-th time it is reached; default the
    first) the process sends itself ``EDGE_RCNN_TEST_KILL_SIGNAL`` (``KILL``, the default, or
    ``TERM``) here, so a test knows exactly where it stopped without racing a timer.
    """
    point = os.environ.get(KILL_AT_ENV)
    if not point:
        return
    name, _, nth = point.partition(":")
    if name != stage:
        return
    _kill_counts[stage] = count = _kill_counts.get(stage, 0) + 1
    if count == int(nth or 1):
        os.kill(os.getpid(), getattr(signal, "SIG" + os.environ.get(KILL_SIGNAL_ENV, "KILL").upper()))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(path)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def progress(iterable: Iterable | None = None, total: int | None = None, desc: str = "", **kwargs):
    """A tqdm progress bar on stderr (silent when tqdm is missing or ``EDGE_RCNN_QUIET`` is set)."""
    disable = bool(os.environ.get("EDGE_RCNN_QUIET"))
    try:
        from tqdm.auto import tqdm
    except ImportError:  # device installs have no tqdm; a bar is a nicety there
        return _NoBar(iterable)
    if not sys.stderr.isatty():  # a log file or CI: a line every 10 s and the last, not every step
        kwargs.setdefault("mininterval", 10.0)
    return tqdm(iterable, total=total, desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True, **kwargs)


class _NoBar:
    def __init__(self, iterable=None):
        self._it = iterable

    def __iter__(self):
        return iter(self._it or ())

    def update(self, n=1):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
