"""Load stored runs: the per-seed folders ``records.save_runs`` writes.

    <root>/<slug>/<framework>/seed-<k>/{record.json, metrics.json, samples.npz, curves.csv}

A :class:`StoredRun` holds what the report's tables need (read from ``metrics.json``, the
deterministic part of the record); samples and curves are read on demand. Framework-free.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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
    """A run folder is complete when it holds all four files (``save_runs`` renames whole folders)."""
    return all((folder / name).is_file() for name in ("record.json", "metrics.json", "samples.npz", "curves.csv"))


def load_run(folder) -> StoredRun:
    """The run stored in ``folder`` (a ``seed-<k>`` folder)."""
    folder = Path(folder)
    with open(folder / "metrics.json", encoding="utf-8") as f:
        doc = json.load(f)
    metrics = {k: _float(v) if isinstance(v, (int, float)) or v is None else v for k, v in doc["metrics"].items()}
    return StoredRun(slug=doc["slug"], framework=doc["framework"], seed=int(doc["seed"]), status=doc["status"],
                     metrics=metrics, config=doc["config"], path=folder)


def load_cell(root, slug: str, framework: str, seeds=None) -> list[StoredRun]:
    """The complete runs of one (slug, framework) cell under ``root``, by seed; only ``seeds`` if given."""
    cell = Path(root) / slug / framework
    if not cell.is_dir():
        return []
    found = []
    for folder in cell.iterdir():
        if not folder.name.startswith("seed-") or not is_complete(folder):
            continue
        seed = int(folder.name[len("seed-"):])
        if seeds is None or seed in seeds:
            found.append(load_run(folder))
    return sorted(found, key=lambda r: r.seed)
