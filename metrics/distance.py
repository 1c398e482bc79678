"""Distances between the empirical distribution of generated samples and the exact target.

Both functions compare the ECDF F_n of the n samples with the exact target CDF
F(x) = Phi((x - mu) / sigma) (not with a sample of the target), so they carry no evaluation
noise of their own. Any non-finite sample makes both NaN (the run status reports "diverged").
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from .target import MU, SIGMA, all_finite, as_samples, check_target_params

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_TAIL_Z = 40.0
"""Standardized point beyond which Phi underflows: Phi(-40) ~ 4e-350 and phi(40) ~ 1e-348 are
both 0 in float64, so G(-40) below is exactly 0.0 and the true tail integral
int_{-inf}^{-40} Phi(z) dz ~ 1e-351 is below the smallest float64; truncating there is exact."""


def ks_statistic(samples, *, mu: float = MU, sigma: float = SIGMA) -> float:
    """One-sample Kolmogorov-Smirnov statistic against the exact target N(mu, sigma^2).

    D_n = sup_x |F_n(x) - Phi((x - mu) / sigma)|, computed exactly from the sorted sample
    x_(1) <= ... <= x_(n) as

        D_n = max_i max( i/n - Phi(z_(i)),  Phi(z_(i)) - (i-1)/n ),   z_(i) = (x_(i) - mu) / sigma

    (the supremum is attained at a jump of F_n, from above or from below). Ties are handled
    correctly: inside a group of equal values the largest i gives the upper and the smallest
    i the lower one-sided term. Returns NaN if any sample is non-finite.
    """
    mu, sigma = check_target_params(mu, sigma)
    x = as_samples(samples)
    if not all_finite(x):
        return math.nan
    return _ks_standardized(np.sort((x - mu) / sigma))


def _ks_standardized(z: np.ndarray) -> float:
    """The KS statistic of sorted standardized samples z (see ks_statistic)."""
    n = z.size
    cdf = ndtr(z)
    d_plus = np.max(np.arange(1.0, n + 1.0) / n - cdf)
    d_minus = np.max(cdf - np.arange(0.0, n) / n)
    return float(max(d_plus, d_minus))


def ks_statistic_sorted(samples_sorted: np.ndarray, *, mu: float = MU, sigma: float = SIGMA) -> float:
    """:func:`ks_statistic` of already sorted samples (a 1-D float64 array), without sorting again:
    the same number bit for bit ((x - mu) / sigma is non-decreasing in x, so standardizing the
    sorted samples gives the sorted standardized ones)."""
    mu, sigma = check_target_params(mu, sigma)
    if not all_finite(samples_sorted):
        return math.nan
    return _ks_standardized((samples_sorted - mu) / sigma)


def _int_phi_below(z: np.ndarray) -> np.ndarray:
    """G(z) = int_{-inf}^{z} Phi(t) dt = z Phi(z) + phi(z), for z <= 0.

    Only evaluated at z <= 0, where both terms are small and G lies in [0, phi(0)] = [0, 0.399]:
    differences G(b) - G(a) then lose at most ~1e-16 absolute, never the O(|z|) absolute
    rounding that z Phi(z) would carry for large positive z.
    """
    return z * ndtr(z) + np.exp(-0.5 * z * z) * _INV_SQRT_2PI


def _sum_abs_level_minus_phi(u: np.ndarray, v: np.ndarray, k: np.ndarray) -> float:
    """sum_j int_{u_j}^{v_j} |k_j - Phi(z)| dz for pieces u_j <= v_j <= 0 and levels k_j in [0, 1].

    On a piece, k - Phi changes sign at most once, at q = Phi^{-1}(k); with c = clip(q, u, v),

        int_u^v |k - Phi| = [k (c - u) - (G(c) - G(u))] + [(G(v) - G(c)) - k (v - c)],

    where G is :func:`_int_phi_below`; both brackets are integrals of non-negative functions.
    (k = 0 gives q = -inf, c = u; k >= 0.5 gives q >= 0 >= v, c = v.)
    """
    c = np.clip(ndtri(k), u, v)
    g_u = _int_phi_below(u)
    g_v = _int_phi_below(v)
    g_c = _int_phi_below(c)
    below = k * (c - u) - (g_c - g_u)
    above = (g_v - g_c) - k * (v - c)
    return float(np.sum(below + above))


def wasserstein1(samples, *, mu: float = MU, sigma: float = SIGMA) -> float:
    """Wasserstein-1 distance between the samples' empirical distribution and exact N(mu, sigma^2).

    W1 = int_R |F_n(x) - Phi((x - mu) / sigma)| dx = sigma * int_R |F_n(z) - Phi(z)| dz,

    in standardized units z = (x - mu) / sigma, computed in closed form. With sorted
    z_(1) <= ... <= z_(n), z_(0) = -inf and z_(n+1) = +inf, the ECDF equals the constant
    k_i = i/n on [z_(i), z_(i+1)], i = 0..n (so the two tails are the pieces with k = 0 and
    k = 1). Each piece is cut at 0:

    - the part below 0 is int |k_i - Phi(z)| dz;
    - the part above 0 is mirrored by z -> -z, using 1 - Phi(z) = Phi(-z):
      int_a^b |k_i - Phi(z)| dz = int_{-b}^{-a} |(1 - k_i) - Phi(w)| dw, with 1 - k_i = (n-i)/n.

    So every piece lies in z <= 0 and is integrated with the antiderivative
    G(z) = int_{-inf}^z Phi = z Phi(z) + phi(z), split at the crossing Phi^{-1}(k) (see
    :func:`_sum_abs_level_minus_phi`). Working only at z <= 0 avoids the cancellation that the
    naive form z Phi(z) + phi(z) - z suffers in the upper tail. Tails are truncated at |z| = 40,
    where G is exactly 0.0 in float64 (the true remainder is ~1e-351).

    Accuracy: agrees with adaptive quadrature of |F_n - Phi| to ~1e-13 relative. Cost: O(n log n)
    (the sort) plus ~6n ndtr/exp and 2n ndtri calls; n = 10,000 takes about 1.5 ms.
    Returns NaN if any sample is non-finite (or overflows when standardized).
    """
    mu, sigma = check_target_params(mu, sigma)
    x = as_samples(samples)
    if not all_finite(x):
        return math.nan
    with np.errstate(over="ignore"):
        z = np.sort((x - mu) / sigma)
    return _w1_of_standardized(z, sigma)


def wasserstein1_sorted(samples_sorted: np.ndarray, *, mu: float = MU, sigma: float = SIGMA) -> float:
    """:func:`wasserstein1` of already sorted samples (a 1-D float64 array), without sorting
    again: the same number bit for bit (see :func:`ks_statistic_sorted`)."""
    mu, sigma = check_target_params(mu, sigma)
    if not all_finite(samples_sorted):
        return math.nan
    with np.errstate(over="ignore"):
        z = (samples_sorted - mu) / sigma
    return _w1_of_standardized(z, sigma)


def _w1_of_standardized(z: np.ndarray, sigma: float) -> float:
    if not all_finite(z):
        return math.nan
    # z*z in phi(z) overflows (harmlessly, to phi = 0) for |z| > 1e154.
    with np.errstate(over="ignore"):
        return sigma * _w1_standardized(z)


def _w1_standardized(z: np.ndarray) -> float:
    """int_R |F_n(z) - Phi(z)| dz for sorted finite standardized samples z (see wasserstein1)."""
    n = z.size
    # Boundaries z_(0), z_(1), ..., z_(n), z_(n+1) with the infinite ends truncated at -+40.
    b = np.empty(n + 2)
    b[0] = min(z[0], -_TAIL_Z)
    b[1:-1] = z
    b[-1] = max(z[-1], _TAIL_Z)
    i = np.arange(n + 1, dtype=np.float64)
    # Below 0: pieces [min(b_i, 0), min(b_{i+1}, 0)] at level i/n.
    lower = np.minimum(b, 0.0)
    total = _sum_abs_level_minus_phi(lower[:-1], lower[1:], i / n)
    # Above 0, mirrored: [max(b_i, 0), max(b_{i+1}, 0)] -> [-max(b_{i+1}, 0), -max(b_i, 0)]
    # at level (n - i)/n.
    upper = -np.maximum(b, 0.0)
    total += _sum_abs_level_minus_phi(upper[1:], upper[:-1], (n - i) / n)
    return total
