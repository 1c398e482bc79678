"""Two diagnostics of an image run read off its checkpoints and curves (docs/images.md).

Mapping instability: G is evaluated at every checkpoint on the same P latent points (the latent
grid) and each image is labelled by the suite's classifier, giving labels l[t, p] for checkpoints
t = 0..T-1. The instability is the mean over consecutive pairs of checkpoints of the fraction of
grid points whose label changes:

    instability = (1 / (T - 1)) sum_{t=1}^{T-1} (1/P) #{p : l[t, p] != l[t-1, p]}

0 for a mapping that keeps every point's class, 1 when every point changes class at every
checkpoint; NaN for fewer than 2 checkpoints.

Gradient vanishing step (the frozen-G experiment): with the curve norms/G recorded at steps
t_0 < t_1 < ..., the first recorded step whose norm has fallen below ``threshold`` (1e-3) times the
first recorded one:

    vanishing_step = min { t_k : norm_k / norm_0 < threshold }     (None if there is none)

Non-finite norms after the first never count as below the threshold.
"""
from __future__ import annotations

import math

import numpy as np

VANISHING_THRESHOLD = 1e-3
"""norms/G below this fraction of its first recorded value counts as vanished."""


def mapping_instability(labels) -> float:
    """Mean over consecutive checkpoints of the fraction of grid points whose label changes.

    labels: integer array (n_checkpoints, P), P >= 1. Returns NaN if n_checkpoints < 2.
    """
    a = np.asarray(labels)
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"labels must have shape (n_checkpoints, P) with P >= 1, got {a.shape}")
    if a.shape[0] < 2:
        return math.nan
    changed = a[1:] != a[:-1]
    return float(np.mean(np.mean(changed, axis=1)))


def gradient_vanishing_step(steps, norms, threshold: float = VANISHING_THRESHOLD) -> int | None:
    """The first recorded step at which norms / norms[0] < threshold, or None if it never happens.

    steps, norms: 1D sequences of the same length >= 1 (the recorded steps and norms/G there).
    norms[0] must be finite and > 0 (the reference); ValueError otherwise.
    """
    t = np.asarray(steps)
    g = np.asarray(norms, dtype=np.float64)
    if t.ndim != 1 or g.ndim != 1 or t.size != g.size or t.size == 0:
        raise ValueError(f"steps and norms must be 1D of the same length >= 1, got {t.shape} and {g.shape}")
    if not (math.isfinite(float(g[0])) and g[0] > 0.0):
        raise ValueError(f"the first recorded norm must be finite and > 0, got {g[0]!r}")
    if not (math.isfinite(threshold) and threshold > 0.0):
        raise ValueError(f"threshold must be finite and > 0, got {threshold!r}")
    with np.errstate(invalid="ignore"):
        below = np.flatnonzero(g / g[0] < threshold)
    return int(t[below[0]]) if below.size else None
