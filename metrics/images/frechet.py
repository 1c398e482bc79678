"""Frechet distance between two feature sets, each summarised by a Gaussian (mean and covariance).

    FD = ||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))

with mu the feature means and C the sample covariances (ddof = 1, as numpy.cov), in float64.
This is the formula of FID (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium", https://arxiv.org/abs/1706.08500), applied to the suite's
own classifier's features (:mod:`.classifier`), not Inception's: the numbers are not comparable
with published FIDs.

The trace of the square root. C_a C_b is not symmetric, so its principal square root is not taken
directly (scipy.linalg.sqrtm's Schur iteration can return complex parts and loses accuracy on
near-singular covariances). Instead, with R = C_a^(1/2) the symmetric square root of C_a, C_a C_b
is similar to the symmetric positive semi-definite M = R C_b R (when C_a is invertible, and by
continuity otherwise), so

    tr (C_a C_b)^(1/2) = sum_i sqrt(lambda_i(M)).

Both steps use symmetric eigendecompositions (LAPACK's syevd through numpy.linalg.eigh /
eigvalsh): R = V diag(sqrt(max(w, 0))) V^T from C_a = V diag(w) V^T, and M is symmetrised
((M + M^T) / 2) before its eigenvalues are taken; eigenvalues below 0 (rounding on a singular
covariance, e.g. dead ReLU units) are clipped at 0. No iteration, no random start, no complex
arithmetic: deterministic and defined for singular covariances (BLAS and LAPACK on one thread:
:func:`.parzen.one_blas_thread`). The result is not clipped: FD(a, a)
is 0 up to rounding (about 1e-12 of tr C) and may come out slightly negative.
"""
from __future__ import annotations

import numpy as np

from .parzen import one_blas_thread


def _as_features(x, name: str) -> np.ndarray:
    f = np.asarray(x, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{name} must have shape (N, F), got {f.shape}")
    if f.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows for a covariance, got {f.shape[0]}")
    if not bool(np.isfinite(f).all()):
        raise ValueError(f"{name} contain non-finite values")
    return f


def mean_and_covariance(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu, C): the mean (F,) and the sample covariance (F, F), ddof = 1, of features (N, F)."""
    f = _as_features(features, "features")
    mu = np.mean(f, axis=0)
    centred = f - mu
    cov = (centred.T @ centred) / (f.shape[0] - 1)
    return mu, (cov + cov.T) / 2.0


def symmetric_sqrt(c: np.ndarray) -> np.ndarray:
    """The symmetric positive semi-definite square root of a symmetric matrix (negative eigenvalues clipped)."""
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.maximum(w, 0.0))) @ v.T


def trace_sqrt_product(c_a: np.ndarray, c_b: np.ndarray) -> float:
    """tr (C_a C_b)^(1/2) = sum_i sqrt(lambda_i(R C_b R)), R = C_a^(1/2) (module docstring)."""
    r = symmetric_sqrt(c_a)
    m = r @ c_b @ r
    w = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sum(np.sqrt(np.maximum(w, 0.0))))


def frechet_from_moments(mu_a: np.ndarray, c_a: np.ndarray, mu_b: np.ndarray, c_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(C_a) + tr(C_b) - 2 tr (C_a C_b)^(1/2), as a Python float."""
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(c_a) + np.trace(c_b) - 2.0 * trace_sqrt_product(c_a, c_b))


def frechet_distance(feat_a, feat_b) -> float:
    """The Frechet distance between the Gaussians fitted to feat_a (N_a, F) and feat_b (N_b, F).

    Both must be finite with at least 2 rows and the same F (ValueError otherwise).
    """
    with one_blas_thread():
        mu_a, c_a = mean_and_covariance(feat_a)
        mu_b, c_b = mean_and_covariance(feat_b)
        if mu_a.shape != mu_b.shape:
            raise ValueError(f"feature sizes differ: {mu_a.shape[0]} and {mu_b.shape[0]}")
        return frechet_from_moments(mu_a, c_a, mu_b, c_b)
