"""Exact bandwidth selection without computing every validation score: rigorous bounds, then prune.

:func:`.kde.kde_log_likelihood` picks h* = argmax_h score(h) (the first maximum) over a grid, with

    score(h) = mean_p log p_h(v_p),   log p_h(v) = log S_h(v) - log n - log h - log sqrt(2 pi),
    S_h(v) = sum_i exp(-(v - s_i)^2 / (2 h^2)),

and only h* is used afterwards (the test score is computed at h* alone). Computing every score to
full precision (:func:`.kde._log_kernel_sums`) is what the selection used to cost.
:func:`.kde.select_bandwidth` instead encloses each score in a rigorous interval [L_h, U_h]
(:func:`score_bounds`; width ~1e-9 near the maximum, much cheaper than the exact sums), drops
every h with U_h < max_h' L_h' (it cannot be the maximum) and, when more than one h is left,
computes the scores of those with the unchanged exact code (:func:`.kde._parzen_log_likelihoods`
with ``rows=``: bit for bit the numbers the full computation gives them) and takes their first
maximum. So the chosen index is always that of ``nanargmax`` over the exact scores, ties included:
a dropped h is strictly below a survivor, and among survivors the exact numbers decide. Each
interval is widened by SCORE_MARGIN = 1e-10 (relative to the scores' magnitude) for the rounding of
the exact code (~1e-14), so the bounds hold for the numbers it computes, not only for the true ones.

Bounds of log S_h(v) for every point, in units of sigma = sqrt(2) h (each term is
exp(-((v - s)/sigma)^2)):

- **Fast Gauss transform** (:func:`fgt_sums`; Greengard and Strain 1991, both expansions). Samples
  are binned in boxes of width 2 rho sigma (centres b), points in groups on the same grid (centres
  g). With x = (g - b)/sigma, tau = (v - g)/sigma, y = (s - b)/sigma (|tau|, |y| <= rho), the double
  Taylor series
        exp(-(x + tau - y)^2) = sum_{n,k} y^n tau^k (-1)^k h_{n+k}(x) / (n! k!),
  h_m(x) = H_m(x) exp(-x^2) (Hermite functions), truncated at n, k < p, gives every group a local
  polynomial in tau, sum_k B_k tau^k, B_k = sum_boxes sum_n A_n (-1)^k h_{n+k}(x) / k!, from the
  box moments A_n = sum_i y_i^n / n!. Boxes and groups share one grid, so x takes only the values
  2 rho d for the box offsets d of a group's window, and the translation is one fixed small matrix
  (:func:`_translation_matrix`, :func:`_translate`). Error: Cramer's inequality
  |h_m(x)| <= 1.0865 2^(m/2) sqrt(m!) exp(-x^2/2) bounds the dropped terms of a box by
  1.09 W exp(-x^2/2) sum_{N >= p} (2 sqrt(2) rho)^N / sqrt(N!) (W: its count; 6.1e-10 W exp(-x^2/2)
  at rho = FGT_RHO = 1/2, p = FGT_TERMS = 26); boxes farther than FGT_DROP = 7 sigma from a group
  are dropped, each of their samples weighing < exp(-49); rounding adds 1e-11 of the same scale
  (the computed Hermite recurrence stays within 3e-15 of Cramer's envelope). The bandwidths form
  chains on one grid (:class:`_Chain`): bandwidth j uses boxes of width w0 2^l (w0 = 2 rho
  sigma_min) with an effective rho_j in (rho/2, rho], so the moments are computed once over the
  samples and merged level to level; on the default grid (sqrt(2) spacing) rho_j alternates
  between 1/2 and 1/(2 sqrt 2), the latter with fewer terms (:func:`_terms_for`).
- **Crude and direct bounds** (:class:`_Nearest`) for the points the transform does not resolve
  to ISOLATED_RELATIVE_ERROR (points far from every sample, whose S_h is far below the error
  scale): first log S in [log c - d^2/sigma^2, log n - d^2/sigma^2] (d: distance to the nearest
  sample, c: samples at that distance), and only for the bandwidths these leave among the possible
  maxima, direct sums: log S = log sum_window exp(-Q_i / sigma^2) - d^2 / sigma^2,
  Q_i = (v - s_i)^2 - d^2, over the samples with Q_i <= M sigma^2 (M = DIRECT_MARGIN, less if that
  would exceed DIRECT_PAIR_BUDGET pairs), each of the others weighing < exp(-M) times the nearest
  sample's term; duplicated sample values are summed once with their count.

Cost on the 2-core development machine (see :mod:`.kde`), 10,000 samples, 2,000 validation points,
the 14 default bandwidths: 5-8 ms for the bounds, against 130-300 ms for the 14 exact scores. The
selection depends on the data only (never on timings) and uses no randomness. For inputs the bounds
are not made for (|values| > MAX_ABS_VALUE, bandwidths whose grid would be huge, problems small
enough that the exact scores are cheap) it computes every score exactly, as before.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .target import LOG_SQRT_2PI

FGT_RHO = 0.5
"""Largest half-width of the transform's boxes and groups, in units of sigma = sqrt(2) h."""
FGT_TERMS = 26
"""Terms p of both expansions (orders 0..p-1) at rho = FGT_RHO: truncation bound 6.1e-10 (module doc);
narrower effective boxes take the fewest terms with no larger bound (:func:`_terms_for`)."""
FGT_DROP = 7.0
"""Samples farther than this many sigma from every point of a group are dropped for it (each
weighs < exp(-49) of a nearest-sample term)."""
MAX_BASE_BOXES = 1 << 16
"""Most finest-level boxes one chain of bandwidths may use (wider grids are split into chains)."""
_CRAMER = 1.09  # > 1.086435, the constant of Cramer's inequality for Hermite functions
_ROUNDING = 1e-11  # relative to the same scale as the truncation bound (rounding is ~1e-14 there)
_GEMM_ELEMENTS = 250_000  # m n k of one matrix product: OpenBLAS stays on one thread below 262,144

ISOLATED_RELATIVE_ERROR = 2e-8
"""Points whose transform error exceeds this fraction of their sum get crude bounds instead, and
direct ones where the crude ones leave their bandwidth among the possible maxima."""
DIRECT_MARGIN = 34.0
"""Direct bounds keep the samples whose term is >= exp(-DIRECT_MARGIN) times the nearest one's."""
DIRECT_PAIR_BUDGET = 100_000
"""Direct bounds take at most this many (point, distinct sample) pairs per bandwidth (with a
smaller margin, so looser bounds, where the full margin would take more)."""
MIN_PAIRS_FOR_BOUNDS = 200_000
"""Below n_samples x n_validation = this, every score is computed exactly (that is cheap)."""
MAX_ABS_VALUE = 1e100
"""Beyond this magnitude of a sample or point the exact code is used (it overflows near 1e150)."""
SCORE_MARGIN = 1e-10
"""Relative widening of each score interval for the rounding of the exact scores (~1e-14)."""

_EPS = float(np.finfo(np.float64).eps)
_FACTORIAL = np.array([float(math.factorial(n)) for n in range(FGT_TERMS)])
_TRANSLATIONS: dict[tuple[float, int, int], np.ndarray] = {}
_MERGES: dict[int, np.ndarray] = {}


def _translation_matrix(rho: float, reach: int, p: int) -> np.ndarray:
    """T[e, n, k] = (-1)^k h_{n+k}(x_e) / k! (n, k < p) for the box offsets e = 0..2 reach of a
    group's window, x_e = 2 rho (reach - e) (group centre minus box centre, in sigma), plus
    T[e, 0, p] = exp(-x_e^2 / 2) (the error scale: sum over the window of W exp(-x^2 / 2))."""
    key = (rho, reach, p)
    table = _TRANSLATIONS.get(key)
    if table is not None:
        return table
    x = 2.0 * rho * (reach - np.arange(2 * reach + 1, dtype=np.float64))
    h = np.empty((2 * p - 1, x.size))  # Hermite functions by their (stable) recurrence
    h[0] = np.exp(-x * x)
    h[1] = 2.0 * x * h[0]
    for m in range(1, 2 * p - 2):
        h[m + 1] = 2.0 * x * h[m] - 2.0 * m * h[m - 1]
    scale = np.array([(-1.0) ** k for k in range(p)]) / _FACTORIAL[:p]
    table = np.zeros((x.size, p, p + 1))
    for n in range(p):
        table[:, n, :p] = h[n : n + p].T * scale
    table[:, 0, p] = np.exp(-0.5 * x * x)
    if len(_TRANSLATIONS) > 64:
        _TRANSLATIONS.clear()
    _TRANSLATIONS[key] = table
    return table


def _translate(moments: np.ndarray, table: np.ndarray, n_groups: int) -> np.ndarray:
    """coeffs[g] = sum_e moments[g + e] @ table[e]: every group's local polynomial (and error
    scale) from the moments of the boxes in its window. As one matrix product where it is small,
    else one per offset e (row blocks if needed): each product stays below OpenBLAS's threading
    threshold, so no threads are started (they cost far more than they save here, and much more
    on a busy machine); the values matter only up to the rounding slack."""
    k, p, q = table.shape
    if n_groups * k * p * q <= _GEMM_ELEMENTS:
        window = np.lib.stride_tricks.sliding_window_view(moments, (k, p))[:, 0]
        return window.reshape(n_groups, k * p) @ table.reshape(k * p, q)
    out = np.zeros((n_groups, q))
    step = max(1, _GEMM_ELEMENTS // (p * q))
    tmp = np.empty((min(step, n_groups), q))
    for e in range(k):
        for a in range(0, n_groups, step):
            b = min(a + step, n_groups)
            np.matmul(moments[e + a : e + b], table[e], out=tmp[: b - a])
            out[a:b] += tmp[: b - a]
    return out


@functools.lru_cache(maxsize=1024)
def _terms_for(rho: float) -> int:
    """The fewest terms p <= FGT_TERMS whose truncation bound is <= that of FGT_TERMS at FGT_RHO."""
    target = _truncation_bound(FGT_RHO, FGT_TERMS)
    p = FGT_TERMS
    while p > 8 and _truncation_bound(rho, p - 1) <= target:
        p -= 1
    return p


def _merge_matrix(level: int) -> np.ndarray:
    """Stacked [M(-c); M(+c)], c = 2^(level-2): moments of two level-1 boxes (left, right) to
    their parent's, in w0 units. M(o)[k, n] = o^(n-k) / (n-k)! (n >= k), since the moments
    sum u^n/n! about a child centre give those about the parent centre by
    sum_k u^k/k! o^(n-k)/(n-k)! = (u + o)^n / n!, o = child centre minus parent centre."""
    table = _MERGES.get(level)
    if table is None:
        p = FGT_TERMS
        half = 2.0 ** (level - 2)
        table = np.zeros((2, p, p))
        for side, offset in enumerate((-half, half)):
            for k in range(p):
                table[side, k, k:] = offset ** np.arange(p - k) / _FACTORIAL[: p - k]
        table = table.reshape(2 * p, p)
        _MERGES[level] = table
    return table


def _truncation_bound(rho: float, p: int = FGT_TERMS) -> float:
    """_CRAMER sum_{N >= p} (2 sqrt(2) rho)^N / sqrt(N!): the dropped terms per unit of W exp(-x^2/2).

    Summed term by term while the ratio a / sqrt(N + 1) of successive terms is >= 1/2, then the
    rest bounded by a geometric series of that ratio (the ratios decrease)."""
    a = 2.0 * math.sqrt(2.0) * rho
    big_n = p
    term = math.exp(big_n * math.log(a) - 0.5 * math.lgamma(big_n + 1.0))
    total = 0.0
    while True:
        total += term
        ratio = a / math.sqrt(big_n + 1.0)
        if ratio < 0.5:
            total += term * ratio / (1.0 - ratio)
            break
        term *= ratio
        big_n += 1
    return _CRAMER * total * (1.0 + 1e-6)


class _Chain:
    """The transform's geometry for bandwidths sigma_0 <= sigma_1 <= ... sharing one box grid.

    Boxes of the finest level have width w0 = 2 rho sigma_0; bandwidth j uses level l_j, boxes of
    width w0 2^l_j <= 2 rho sigma_j (so its effective half-width rho_j = w0 2^l_j / (2 sigma_j) is
    in (rho/2, rho]), and a window of reach_j = ceil(FGT_DROP / (2 rho_j)) boxes each side. Box
    edges are origin + i w0 2^l, so level l+1 boxes are unions of two level-l boxes, and moments
    move up by :func:`_merge_matrix` (one moment computation over the samples for the chain).
    """

    def __init__(self, t_shifted: np.ndarray, sigmas: list[float]):
        self.sigmas = sigmas
        self.w0 = 2.0 * FGT_RHO * sigmas[0]
        self.level, self.rho, self.reach, self.terms = [], [], [], []
        t_lo, t_hi = float(t_shifted.min()), float(t_shifted.max())
        lo, hi = math.inf, -math.inf
        for sigma in sigmas:
            lev = max(0, math.floor(math.log2(sigma / sigmas[0])))
            while lev > 0 and self.w0 * 2.0**lev > 2.0 * FGT_RHO * sigma:
                lev -= 1
            while self.w0 * 2.0 ** (lev + 1) <= 2.0 * FGT_RHO * sigma:
                lev += 1
            rho = self.w0 * 2.0**lev / (2.0 * sigma)
            reach = math.ceil(FGT_DROP / (2.0 * rho))
            width = self.w0 * 2.0**lev
            lo = min(lo, (math.floor(t_lo / width) - reach) * 2.0**lev)
            hi = max(hi, (math.floor(t_hi / width) + reach + 1) * 2.0**lev)
            self.level.append(lev)
            self.rho.append(rho)
            self.reach.append(reach)
            self.terms.append(_terms_for(rho))
        top = 2.0 ** max(self.level)
        self.base_lo = math.floor(lo / top) * top  # base box indexes [base_lo, base_hi), aligned
        self.base_hi = math.ceil(hi / top) * top
        self.n_base = self.base_hi - self.base_lo

    def moments(self, s_shifted: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Per level, the dense moments R[i, n] = sum over box i of u^n / n!, u = (s - centre)/w0,
        and max |u| at the finest level (0.5 up to rounding)."""
        p, w0 = FGT_TERMS, self.w0
        n_base = int(self.n_base)
        base = np.zeros((n_base, p))
        u_max = 0.5
        i0 = int(np.searchsorted(s_shifted, self.base_lo * w0, side="left"))
        i1 = int(np.searchsorted(s_shifted, self.base_hi * w0, side="left"))
        if i1 > i0:
            sp = s_shifted[i0:i1]
            box = np.clip(np.floor(sp / w0), self.base_lo, self.base_hi - 1.0)
            u = (sp - (box + 0.5) * w0) / w0
            u_max = max(u_max, float(np.abs(u).max()))
            powers = np.empty((p, u.size))
            powers[0] = 1.0
            for n in range(1, p):
                np.multiply(powers[n - 1], u, out=powers[n])
            index = (box - self.base_lo).astype(np.intp)
            starts = np.concatenate(([0], np.flatnonzero(index[1:] != index[:-1]) + 1))
            base[index[starts]] = np.add.reduceat(powers, starts, axis=1).T / _FACTORIAL
        levels = [base]
        for lev in range(1, max(self.level) + 1):
            child = levels[-1]
            pairs = child.reshape(child.shape[0] // 2, 2 * p)
            merged = np.empty((pairs.shape[0], p))
            step = max(1, _GEMM_ELEMENTS // (2 * p * p))  # one thread (see _translate)
            for a in range(0, pairs.shape[0], step):
                np.matmul(pairs[a : a + step], _merge_matrix(lev), out=merged[a : a + step])
            levels.append(merged)
        return levels, u_max


def _fgt_chain(s_shifted: np.ndarray, t_shifted: np.ndarray, chain: _Chain, n_samples: int):
    """[(S, E)] per bandwidth of the chain: S_t ~ sum_i exp(-((t - s_i)/sigma)^2), |error| <= E_t."""
    p = FGT_TERMS
    levels, u_max = chain.moments(s_shifted)
    t_abs = float(np.abs(t_shifted).max())
    groups: dict[int, tuple] = {}
    out = []
    for j, sigma in enumerate(chain.sigmas):
        lev, rho, reach, terms = chain.level[j], chain.rho[j], chain.reach[j], chain.terms[j]
        width = chain.w0 * 2.0**lev
        if lev not in groups:
            # Points by group of this level; tau_w = (t - centre) / width and its powers.
            jt = np.floor(t_shifted / width)
            g_lo = float(jt.min())
            tau_w = (t_shifted - (jt + 0.5) * width) / width
            powers = np.empty((p, t_shifted.size))
            powers[0] = 1.0
            for k in range(1, p):
                np.multiply(powers[k - 1], tau_w, out=powers[k])
            groups[lev] = ((jt - g_lo).astype(np.intp), g_lo, int(float(jt.max()) - g_lo) + 1,
                           np.ascontiguousarray(powers.T), float(np.abs(tau_w).max()))
        g, g_lo, n_groups, powers, tau_max = groups[lev]
        first = int(g_lo - reach - chain.base_lo / 2.0**lev)  # row of the window's first box
        moments = levels[lev][first : first + n_groups + 2 * reach, :terms]
        scaled = moments * (chain.w0 / sigma) ** np.arange(terms)  # moments of y = (s - centre)/sigma
        coeffs = _translate(scaled, _translation_matrix(rho, reach, terms), n_groups)
        coeffs[:, :terms] *= (width / sigma) ** np.arange(terms)  # polynomials in tau_w = tau sigma / width
        local = np.take(coeffs, g, axis=0)
        total = np.einsum("ij,ij->i", local[:, :terms], powers[:, :terms])
        counts = np.concatenate(([0.0], np.cumsum(moments[:, 0])))
        in_window = counts[2 * reach + 1 :] - counts[:n_groups]
        # |y| <= rho up to the finest boxes' rounding; |tau| <= rho up to rounding.
        rho_bound = max(rho + (u_max - 0.5) * chain.w0 / sigma, tau_max * width / sigma) * (1.0 + 1e-12)
        # Rounding of the coordinates: |t - s| / sigma is known to within delta (absolute).
        delta = 8.0 * _EPS * ((t_abs + (reach + 2) * width) / sigma + FGT_DROP + 2.0)
        per_scale = _truncation_bound(rho_bound, terms) + _ROUNDING + 20.0 * delta
        gap = 2.0 * rho * reach - 1e-6 - 4.0 * delta  # sigma units from a point to any dropped sample
        dropped = (n_samples - in_window[g]) * math.exp(-gap * gap)
        out.append((total, np.abs(local[:, terms]) * per_scale + dropped))
    return out


def fgt_sums(s: np.ndarray, t: np.ndarray, sigmas: np.ndarray) -> list:
    """[(S, E) or None] per sigma: S_t ~ sum_i exp(-((t - s_i)/sigma)^2) by the fast Gauss
    transform, |S_t - true| <= E_t (s sorted). Bandwidths are processed in chains sharing one
    box grid (:class:`_Chain`), split where a chain would need more than MAX_BASE_BOXES boxes;
    None for a bandwidth that alone would."""
    origin = 0.5 * (float(t.min()) + float(t.max()))
    t_shifted = t - origin
    s_shifted = s - origin
    order = np.argsort(sigmas, kind="stable")
    out: list = [None] * sigmas.size
    i = 0
    while i < order.size:
        members = [float(sigmas[order[i]])]
        chain = _Chain(t_shifted, members)
        if chain.n_base > MAX_BASE_BOXES:
            i += 1
            continue
        while i + len(members) < order.size:
            longer = _Chain(t_shifted, [*members, float(sigmas[order[i + len(members)]])])
            if longer.n_base > MAX_BASE_BOXES:
                break
            chain = longer
            members = chain.sigmas
        for k, result in enumerate(_fgt_chain(s_shifted, t_shifted, chain, s.size)):
            out[order[i + k]] = result
        i += len(members)
    return out


class _Nearest:
    """The distinct sorted sample values with their counts, and for every point t its squared
    distance d^2 to the nearest sample and how many samples sit at that distance."""

    def __init__(self, s: np.ndarray, t: np.ndarray):
        starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
        self.values = s[starts]
        self.counts = np.diff(np.concatenate((starts, [s.size]))).astype(np.float64)
        self.cum_counts = np.concatenate(([0.0], np.cumsum(self.counts)))
        self.n = float(s.size)
        last = self.values.size - 1
        idx = np.searchsorted(self.values, t)
        left, right = np.maximum(idx - 1, 0), np.minimum(idx, last)
        d_left, d_right = np.abs(t - self.values[left]), np.abs(t - self.values[right])
        d_min = np.minimum(d_left, d_right)
        self.d2 = d_min * d_min
        # Samples at exactly the nearest distance (both neighbours when t is midway).
        self.nearest_count = self.counts[right] * (d_right == d_min) + self.counts[left] * (
            (d_left == d_min) & (left != right)
        )

    def crude_bounds(self, sigma: float, points=slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """log S within [log c - d^2/sigma^2, log n - d^2/sigma^2]: c terms are exp(-d^2/sigma^2)
        exactly, and no term is larger."""
        shift = self.d2[points] / (sigma * sigma)
        return np.log(self.nearest_count[points]) - shift * (1.0 + 8.0 * _EPS), math.log(self.n) - shift * (
            1.0 - 8.0 * _EPS
        )

    def direct_bounds(self, t: np.ndarray, points: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of log sum_i exp(-((t - s_i)/sigma)^2) for the points t[points].

        Keeps the samples with Q = (t - s)^2 - d^2 <= M sigma^2, each of the others weighing
        < exp(-M) times the nearest sample's term, with M = DIRECT_MARGIN, or the largest of
        DIRECT_MARGIN / 2^k that keeps at most DIRECT_PAIR_BUDGET (point, distinct value) pairs
        (looser bounds, same cost cap); if none does, :meth:`crude_bounds`.
        """
        values, counts, cum_counts = self.values, self.counts, self.cum_counts
        tp = t[points]
        d2 = self.d2[points]
        margin = DIRECT_MARGIN
        while margin >= 1.0:
            # Reach sqrt(d^2 + M sigma^2), widened over the rounding of t +- r: a superset window.
            r = np.sqrt(d2 + margin * sigma * sigma) * (1.0 + 1e-9)
            r += 4.0 * _EPS * (np.abs(tp) + r)
            lo = np.searchsorted(values, tp - r, side="left")
            hi = np.searchsorted(values, tp + r, side="right")
            width = hi - lo
            n_pairs = int(width.sum())
            if n_pairs <= DIRECT_PAIR_BUDGET and np.all(width > 0):
                break
            margin *= 0.5
        else:
            return self.crude_bounds(sigma, points)
        inv_s2 = 1.0 / (sigma * sigma)
        first = np.concatenate(([0], np.cumsum(width)[:-1]))
        point = np.repeat(np.arange(tp.size), width)
        pos = np.arange(n_pairs) - np.repeat(first - lo, width)
        diff = tp[point] - values[pos]
        q = diff * diff - d2[point]
        terms = counts[pos] * np.exp(q * -inv_s2)  # q >= 0: |t - s| >= d_min holds in floating point too
        kept = np.add.reduceat(terms, first)
        rest = self.n - (cum_counts[hi] - cum_counts[lo])
        shift = d2 * inv_s2
        # Relative error of the kept sum: the exponents -q/sigma^2 carry ~eps (d^2 + r^2)/sigma^2
        # absolute (q is a difference of squares), exp and the summation ~eps log(pairs).
        rel = 1e-13 * (1.0 + math.log(self.n + 1.0)) + 8.0 * _EPS * (2.0 * shift + margin + 1.0)
        lo_log = np.log(kept) - 2.0 * rel - shift * (1.0 + 8.0 * _EPS)
        hi_log = np.log(kept + rest * math.exp(-margin)) + 2.0 * rel - shift * (1.0 - 8.0 * _EPS)
        return lo_log, hi_log


def _mean_bounds(lo: np.ndarray, hi: np.ndarray, h: float, log_n: float) -> tuple[float, float]:
    """[L, U] of the score from per-point bounds of log S, widened by SCORE_MARGIN."""
    norm = log_n + math.log(h) + LOG_SQRT_2PI
    size = float(np.mean(np.abs(lo))) + float(np.mean(np.abs(hi))) + abs(norm) + 1.0
    margin = SCORE_MARGIN * size
    low = float(np.mean(lo)) - norm - margin
    high = float(np.mean(hi)) - norm + margin
    if math.isfinite(low) and math.isfinite(high):
        return low, high
    return -math.inf, math.inf


def score_bounds(s: np.ndarray, v: np.ndarray, bandwidths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, U): L_j <= score(h_j) <= U_j, widened by SCORE_MARGIN for the exact code's rounding;
    -inf / +inf where a bandwidth cannot be bounded. s sorted, every value finite.

    Per point, the transform's bounds where it resolves the point to ISOLATED_RELATIVE_ERROR;
    else first the crude bounds of :meth:`_Nearest.crude_bounds` (intersected with what the
    transform gives), then, only for the bandwidths those leave among the possible maxima, the
    direct bounds of :meth:`_Nearest.direct_bounds`.
    """
    near = _Nearest(s, v)
    n_h = bandwidths.size
    lower = np.full(n_h, -math.inf)
    upper = np.full(n_h, math.inf)
    log_n = math.log(s.size)
    sigmas = math.sqrt(2.0) * bandwidths
    pending = {}
    for j, fgt in enumerate(fgt_sums(s, v, sigmas)):
        if fgt is None:
            continue
        total, err = fgt
        low = total - err
        with np.errstate(divide="ignore", invalid="ignore"):
            resolved = (low > 1e-250) & (err <= ISOLATED_RELATIVE_ERROR * low)
            lo = np.log(low)  # a lower bound wherever S - E > 0 (NaN or -inf elsewhere)
            hi = np.where(total + err > 1e-250, np.log(total + err), math.inf)  # always an upper bound
        isolated = np.flatnonzero(~resolved)
        if isolated.size:
            c_lo, c_hi = near.crude_bounds(float(sigmas[j]), isolated)
            lo[isolated] = np.fmax(lo[isolated], c_lo)
            hi[isolated] = np.fmin(hi[isolated], c_hi)
            pending[j] = (lo, hi, isolated)
        lower[j], upper[j] = _mean_bounds(lo, hi, float(bandwidths[j]), log_n)
    for j in surviving_bandwidths(lower, upper):
        if int(j) in pending:
            lo, hi, isolated = pending[int(j)]
            d_lo, d_hi = near.direct_bounds(v, isolated, float(sigmas[j]))
            lo[isolated] = np.fmax(lo[isolated], d_lo)
            hi[isolated] = np.fmin(hi[isolated], d_hi)
            lower[j], upper[j] = _mean_bounds(lo, hi, float(bandwidths[j]), log_n)
    return lower, upper


def bounds_apply(s: np.ndarray, v: np.ndarray, bandwidths: np.ndarray) -> bool:
    """Whether :func:`score_bounds` is used: a problem large enough, moderate magnitudes, and a
    grid for which no exponent (t - s)^2 / (2 h^2) of the exact code can overflow (so that every
    exact score is finite and within rounding of the true one, which the bounds enclose)."""
    if s.size * v.size < MIN_PAIRS_FOR_BOUNDS:
        return False
    big = max(abs(float(s[0])), abs(float(s[-1])), float(np.abs(v).max()))
    if not big <= MAX_ABS_VALUE:
        return False
    h_min, h_max = float(bandwidths.min()), float(bandwidths.max())
    if not (h_min >= 1e-100 and h_max <= 1e100):
        return False
    return (2.0 * big) ** 2 / (2.0 * h_min * h_min) <= 1e290


def surviving_bandwidths(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Indexes j with U_j >= max L: the only possible maxima of the scores (increasing order)."""
    best = float(np.max(lower))
    return np.flatnonzero(upper >= best)
