"""An export folder replaced as a whole: built in a temporary sibling, swapped in by rename, under a lock.

``quantize``/``export`` never write into ``OUT`` itself. Everything (model files, the manifest,
the report, TensorFlow's own SavedModel temp folders) is written into ``.OUT.tmp-<pid>-<rand>``
beside it, and only the finished folder replaces ``OUT``: on Linux in one atomic exchange of
the two folders (``renameat2(RENAME_EXCHANGE)``), elsewhere by renaming the old folder aside
(``.OUT.old-<pid>-<rand>``) and the new one in. A kill at any point leaves the old folder or the
new one at ``OUT`` (in the rename-aside fallback, for an instant, the old one aside, which the
next run puts back). Files in ``OUT`` that the new run does not write are gone with the old
folder; so ``OUT`` must be new, empty or an earlier export (it holds ``manifest.json`` or
``report.json``), and must not hold the run's own input (the model, the data). Leftover temporary and aside folders of a killed run are removed by the next run that
takes the lock; ``runtimes.modeldir`` refuses to load them.

Concurrent writers are refused: ``.OUT.lock`` beside ``OUT`` is held with ``flock`` for the whole
run and names its pid. The kernel releases it when the process dies, so the lock of a killed
run is taken over by the next one without any staleness guess.

Kill-test stages (``edge_rcnn.core._util.kill_point``): ``calibrating`` (inside the TFLite converter),
``file_written`` (first file staged), ``staged`` (every file, the manifest and the report),
``aside`` (fallback swap: old folder renamed aside), ``swapped`` (new folder in, old not deleted).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edge_rcnn.core._util import exchange_paths, kill_point
from edge_rcnn.core.errors import ConversionError, EdgeRcnnError, InputError


class OutputLockedError(EdgeRcnnError):
    """Another run is writing the same output folder (CLI exit 2)."""


def leftover_pattern(name: str) -> re.Pattern:
    """The names of ``name``'s temporary and aside folders (``.NAME.tmp-<pid>-<rand>``)."""
    return re.compile(rf"^\.{re.escape(name)}\.(tmp|old)-\d+-[A-Za-z0-9_]+$")


EXPORT_MARKERS = ("manifest.json", "report.json")  # a folder holding one of these is an earlier export


def check_writable_out(out_dir: str | os.PathLike, **inputs: str | os.PathLike | None) -> Path:
    """``OUT`` as an absolute path, checked without creating anything: not a file; new, empty or an
    earlier export; holding none of ``inputs`` (``model=..., data=...``); and its nearest existing
    folder (``OUT``'s parent, or further up) accepts new files. InputError otherwise."""
    given = Path(out_dir)
    out = Path(os.path.realpath(given) if given.is_symlink() else os.path.abspath(given))  # a link: its folder
    if out.exists() and not out.is_dir():
        raise InputError(f"{given}: is a file; expected an output folder (-o OUT/)")
    if out.parent == out:
        raise InputError(f"{given}: the root folder; expected an output folder (-o OUT/)")
    for what, path in inputs.items():
        if path is not None and _within(Path(path), out):
            raise InputError(f"{given}: holds the {what} {path}, and the output folder is replaced whole; "
                             "choose another -o")
    if out.is_dir() and any(out.iterdir()) and not any((out / name).is_file() for name in EXPORT_MARKERS):
        raise InputError(f"{given}: not empty and not an earlier export (no manifest.json or report.json), and the "
                         "output folder is replaced whole; choose a new or empty folder")
    check_writable_parent(out, "output folder")
    return out


def _within(path: Path, folder: Path) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def check_writable_parent(path: Path, what: str) -> None:
    """InputError unless a file could be created where ``path`` goes (probed, nothing left behind)."""
    base = Path(os.path.abspath(path)).parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise InputError(f"{path}: {base} is a file; expected a folder to hold the {what}")
    try:  # os.access says yes to root on a read-only or virtual file system: try for real
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what} in {base} ({exc.strerror})") from None


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[Path]:
    """Hold ``.OUT.lock`` beside ``OUT`` (parents created); OutputLockedError if another process does."""
    import fcntl

    lock = out.parent / f".{out.name}.lock"
    out.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputLockedError(f"{out}: another edge-rcnn run (pid {holder}) is writing this folder; "
                                    f"wait for it to finish (lock: {lock})") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and flock: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def clean_leftovers(out: Path) -> list[str]:
    """Remove the temporary and aside folders of killed runs (call with the lock held); if ``OUT``
    itself is missing because a fallback swap was killed between its renames, put the old folder back."""
    pattern = leftover_pattern(out.name)
    found = sorted((p for p in out.parent.iterdir() if pattern.match(p.name)), key=lambda p: p.stat().st_mtime)
    aside = [p for p in found if ".old-" in p.name]
    if aside and not out.exists():
        os.rename(aside[-1], out)
        found.remove(aside[-1])
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return [p.name for p in found]


class StagedFolder:
    """The temporary sibling a run writes into; ``commit()`` puts it in place of ``OUT``."""

    def __init__(self, out: Path):
        self.out = out
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
        self.committed = False

    @contextlib.contextmanager
    def temp_files_inside(self) -> Iterator[Path]:
        """Route Python's ``tempfile`` (TensorFlow's SavedModel folders, ONNX Runtime's files) into
        the staged folder, so a killed run leaves them where the next run removes them."""
        scratch = self.path / ".scratch"
        scratch.mkdir(exist_ok=True)
        before = tempfile.tempdir
        tempfile.tempdir = str(scratch)
        try:
            yield scratch
        finally:
            tempfile.tempdir = before
            shutil.rmtree(scratch, ignore_errors=True)

    def commit(self) -> None:
        """Replace ``OUT`` with the staged folder; the old folder is deleted once the new one is in."""
        shutil.rmtree(self.path / ".scratch", ignore_errors=True)
        self.path.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; give the folder normal permissions
        try:
            old = swap_in(self.path, self.out)
        except OSError as exc:
            raise ConversionError(f"{self.out}: cannot put the new export in place ({exc.strerror})") from None
        self.committed = True
        kill_point("swapped")
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)


def swap_in(new: Path, out: Path) -> Path | None:
    """Put folder ``new`` at ``out``; returns where the old ``out`` now is (to delete), or None."""
    if not out.exists():
        os.rename(new, out)
        return None
    if exchange_paths(new, out):
        return new  # the old folder now sits at the temporary name
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
    os.rename(out, aside)  # replaces the empty placeholder folder
    kill_point("aside")
    os.rename(new, out)
    return aside


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[StagedFolder]:
    """Lock ``OUT``, clear a killed run's leftovers, and yield a fresh staged folder; it is removed
    unless ``commit()`` was called (an error or Ctrl-C leaves ``OUT`` as it was)."""
    with out_lock(out):
        clean_leftovers(out)
        staged = StagedFolder(out)
        try:
            with staged.temp_files_inside():
                yield staged
        finally:
            staged.discard()
