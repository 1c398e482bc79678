"""What every ``ganrepro`` command shares: the program's name, one-line errors, the --runs/--out check.

Loads no framework.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UsageError

PROG = "ganrepro"


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (every run of whitespace, newlines included, becomes one space)."""
    return " ".join(str(exc).split())


def error(message: str, code: int) -> int:
    """Print ``ganrepro: error: <message>`` (one line) on stderr; return ``code``."""
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def os_error_text(exc: OSError) -> str:
    """One line naming the file: ``could not write 'path': No space left on device``."""
    paths = " -> ".join(repr(str(p)) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    return f"{paths}: {reason}" if paths else reason


def check_out_flag(path_text: str, flag: str) -> Path:
    """``flag`` must be (or become) a writable folder: not a file, its first existing ancestor a folder.

    An empty value is refused (it would silently mean the current folder)."""
    if not str(path_text).strip():
        raise UsageError(f"{flag} is empty; give a folder path")
    path = Path(path_text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path_text!r} exists and is not a folder; give a folder path")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {path_text!r} cannot be created: {str(probe)!r} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path_text!r} is not writable (no write permission on {str(probe)!r})")
    return path
