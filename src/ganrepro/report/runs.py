"""Load stored runs: the per-seed folders ``records.save_runs`` writes, verified first.

    <root>/<slug>/<framework>/seed-<k>/{record.json, metrics.json, samples.npz, curves.csv}

Every run is verified (``store.verify_run``: content hashes, identity, config) before it is
loaded; a run that fails is never used: :func:`load_cell` raises ``store.DamagedRunError``
naming the file, and the report turns that into a message sending the user to ``ganrepro
sweep`` (which moves the run aside and trains it again). Entries of a cell folder that are not
run folders (``seed-1.bak``) are never parsed as seeds. The store's contract is in
``ganrepro.store``.

A :class:`StoredRun` holds what the report's tables need (read from ``metrics.json``, the
deterministic part of the record); samples and curves are read on demand (their bytes were
verified against record.json's hashes when the run was loaded). Framework-free.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..records import RUN_FILES
from ..store import DamagedRunError, scan_cell, verify_run

METRIC_NAMES = ("ks", "w1", "kde_ll")
"""The scores the report compares: KS statistic and Wasserstein-1 (lower is better) and the
KDE log-likelihood (higher is better)."""

LOWER_IS_BETTER = {"ks": True, "w1": True, "kde_ll": False}


def _float(value) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class StoredRun:
    """One seed's stored run: identity, status and metrics (NaN where a metric was not finite)."""

    slug: str
    framework: str
    seed: int
    status: str
    metrics: dict
    config: dict
    path: Path = field(compare=False)

    def samples(self) -> dict:
        """{"samples_grid", "samples_uniform", "boundary_x", "boundary"} as NumPy arrays."""
        with np.load(self.path / "samples.npz") as data:
            return {k: data[k] for k in data.files}

    def curves(self) -> tuple[np.ndarray, dict]:
        """(steps (L,), {curve name: values (L,)}) from ``curves.csv``."""
        with open(self.path / "curves.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        steps = np.array([int(r[0]) for r in body], dtype=np.int64)
        values = {name: np.array([float(r[i]) for r in body], dtype=np.float64)
                  for i, name in enumerate(header) if i > 0}
        return steps, values


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds all four files (necessary for a run, not sufficient: see ``verify_run``)."""
    return all((folder / name).is_file() for name in RUN_FILES)


def stored_run(doc: dict, folder) -> StoredRun:
    """A :class:`StoredRun` from a verified metrics document."""
    metrics = {k: _float(v) if isinstance(v, (int, float)) or v is None else v for k, v in doc["metrics"].items()}
    return StoredRun(slug=doc["slug"], framework=doc["framework"], seed=int(doc["seed"]), status=doc["status"],
                     metrics=metrics, config=doc["config"], path=Path(folder))


def load_run(folder, config=None) -> StoredRun:
    """The run stored in ``folder`` (``<root>/<slug>/<framework>/seed-<k>``), verified; ``DamagedRunError``
    if it cannot be trusted (also when ``config``, a ``store.cell_config``, is given and differs)."""
    folder = Path(folder)
    slug, framework, name = folder.parent.parent.name, folder.parent.name, folder.name
    seed = name[len("seed-"):]
    if not name.startswith("seed-") or not seed.isdigit() or str(int(seed)) != seed:
        raise DamagedRunError(folder, "its name is not seed-<k>")
    return stored_run(verify_run(folder, slug, framework, int(seed), config), folder)


def load_cell(root, slug: str, framework: str, seeds=None, config=None) -> list[StoredRun]:
    """The verified runs of one (slug, framework) cell under ``root``, by seed; only ``seeds`` if given.

    ``DamagedRunError`` for the first run (of those asked) that cannot be trusted; unknown
    entries are skipped (``store.scan_cell`` lists them).
    """
    scan = scan_cell(root, slug, framework, seeds, config)
    if scan.damaged:
        raise scan.damaged[0]
    return [stored_run(doc, scan.folder / f"seed-{seed}") for seed, doc in sorted(scan.verified.items())]
