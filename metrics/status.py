"""Classification of a generated sample: "diverged", "collapsed" or "ok".

A run's metrics are only comparable across runs once it is known whether training blew up
(non-finite output) or the generator mode-collapsed (spread far below the target's); sweeps
count these outcomes separately instead of averaging their metrics in.
"""
from __future__ import annotations

import math

import numpy as np

from .target import SIGMA, all_finite, as_samples

STATUS_OK = "ok"
STATUS_COLLAPSED = "collapsed"
STATUS_DIVERGED = "diverged"
STATUSES = (STATUS_OK, STATUS_COLLAPSED, STATUS_DIVERGED)
"""Every value :func:`run_status` can return."""

COLLAPSE_STD_RATIO = 0.2
"""A sample is "collapsed" when std(samples) < COLLAPSE_STD_RATIO * sigma.

Why 0.2: a generator whose spread is under a fifth of the target's has lost most of the target's
mass. By Chebyshev at least 75% of its samples lie within 2 of its standard deviations of its
mean, i.e. within an interval of half-width 0.4 sigma, and no such interval carries more than
2 Phi(0.4) - 1 = 31% of the target's mass (wherever it is placed). Conversely a sample of the
target itself essentially never falls below the threshold: with n = 10,000 its std is within
~1.5% of sigma, and even for n = 10 the chance is P(chi2_9 < 0.4) ~ 1e-5. This is the
mode-collapse failure of the 1D GAN (the generator's output narrows to a spike), and the
threshold leaves the mild under-dispersion that is common in trained generators (std 0.6-0.9
sigma) classified as "ok", where the metrics quantify it.
"""


def sample_std(samples) -> float:
    """Population std sqrt(mean((x - mean(x))^2)) (ddof = 0); NaN if any x is non-finite.

    Overflow for absurdly large finite samples (|x| > ~1e154) gives inf, without a warning.
    """
    x = as_samples(samples)
    if not all_finite(x):
        return math.nan
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.std(x))


def run_status(samples, *, sigma: float = SIGMA, collapse_ratio: float = COLLAPSE_STD_RATIO) -> str:
    """STATUS_DIVERGED if any sample is non-finite (NaN or +-inf), or the samples are so large
    (|x| > ~1e154) that their std overflows float64; else STATUS_COLLAPSED if
    std(samples) (ddof = 0) < collapse_ratio * sigma; else STATUS_OK.

    A single sample has std 0 and is therefore "collapsed".
    """
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma must be a finite positive number, got {sigma!r}")
    collapse_ratio = float(collapse_ratio)
    if not (math.isfinite(collapse_ratio) and collapse_ratio >= 0.0):
        raise ValueError(f"collapse_ratio must be a finite number >= 0, got {collapse_ratio!r}")
    x = as_samples(samples)
    if not all_finite(x):
        return STATUS_DIVERGED
    std = sample_std(x)
    if not math.isfinite(std):
        return STATUS_DIVERGED
    if std < collapse_ratio * sigma:
        return STATUS_COLLAPSED
    return STATUS_OK
