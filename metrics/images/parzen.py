"""Parzen-window log-likelihood of held-out images under generated ones (Goodfellow et al. 2014's protocol).

The generated samples s_1..s_N (flattened to d = H * W values) define a mixture of isotropic Gaussians

    p_sigma(x) = (1/N) sum_j N(x; s_j, sigma^2 I_d),

    log p_sigma(x) = logsumexp_j( -||x - s_j||^2 / (2 sigma^2) ) - log N - (d/2) log(2 pi sigma^2).

Protocol ("Generative Adversarial Nets", Goodfellow et al. 2014, https://arxiv.org/abs/1406.2661;
their parzen_ll.py in https://github.com/goodfeli/adversarial): sigma is chosen from the 10 values
``np.logspace(-1, 0, 10)`` (0.1 .. 1) by the mean log-likelihood of validation images (the first
maximum on ties), and the score is the mean log-likelihood of the test images at that sigma, with
its standard error std(ddof=1) / sqrt(M), in nats. (parzen_ll.py divides numpy's std, ddof=0; at
M = 10,000 the two differ by 5e-5 relative.)

Exact evaluation in float64. Squared distances are expanded as ||x||^2 + ||s||^2 - 2 x.s (one
matrix product per block, through NumPy's BLAS), negatives from rounding clipped at 0; both sets are
first shifted by the samples' mean (a translation: distances unchanged, smaller norms, less
cancellation). The logsumexp runs over blocks of samples as a streaming sum shifted by the running
nearest distance: with c = 1 / (2 sigma^2), D_min the smallest squared distance so far and
S = sum_j exp(-c (D_j - D_min)), a block with a smaller D_min' rescales S by exp(-c (D_min - D_min'));
finally logsumexp = log S - c D_min. The distance block is shared by every sigma of the grid.
Agreement with a brute-force logsumexp of the explicit differences: ~1e-14 relative (tests bound
it at 1e-12).

Blocks: POINT_BLOCK points x SAMPLE_BLOCK samples (16 MiB of float64 per block matrix; with the
temporaries of one block the working memory stays under 64 MiB besides the inputs). The last
block of points is padded with zeros to the full POINT_BLOCK rows, so every point goes through
matrix products of the same shapes whatever the number of points. The block sizes are constants,
never derived from the machine, so the same inputs give the same bytes on every run.

Threads: OpenBLAS's results can depend on how many threads share a matrix product (measured under
the suite's OPENBLAS_CORETYPE=Haswell pin: several float32 products of the classifier differ between
1 and 2 threads). Every BLAS and LAPACK call of ganrepro.metrics.images therefore runs inside
:func:`one_blas_thread`, which limits NumPy's BLAS to one thread (through threadpoolctl, when it is
installed; setting OPENBLAS_NUM_THREADS=1 before NumPy loads has the same effect).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

SIGMAS: tuple[float, ...] = tuple(float(s) for s in np.logspace(-1.0, 0.0, 10))
"""The sigma grid of parzen_ll.py: 10 values log-spaced from 0.1 to 1 (pixels in [0, 1])."""

POINT_BLOCK = 256
"""Points (validation or test images) per block."""

SAMPLE_BLOCK = 8192
"""Samples per block: a block matrix is POINT_BLOCK x SAMPLE_BLOCK float64 = 16 MiB."""


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with NumPy's BLAS (and LAPACK) on one thread, so results do not depend on the core count.

    Uses threadpoolctl (a dependency of scikit-learn) when it can be imported; without it the
    block runs unchanged and the thread count is whatever OPENBLAS_NUM_THREADS gave at NumPy's
    import. Cost: about 0.2 ms per use.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def as_flat_images(images, name: str = "images") -> np.ndarray:
    """``images`` (N, H, W) or (N, d) as a C-contiguous float64 (N, d) array; rejects other shapes."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, H, W) or (N, d), got {x.shape}")
    return np.ascontiguousarray(x)


def _check_finite(x: np.ndarray, name: str) -> None:
    if not bool(np.isfinite(x).all()):
        raise ValueError(f"{name} contain non-finite values")


def _check_sigmas(sigmas) -> np.ndarray:
    s = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if s.size == 0 or not bool(np.isfinite(s).all()) or bool(np.any(s <= 0.0)):
        raise ValueError(f"sigmas must be a non-empty sequence of finite positive numbers, got {sigmas!r}")
    return s


def _row_norms(x: np.ndarray) -> np.ndarray:
    """||x_i||^2 per row (NumPy's own einsum loop, not BLAS)."""
    return np.einsum("ij,ij->i", x, x)


def log_kernel_sums(
    samples: np.ndarray,
    points: np.ndarray,
    sigmas: np.ndarray,
    *,
    point_block: int = POINT_BLOCK,
    sample_block: int = SAMPLE_BLOCK,
) -> np.ndarray:
    """L[k, p] = logsumexp_j( -||x_p - s_j||^2 / (2 sigma_k^2) ), shape (len(sigmas), M).

    samples (N, d) and points (M, d): finite float64. The block sizes change the rounding only
    (tests: results agree to ~1e-15 across block sizes); the defaults are fixed constants.
    """
    n, d = samples.shape
    m = points.shape[0]
    if n == 0:
        raise ValueError("samples is empty")
    if points.shape[1] != d:
        raise ValueError(f"points have {points.shape[1]} values each, samples {d}")
    point_block = int(point_block)
    sample_block = int(sample_block)
    if point_block < 1 or sample_block < 1:
        raise ValueError("block sizes must be >= 1")
    coefs = 1.0 / (2.0 * sigmas * sigmas)
    out = np.empty((sigmas.size, m))
    if m == 0:
        return out
    centre = np.mean(samples, axis=0)
    s_all = samples - centre
    ss_all = _row_norms(s_all)
    x_block = np.zeros((point_block, d))
    for p0 in range(0, m, point_block):
        p1 = min(p0 + point_block, m)
        x_block[: p1 - p0] = points[p0:p1] - centre
        x_block[p1 - p0 :] = 0.0
        xx = _row_norms(x_block)
        d_min = np.full(point_block, np.inf)
        sums = np.zeros((sigmas.size, point_block))
        for s0 in range(0, n, sample_block):
            s1 = min(s0 + sample_block, n)
            dist = np.matmul(x_block, s_all[s0:s1].T)
            dist *= -2.0
            dist += xx[:, None]
            dist += ss_all[None, s0:s1]
            np.maximum(dist, 0.0, out=dist)
            new_min = np.minimum(d_min, dist.min(axis=1))
            if s0 > 0:
                shift = d_min - new_min  # >= 0; rescale the sums to the new nearest distance
                for k in range(sigmas.size):
                    sums[k] *= np.exp(-coefs[k] * shift)
            d_min = new_min
            dist -= d_min[:, None]
            work = np.empty_like(dist)
            for k in range(sigmas.size):
                np.multiply(dist, -coefs[k], out=work)
                np.exp(work, out=work)
                sums[k] += work.sum(axis=1)
        block = np.log(sums) - coefs[:, None] * d_min[None, :]
        out[:, p0:p1] = block[:, : p1 - p0]
    return out


def _normaliser(n: int, d: int, sigmas: np.ndarray) -> np.ndarray:
    """log N + (d/2) log(2 pi sigma^2) per sigma."""
    return math.log(n) + 0.5 * d * np.log(2.0 * math.pi * sigmas * sigmas)


def _parzen_all(samples: np.ndarray, points: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """log p_sigma(x) for every sigma (rows) and point (columns)."""
    n, d = samples.shape
    with one_blas_thread():
        sums = log_kernel_sums(samples, points, sigmas)
    return sums - _normaliser(n, d, sigmas)[:, None]


def parzen_log_likelihoods(samples, points, sigma: float) -> np.ndarray:
    """Per-point log p_sigma(x) (nats), shape (M,), in the order of ``points``.

    samples (N, H, W) or (N, d): the generated images; points (M, H, W) or (M, d): the images
    scored. Both must be finite (ValueError otherwise) and of the same size d.
    """
    s = as_flat_images(samples, "samples")
    x = as_flat_images(points, "points")
    _check_finite(s, "samples")
    _check_finite(x, "points")
    return _parzen_all(s, x, _check_sigmas([sigma]))[0]


def choose_sigma(samples, validation, sigmas=SIGMAS) -> tuple[float, np.ndarray]:
    """(sigma*, mean log p_sigma(v) over the validation images for every sigma in ``sigmas``).

    sigma* = argmax of the validation means (the first maximum on ties), as in parzen_ll.py's
    cross_validate_sigma. One distance computation serves the whole grid.
    """
    s = as_flat_images(samples, "samples")
    v = as_flat_images(validation, "validation")
    _check_finite(s, "samples")
    _check_finite(v, "validation")
    if v.shape[0] == 0:
        raise ValueError("validation is empty")
    grid = _check_sigmas(sigmas)
    scores = np.mean(_parzen_all(s, v, grid), axis=1)
    return float(grid[int(np.argmax(scores))]), scores


def parzen_score(samples, validation, test, sigmas=SIGMAS) -> dict[str, float]:
    """The Parzen-window score: sigma chosen on ``validation``, mean log-likelihood of ``test``.

    Returns {"parzen_ll": mean_t log p_sigma*(t), "parzen_ll_stderr": std(ddof=1) / sqrt(M)
    (NaN for M = 1), "parzen_sigma": sigma*} as Python floats, in nats.
    Cost: 10,000 samples x 10,000 test images x 784 values ~ 8e10 multiply-adds in BLAS plus
    1e8 exp per sigma (see docs/metrics-images.md for measured times).
    """
    sigma, _ = choose_sigma(samples, validation, sigmas)
    ll = parzen_log_likelihoods(samples, test, sigma)
    if ll.size == 0:
        raise ValueError("test is empty")
    stderr = float(np.std(ll, ddof=1) / math.sqrt(ll.size)) if ll.size > 1 else math.nan
    return {"parzen_ll": float(np.mean(ll)), "parzen_ll_stderr": stderr, "parzen_sigma": sigma}
