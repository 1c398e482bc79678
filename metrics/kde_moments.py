"""Taylor-moment log kernel sums: one exp per sample per group of nearby points, not per pair.

For sorted samples s, sorted points t and c = 1/(2 h^2), points are grouped around a centre t0
(:func:`moment_groups`) so that |2 c delta_p d_i| <= MOMENT_REACH for every kept pair
(delta_p = t_p - t0, d_i = s_i - t0); then (:func:`moment_log_sums`, with the derivation and the
error bounds)

    log sum_i exp(-c (t_p - s_i)^2) = log sum_{n <= N} x_p^n / n! M_n - c D^2 - c delta_p^2,
    M_n = sum_i w_i y_i^n,

with N from :func:`_taylor_terms` (Taylor remainder <= 2^-60 relative). The samples kept per
group are those within the reach r(t) = sqrt(d_min^2 + C / c) of the direct path
(:mod:`.kde_direct`), whose d_min^2 and cutoff C the caller passes in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MOMENT_REACH = 1.0
"""X: the moment method groups points so that |2 c delta_p d_i| <= X for every kept pair."""
MOMENT_TERMS = 20
"""N: Taylor terms 0..N of exp(x), |x| <= X = 1: the remainder is < e/21! = 5e-20 (relative)."""
_INV_FACTORIALS = np.array([1.0 / math.factorial(k) for k in range(MOMENT_TERMS + 1)])


@dataclass(frozen=True)
class MomentGroups:
    """Points [start, end) of sorted t with sample window [lo, hi) of sorted s, and the Taylor
    terms N the group needs (``_taylor_terms`` of its largest |x|), per group."""

    start: np.ndarray
    end: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    terms: np.ndarray


def moment_groups(s: np.ndarray, t: np.ndarray, d2_min: np.ndarray, coef: float, cutoff: float) -> MomentGroups:
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
    return MomentGroups(start_a, end_a, lo, hi, _taylor_terms(x_max))


def moment_log_sums(s: np.ndarray, t: np.ndarray, coef: float, groups: MomentGroups) -> np.ndarray:
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
