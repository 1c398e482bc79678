"""The target and noise distributions, drawn with NumPy (docs/problem.md: #real-batches,
#generator-noise, #pretraining-data).

The target's mean and standard deviation are defined once, in ``ganrepro.metrics.target``
(``MU``, ``SIGMA``: the distribution the metrics score against); here they are only imported.
:func:`target_pdf` keeps the protocol's own formula (pretraining's labels, section 6), which
rounds differently from the metrics' log-space density.
"""
from __future__ import annotations

import numpy as np

from .metrics.target import MU as TARGET_MU
from .metrics.target import SIGMA as TARGET_SIGMA

STRATIFIED_JITTER = 0.01
PRETRAIN_SPAN = 10.0


def real_batches(rng: np.random.Generator, steps: int, batch_size: int) -> np.ndarray:
    """``steps`` real batches, shape (steps, B): each row is B draws of N(4, 0.5), sorted ascending."""
    x = rng.normal(TARGET_MU, TARGET_SIGMA, size=(steps, batch_size))
    x.sort(axis=1)
    return x


def stratified_noise(rng: np.random.Generator, steps: int, batch_size: int, noise_range: float) -> np.ndarray:
    """``steps`` generator inputs, shape (steps, B): z = linspace(-R, R, B) + 0.01 * U(0, 1)^B."""
    grid = np.linspace(-noise_range, noise_range, batch_size)
    return grid + STRATIFIED_JITTER * rng.random((steps, batch_size))


def uniform_noise(rng: np.random.Generator, n: int, noise_range: float) -> np.ndarray:
    """n draws of U(-R, R): the continuous counterpart of the stratified noise, for evaluation."""
    return rng.uniform(-noise_range, noise_range, size=n)


def target_pdf(x: np.ndarray) -> np.ndarray:
    """N(4, 0.5) density: exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))."""
    return np.exp(-((x - TARGET_MU) ** 2) / (2 * TARGET_SIGMA**2)) / (TARGET_SIGMA * np.sqrt(2 * np.pi))


def pretrain_batches(rng: np.random.Generator, steps: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Protocol 2016's pretraining data, each (steps, B): d = (U(0,1) - 0.5) * 10, labels = pdf(d)."""
    d = (rng.random((steps, batch_size)) - 0.5) * PRETRAIN_SPAN
    return d, target_pdf(d)
