"""The exact target distribution p_data = N(mu, sigma^2) of the 1D toy problem.

docs/problem.md#target: mu = 4, sigma = 0.5, defined here once (``ganrepro.sampling`` draws
the real batches from these same constants). Every metric in :mod:`ganrepro.metrics` scores
generated samples against this distribution itself (its closed-form CDF and density), never
against a finite sample of it, except where a draw is unavoidable (the KDE test and validation
sets, see :mod:`.evaluate`).

Also holds the small input checks shared by the metric modules.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

MU = 4.0
"""Mean of the target N(mu, sigma^2)."""

SIGMA = 0.5
"""Standard deviation of the target N(mu, sigma^2)."""

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
"""log(sqrt(2 pi)) = 0.9189385332046727."""


# ---- input checks shared by the metric modules ------------------------------------------------


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise ValueError(f"sigma must be a finite positive number, got {sigma!r}")
    return sigma


def check_target_params(mu: float, sigma: float) -> tuple[float, float]:
    """(float(mu), float(sigma)) after checking mu is finite and sigma finite and > 0."""
    mu = float(mu)
    if not math.isfinite(mu):
        raise ValueError(f"mu must be finite, got {mu!r}")
    return mu, _check_sigma(sigma)


def as_samples(samples, name: str = "samples") -> np.ndarray:
    """The samples as a flat float64 array (any input shape is flattened); raises if empty.

    Non-finite values are kept: each metric decides what they mean (they make it NaN).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    return x


def all_finite(x: np.ndarray) -> bool:
    """True when every entry of x is finite (no NaN, no +-inf)."""
    return bool(np.isfinite(x).all())


# ---- the target distribution ----------------------------------------------------------------


def target_entropy(*, sigma: float = SIGMA) -> float:
    """Differential entropy of N(mu, sigma^2) in nats: H = 0.5 * ln(2 pi e sigma^2).

    For sigma = 0.5 this is 0.7257913526447274, the 0.7258 of docs/problem.md#entropy-bound: no model's
    expected test log-likelihood under the target can exceed -H per sample.
    """
    sigma = _check_sigma(sigma)
    return 0.5 + LOG_SQRT_2PI + math.log(sigma)


TARGET_ENTROPY = target_entropy()
"""H = 0.5 * ln(2 pi e * 0.25) = 0.7257913526447274 nats (entropy of the default target)."""


def target_cdf(x, *, mu: float = MU, sigma: float = SIGMA) -> np.ndarray:
    """F(x) = Phi((x - mu) / sigma), with Phi = scipy.special.ndtr."""
    mu, sigma = check_target_params(mu, sigma)
    return ndtr((np.asarray(x, dtype=np.float64) - mu) / sigma)


def target_sf(x, *, mu: float = MU, sigma: float = SIGMA) -> np.ndarray:
    """1 - F(x) = Phi(-(x - mu) / sigma), computed without cancellation in the upper tail."""
    mu, sigma = check_target_params(mu, sigma)
    return ndtr(-(np.asarray(x, dtype=np.float64) - mu) / sigma)


def target_logpdf(x, *, mu: float = MU, sigma: float = SIGMA) -> np.ndarray:
    """log p(x) = -0.5 * ((x - mu) / sigma)^2 - log(sigma) - log(sqrt(2 pi))."""
    mu, sigma = check_target_params(mu, sigma)
    z = (np.asarray(x, dtype=np.float64) - mu) / sigma
    return -0.5 * z * z - math.log(sigma) - LOG_SQRT_2PI


def target_pdf(x, *, mu: float = MU, sigma: float = SIGMA) -> np.ndarray:
    """p(x) = exp(-0.5 * ((x - mu) / sigma)^2) / (sigma * sqrt(2 pi))."""
    return np.exp(target_logpdf(x, mu=mu, sigma=sigma))


def target_quantile(p, *, mu: float = MU, sigma: float = SIGMA) -> np.ndarray:
    """F^{-1}(p) = mu + sigma * Phi^{-1}(p), with Phi^{-1} = scipy.special.ndtri."""
    mu, sigma = check_target_params(mu, sigma)
    return mu + sigma * ndtri(np.asarray(p, dtype=np.float64))
