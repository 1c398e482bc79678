"""The runs folder (the store): its layout, and how a stored run is verified before it is trusted.

Layout of a runs folder (``--runs``)::

    <runs>/
        .lock                           the sweep driver's advisory lock (``ganrepro.lock``)
        sweep-<grid>.json               each grid's manifest (variant -> stored cell)
        quarantine/                     runs moved aside by a sweep; never read as runs
            <UTC time>-<slug>-<framework>-seed-<k>/
                QUARANTINE.txt          where it was and why it was moved
                ...                     the run's files, untouched
        <slug>/<framework>/seed-<k>/    one run (``records.save_runs``): record.json,
                                        metrics.json, samples.npz, curves.csv

Contract:

* A run exists exactly when its folder exists under its final name ``seed-<k>`` (``k`` in
  canonical decimal form). Folders are written complete under a temporary name and renamed in
  (``ganrepro.files``), so a reader never sees half of one; temporary leftovers of a killed
  writer (``.seed-<k>.tmp-*``) are removed by the next sweep, under the lock, never by a reader.
* A run is *trusted* only when :func:`verify_run` passes: record.json parses and carries the
  seal (``"files"``: sha256 of metrics.json, samples.npz and curves.csv; ``"config_sha256"``);
  each sealed file exists and matches its hash; metrics.json is exactly the deterministic part
  of record.json (so record.json cannot disagree with it); the run's slug, framework and seed
  are those of its folder's path (a copied seed folder fails here); the config hash is that of
  the recorded config, and -- when the reader knows which config the cell should hold -- the
  config equals it (a run of another config, e.g. another ``--curve-interval``, fails here).
  Verifying is cheap: about 165 kB read and hashed a run, 0.5 ms (measured on the smoke grid:
  ``load_grid`` 4 ms -> 22 ms for 32 runs; about 0.7 s for the default grid's 1,344 runs).
* Runs stored before the seal existed (record.json without ``"files"``) are *unverifiable*
  and treated like damaged ones: ``sweep`` moves them aside and trains them again (the bytes
  of a retrained run are identical, the seeding being deterministic), ``report`` refuses them.
  Verifying "what can be verified" (parsing) would still trust an edited metrics.json, so
  no partial trust is given.
* ``sweep`` (holding the lock) moves every untrusted run of its grid into ``quarantine/``,
  printing one line per run naming it and the reason, and trains it again. ``report`` never
  changes the store: it refuses an untrusted run with a message naming the file and the fix
  (``ganrepro sweep ...``).
* Entries that are not part of the layout (``seed-1.bak``, ``seed-01``, a file ``notes`` in a
  cell folder, an unknown folder beside the framework folders) are *unknown*: they are reported
  (one line each) and left alone, never parsed as runs.

Framework-free.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import records as rec
from .errors import UsageError
from .files import is_temporary, write_text_atomic
from .impls import FRAMEWORKS

QUARANTINE = "quarantine"
"""The folder, directly under the runs folder, that holds the runs a sweep moved aside."""

RUN_NAME = re.compile(r"seed-(0|[1-9][0-9]*)")
"""A run folder's name: ``seed-<k>``, k in canonical decimal form (``seed-01`` is not a run)."""

RECORD_KEYS = set(rec.METRICS_KEYS) | {"timings", "versions", "device", "files", "config_sha256"}


class DamagedRunError(UsageError):
    """A stored run that cannot be trusted (exit 2): the message names the file and the fix."""

    def __init__(self, folder: Path, reason: str):
        self.folder, self.reason = Path(folder), reason
        super().__init__(f"the stored run {str(folder)!r} cannot be trusted: {reason}")


def seed_of(name: str) -> int | None:
    """The seed a run folder's name stands for, or None if ``name`` is not a run folder's name."""
    m = RUN_NAME.fullmatch(name)
    return int(m.group(1)) if m else None


def cell_config(config) -> dict:
    """The config a cell's runs must record: an ``ExperimentConfig``'s fields less its seeds, as JSON."""
    return rec.jsonable({k: v for k, v in config.to_dict().items() if k != "seeds"})


def _differences(stored: dict, expected: dict) -> str:
    keys = sorted(k for k in set(stored) | set(expected) if stored.get(k, "-") != expected.get(k, "-"))
    shown = ", ".join(f"{k} {stored.get(k, '-')!r} where the grid has {expected.get(k, '-')!r}" for k in keys[:3])
    return shown + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


class DeviceMismatch(UsageError):
    """A stored run was trained on another device than the sweep's (exit 2; nothing is moved)."""


def verify_run(folder, slug: str, framework: str, seed: int, config: dict | None = None,
               device: str | None = None) -> dict:
    """The verified metrics document (metrics.json) of the run in ``folder``; ``DamagedRunError`` otherwise.

    ``folder`` is ``<runs>/<slug>/<framework>/seed-<seed>``; ``config`` (``cell_config``), when
    given, is the config the run must hold. Every check of the module docstring is made; any
    failure (missing, unreadable, unparsable, inconsistent, foreign) raises, naming the file.
    ``device`` ("cpu" or "cuda"), when given, is the device the run must have been trained on
    (records without one are CPU runs); a sound run of another device raises ``DeviceMismatch``:
    it is not damaged, the folder belongs to another device's sweep.
    """
    folder = Path(folder)

    def damaged(reason: str):
        return DamagedRunError(folder, reason)

    if not folder.is_dir():
        raise damaged("it is not a folder")
    data = {}
    for name in rec.RUN_FILES:
        try:
            data[name] = (folder / name).read_bytes()
        except FileNotFoundError:
            raise damaged(f"{name} is missing") from None
        except OSError as exc:
            raise damaged(f"{name} cannot be read ({exc.strerror})") from None
    try:
        record = json.loads(data["record.json"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise damaged("record.json is not valid JSON (truncated or damaged)") from None
    if not isinstance(record, dict):
        raise damaged("record.json is not a record (not a JSON object)")
    if "files" not in record:
        raise damaged("record.json has no content hashes (stored by an older ganrepro, so it cannot be verified)")
    if not RECORD_KEYS <= set(record) or not isinstance(record["files"], dict) \
            or not isinstance(record["config"], dict):
        missing = sorted(RECORD_KEYS - set(record))
        raise damaged(f"record.json is incomplete (missing {', '.join(missing) or 'a well-formed field'})")
    for name in rec.SEALED_FILES:
        if hashlib.sha256(data[name]).hexdigest() != record["files"].get(name):
            raise damaged(f"{name} does not match its sha256 in record.json (damaged, truncated or edited)")
    try:
        expected_metrics = (rec.dumps(rec.metrics_only(record)) + "\n").encode("utf-8")
        consistent = expected_metrics == data["metrics.json"]
        config_hash = rec.config_sha256(record["config"])
    except (TypeError, ValueError):
        consistent, config_hash = False, None
    if not consistent:
        raise damaged("record.json disagrees with metrics.json (edited)")
    if config_hash != record["config_sha256"]:
        raise damaged("record.json's config does not match its config_sha256 (edited)")
    if (record["slug"], record["framework"], record["seed"]) != (slug, framework, seed):
        raise damaged(f"record.json holds the run {record['slug']}/{record['framework']}/seed-{record['seed']}, "
                      f"not this folder's (a copy of another run's folder?)")
    if config is not None and record["config"] != config:
        raise damaged(f"it holds a run of another config ({_differences(record['config'], config)})")
    stored_device = record.get("device", "cpu")
    if device is not None and stored_device != device:
        raise DeviceMismatch(f"{str(folder)!r} was trained on {stored_device}, and this sweep trains on {device}: "
                             "a runs folder holds one device's runs (so that no report mixes them); "
                             f"give the {device} sweep a --runs folder of its own")
    return json.loads(data["metrics.json"].decode("utf-8"))


# ---- scanning ----------------------------------------------------------------------------------
@dataclass
class CellScan:
    """What a cell folder holds for the seeds asked: verified runs, damaged runs, unknown entries."""

    folder: Path
    verified: dict = field(default_factory=dict)  # seed -> metrics document
    damaged: list = field(default_factory=list)  # DamagedRunError, by seed
    unknown: list = field(default_factory=list)  # Paths


def scan_cell(root, slug: str, framework: str, seeds=None, config: dict | None = None,
              device: str | None = None) -> CellScan:
    """Verify the runs of ``seeds`` (None: every run) in ``<root>/<slug>/<framework>/``
    (``config``, ``device``: what each run must hold, see :func:`verify_run`).

    Seed folders of other seeds are left unread; entries that are not run folders nor temporary
    leftovers are listed in ``unknown``. A missing cell folder is an empty scan.
    """
    folder = Path(root) / slug / framework
    scan = CellScan(folder)
    try:
        entries = sorted(folder.iterdir())
    except FileNotFoundError:
        return scan
    except NotADirectoryError:
        scan.unknown.append(folder)
        return scan
    wanted = None if seeds is None else set(seeds)
    damaged: dict[int, DamagedRunError] = {}
    for entry in entries:
        if is_temporary(entry):
            continue
        seed = seed_of(entry.name)
        if seed is None:
            scan.unknown.append(entry)
        elif wanted is None or seed in wanted:
            try:
                scan.verified[seed] = verify_run(entry, slug, framework, seed, config, device)
            except DamagedRunError as exc:
                damaged[seed] = exc
    scan.damaged = [damaged[seed] for seed in sorted(damaged)]
    return scan


def unknown_in_slug(root, slug: str) -> list[Path]:
    """Entries of ``<root>/<slug>/`` that are neither a framework's folder nor a temporary leftover."""
    folder = Path(root) / slug
    if not folder.is_dir():
        return []
    return sorted(e for e in folder.iterdir() if not is_temporary(e) and not (e.name in FRAMEWORKS and e.is_dir()))


# ---- changing the store (a sweep's driver, holding the lock) -------------------------------------
def quarantine(root, folder: Path, reason: str) -> Path:
    """Move the run ``folder`` into ``<root>/quarantine/`` (one rename) with a note; return its new path."""
    root, folder = Path(root), Path(folder)
    rel = folder.relative_to(root)
    base = Path(root) / QUARANTINE
    base.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{stamp}-{'-'.join(rel.parts)}"
    dest, n = base / name, 1
    while os.path.lexists(dest):
        n += 1
        dest = base / f"{name}.{n}"
    os.rename(folder, dest)
    note = f"moved here from {rel} by 'ganrepro sweep' at {stamp}: {reason}\n"
    write_text_atomic(dest / "QUARANTINE.txt" if dest.is_dir() else dest.with_name(dest.name + ".txt"), note)
    return dest


def remove_stale(root) -> int:
    """Delete the temporary leftovers of killed writers in the runs folder, its slug and cell folders.

    Only a sweep's driver calls this, holding the lock, so no live writer owns them. Also removes
    the ``.seed-<k>.old-*`` folders of earlier versions. The quarantine folder is not touched.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    removed = 0

    def stale(entry: Path) -> bool:
        return is_temporary(entry) or (entry.name.startswith(".seed-") and ".old-" in entry.name)

    levels = [root]
    for slug in root.iterdir():
        if slug.is_dir() and slug.name != QUARANTINE and not stale(slug):
            levels.append(slug)
            levels.extend(f for f in slug.iterdir() if f.is_dir() and not stale(f))
    for folder in levels:
        for entry in folder.iterdir():
            if stale(entry):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
    return removed
