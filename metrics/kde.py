"""Parzen-window (Gaussian KDE) log-likelihood of held-out target draws under the generated samples.

The generated samples s_1..s_n define the density

    p_h(t) = (1/n) sum_i N(t; s_i, h^2),

    log p_h(t) = logsumexp_i( -(t - s_i)^2 / (2 h^2) ) - log n - log h - log sqrt(2 pi).

The bandwidth h is picked from a fixed grid by the mean log p_h over a validation draw of the
target, and the score is the mean log p_h over a separate test draw (the validation/test split
keeps the bandwidth choice from fitting the test points). For a perfect generator the expected
score approaches -H = -0.7258 nats (the target's negative entropy) from below.

Speed, exactly. The scores (see :func:`_log_kernel_sums`): samples are sorted, points are
processed in sorted groups, and per bandwidth one of two exact methods is taken by a cost model
(:mod:`.kde_cost`; data only, never timings): for wide kernels, Taylor moments (:mod:`.kde_moments`:
one exp per sample per group of nearby points instead of one per pair); for narrow ones, direct sums
(:mod:`.kde_direct`: each point's logsumexp shifted by its nearest sample, only the contiguous range
of samples whose terms can matter touched, kernel values squared across the sqrt(2)-spaced grid
instead of recomputed). Both agree with a brute-force scipy.special.logsumexp over the full matrix
to ~1e-15 (tests bound them at 1e-13). The bandwidth choice (:func:`select_bandwidth`,
:mod:`.kde_select`): only argmax_h score(h) is used, so instead of every exact score it bounds each
score to ~1e-9 (a fast Gauss transform with rigorous error bounds, direct sums for the points far from
every sample) and computes exact scores, with the code above, only for the bandwidths that the
bounds cannot rule out (usually none: one bandwidth is left): the same h*, bit for bit, ties and NaN
included. Measured on the 2-core development machine (Intel Xeon with AVX-512, but NumPy's SIMD
pinned to AVX2 by ganrepro's instruction-set pin, NumPy 2.4), 10,000 samples, 10,000 test and 2,000
validation points, default grid: every validation score took 130-300 ms (target-like sample, narrow
std 0.05, bimodal), the selection from bounds takes 5-8 ms; the test score at h* 4-23 ms (moments
at h* = 0.125 for a target-like sample, the slowest case).

Caveats of the metric itself (not of this code), for whoever reads the numbers:
- A Parzen score cannot see mode collapse: a point mass at mu with h = sigma (on the grid) is
  exactly the target density and scores like a perfect generator; a generator with std s < sigma
  does as well with h ~ sqrt(sigma^2 - s^2). Always read kde_ll together with the run status,
  KS and W1.
- The bandwidth choice on 2,000 validation points is noisy: the validation curve of a perfect
  sample is nearly flat for h in [0.011, 0.18], and at small h the per-point values are heavy-
  tailed, so about 9% of perfect samples get h < 0.04, which lowers their test score by up to
  ~0.05 nats (typically < 0.01) and inflates its stderr. Over 390 simulated perfect samples of
  10,000 the score minus the true mean log-density of the same test points averaged -0.0018.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .kde_cost import moments_are_cheaper
from .kde_direct import CHUNK_ELEMENTS, DROP_LOG_MARGIN, direct_log_sums, nearest_squared_distance
from .kde_moments import moment_groups, moment_log_sums
from .kde_select import bounds_apply, score_bounds, surviving_bandwidths
from .target import LOG_SQRT_2PI, all_finite, as_samples

DEFAULT_BANDWIDTHS: tuple[float, ...] = tuple(float(2.0 ** (-j / 2.0)) for j in range(13, -1, -1))
"""The fixed bandwidth grid: 14 values log-spaced from 0.011 to 1.0 by factors of sqrt(2),
h_j = 2^(-j/2) for j = 13, 12, ..., 0 (0.01105, 0.01563, 0.0221, ..., 0.7071, 1.0), in the
data's units. It spans sigma/45 to 2 sigma of the target (sigma = 0.5): the validation-optimal h
for 10,000 perfect samples lies around 0.06-0.18 (the Silverman rule gives
1.06 sigma n^(-1/5) = 0.084), well inside the grid, and a collapsed generator can still reach a
smoothing comparable to the target's own width. The sqrt(2) ratio makes 1/(2 h^2) double from
one value to the next, which lets the kernel values of the next bandwidth be computed by
squaring those of the previous one (see kde_direct.direct_log_sums)."""


@dataclass(frozen=True)
class KDEResult:
    """Outcome of :func:`kde_log_likelihood`.

    mean: mean log p_h(t) over the test points (nats per point), at the chosen h.
    stderr: std(log p_h(t), ddof=1) / sqrt(n_test) (NaN for a single test point).
    bandwidth: the chosen h (the grid value with the largest validation score).
    validation_scores: mean log p_h(v) over the validation points, one per grid value; None when
        kde_log_likelihood was asked not to compute them (validation_scores=False).
    bandwidths: the grid, in the order given (aligned with validation_scores).
    """

    mean: float
    stderr: float
    bandwidth: float
    validation_scores: tuple[float, ...] | None
    bandwidths: tuple[float, ...]


def _check_points(points, name: str) -> np.ndarray:
    t = as_samples(points, name)
    if not all_finite(t):
        raise ValueError(f"{name} must be finite (they are draws of the target)")
    return t


def _check_bandwidths(bandwidths) -> np.ndarray:
    h = np.asarray(bandwidths, dtype=np.float64).reshape(-1)
    if h.size == 0 or not all_finite(h) or np.any(h <= 0.0):
        raise ValueError(
            "bandwidths must be a non-empty sequence of finite positive numbers, "
            f"got {bandwidths!r}"
        )
    return h


def _log_kernel_sums(
    s: np.ndarray,
    t: np.ndarray,
    bandwidths: np.ndarray,
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
    method: str = "auto",
    rows=None,
) -> np.ndarray:
    """L[j, p] = log sum_i exp(-(t_p - s_i)^2 / (2 h_j^2)) for sorted s, sorted t; shape (n_h, n_t).

    Two exact methods, chosen per bandwidth: the Taylor moments of
    :func:`.kde_moments.moment_log_sums` (one exp per sample per group of nearby points; wide
    bandwidths) where its estimated cost is lower (``method="auto"``, the cost model
    :func:`.kde_cost.moments_are_cheaper`), else the direct sums of
    :func:`.kde_direct.direct_log_sums` (one exp or one squaring per kept pair; narrow bandwidths).
    ``method="direct"`` or ``"moments"`` forces one (tests). The choice depends on the data only,
    never on timings, so it is the same on every run.

    ``rows``: distinct indexes into ``bandwidths``; then only those rows are computed and returned
    (shape (len(rows), n_t), in that order), each bit for bit what the full call gives for it. A
    row of the direct sums depends on the direct-sum bandwidths processed before it (squaring
    chain, nested windows: widest first, ties by index), so those are computed along with it.
    """
    if method not in ("auto", "direct", "moments"):
        raise ValueError(f"method must be 'auto', 'direct' or 'moments', got {method!r}")
    n_h = bandwidths.size
    out = np.empty((n_h, t.size))
    wanted = list(range(n_h)) if rows is None else [int(k) for k in rows]
    if t.size == 0:
        return out if rows is None else out[wanted]
    d2_min = nearest_squared_distance(s, t)
    cutoff = DROP_LOG_MARGIN + math.log(s.size)

    def moment_path(k: int):
        """(coef, groups) when bandwidth k takes the moments, else (coef, None)."""
        coef = 1.0 / (2.0 * bandwidths[k] * bandwidths[k])
        groups = None if method == "direct" else moment_groups(s, t, d2_min, coef, cutoff)
        if groups is not None and (method == "moments" or moments_are_cheaper(groups)):
            return coef, groups
        return coef, None

    direct = []
    for k in wanted:
        coef, groups = moment_path(k)
        if groups is not None:
            out[k] = moment_log_sums(s, t, coef, groups)
        else:
            direct.append(k)
    if direct and rows is not None:
        # The direct sums process bandwidths widest first (ties by index): add every direct-sum
        # bandwidth processed before the last wanted one, as the full call has them.
        last = max((-float(bandwidths[k]), k) for k in direct)
        for k in range(n_h):
            if k not in wanted and (-float(bandwidths[k]), k) < last and moment_path(k)[1] is None:
                direct.append(k)
        direct.sort()
    if direct:
        out[direct] = direct_log_sums(s, t, bandwidths[direct], d2_min, cutoff, chunk_elements=chunk_elements)
    return out if rows is None else out[wanted]


def _parzen_log_likelihoods(
    samples_sorted: np.ndarray, points: np.ndarray, bandwidths: np.ndarray, *, rows=None
) -> np.ndarray:
    """log p_h(t) for every bandwidth (rows) and point (columns, in the order given); with
    ``rows``, only those bandwidths (bit for bit the same numbers, see :func:`_log_kernel_sums`)."""
    order = np.argsort(points, kind="stable")
    # Overflow/invalid only for absurd inputs (|x| > ~1e150), which end as NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _log_kernel_sums(samples_sorted, points[order], bandwidths, rows=rows)
        norm = math.log(samples_sorted.size) + np.log(bandwidths) + LOG_SQRT_2PI
        if rows is not None:
            norm = norm[[int(k) for k in rows]]
        ll = np.empty_like(sums)
        ll[:, order] = sums - norm[:, None]
    return ll


def parzen_log_likelihoods(samples, points, bandwidth: float) -> np.ndarray:
    """Per-point log p_h(t) = log( (1/n) sum_i N(t; s_i, h^2) ) for every t in points (same order).

    Computed as logsumexp_i(-(t - s_i)^2 / (2 h^2)) - log n - log h - log sqrt(2 pi), with the
    logsumexp shifted by the nearest sample and negligible terms skipped as described in
    :func:`.kde_direct.direct_log_sums` (agrees with scipy.special.logsumexp on the full sum to ~1e-15).
    Returns all-NaN if any sample is non-finite.
    """
    s = as_samples(samples)
    t = _check_points(points, "points")
    h = _check_bandwidths([bandwidth])
    if not all_finite(s):
        return np.full(t.size, math.nan)
    return _parzen_log_likelihoods(np.sort(s), t, h)[0]


def _select_bandwidth_reference(samples_sorted: np.ndarray, validation: np.ndarray, bandwidths: np.ndarray):
    """(best, scores): every validation score computed exactly and best = nanargmax(scores) (the
    first maximum), or None when every score is NaN. The definition :func:`select_bandwidth`
    reproduces without computing every score."""
    scores = np.mean(_parzen_log_likelihoods(samples_sorted, validation, bandwidths), axis=1)
    if np.isnan(scores).all():
        return None, scores
    return int(np.nanargmax(scores)), scores


def select_bandwidth(samples_sorted: np.ndarray, validation: np.ndarray, bandwidths: np.ndarray) -> int | None:
    """The index nanargmax_j score(h_j) of :func:`_select_bandwidth_reference` (None if all NaN),
    always the same, but mostly without computing the scores: :mod:`.kde_select` bounds every
    score to ~1e-9, and only the bandwidths whose upper bound reaches the best lower bound (usually
    one) need their exact score. samples_sorted: sorted, finite; validation: finite."""
    if not bounds_apply(samples_sorted, validation, bandwidths):
        return _select_bandwidth_reference(samples_sorted, validation, bandwidths)[0]
    lower, upper = score_bounds(samples_sorted, validation, bandwidths)
    rows = surviving_bandwidths(lower, upper)
    if rows.size == 1:
        return int(rows[0])
    if rows.size > 1:
        scores = np.mean(_parzen_log_likelihoods(samples_sorted, validation, bandwidths, rows=rows), axis=1)
        if all_finite(scores):
            return int(rows[int(np.argmax(scores))])  # first maximum; pruned ones are strictly below
    return _select_bandwidth_reference(samples_sorted, validation, bandwidths)[0]


def _kde_sorted(
    s: np.ndarray, t: np.ndarray, v: np.ndarray, h: np.ndarray, *, validation_scores: bool
) -> KDEResult:
    """kde_log_likelihood for sorted finite samples and checked points and grid."""
    grid = tuple(float(x) for x in h)
    nan = math.nan
    if validation_scores:
        best, scores = _select_bandwidth_reference(s, v, h)
        kept: tuple[float, ...] | None = tuple(float(x) for x in scores)
    else:
        best, kept = select_bandwidth(s, v, h), None
    if best is None:
        return KDEResult(nan, nan, nan, kept, grid)
    ll = _parzen_log_likelihoods(s, t, h[best : best + 1])[0]
    mean = float(np.mean(ll))
    if t.size > 1 and all_finite(ll):
        stderr = float(np.std(ll, ddof=1) / math.sqrt(t.size))
    else:
        stderr = math.nan
    return KDEResult(mean, stderr, grid[best], kept, grid)


def kde_log_likelihood(
    samples, test, validation, *, bandwidths=DEFAULT_BANDWIDTHS, validation_scores: bool = True
) -> KDEResult:
    """Gaussian Parzen-window log-likelihood of the test draw, h chosen on the validation draw.

    With log p_h(t) = log( (1/n) sum_i N(t; s_i, h^2) ) (see :func:`parzen_log_likelihoods`):

        score(h)  = mean_{v in validation} log p_h(v)        for every h in the grid
        h*        = argmax_h score(h)                         (first maximum on ties)
        mean      = mean_{t in test} log p_h*(t)
        stderr    = std_{t in test}(log p_h*(t), ddof=1) / sqrt(n_test)

    samples: the generated samples (any shape, flattened). test, validation: two independent
    draws of the target (must be finite). bandwidths: the grid (default DEFAULT_BANDWIDTHS).
    validation_scores: False skips computing every score (result's validation_scores is None)
    and finds h* by :func:`select_bandwidth` instead, which gives the same h* and therefore the
    same mean, stderr and bandwidth, bit for bit, several times faster (:func:`.evaluate.evaluate`
    uses it). If any sample is non-finite, returns NaN mean, stderr, bandwidth and scores (no
    exception, no warning). Memory: three work buffers of kde_direct.CHUNK_ELEMENTS float64 (6 MiB
    in all) plus O(n) arrays. Timing, 10,000 samples / 10,000 test / 2,000 validation points on the
    machine of the module docstring: 0.13-0.3 s with every score (target-like, narrow, bimodal
    samples), 12-31 ms without.
    """
    s = as_samples(samples)
    t = _check_points(test, "test")
    v = _check_points(validation, "validation")
    h = _check_bandwidths(bandwidths)
    if not all_finite(s):
        nan = math.nan
        grid = tuple(float(x) for x in h)
        return KDEResult(nan, nan, nan, tuple(nan for _ in grid) if validation_scores else None, grid)
    return _kde_sorted(np.sort(s), t, v, h, validation_scores=validation_scores)
