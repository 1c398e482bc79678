"""One sweep per runs folder: an advisory lock held by the sweep's driver process.

The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the file ``<runs>/.lock``. The kernel releases
a flock when the last descriptor of its open file closes, which happens on every exit of the
holder -- normal return, exception, ``kill -9``, a crash -- so the lock is never stale: a lock
file left behind by a dead holder is simply taken by the next driver. The descriptor is opened
close-on-exec (Python's default), so the worker processes the driver spawns do not hold it.

The holder writes its pid into the file (for the second driver's message only: the pid is
never trusted to decide anything) and empties it on release. The file itself is never deleted:
deleting a flock'ed file lets two processes lock two different files of the same name.

Only ``sweep`` takes the lock: it is the one command that writes, quarantines and cleans a runs
folder. ``report`` only reads (runs appear by atomic renames, so it never sees half of one).
"""
from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EnvironmentFault, UsageError

LOCK_NAME = ".lock"


class RunsFolderLocked(UsageError):
    """Another driver holds the runs folder's lock (exit 2, naming its pid)."""


def holder_pid(path: Path) -> str:
    """The pid written in the lock file, or "unknown" (the holder may not have written it yet)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextmanager
def runs_lock(root) -> Iterator[Path]:
    """Hold ``<root>/.lock`` exclusively for the block; ``RunsFolderLocked`` if another process holds it.

    ``UsageError`` if the lock file cannot be created (the folder cannot be used: read-only,
    not a folder, a pseudo-filesystem); ``EnvironmentFault`` for other I/O errors.
    """
    import fcntl

    root = Path(root)
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
            raise UsageError(f"--runs {str(root)!r} cannot be used: cannot create its lock file "
                             f"{str(path)!r} ({exc.strerror}); give a writable folder") from None
        raise EnvironmentFault(f"cannot create the lock file {str(path)!r}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunsFolderLocked(
                f"another sweep (pid {holder_pid(path)}) is using the runs folder {str(root)!r}; wait for it to "
                "finish or stop it, then run this sweep again (it resumes)") from None
        except OSError as exc:  # e.g. a filesystem without flock support
            raise UsageError(f"--runs {str(root)!r} cannot be used: cannot lock {str(path)!r} "
                             f"({exc.strerror})") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the pid is for messages only; a full disk must not stop the lock from working
        try:
            yield path
        finally:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
    finally:
        os.close(fd)  # releases the flock
