"""Score a trained stack of image seeds and lay out the files each seed's run stores.

The image track's counterpart of ``records.score`` / ``records.seed_files`` (which dispatch here
for an image run), so that the store, its seals and the sweep are shared by both tracks. Per seed
(docs/images.md#evaluation, docs/metrics-images.md):

- the metrics of ``metrics.images.evaluate_images`` on the seed's 10,000 generated images
  (Parzen window, Frechet distance on the suite's classifier, its Inception-score analogue, mode
  coverage), with the classifier's cached weights (``prepare``);
- ``mapping_instability``: the latent grid's images at every checkpoint, classified; the mean
  fraction of grid points whose class changes between consecutive checkpoints;
- from the curves: ``vanish_step`` (first recorded step where norms/G < 1e-3 x its first value,
  the frozen-G experiment's question; null if never) and ``loss_g_at_vanish``, ``norms_g_median``
  and ``norms_d_median`` over the run, ``loss_g_final``, ``loss_d_final``.

Files (the store's three sealed files, as for the 1D track): ``metrics.json``; ``curves.csv``
(step, then the six curves); ``samples.npz`` with ``samples`` (the first 100 generated images),
``checkpoints`` (the latent grid's images at each checkpoint), both as bytes round(255 p),
``checkpoint_steps`` and ``checkpoint_labels`` (the classifier's class per grid point).
Framework-free.
"""
from __future__ import annotations

import io

import numpy as np

from ..impls.interface import CURVES
from .config import ImageConfig

STORED_SAMPLES = 100
VANISH_THRESHOLD = 1e-3
"""norms/G below this fraction of its first recorded value counts as vanished."""


def prepare(dataset: str):
    """The data set and the suite's classifier for it (trained once, deterministically, and cached
    under ``$GANREPRO_CACHE`` or ``~/.cache/ganrepro``: ``metrics.images.load_or_train``)."""
    import warnings

    from ..metrics.images import MIN_ACCURACY, load_or_train
    from .data import load_dataset

    data = load_dataset(dataset)
    classifier = load_or_train(data)
    if not classifier.test_accuracy >= MIN_ACCURACY[dataset]:
        warnings.warn(f"the suite's {dataset} classifier reaches test accuracy {classifier.test_accuracy:.4f}, "
                      f"below its target {MIN_ACCURACY[dataset]}: its scores (FID, IS, coverage, instability) "
                      "are less reliable", RuntimeWarning, stacklevel=2)
    return data, classifier


def to_bytes(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as uint8 round(255 p) (non-finite values as 0)."""
    x = np.nan_to_num(np.asarray(images, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def curve_metrics(steps: np.ndarray, curves: np.ndarray) -> dict:
    """The curve-derived metrics of one seed (curves (n, 6) in the order of CURVES)."""
    from ..metrics.images import gradient_vanishing_step

    col = {name: curves[:, k].astype(np.float64) for k, name in enumerate(CURVES)}
    vanish = gradient_vanishing_step(steps, col["norms/G"], VANISH_THRESHOLD)
    at = None if vanish is None else float(col["loss/G"][list(steps).index(vanish)])
    finite = all(np.isfinite(v).all() for v in col.values())
    return {
        "vanish_step": None if vanish is None else int(vanish),
        "loss_g_at_vanish": at,
        "norms_g_median": float(np.median(col["norms/G"])) if finite else float("nan"),
        "norms_d_median": float(np.median(col["norms/D"])) if finite else float("nan"),
        "loss_g_final": float(col["loss/G"][-1]),
        "loss_d_final": float(col["loss/D"][-1]),
    }


def checkpoint_labels(output, classifier) -> np.ndarray:
    """(n_checkpoints, S, 225) classes of the latent grid's images (-1 where an image is not finite)."""
    n_ck, s = output.checkpoints.shape[:2]
    flat = output.checkpoints.reshape(n_ck * s * output.checkpoints.shape[2], *output.checkpoints.shape[3:])
    ok = np.isfinite(flat.reshape(len(flat), -1)).all(axis=1)
    labels = np.full(len(flat), -1, dtype=np.int64)
    if ok.any():
        labels[ok] = classifier.predict(np.asarray(flat[ok], dtype=np.float64))
    return labels.reshape(n_ck, s, -1)


def score(output, *, prepared=None) -> list[dict]:
    """One record per seed of ``output`` (an ``ImageTrainingOutput``), like ``records.score``'s.

    ``prepared``: (data, classifier) from :func:`prepare` (loaded here when not given). The record
    also carries ``checkpoint_labels`` under "extras" for :func:`seed_files` (not written to JSON).
    """
    from .. import isa
    from ..devices import cpu_info
    from ..metrics.images import evaluate_images, mapping_instability
    from ..records import DEVICE, library_versions

    isa.warn_if_unpinned()
    isa_status = isa.status()
    config: ImageConfig = output.config
    data, classifier = prepared or prepare(config.dataset)
    labels = checkpoint_labels(output, classifier)
    config_dict = config.to_dict()
    config_dict.pop("seeds")
    timings = {k: float(v) for k, v in output.timings.items()}
    timings["stack_size"] = len(config.seeds)
    versions = library_versions(output.framework)
    records = []
    for i, seed in enumerate(config.seeds):
        metrics = dict(evaluate_images(np.asarray(output.samples[i], dtype=np.float64), data, classifier))
        seed_labels = labels[:, i]
        metrics["mapping_instability"] = (float(mapping_instability(seed_labels))
                                          if (seed_labels >= 0).all() else float("nan"))
        metrics.update(curve_metrics(output.curve_steps, np.asarray(output.curves)[:, i, :]))
        if not np.isfinite(np.asarray(output.curves)[:, i, :]).all():
            metrics["status"] = "diverged"
        records.append({
            "config": dict(config_dict), "slug": config.slug, "framework": output.framework, "seed": int(seed),
            "metrics": metrics, "status": metrics["status"], "timings": dict(timings), "versions": dict(versions),
            "device": getattr(output, "device", DEVICE), "device_info": dict(getattr(output, "device_info", None)
                                                                              or cpu_info()),
            "isa": dict(isa_status), "extras": {"checkpoint_labels": seed_labels},
        })
    return records


def seed_files(output, record: dict, i: int) -> dict[str, bytes]:
    """{name: bytes} of the three sealed files of seed ``i``'s image run (see the module docstring)."""
    from ..records import curves_csv, dumps, metrics_only

    samples = io.BytesIO()
    np.savez(samples, samples=to_bytes(output.samples[i][:STORED_SAMPLES]),
             checkpoints=to_bytes(output.checkpoints[:, i]),
             checkpoint_steps=np.asarray(output.checkpoint_steps, dtype=np.int64),
             checkpoint_labels=np.asarray(record["extras"]["checkpoint_labels"], dtype=np.int64))
    return {
        "metrics.json": (dumps(metrics_only(record)) + "\n").encode("utf-8"),
        "samples.npz": samples.getvalue(),
        "curves.csv": curves_csv(output.curve_steps, np.asarray(output.curves)[:, i, :]).encode("utf-8"),
    }
