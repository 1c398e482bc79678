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

Layout written by :func:`save_runs` (one folder per seed; the whole store's contract -- lock,
verification, quarantine -- is in ``ganrepro.store``)::

    <out_dir>/<slug>/<framework>/seed-<k>/
        record.json    the full record: config, slug, framework, seed, metrics, status,
                       timings (of the whole stack), versions, device and device_info,
                       isa, and the seal:
                       "files" {name: sha256 hex of its bytes} for the three files below and
                       "config_sha256" (:func:`config_sha256` of "config")
        metrics.json   config, slug, framework, seed, metrics, status only: byte-identical
                       whenever the same run is repeated (and exactly ``dumps`` of those keys
                       of record.json, plus a newline)
        samples.npz    samples_grid, samples_uniform, boundary_x, boundary of that seed
                       (np.savez, uncompressed: the bytes are deterministic)
        curves.csv     step, then the six curves of ``interface.CURVES``, full float precision

The seal lets a reader verify a run before trusting it (``store.verify_run``): the three files'
bytes against their hashes, record.json against metrics.json, the identity against the folder's
path. record.json itself is not deterministic (timings), so it is not hashed; what it holds
that the report uses is checked against metrics.json.

JSON is written strictly (sorted keys, indent 2, trailing newline): non-finite floats (NaN,
+-inf: a metric that could not be computed) are written as ``null``.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

from .devices import DEFAULT_DEVICE, cpu_info
from .files import current_umask, folder_atomic, write_bytes_atomic  # noqa: F401 (current_umask: re-exported)
from .impls import FRAMEWORKS
from .impls.interface import CURVES
from .seeding import rng_for

DEVICE = DEFAULT_DEVICE
"""The device of a record whose output names none (an output that names none is a CPU run)."""

METRICS_KEYS = ("config", "slug", "framework", "seed", "metrics", "status")
"""The deterministic part of a record, written alone to ``metrics.json``."""

SEALED_FILES = ("metrics.json", "samples.npz", "curves.csv")
"""The files of a run folder whose sha256 record.json carries under "files"."""

RUN_FILES = ("record.json", *SEALED_FILES)


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
    "timings" (the whole stack's, plus "stack_size"), "versions", "device" ("cpu" or "cuda"),
    "device_info" (model, driver, library versions: ``ganrepro.devices``), "isa"}. The samples
    scored are ``output.samples_uniform[i]``: G on fresh U(-8, 8) draws (see the module docstring),
    all seeds at once by ``metrics.evaluate_many`` (the same numbers as one ``evaluate`` per seed),
    with the rows sorted on the training device where it was not the CPU.
    "isa" is ``isa.status()``: whether the instruction-set pin was in force (if it was not, the
    numbers may differ from other CPUs' in the last bits, and a RuntimeWarning says so).
    """
    if getattr(output, "track", None) == "image":
        from .image.scoring import score as score_images

        return score_images(output)
    from . import isa
    from .metrics import evaluate_many

    isa.warn_if_unpinned()
    isa_status = isa.status()

    config = output.config
    config_dict = config.to_dict()
    config_dict.pop("seeds")
    timings = {k: float(v) for k, v in output.timings.items()}
    timings["stack_size"] = len(config.seeds)
    versions = library_versions(output.framework)
    records = []
    scored = evaluate_many(np.asarray(output.samples_uniform, dtype=np.float64),
                           [rng_for(seed, "evaluation") for seed in config.seeds],
                           sorted_samples=getattr(output, "samples_uniform_sorted", None))
    for seed, metrics in zip(config.seeds, scored, strict=True):
        records.append({
            "config": dict(config_dict),
            "slug": config.slug,
            "framework": output.framework,
            "seed": int(seed),
            "metrics": dict(metrics),
            "status": metrics["status"],
            "timings": dict(timings),
            "versions": dict(versions),
            "device": getattr(output, "device", DEVICE),
            "device_info": dict(getattr(output, "device_info", None) or cpu_info()),
            "isa": dict(isa_status),
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
    lines = [",".join(("step", *CURVES))]
    for step, row in zip(steps, curves, strict=True):
        lines.append(",".join([str(int(step))] + [repr(float(v)) for v in row]))
    return "\n".join(lines) + "\n"


def config_sha256(config: dict) -> str:
    """sha256 hex of a config (without seeds) as canonical JSON: sorted keys, no spaces, strict.

    The config identity of a run: two runs are of the same experiment exactly when their slugs
    and config hashes are equal.
    """
    text = json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_nans(values) -> np.ndarray:
    """``values`` as an array with every NaN replaced by the one quiet NaN of its dtype.

    A NaN's sign and payload bits depend on the kernel that made it (a vectorised and a scalar
    loop may differ), so a diverged seed alone and in a stack could store different bytes of the
    same NaN; stored files hold the canonical one. Arrays without NaN are returned unchanged."""
    values = np.asarray(values)
    if values.dtype.kind != "f" or not np.isnan(values).any():
        return values
    return np.where(np.isnan(values), np.array(np.nan, dtype=values.dtype), values)


def seed_files(output, record: dict, i: int) -> dict[str, bytes]:
    """{name: bytes} of the three deterministic files of seed ``i``'s run (see the module docstring;
    an image run's: ``image.scoring.seed_files``)."""
    if getattr(output, "track", None) == "image":
        from .image.scoring import seed_files as image_seed_files

        return image_seed_files(output, record, i)
    samples = io.BytesIO()
    np.savez(samples, samples_grid=canonical_nans(output.samples_grid[i]),
             samples_uniform=canonical_nans(output.samples_uniform[i]),
             boundary_x=np.asarray(output.boundary_x),
             boundary=canonical_nans(output.boundary[i]))
    return {
        "metrics.json": (dumps(metrics_only(record)) + "\n").encode("utf-8"),
        "samples.npz": samples.getvalue(),
        "curves.csv": curves_csv(output.curve_steps, np.asarray(output.curves)[:, i, :]).encode("utf-8"),
    }


def sealed(record: dict, files: dict[str, bytes]) -> dict:
    """``record`` plus its seal: "files" (sha256 of each of ``files``) and "config_sha256"."""
    return {**record, "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
            "config_sha256": config_sha256(record["config"])}


def _write_seed(folder: Path, output, record: dict, i: int) -> None:
    """Write seed ``i``'s four files into ``folder`` (a fresh temporary folder), record.json first."""
    files = seed_files(output, record, i)
    record = {k: v for k, v in record.items() if k != "extras"}  # what seed_files used, not stored in JSON
    write_bytes_atomic(folder / "record.json", (dumps(sealed(record, files)) + "\n").encode("utf-8"))
    for name, data in files.items():
        write_bytes_atomic(folder / name, data)


def save_runs(output, records: list[dict], out_dir, seeds=None) -> list[Path]:
    """Write each seed's run under ``out_dir`` (layout in the module docstring); return the folders.
    ``seeds``: write only these seeds of the output (default: all).

    Each seed folder is written complete into a temporary sibling and renamed into place
    (``files.folder_atomic``), so an interrupted save never leaves a half-written run under the
    final name. An existing run folder is replaced whole. ``OSError`` (a full disk, a read-only
    folder) propagates after the temporary folder is removed; callers turn it into a message.
    """
    wanted = None if seeds is None else set(seeds)
    seeds = list(output.config.seeds)
    if len(records) != len(seeds) or [r["seed"] for r in records] != seeds:
        raise ValueError("records do not match the output's seeds")
    if wanted is not None and not wanted <= set(seeds):
        raise ValueError(f"seeds {sorted(wanted - set(seeds))} are not in the output")
    written = []
    for i, (seed, record) in enumerate(zip(seeds, records, strict=True)):
        if wanted is not None and seed not in wanted:
            continue
        final = run_dir(out_dir, output.config.slug, output.framework, seed)
        final.parent.mkdir(parents=True, exist_ok=True)
        with folder_atomic(final) as tmp:
            _write_seed(tmp, output, record, i)
        written.append(final)
    return written
