"""Parzen-window (Gaussian KDE) log-likelihood of held-out target draws under the generated samples.

The generated samples s_1..s_n define the density

    p_h(t) = (1/n) sum_i N(t; s_i, h^2),

    log p_h(t) = logsumexp_i( -(t - s_i)^2 / (2 h^2) ) - log n - log h - log sqrt(2 pi).

The bandwidth h is picked from a fixed grid by the mean log p_h over a validation draw of the
target, and the score is the mean log p_h over a separate test draw (the validation/test split
keeps the bandwidth choice from fitting the test points). For a perfect generator the expected
score approaches -H = -0.7258 nats (the target's negative entropy) from below.

Speed, exactly (see :func:`_log_kernel_sums`): samples are sorted, points are processed in
sorted groups, and per bandwidth one of two exact methods is taken by a cost model (data only,
never timings): for wide kernels, Taylor moments (:func:`_moment_log_sums`: one exp per sample
per group of nearby points instead of one per pair); for narrow ones, direct sums
(:func:`_direct_log_sums`: each point's logsumexp shifted by its nearest sample, only the
contiguous range of samples whose terms can matter touched, kernel values squared across the
sqrt(2)-spaced grid instead of recomputed). Both agree with a brute-force
scipy.special.logsumexp over the full matrix to ~1e-15 (tests bound them at 1e-13). Measured on
the 2-core development machine (AMD EPYC without AVX-512, where NumPy's float64 exp is scalar,
NumPy 2.4), 10,000 samples, 10,000 test and 2,000 validation points, default grid: 0.39 s for a
target-like sample and 0.56 s for a narrow one (std 0.05); the direct sums alone took 1.2-1.7 s
there (and 0.29-0.37 s on an earlier development machine whose NumPy exp was much faster).

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

from .target import LOG_SQRT_2PI, all_finite, as_samples

DEFAULT_BANDWIDTHS: tuple[float, ...] = tuple(float(2.0 ** (-j / 2.0)) for j in range(13, -1, -1))
"""The fixed bandwidth grid: 14 values log-spaced from 0.011 to 1.0 by factors of sqrt(2),
h_j = 2^(-j/2) for j = 13, 12, ..., 0 (0.01105, 0.01563, 0.0221, ..., 0.7071, 1.0), in the
data's units. It spans sigma/45 to 2 sigma of the target (sigma = 0.5): the validation-optimal h
for 10,000 perfect samples lies around 0.06-0.18 (the Silverman rule gives
1.06 sigma n^(-1/5) = 0.084), well inside the grid, and a collapsed generator can still reach a
smoothing comparable to the target's own width. The sqrt(2) ratio makes 1/(2 h^2) double from
one value to the next, which lets the kernel values of the next bandwidth be computed by
squaring those of the previous one (see _log_kernel_sums)."""

CHUNK_ELEMENTS = 1 << 18
"""Kernel terms (point x sample pairs) held at once: 2^18 float64 = 2 MiB per work buffer (three
buffers, 6 MiB), far below the ~100 MB budget."""

SQUARINGS_PER_EXP = 3
"""At most this many successive squarings before exp is recomputed fresh (see _log_kernel_sums)."""

DROP_LOG_MARGIN = 40.0
"""Kernel terms smaller than exp(-(DROP_LOG_MARGIN + log n)) times a point's largest term are
skipped; together they weigh < exp(-40) = 4.2e-18 of the kept sum (see _log_kernel_sums)."""


@dataclass(frozen=True)
class KDEResult:
    """Outcome of :func:`kde_log_likelihood`.

    mean: mean log p_h(t) over the test points (nats per point), at the chosen h.
    stderr: std(log p_h(t), ddof=1) / sqrt(n_test) (NaN for a single test point).
    bandwidth: the chosen h (the grid value with the largest validation score).
    validation_scores: mean log p_h(v) over the validation points, one per grid value.
    bandwidths: the grid, in the order given (aligned with validation_scores).
    """

    mean: float
    stderr: float
    bandwidth: float
    validation_scores: tuple[float, ...]
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


def _is_halving(c_prev: float, c: float) -> bool:
    """True when c = 2 c_prev to within 8 ulp, i.e. h^2 halves from one bandwidth to the next."""
    return abs(c - 2.0 * c_prev) <= 8.0 * np.finfo(np.float64).eps * c


def _log_kernel_sums(
    s: np.ndarray,
    t: np.ndarray,
    bandwidths: np.ndarray,
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
    method: str = "auto",
) -> np.ndarray:
    """L[j, p] = log sum_i exp(-(t_p - s_i)^2 / (2 h_j^2)) for sorted s, sorted t; shape (n_h, n_t).

    Two exact methods, chosen per bandwidth: the Taylor moments of :func:`_moment_log_sums` (one
    exp per sample per group of nearby points; wide bandwidths) where its estimated cost is lower
    (``method="auto"``), else the direct sums of :func:`_direct_log_sums` (one exp or one squaring
    per kept pair; narrow bandwidths). ``method="direct"`` or ``"moments"`` forces one (tests).
    The choice depends on the data only, never on timings, so it is the same on every run.
    """
    if method not in ("auto", "direct", "moments"):
        raise ValueError(f"method must be 'auto', 'direct' or 'moments', got {method!r}")
    n_h = bandwidths.size
    out = np.empty((n_h, t.size))
    if t.size == 0:
        return out
    d2_min = _nearest_squared_distance(s, t)
    cutoff = DROP_LOG_MARGIN + math.log(s.size)
    direct = []
    for k in range(n_h):
        coef = 1.0 / (2.0 * bandwidths[k] * bandwidths[k])
        groups = None if method == "direct" else _moment_groups(s, t, d2_min, coef, cutoff)
        if groups is not None and (method == "moments" or _moments_are_cheaper(groups)):
            out[k] = _moment_log_sums(s, t, coef, groups)
        else:
            direct.append(k)
    if direct:
        out[direct] = _direct_log_sums(s, t, bandwidths[direct], d2_min, cutoff, chunk_elements=chunk_elements)
    return out


def _nearest_squared_distance(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d_min(t)^2 = min_i (t - s_i)^2 for every point (s sorted)."""
    idx = np.searchsorted(s, t)
    left = s[np.maximum(idx - 1, 0)]
    right = s[np.minimum(idx, s.size - 1)]
    d_min = np.minimum(np.abs(t - left), np.abs(t - right))
    return d_min * d_min


MOMENT_REACH = 1.0
"""X: the moment method groups points so that |2 c delta_p d_i| <= X for every kept pair."""
MOMENT_TERMS = 20
"""N: Taylor terms 0..N of exp(x), |x| <= X = 1: the remainder is < e/21! = 5e-20 (relative)."""
_INV_FACTORIALS = np.array([1.0 / math.factorial(k) for k in range(MOMENT_TERMS + 1)])
# Cost model in ~ns, fitted on the development machine; it only picks the faster method.
_COST_PER_GROUP = 8_000.0  # moments: per group of points
_COST_PER_TERM = 3_000.0  # per Taylor term of a group (two NumPy calls)
_COST_PER_EXP = 6.0  # per window sample: w_i
_COST_PER_PRODUCT = 1.5  # per window sample and term: w_i y_i^n and its sum
_COST_PER_PAIR = 8.0  # direct: per kept (point, sample) pair


@dataclass(frozen=True)
class _Groups:
    """Points [start, end) of sorted t with sample window [lo, hi) of sorted s, and the Taylor
    terms N the group needs (``_taylor_terms`` of its largest |x|), per group."""

    start: np.ndarray
    end: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    terms: np.ndarray


def _moment_groups(s: np.ndarray, t: np.ndarray, d2_min: np.ndarray, coef: float, cutoff: float) -> _Groups:
    """Consecutive points with half-width D and reach r = max_p sqrt(d_min(t_p)^2 + cutoff / c)
    such that 2 c D (D + r) <= X: every kept sample is within D + r of the group's centre."""
    reach = np.sqrt(d2_min + cutoff / coef)
    m = t.size
    start, end = [], []
    i = 0
    while i < m:
        r = float(reach[i])
        while True:
            half = 0.5 * (math.sqrt(r * r + 2.0 * MOMENT_REACH / coef) - r)  # 2 c half (half + r) = X
            j = int(np.searchsorted(t, t[i] + 2.0 * half, side="right"))
            r_group = float(reach[i:j].max())
            if r_group <= r:
                break
            r = r_group  # a wider reach: a narrower group (whose reach is then at most r)
        start.append(i)
        end.append(j)
        i = j
    start_a, end_a = np.array(start), np.array(end)
    r_max = np.maximum.reduceat(reach, start_a)
    lo = np.searchsorted(s, t[start_a] - r_max, side="left")
    hi = np.searchsorted(s, t[end_a - 1] + r_max, side="right")
    centre = 0.5 * (t[start_a] + t[end_a - 1])
    radius = np.maximum(centre - s[lo], s[hi - 1] - centre)
    x_max = 2.0 * coef * radius * (t[end_a - 1] - centre)
    return _Groups(start_a, end_a, lo, hi, _taylor_terms(x_max))


def _moments_are_cheaper(groups: _Groups) -> bool:
    """Whether the moments' estimated cost is below the direct sums' (a model, not a timing)."""
    window = (groups.hi - groups.lo).astype(np.float64)
    terms = groups.terms.astype(np.float64)
    moments = np.sum(_COST_PER_GROUP + _COST_PER_TERM * terms + window * (_COST_PER_EXP + _COST_PER_PRODUCT * terms))
    direct = _COST_PER_PAIR * float(np.sum(window * (groups.end - groups.start)))
    return bool(moments < direct)


def _moment_log_sums(s: np.ndarray, t: np.ndarray, coef: float, groups: _Groups) -> np.ndarray:
    """log sum_i exp(-c (t_p - s_i)^2) by Taylor moments, one group of points at a time.

    With t0 the group's centre, delta_p = t_p - t0, d_i = s_i - t0 over the group's window,
    D^2 = min_i d_i^2, R = max_i |d_i|, y_i = d_i / R and x_p = 2 c delta_p R:

        (t_p - s_i)^2 = delta_p^2 - 2 delta_p d_i + d_i^2, so
        sum_i exp(-c (t_p - s_i)^2) = exp(-c delta_p^2 - c D^2) sum_n x_p^n / n! M_n,
        M_n = sum_i w_i y_i^n,   w_i = exp(-c (d_i^2 - D^2)) in (0, 1],

    exp(x_p y_i) = sum_{n <= N} (x_p y_i)^n / n! with |x_p y_i| <= X = 1 (the grouping ensures
    it): truncation < 5e-20 relative. One exp per window sample per group instead of one per
    pair. Rounding: each M_n and the series carry (N + log2 n + 3) eps relative to sums of |terms|,
    and sum_i w_i e^{|x y_i|} <= e^{2X} sum_i w_i e^{x y_i}, so the relative error of the sum is at
    most e^2 (N + log2 n + 3) eps < 4e-14 (typically ~1e-16). The shift by D keeps the nearest
    sample's w at 1: samples whose w underflows weigh < e^{-700} of the sum; nothing reaches log(0).
    Samples outside the window are those the direct method skips too (< 4.2e-18 together).
    """
    out = np.empty(t.size)
    for a, b, lo, hi, terms in zip(groups.start.tolist(), groups.end.tolist(), groups.lo.tolist(),
                                   groups.hi.tolist(), groups.terms.tolist(), strict=True):
        centre = 0.5 * (t[a] + t[b - 1])
        d = s[lo:hi] - centre
        d2 = d * d
        d2_nearest = d2.min()
        radius = float(np.abs(d).max()) or 1.0
        delta = t[a:b] - centre
        x = (2.0 * coef * radius) * delta
        term = np.exp(np.multiply(d2 - d2_nearest, -coef, out=d2))  # w_i, then w_i y_i^n
        moments = np.empty(terms + 1)
        moments[0] = term.sum()
        if terms:
            y = d / radius
            for k in range(1, terms + 1):
                np.multiply(term, y, out=term)
                moments[k] = term.sum()
            series = np.full(b - a, moments[terms] * _INV_FACTORIALS[terms])
            for k in range(terms - 1, -1, -1):  # Horner: sum_n x^n / n! M_n
                series *= x
                series += moments[k] * _INV_FACTORIALS[k]
        else:
            series = np.full(b - a, moments[0])
        out[a:b] = np.log(series) - coef * d2_nearest - coef * delta * delta
    return out


def _term_limits() -> np.ndarray:
    """limits[n] = the largest x with x^(n+1) / (n+1)! e^(2x) <= 2^-60 (bisection), n = 0..N."""
    limits = []
    for n in range(MOMENT_TERMS + 1):
        lo, hi = 0.0, 2.0 * MOMENT_REACH
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if mid ** (n + 1) / math.factorial(n + 1) * math.exp(2.0 * mid) <= 2.0**-60:
                lo = mid
            else:
                hi = mid
        limits.append(lo)
    return np.array(limits)


_TERM_LIMITS = _term_limits()


def _taylor_terms(x_max):
    """The fewest terms N (0..MOMENT_TERMS) whose Taylor remainder of exp(x), |x| <= x_max, is
    <= 2^-60 relative: x^(N+1) / (N+1)! e^(2x) <= 2^-60 (the e^(2x) also covers e^x >= e^-x)."""
    return np.minimum(np.searchsorted(_TERM_LIMITS, x_max, side="left"), MOMENT_TERMS)


def _direct_log_sums(
    s: np.ndarray,
    t: np.ndarray,
    bandwidths: np.ndarray,
    d2_min: np.ndarray,
    cutoff: float,
    *,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> np.ndarray:
    """L[j, p] = log sum_i exp(-(t_p - s_i)^2 / (2 h_j^2)), directly: one term per kept pair.

    Shift: each point's terms are divided by its nearest sample's term (d_min = min_i |t - s_i|),
    the logsumexp maximum known in advance:
        L = log sum_i exp(-c Q_i) - c d_min^2,   c = 1/(2 h^2),   Q_i = (t - s_i)^2 - d_min^2 >= 0,
    so every kept sum is >= 1 (the nearest sample contributes exactly exp(0) = 1) and nothing
    overflows or underflows to log(0), however far the samples are from t.

    Cutoff: terms with c Q_i > C, C = DROP_LOG_MARGIN + log n, i.e. samples farther than
    r(t) = sqrt(d_min^2 + C / c) from t, are skipped: there are at most n of them, each
    < exp(-C) = exp(-40)/n, so together they change the sum by a relative < 4.2e-18, below float64
    resolution. For a chunk of sorted points the kept samples are one contiguous range
    [min(t - r), max(t + r)] of the sorted samples (a superset of what each point needs, never
    less); when every sample is within reach this is the full sum.

    Squaring: bandwidths are processed from the widest down; when c doubles from one to the next
    (as on the default grid, h_j = 2^(-j/2)), exp(-2 c Q) = exp(-c Q)^2 is obtained by squaring
    the previous kernel values instead of calling exp (3-4x cheaper). Each squaring doubles the
    relative rounding error of a term, so exp is recomputed fresh at least every
    SQUARINGS_PER_EXP + 1 bandwidths: terms stay within ~16 ulp (~4e-15) of exp(-c Q). (On the
    default grid c doubles only to within a few ulp, since 2^(-j/2) is rounded for odd j; the
    resulting exponent mismatch is of the same ~1e-15 order for the terms that matter.)
    """
    n = s.size
    m = t.size
    n_h = bandwidths.size
    out = np.empty((n_h, m))
    # Widest bandwidth first; coefficients c = 1/(2 h^2) increase along `order`.
    order = np.argsort(-bandwidths, kind="stable")
    coef = 1.0 / (2.0 * bandwidths[order] * bandwidths[order])
    square = np.zeros(n_h, dtype=bool)
    run = 0
    for k in range(1, n_h):
        if run < SQUARINGS_PER_EXP and _is_halving(coef[k - 1], coef[k]):
            square[k] = True
            run += 1
        else:
            run = 0
    # Sample window of every (bandwidth, chunk), all at once: [lo, hi) indexes sorted s.
    rows = max(1, chunk_elements // n)
    starts = np.arange(0, m, rows)
    reach = np.sqrt(d2_min[None, :] + (cutoff / coef)[:, None])  # r(t), shape (n_h, m)
    lo = np.searchsorted(s, np.minimum.reduceat(t[None, :] - reach, starts, axis=1), side="left")
    hi = np.searchsorted(s, np.maximum.reduceat(t[None, :] + reach, starts, axis=1), side="right")
    # Narrower bandwidths have narrower windows; enforce nesting so squaring can slice.
    lo = np.maximum.accumulate(lo, axis=0)
    hi = np.minimum.accumulate(hi, axis=0)
    q_buf = np.empty(rows * n)
    e_bufs = (np.empty(rows * n), np.empty(rows * n))
    for ci, a in enumerate(starts):
        b = min(a + rows, m)
        tc = t[a:b, None]
        dc2 = d2_min[a:b, None]
        lo0, hi0 = int(lo[0, ci]), int(hi[0, ci])
        q = q_buf[: (b - a) * (hi0 - lo0)].reshape(b - a, hi0 - lo0)
        np.subtract(tc, s[lo0:hi0], out=q)
        np.multiply(q, q, out=q)
        np.subtract(q, dc2, out=q)  # Q = (t - s)^2 - d_min^2 >= 0 (up to rounding)
        prev: np.ndarray | None = None
        prev_lo = lo0
        for k in range(n_h):
            klo, khi = int(lo[k, ci]), int(hi[k, ci])
            e = e_bufs[k % 2][: (b - a) * (khi - klo)].reshape(b - a, khi - klo)
            if square[k]:
                assert prev is not None  # square[0] is False: the widest bandwidth always calls exp
                src = prev[:, klo - prev_lo : khi - prev_lo]
                np.multiply(src, src, out=e)
            else:
                np.multiply(q[:, klo - lo0 : khi - lo0], -coef[k], out=e)
                np.exp(e, out=e)
            out[order[k], a:b] = np.log(e.sum(axis=1)) - coef[k] * dc2[:, 0]
            prev, prev_lo = e, klo
    return out


def _parzen_log_likelihoods(
    samples_sorted: np.ndarray, points: np.ndarray, bandwidths: np.ndarray
) -> np.ndarray:
    """log p_h(t) for every bandwidth (rows) and point (columns, in the order given)."""
    order = np.argsort(points, kind="stable")
    # Overflow/invalid only for absurd inputs (|x| > ~1e150), which end as NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _log_kernel_sums(samples_sorted, points[order], bandwidths)
        norm = math.log(samples_sorted.size) + np.log(bandwidths) + LOG_SQRT_2PI
        ll = np.empty_like(sums)
        ll[:, order] = sums - norm[:, None]
    return ll


def parzen_log_likelihoods(samples, points, bandwidth: float) -> np.ndarray:
    """Per-point log p_h(t) = log( (1/n) sum_i N(t; s_i, h^2) ) for every t in points (same order).

    Computed as logsumexp_i(-(t - s_i)^2 / (2 h^2)) - log n - log h - log sqrt(2 pi), with the
    logsumexp shifted by the nearest sample and negligible terms skipped as described in
    :func:`_log_kernel_sums` (agrees with scipy.special.logsumexp on the full sum to ~1e-15).
    Returns all-NaN if any sample is non-finite.
    """
    s = as_samples(samples)
    t = _check_points(points, "points")
    h = _check_bandwidths([bandwidth])
    if not all_finite(s):
        return np.full(t.size, math.nan)
    return _parzen_log_likelihoods(np.sort(s), t, h)[0]


def kde_log_likelihood(samples, test, validation, *, bandwidths=DEFAULT_BANDWIDTHS) -> KDEResult:
    """Gaussian Parzen-window log-likelihood of the test draw, h chosen on the validation draw.

    With log p_h(t) = log( (1/n) sum_i N(t; s_i, h^2) ) (see :func:`parzen_log_likelihoods`):

        score(h)  = mean_{v in validation} log p_h(v)        for every h in the grid
        h*        = argmax_h score(h)                         (first maximum on ties)
        mean      = mean_{t in test} log p_h*(t)
        stderr    = std_{t in test}(log p_h*(t), ddof=1) / sqrt(n_test)

    samples: the generated samples (any shape, flattened). test, validation: two independent
    draws of the target (must be finite). bandwidths: the grid (default DEFAULT_BANDWIDTHS).
    If any sample is non-finite, returns NaN mean, stderr, bandwidth and scores (no exception,
    no warning). Memory: three work buffers of CHUNK_ELEMENTS float64 (6 MiB in all) plus O(n)
    arrays. Timing: 0.4-0.6 s for 10,000 samples / 10,000 test / 2,000 validation points on
    the 2-core development machine (module docstring).
    """
    s = as_samples(samples)
    t = _check_points(test, "test")
    v = _check_points(validation, "validation")
    h = _check_bandwidths(bandwidths)
    grid = tuple(float(x) for x in h)
    if not all_finite(s):
        nan = math.nan
        return KDEResult(nan, nan, nan, tuple(nan for _ in grid), grid)
    s = np.sort(s)
    scores = np.mean(_parzen_log_likelihoods(s, v, h), axis=1)
    if np.isnan(scores).all():
        nan = math.nan
        return KDEResult(nan, nan, nan, tuple(float(x) for x in scores), grid)
    best = int(np.nanargmax(scores))
    ll = _parzen_log_likelihoods(s, t, h[best : best + 1])[0]
    mean = float(np.mean(ll))
    if t.size > 1 and all_finite(ll):
        stderr = float(np.std(ll, ddof=1) / math.sqrt(t.size))
    else:
        stderr = math.nan
    return KDEResult(mean, stderr, grid[best], tuple(float(x) for x in scores), grid)
