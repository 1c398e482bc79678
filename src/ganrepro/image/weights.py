"""Initial weights of the image track, drawn with NumPy in a fixed order (docs/images.md#initial-weights).

Every dense and convolution weight is N(0, 0.02^2), drawn in the order the shape lists give;
biases and batch norm's beta are 0, gamma is 1 (neither is drawn); G's running statistics start
at mean 0, variance 1. Convolution kernels are (k, k, C_in, C_out) (HWIO); dense weights are
(n_in, n_out). A stack of S seeds gives every array a leading seed axis.
"""
from __future__ import annotations

import numpy as np

from ..seeding import rng_for
from .config import INIT_STD, ImageConfig

KERNEL = 4

Shape = tuple[str, tuple[int, ...], str]
"""(name, shape, init) with init "normal" (N(0, 0.02^2), drawn), "zeros" or "ones"."""


def generator_shapes(c: ImageConfig) -> list[Shape]:
    """G's parameters in draw order (linear: g0 dense, g1 dense; dcgan: g0 dense + bn, g1 convT + bn, g2 convT)."""
    n, z = c.pixels, c.z_dim
    if c.model == "linear":
        h = c.hidden_size
        return [("g0.w", (z, h), "normal"), ("g0.b", (h,), "zeros"),
                ("g1.w", (h, n), "normal"), ("g1.b", (n,), "zeros")]
    f, s0 = c.base_width, c.first_map
    return [("g0.w", (z, s0 * s0 * 2 * f), "normal"),
            ("g0.bn.gamma", (2 * f,), "ones"), ("g0.bn.beta", (2 * f,), "zeros"),
            ("g1.w", (KERNEL, KERNEL, 2 * f, f), "normal"),
            ("g1.bn.gamma", (f,), "ones"), ("g1.bn.beta", (f,), "zeros"),
            ("g2.w", (KERNEL, KERNEL, f, 1), "normal"), ("g2.b", (1,), "zeros")]


def generator_stat_shapes(c: ImageConfig) -> list[Shape]:
    """G's batch-norm running statistics (dcgan only): mean starts at 0, variance at 1."""
    if c.model == "linear":
        return []
    f = c.base_width
    return [("g0.bn.mean", (2 * f,), "zeros"), ("g0.bn.var", (2 * f,), "ones"),
            ("g1.bn.mean", (f,), "zeros"), ("g1.bn.var", (f,), "ones")]


def discriminator_shapes(c: ImageConfig) -> list[Shape]:
    """D's parameters in draw order (linear: d0 dense, d1 dense; dcgan: d0 conv, d1 conv + bn, d2 dense)."""
    n = c.pixels
    if c.model == "linear":
        h = c.hidden_size
        return [("d0.w", (n, h), "normal"), ("d0.b", (h,), "zeros"),
                ("d1.w", (h, 1), "normal"), ("d1.b", (1,), "zeros")]
    f, s0 = c.base_width, c.first_map
    return [("d0.w", (KERNEL, KERNEL, 1, f), "normal"), ("d0.b", (f,), "zeros"),
            ("d1.w", (KERNEL, KERNEL, f, 2 * f), "normal"), ("d1.bn.gamma", (2 * f,), "ones"),
            ("d1.bn.beta", (2 * f,), "zeros"),
            ("d2.w", (s0 * s0 * 2 * f, 1), "normal"), ("d2.b", (1,), "zeros")]


def draw(shapes: list[Shape], rng: np.random.Generator | None) -> dict[str, np.ndarray]:
    """One seed's arrays, in float64: "normal" ones drawn from ``rng`` in order, the others constant."""
    out = {}
    for name, shape, init in shapes:
        if init == "normal":
            assert rng is not None
            out[name] = INIT_STD * rng.standard_normal(shape)
        else:
            out[name] = np.zeros(shape) if init == "zeros" else np.ones(shape)
    return out


def _stack(per_seed: list[dict[str, np.ndarray]], dtype: str) -> dict[str, np.ndarray]:
    if not per_seed or not per_seed[0]:
        return {}
    return {k: np.stack([p[k] for p in per_seed]).astype(dtype) for k in per_seed[0]}


def initial_weights(c: ImageConfig) -> dict[str, dict[str, np.ndarray]]:
    """{"G": ..., "G_stats": ..., "D": ...} for the config's seed stack, in its dtype."""
    return {
        "G": _stack([draw(generator_shapes(c), rng_for(s, "init_g")) for s in c.seeds], c.dtype),
        "G_stats": _stack([draw(generator_stat_shapes(c), None) for _ in c.seeds], c.dtype),
        "D": _stack([draw(discriminator_shapes(c), rng_for(s, "init_d")) for s in c.seeds], c.dtype),
    }
