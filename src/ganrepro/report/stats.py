"""Statistics over seeds: robust summaries, bootstrap intervals, probability of improvement.

Every function takes plain arrays of one metric over seeds and is deterministic: bootstrap
resamples are drawn from ``numpy.random.default_rng(BOOTSTRAP_SEED)`` (a fixed seed, so a
report regenerates byte for byte). In the spirit of rliable (Agarwal et al., 2021, "Deep RL at
the edge of the statistical precipice"): interquartile mean with a percentile-bootstrap 95%
interval, and the probability of improvement P(X > Y) with a bootstrap interval.

Conventions: "better" means lower for KS and W1 and higher for the KDE log-likelihood
(``runs.LOWER_IS_BETTER``). Diverged runs have no metric (NaN): summaries are taken over the
runs with a value (the report gives the divergence rate beside them), and comparisons rank a
diverged run below every run with a value (it lost), two diverged runs tie.
"""
from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_SEED = 20161208
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def finite(x) -> np.ndarray:
    """The finite values of ``x`` as float64 (order kept)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle half of the sorted values.

    With n values sorted, the lowest and highest n/4 are discarded, fractionally at the edges
    (a value straddling a cut counts with the weight of its part inside), so that the result
    is continuous in n: for n = 4k it is the mean of the middle 2k values. NaN for no values.
    The weighted sum is exactly rounded (``math.fsum``), not a BLAS dot product, whose kernel
    (and so its last bit) depends on the CPU.
    """
    x = np.sort(finite(x))
    n = x.size
    if n == 0:
        return math.nan
    lo, hi = n / 4.0, 3.0 * n / 4.0
    # weight of sorted value i = length of [i, i+1) inside [lo, hi)
    edges = np.arange(n + 1, dtype=np.float64)
    weights = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return math.fsum(weights * x) / math.fsum(weights)


def iqm_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each row of a (r, n) array of finite values, vectorised (same weights).

    Row sums by NumPy's own reduction (the same on every CPU under the instruction-set pin), not
    by a BLAS matrix-vector product (whose kernel depends on the CPU).
    """
    rows = np.sort(np.asarray(rows, dtype=np.float64), axis=1)
    n = rows.shape[1]
    lo, hi = n / 4.0, 3.0 * n / 4.0
    edges = np.arange(n + 1, dtype=np.float64)
    weights = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
    return np.sum(rows * weights, axis=1) / math.fsum(weights)


def quartiles(x) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile), linear interpolation; NaNs for no values."""
    x = finite(x)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return float(q1), float(med), float(q3)


def _rng() -> np.random.Generator:
    return np.random.default_rng(BOOTSTRAP_SEED)


def bootstrap_interval(x, statistic=iqm, *, resamples: int = BOOTSTRAP_RESAMPLES,
                       confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic`` over the finite values of ``x``.

    Resamples: n values drawn with replacement, ``resamples`` times; the interval is the
    (1 - confidence)/2 and (1 + confidence)/2 quantiles of the statistic over the resamples.
    (NaN, NaN) for no values; a single value gives the degenerate interval (x, x).
    """
    x = finite(x)
    if x.size == 0:
        return math.nan, math.nan
    idx = _rng().integers(0, x.size, size=(resamples, x.size))
    values = iqm_rows(x[idx]) if statistic is iqm else np.array([statistic(x[row]) for row in idx])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _oriented(x, lower_is_better: bool) -> np.ndarray:
    """Scores where larger is better; a diverged run (NaN) scores -inf."""
    x = np.asarray(x, dtype=np.float64).ravel()
    s = -x if lower_is_better else x.copy()
    s[~np.isfinite(x)] = -np.inf
    return s


def _prob_greater(a: np.ndarray, b: np.ndarray) -> float:
    """P(A > B) + P(A = B) / 2 for A, B drawn uniformly from a and b (the Mann-Whitney U / (n m))."""
    b_sorted = np.sort(b)
    below = np.searchsorted(b_sorted, a, side="left")
    not_above = np.searchsorted(b_sorted, a, side="right")
    return float((below.sum() + 0.5 * (not_above - below).sum()) / (a.size * b.size))


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(r, n) int64: how often each of n values is drawn in each row of ``indices`` (r, k)."""
    rows = indices.shape[0]
    flat = (indices + n * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n)


def _resampled_prob_greater(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """``_prob_greater(a[ia[r]], b[ib[r]])`` for every resample r, in O((n + m) r) instead of
    O((n + m) log m r), with the same result bit for bit.

    With c_a, c_b the draw counts of each original value, U_r = sum_k c_a[k] (below_k + eq_k / 2),
    below_k = the drawn b values < a_k = the cumulative count of b (sorted) up to
    searchsorted(b, a_k, "left"), eq_k likewise. Every sum is an integer (< 2^53), so exact,
    and the final (below + 0.5 ties) / (n m) is the same float operation as ``_prob_greater``'s.
    """
    order = np.argsort(b, kind="stable")
    b_sorted = b[order]
    left = np.searchsorted(b_sorted, a, side="left")
    right = np.searchsorted(b_sorted, a, side="right")
    count_a = _counts(ia, a.size)
    cum_b = np.zeros((ib.shape[0], b.size + 1), dtype=np.int64)
    np.cumsum(_counts(ib, b.size)[:, order], axis=1, out=cum_b[:, 1:])
    below = cum_b[:, left]  # (r, n): drawn b values below each a_k
    ties = cum_b[:, right] - below
    below_total = (count_a * below).sum(axis=1)
    tie_total = (count_a * ties).sum(axis=1)
    return (below_total + 0.5 * tie_total) / (ia.shape[1] * ib.shape[1])


def probability_of_improvement(technique, baseline, *, lower_is_better: bool) -> float:
    """P(technique better than baseline): the chance a random technique run beats a random
    baseline run, ties counting half (Mann-Whitney U / (n m)). 0.5: no difference.

    Diverged runs (NaN) lose to every run with a value. NaN if either side is empty.
    """
    a = _oriented(technique, lower_is_better)
    b = _oriented(baseline, lower_is_better)
    if a.size == 0 or b.size == 0:
        return math.nan
    return _prob_greater(a, b)


def probability_of_improvement_interval(technique, baseline, *, lower_is_better: bool,
                                        resamples: int = BOOTSTRAP_RESAMPLES,
                                        confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile-bootstrap interval of :func:`probability_of_improvement`, each side resampled
    independently (stratified: the technique's runs and the baseline's)."""
    a = _oriented(technique, lower_is_better)
    b = _oriented(baseline, lower_is_better)
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    rng = _rng()
    ia = rng.integers(0, a.size, size=(resamples, a.size))
    ib = rng.integers(0, b.size, size=(resamples, b.size))
    values = _resampled_prob_greater(a, b, ia, ib)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def cliffs_delta(technique, baseline, *, lower_is_better: bool) -> float:
    """Cliff's delta = P(better) - P(worse) = 2 P(improvement) - 1, in [-1, 1]: a rank effect
    size that needs no distributional assumption (|d| < 0.147 negligible, < 0.33 small, < 0.474
    medium, else large: Romano et al., 2006)."""
    p = probability_of_improvement(technique, baseline, lower_is_better=lower_is_better)
    return 2.0 * p - 1.0


def cohens_d(technique, baseline, *, lower_is_better: bool) -> float:
    """Cohen's d of the finite values, oriented so that positive means the technique is better:
    (mean_t - mean_b) / s_pooled (negated for lower-is-better metrics), with
    s_pooled^2 = ((n_t - 1) s_t^2 + (n_b - 1) s_b^2) / (n_t + n_b - 2). NaN when undefined
    (fewer than two values on a side, or zero pooled spread)."""
    a, b = finite(technique), finite(baseline)
    if a.size < 2 or b.size < 2:
        return math.nan
    pooled = ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    if not pooled > 0:
        return math.nan
    d = (a.mean() - b.mean()) / math.sqrt(pooled)
    return float(-d if lower_is_better else d)


def effect_label(delta: float) -> str:
    """Romano et al.'s words for |Cliff's delta|."""
    if not math.isfinite(delta):
        return "n/a"
    size = abs(delta)
    return "negligible" if size < 0.147 else "small" if size < 0.33 else "medium" if size < 0.474 else "large"


def sign(x: float, tolerance: float = 0.0) -> int:
    """-1, 0 or +1 (0 for |x| <= tolerance or NaN)."""
    if not math.isfinite(x) or abs(x) <= tolerance:
        return 0
    return 1 if x > 0 else -1
