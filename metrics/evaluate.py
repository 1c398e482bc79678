"""One call that scores one array of generated samples against the target N(mu, sigma^2)."""
from __future__ import annotations

import math

import numpy as np

from .distance import ks_statistic_sorted, wasserstein1_sorted
from .kde import DEFAULT_BANDWIDTHS, _kde_sorted
from .status import STATUS_DIVERGED, run_status, sample_std
from .target import MU, SIGMA, as_samples, check_target_params

_GRID = np.array(DEFAULT_BANDWIDTHS)

METRIC_KEYS = ("status", "ks", "w1", "kde_ll", "kde_ll_stderr", "kde_bandwidth", "mean", "std")
"""The keys of :func:`evaluate`'s result, in order."""


def evaluate(
    samples,
    *,
    rng: np.random.Generator,
    n_test: int = 10_000,
    n_validation: int = 2_000,
    mu: float = MU,
    sigma: float = SIGMA,
) -> dict:
    """Every metric of one generated sample, as a plain dict of Python floats and one string.

    Draws, in this order (the order is part of reproducibility):
      1. validation = rng.normal(mu, sigma, size=n_validation)  (picks the KDE bandwidth)
      2. test       = rng.normal(mu, sigma, size=n_test)        (scores the KDE)
    The draws are made for every sample, diverged or not, so ``rng`` always advances by the
    same amount. Use a generator dedicated to evaluation (ganrepro.seeding: purpose
    "evaluation"); pass a fresh one per evaluation for results that depend on the seed only.

    Returns {key: value} with keys METRIC_KEYS:
      status         run_status(samples, sigma=sigma): "ok", "collapsed" or "diverged"
      ks             ks_statistic: sup_x |F_n(x) - Phi((x - mu)/sigma)|
      w1             wasserstein1: int |F_n(x) - Phi((x - mu)/sigma)| dx
      kde_ll         kde_log_likelihood(...).mean: mean Parzen log-likelihood of the test draw
      kde_ll_stderr  its standard error std(ddof=1)/sqrt(n_test)
      kde_bandwidth  the bandwidth chosen on the validation draw (grid DEFAULT_BANDWIDTHS)
      mean, std      mean and population std (ddof = 0) of the samples
    For a diverged sample (any non-finite value, or a std that overflows) every number is NaN; no
    exception is raised and no warning is emitted. Collapsed samples get all metrics computed
    (read kde_ll together with status: a Parzen score alone does not see collapse, see
    :mod:`.kde`). Same samples and same generator state give bit-identical results.

    Timing, 10,000 samples with the defaults, on the 2-core development machine (Intel Xeon with
    AVX-512, but NumPy's SIMD pinned to AVX2 by ganrepro's instruction-set pin, NumPy 2.4): 33 ms
    for a target-like sample (23 ms of it the test score at the chosen h = 0.125, 5-8 ms the
    bandwidth choice, :mod:`.kde_select`), 16 ms for a narrow one (std 0.05), 14 ms for a bimodal
    one, 15-55 ms for other shapes (point mass, std 5, heavy tails, distant modes, duplicates);
    before the bandwidth choice stopped computing every validation score, 0.24 s, 0.27 s, 0.16 s
    and 0.11-0.46 s. Most of what is left is the test score at h*, whose cost depends on h*: 4 ms
    at h = 1, 23-37 ms at 0.044-0.125, 63-80 ms at 0.011-0.031 (direct sums; about 1 in 9 perfect
    samples picks such an h, and then takes ~75 ms). KS and W1 take ~2 ms together.
    :func:`evaluate_many` scores a stack of sample sets (one generator each), sorting once.
    """
    _check_rng(rng)
    mu, sigma = check_target_params(mu, sigma)
    n_test, n_validation = _check_sizes(n_test, n_validation)
    x = as_samples(samples)
    return _evaluate_row(x, None, rng, n_test, n_validation, mu, sigma)


def evaluate_many(
    samples,
    rngs,
    *,
    n_test: int = 10_000,
    n_validation: int = 2_000,
    mu: float = MU,
    sigma: float = SIGMA,
    sorted_samples=None,
) -> list[dict]:
    """:func:`evaluate` of every row of a (S, N) stack of samples, row r with generator rngs[r].

    ``sorted_samples`` (optional): the rows already sorted (e.g. on a GPU by the twin's
    ``sort_rows``); used instead of sorting here. Sorting is exact, so the results are the same.
    Rows that are not finite are never read from it (they are scored as diverged).

    Returns [evaluate(samples[r], rng=rngs[r], ...) for r in range(S)], each dict equal to that
    bit for bit (the same draws in the same order from each generator, the same numbers), with
    all rows sorted at once (np.sort along axis 1) and each sorted row used for KS, W1 and the
    KDE without sorting again. samples: anything np.asarray makes a 2-D float64 array of S rows of
    N >= 1 values (e.g. one row per seed); rngs: S numpy Generators (one per row, e.g. each
    seed's evaluation stream). Every argument is checked before any generator is drawn from.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"samples must be a 2-D array (one row per sample set), got shape {x.shape}")
    rngs = list(rngs)
    if len(rngs) != x.shape[0]:
        raise ValueError(f"need one generator per row: {x.shape[0]} rows, {len(rngs)} generators")
    for rng in rngs:
        _check_rng(rng)
    mu, sigma = check_target_params(mu, sigma)
    n_test, n_validation = _check_sizes(n_test, n_validation)
    if x.shape[0] and x.shape[1] == 0:
        raise ValueError("samples is empty")
    if sorted_samples is None:
        x_sorted = np.sort(x, axis=1)  # NaN rows sort too (NaN last); they are diverged, never used
    else:
        x_sorted = np.asarray(sorted_samples, dtype=np.float64)
        if x_sorted.shape != x.shape:
            raise ValueError(f"sorted_samples must have the samples' shape {x.shape}, got {x_sorted.shape}")
    return [
        _evaluate_row(x[r], x_sorted[r], rngs[r], n_test, n_validation, mu, sigma) for r in range(x.shape[0])
    ]


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_sizes(n_test, n_validation) -> tuple[int, int]:
    n_test = int(n_test)
    n_validation = int(n_validation)
    if n_test < 1 or n_validation < 1:
        raise ValueError(f"n_test and n_validation must be >= 1, got {n_test} and {n_validation}")
    return n_test, n_validation


def _evaluate_row(
    x: np.ndarray,
    x_sorted: np.ndarray | None,
    rng: np.random.Generator,
    n_test: int,
    n_validation: int,
    mu: float,
    sigma: float,
) -> dict:
    """evaluate's work for flat float64 samples x (x_sorted: np.sort(x), or None to sort here)."""
    validation = rng.normal(mu, sigma, size=n_validation)
    test = rng.normal(mu, sigma, size=n_test)
    status = run_status(x, sigma=sigma)
    if status == STATUS_DIVERGED:
        result: dict[str, float | str] = {key: math.nan for key in METRIC_KEYS}
        result["status"] = status
        return result
    if x_sorted is None:
        x_sorted = np.sort(x)
    kde = _kde_sorted(x_sorted, test, validation, _GRID, validation_scores=False)
    with np.errstate(over="ignore", invalid="ignore"):  # overflows only for |x| > ~1e150
        mean = float(np.mean(x))
    return {
        "status": status,
        "ks": ks_statistic_sorted(x_sorted, mu=mu, sigma=sigma),
        "w1": wasserstein1_sorted(x_sorted, mu=mu, sigma=sigma),
        "kde_ll": kde.mean,
        "kde_ll_stderr": kde.stderr,
        "kde_bandwidth": kde.bandwidth,
        "mean": mean,
        "std": sample_std(x),
    }
