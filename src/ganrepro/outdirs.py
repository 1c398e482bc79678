"""Output folders the commands own: no command deletes or overwrites what it did not write.

``report --out``, ``report --animate ... --out``, ``bench --out`` and ``run --out`` write into a
folder that they *own*. A folder is owned by a kind of output when it holds the manifest
:data:`MANIFEST` (``.ganrepro-output.json``) naming that kind; the command writes the manifest
with the first output it stores there. Before any training or measuring, :func:`claim` checks the
folder given:

- an absent folder (its first existing ancestor a writable folder) or an empty folder is taken;
- a folder with the manifest of the same kind is reused (the command replaces its own files);
- anything else is refused with exit 2 and one line: a file, a non-empty folder without the
  manifest (a folder of the user's files, the current folder, ...), a folder written by another
  command (a bench folder given to ``report --out``), and for ``report`` the runs folder itself,
  a folder inside it or a folder that contains it;
- the folder (or the ancestor it will be created in, and for a report, which is swapped in whole,
  its parent) must accept a file: a probe file is created and removed. A refusal of the probe
  is bad input (exit 2: e.g. ``/proc/x``, no permission), except a read-only filesystem, a full
  disk or an I/O error, which are faults of the environment (exit 1).

The manifest holds no timestamp or path: its bytes depend on the kind only, so a committed report
folder regenerates byte for byte. Temporary siblings of an output that a killed command left
behind (``.<name>.tmp-*``, see :mod:`ganrepro.files`) are removed by the next command that writes
the same output (:func:`remove_stale_temporaries`); nothing else is ever removed.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import EnvironmentFault, UsageError
from .files import TMP_MARK, write_text_atomic

MANIFEST = ".ganrepro-output.json"

KINDS = {
    "report": "ganrepro report",
    "animations": "ganrepro report --animate",
    "benchmarks": "ganrepro bench",
    "runs": "ganrepro run --out",
}
"""kind -> the command that writes it."""

ENVIRONMENT_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EIO})
"""OSErrors that are faults of the environment (exit 1), not of the path the user gave (exit 2)."""


def manifest_text(kind: str) -> str:
    """The manifest's text: fixed bytes per kind (sorted keys, no timestamp)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}; allowed: {', '.join(KINDS)}")
    doc = {"kind": kind, "written_by": KINDS[kind],
           "note": "this folder is written by ganrepro, which may replace what it holds; "
                   "do not keep other files here"}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def owner(folder) -> str | None:
    """The kind named by ``folder``'s manifest, or None (no manifest, or one ganrepro did not write)."""
    try:
        doc = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return kind if kind in KINDS else None


def write_manifest(folder, kind: str) -> Path:
    """Mark ``folder`` (created if needed) as owned by ``kind``; an identical manifest is left alone."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    text = manifest_text(kind)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    write_text_atomic(path, text)
    return path


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def _first_existing(path: Path) -> Path:
    probe = path
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    return probe


def fault(exc: OSError, message: str) -> Exception:
    """``message`` as the right error class for ``exc``: EnvironmentFault or UsageError."""
    reason = exc.strerror or str(exc)
    cls = EnvironmentFault if exc.errno in ENVIRONMENT_ERRNOS else UsageError
    return cls(f"{message}: {reason}")


def probe_writable(folder: Path, flag: str, text: str) -> None:
    """Create and remove a file in ``folder``; the error names the flag, the value and the folder."""
    try:
        fd, name = tempfile.mkstemp(prefix=".ganrepro-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        where = "" if str(folder) in (text, str(Path(text))) else f" (in {str(folder)!r})"
        raise fault(exc, f"{flag} {text!r} cannot be written{where}") from None


def claim(text: str, flag: str, kind: str, *, avoid: Iterable[tuple[str, str]] = (),
          swapped: bool = False) -> Path:
    """Check that the command may write its ``kind`` of output into the folder ``text`` (see the
    module docstring) and return it as a Path; nothing is created. ``avoid``: (flag, path) pairs of
    folders the output may neither be, nor lie in, nor contain (the runs folder of a report).
    ``swapped``: the folder is replaced whole (its parent must be writable too)."""
    if text is None or not str(text).strip():
        raise UsageError(f"{flag} is empty; give a folder path")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {text!r} exists and is not a folder; give a folder path")
    base = _first_existing(path)
    if not base.is_dir():
        raise UsageError(f"{flag} {text!r} cannot be created: {str(base)!r} is not a folder")
    resolved = path.resolve()
    for other_flag, other in avoid:
        there = Path(other).resolve()
        if _contains(resolved, there) or _contains(there, resolved):
            relation = ("is" if resolved == there else "lies inside" if _contains(there, resolved)
                        else "contains")
            raise UsageError(f"{flag} {text!r} {relation} the {other_flag} folder {str(other)!r}; "
                             f"give another folder")
    if path.is_dir():
        try:
            entries = sorted(os.listdir(path))
        except OSError as exc:
            raise fault(exc, f"{flag} {text!r} cannot be read") from None
        found = owner(path)
        if found is not None and found != kind:
            raise UsageError(f"{flag} {text!r} holds the output of '{KINDS[found]}', not of '{KINDS[kind]}'; "
                             "give another folder")
        if found is None and entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(f"{flag} {text!r} is a folder that ganrepro did not write ({len(entries)} "
                             f"entr{'y' if len(entries) == 1 else 'ies'}: {shown}; no {MANIFEST}); give a new "
                             "or empty folder: ganrepro never overwrites what it did not write")
        probe_writable(path, flag, text)
        if swapped:
            probe_writable(_first_existing(resolved.parent), flag, text)
    else:
        probe_writable(base, flag, text)
    return path


def remove_stale_temporaries(parent, name: str) -> list[Path]:
    """Remove ``parent/.<name>.tmp-*`` (the temporaries of output ``name`` that a killed command
    left); returns what was removed. Nothing else is touched."""
    parent = Path(parent)
    prefix = f".{name}{TMP_MARK}"
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed
