"""Run folders written by one process at a time.

    with lock_run("runs/mnist-bp"):
        ...  # train, checkpoint, log

A second process that tries to lock the same folder fails at once with
:class:`RunInUseError` (naming the folder and the process holding it) instead of writing
into a run that another process owns. The lock is an operating-system lock on the file
``.lock`` in the folder: it dies with its process, so a run killed by SIGKILL or a power
cut never leaves a folder locked (a leftover ``.lock`` file holds no lock). Where the
system has no file locks (a browser's Python), runs are not locked.
"""

from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
try:
    import msvcrt
except ImportError:
    msvcrt = None

LOCK_NAME = ".lock"
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1)}


class RunInUseError(OSError):
    """Another process is writing this run folder."""


def _try_lock(fd) -> bool | None:
    """Lock ``fd`` without waiting: True if locked, False if another process holds it,
    None if this system has no file locks."""
    if sys.platform == "emscripten":  # a browser's Python (Pyodide): one process, no file locks
        return None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif msvcrt is not None:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:  # pragma: no cover
            return None
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        if exc.errno in _UNSUPPORTED:
            return None
        raise
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid else "another process"


@contextmanager
def lock_run(folder, name: str = LOCK_NAME, what: str | None = None):
    """Hold the lock of run folder ``folder`` (created if needed) for the ``with`` block.

    Raises :class:`RunInUseError` at once if another process holds it. The lock file is
    removed on a clean exit. ``name``: the lock file's name (:func:`lock_checkpoint` uses one
    per checkpoint); ``what``: what the error says is in use (default: the folder).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    what = what or str(folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        got = _try_lock(fd)
        if got is False:
            os.close(fd)
            raise RunInUseError(
                errno.EBUSY, f"{what} is in use by another run ({_holder(path)}): wait for it to finish, or "
                f"choose another output folder" + ("" if name == LOCK_NAME else " and checkpoint"))
        try:  # the file we locked may have been removed by the holder that just finished
            if got is None or os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


def lock_checkpoint(checkpoint):
    """The lock of one checkpoint file (``<name>.lock`` beside it): two runs that name the same
    ``--checkpoint`` from different folders never write it at once."""
    checkpoint = Path(checkpoint)
    return lock_run(checkpoint.parent, checkpoint.name + ".lock", what=f"checkpoint {checkpoint}")
