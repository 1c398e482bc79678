"""Score a trained stack of seeds and save its runs to disk, deterministically.

Framework-free: nothing here imports torch or tensorflow (a backend's ``versions()`` is asked
only when its module is already loaded, i.e. after training; otherwise the installed package's
metadata is read).

What is scored: for each seed, ``metrics.evaluate`` of ``output.samples_uniform[i]`` -- the
trained G applied to 10,000 fresh draws z ~ U(-8, 8) (purpose ``eval_noise``), which is the
proper distribution of G(z). ``samples_grid`` (G on a linspace of z, as the reference plots)
is saved but not scored: an evenly spaced input is not a sample of the noise distribution.
The metrics' own draws from the target come from ``rng_for(seed, "evaluation")``, so a seed's
score never depends on the seeds stacked beside it.

Layout written by :func:`save_runs` (one folder per seed)::

    <out_dir>/<slug>/<framework>/seed-<k>/
        record.json    the full record: config, slug, framework, seed, metrics, status,
                       timings (of the whole stack), versions, device
        metrics.json   config, slug, framework, seed, metrics, status only: byte-identical
                       whenever the same run is repeated
        samples.npz    samples_grid, samples_uniform, boundary_x, boundary of that seed
                       (np.savez, uncompressed: the bytes are deterministic)
        curves.csv     step, then the six curves of ``interface.CURVES``, full float precision

JSON is written strictly (sorted keys, indent 2, trailing newline): non-finite floats (NaN,
+-inf: a metric that could not be computed) are written as ``null``.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .impls import FRAMEWORKS
from .impls.interface import CURVES
from .seeding import rng_for

DEVICE = "cpu"

METRICS_KEYS = ("config", "slug", "framework", "seed", "metrics", "status")
"""The deterministic part of a record, written alone to ``metrics.json``."""


# ---- scoring ------------------------------------------------------------------------------
def library_versions(framework: str) -> dict:
    """python, numpy, scipy and the framework's library versions (never imports a framework)."""
    import scipy

    versions = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    module_name = FRAMEWORKS[framework][1] if framework in FRAMEWORKS else None
    backend = sys.modules.get(module_name) if module_name else None
    if backend is not None and hasattr(backend, "versions"):
        versions.update(backend.versions())
    elif framework in FRAMEWORKS:
        lib = FRAMEWORKS[framework][0]
        for dist in (lib, f"{lib}-cpu"):
            try:
                versions[lib] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def score(output) -> list[dict]:
    """One record per seed of ``output`` (a ``training.TrainingOutput``), in the stack's order.

    Each record: {"config" (without seeds), "slug", "framework", "seed", "metrics", "status",
    "timings" (the whole stack's, plus "stack_size"), "versions", "device"}. The samples scored
    are ``output.samples_uniform[i]``: G on fresh U(-8, 8) draws (see the module docstring).
    """
    from .metrics import evaluate

    config = output.config
    config_dict = config.to_dict()
    config_dict.pop("seeds")
    timings = {k: float(v) for k, v in output.timings.items()}
    timings["stack_size"] = len(config.seeds)
    versions = library_versions(output.framework)
    records = []
    for i, seed in enumerate(config.seeds):
        samples = np.asarray(output.samples_uniform[i], dtype=np.float64)
        metrics = evaluate(samples, rng=rng_for(seed, "evaluation"))
        records.append({
            "config": dict(config_dict),
            "slug": config.slug,
            "framework": output.framework,
            "seed": int(seed),
            "metrics": dict(metrics),
            "status": metrics["status"],
            "timings": dict(timings),
            "versions": dict(versions),
            "device": DEVICE,
        })
    return records


def metrics_only(record: dict) -> dict:
    """The deterministic part of a record (what ``metrics.json`` holds)."""
    return {k: record[k] for k in METRICS_KEYS}


# ---- JSON ---------------------------------------------------------------------------------
def jsonable(obj):
    """``obj`` with NumPy scalars/arrays made plain and non-finite floats made ``None``."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def dumps(obj, **kwargs) -> str:
    """Strict, deterministic JSON text (sorted keys, indent 2 unless overridden)."""
    kwargs.setdefault("indent", 2)
    return json.dumps(jsonable(obj), sort_keys=True, allow_nan=False, **kwargs)


# ---- saving -------------------------------------------------------------------------------
def run_dir(out_dir, slug: str, framework: str, seed: int) -> Path:
    """Where :func:`save_runs` puts one seed's run."""
    return Path(out_dir) / slug / framework / f"seed-{int(seed)}"


def curves_csv(steps: np.ndarray, curves: np.ndarray) -> str:
    """CSV text: ``step`` then the CURVES columns; floats in full precision (repr)."""
    lines = [",".join(("step",) + tuple(CURVES))]
    for step, row in zip(steps, curves):
        lines.append(",".join([str(int(step))] + [repr(float(v)) for v in row]))
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _write_seed(folder: Path, output, record: dict, i: int) -> None:
    _write_text(folder / "record.json", dumps(record) + "\n")
    _write_text(folder / "metrics.json", dumps(metrics_only(record)) + "\n")
    with open(folder / "samples.npz", "wb") as f:
        np.savez(f, samples_grid=np.asarray(output.samples_grid[i]),
                 samples_uniform=np.asarray(output.samples_uniform[i]),
                 boundary_x=np.asarray(output.boundary_x),
                 boundary=np.asarray(output.boundary[i]))
    _write_text(folder / "curves.csv", curves_csv(output.curve_steps, np.asarray(output.curves)[:, i, :]))


def current_umask() -> int:
    """The process's umask (read without changing it for longer than a call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_runs(output, records: list[dict], out_dir) -> list[Path]:
    """Write each seed's run under ``out_dir`` (layout in the module docstring); return the folders.

    Each seed folder is written complete into a temporary sibling and renamed into place, so an
    interrupted save never leaves a half-written run under the final name. An existing run
    folder is replaced: the old one is renamed away, the new one renamed in, the old deleted.
    """
    seeds = list(output.config.seeds)
    if len(records) != len(seeds) or [r["seed"] for r in records] != seeds:
        raise ValueError("records do not match the output's seeds")
    mode = 0o777 & ~current_umask()
    written = []
    for i, (seed, record) in enumerate(zip(seeds, records)):
        final = run_dir(out_dir, output.config.slug, output.framework, seed)
        parent = final.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=parent))
        try:
            _write_seed(tmp, output, record, i)
            os.chmod(tmp, mode)
            if final.exists() or final.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=parent))
                os.rmdir(old)  # only reserve a unique name
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written.append(final)
    return written
