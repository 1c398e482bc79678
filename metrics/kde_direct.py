"""Direct log kernel sums: one exp (or one squaring) per kept (point, sample) pair, in chunks.

For sorted samples s and sorted points t, per bandwidth h (c = 1/(2 h^2)):

    L[h, p] = log sum_i exp(-c Q_i) - c d_min(t_p)^2,   Q_i = (t_p - s_i)^2 - d_min(t_p)^2 >= 0,

with d_min(t) = min_i |t - s_i| (:func:`nearest_squared_distance`) and the samples farther than
r(t) = sqrt(d_min^2 + C / c), C = DROP_LOG_MARGIN + log n, skipped (:func:`direct_log_sums` has
the derivation and the error bounds). The nearest distance and the cutoff C are shared with the
Taylor-moment path (:mod:`.kde_moments`), which groups points by the same reach r(t).
"""
from __future__ import annotations

import numpy as np

CHUNK_ELEMENTS = 1 << 18
"""Kernel terms (point x sample pairs) held at once: 2^18 float64 = 2 MiB per work buffer (three
buffers, 6 MiB), far below the ~100 MB budget."""

SQUARINGS_PER_EXP = 3
"""At most this many successive squarings before exp is recomputed fresh (see direct_log_sums)."""

DROP_LOG_MARGIN = 40.0
"""Kernel terms smaller than exp(-(DROP_LOG_MARGIN + log n)) times a point's largest term are
skipped; together they weigh < exp(-40) = 4.2e-18 of the kept sum (see direct_log_sums)."""


def _is_halving(c_prev: float, c: float) -> bool:
    """True when c = 2 c_prev to within 8 ulp, i.e. h^2 halves from one bandwidth to the next."""
    return abs(c - 2.0 * c_prev) <= 8.0 * np.finfo(np.float64).eps * c


def nearest_squared_distance(s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d_min(t)^2 = min_i (t - s_i)^2 for every point (s sorted)."""
    idx = np.searchsorted(s, t)
    left = s[np.maximum(idx - 1, 0)]
    right = s[np.minimum(idx, s.size - 1)]
    d_min = np.minimum(np.abs(t - left), np.abs(t - right))
    return d_min * d_min


def direct_log_sums(
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
