"""Writing files and folders so that a reader never sees half of one: write, then rename.

Every file and folder the suite stores goes through here. A file is written complete into a
temporary sibling (``.<name>.tmp-XXXX``) and renamed over its final name with ``os.replace``
(atomic on POSIX within one filesystem); a folder likewise. An interrupted writer therefore
leaves at most a temporary sibling, never a truncated file under the final name, and a failed
write removes its temporary sibling before the error propagates.

Temporary names share one pattern (:data:`TMP_MARK`), so a cleaner can recognise them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".tmp-"
"""Every temporary sibling's name is ``.<final name>.tmp-<random>``."""


def current_umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_temporary(path: Path) -> bool:
    """Whether ``path``'s name is one of this module's temporary siblings."""
    return path.name.startswith(".") and TMP_MARK in path.name


def write_bytes_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename (mode 0o666 less the umask)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def folder_atomic(final) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``final``; on success it replaces ``final`` whole.

    An existing ``final`` is renamed aside first and deleted after the new folder is in place,
    so at every moment ``final`` is either the complete old folder, absent, or the complete new
    one. On any exception the temporary folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{TMP_MARK}", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if os.path.lexists(final):
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}{TMP_MARK}old-", dir=final.parent))
            os.rmdir(old)  # reserve a unique name only
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
