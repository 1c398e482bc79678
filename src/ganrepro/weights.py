"""Initial weights, drawn with NumPy in a fixed parameter order (docs/networks.md#initial-weights).

``linear(in, out, std)``: W ~ N(0, std^2) of shape (in, out), b = 0 of shape (out,). A stack of S
seeds gives every parameter a leading seed axis: W (S, in, out), b (S, out).
"""
from __future__ import annotations

import numpy as np

from .config import ExperimentConfig
from .seeding import rng_for

MBD_INIT_STD = 0.02


def generator_shapes(config: ExperimentConfig) -> list[tuple[str, tuple[int, ...], float]]:
    """G = linear(softplus(linear(z, h)), 1): (name, shape, init std; 0 means zeros), in draw order."""
    h = config.hidden_size
    return [("g0.w", (1, h), 1.0), ("g0.b", (h,), 0.0), ("g1.w", (h, 1), 1.0), ("g1.b", (1,), 0.0)]


def discriminator_shapes(config: ExperimentConfig) -> list[tuple[str, tuple[int, ...], float]]:
    """D's parameters in draw order: d0, d1, then d2 (plain) or the minibatch projection, then out."""
    w = 2 * config.hidden_size
    shapes = [("d0.w", (1, w), 1.0), ("d0.b", (w,), 0.0), ("d1.w", (w, w), 1.0), ("d1.b", (w,), 0.0)]
    if config.minibatch:
        kc = config.mbd_kernels * config.mbd_dims
        shapes += [("mbd.w", (w, kc), MBD_INIT_STD), ("mbd.b", (kc,), 0.0)]
    else:
        shapes += [("d2.w", (w, w), 1.0), ("d2.b", (w,), 0.0)]
    shapes += [("out.w", (config.d_feature_size, 1), 1.0), ("out.b", (1,), 0.0)]
    return shapes


def draw_parameters(shapes, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One seed's parameters: W = std * standard_normal(shape) drawn in order; biases are zeros."""
    out = {}
    for name, shape, std in shapes:
        out[name] = std * rng.standard_normal(shape) if std else np.zeros(shape)
    return out


def stack(per_seed: list[dict[str, np.ndarray]], dtype: str) -> dict[str, np.ndarray]:
    """Stack per-seed parameter dicts along a new leading seed axis, cast to ``dtype``."""
    return {k: np.stack([p[k] for p in per_seed]).astype(dtype) for k in per_seed[0]}


def initial_weights(config: ExperimentConfig) -> dict[str, dict[str, np.ndarray]]:
    """{"G": ..., "D": ..., "D_pre": ...} for the config's seed stack (D_pre only if pretraining)."""
    g_shapes, d_shapes = generator_shapes(config), discriminator_shapes(config)
    out = {
        "G": stack([draw_parameters(g_shapes, rng_for(s, "init_g")) for s in config.seeds], config.dtype),
        "D": stack([draw_parameters(d_shapes, rng_for(s, "init_d")) for s in config.seeds], config.dtype),
    }
    if config.pretrain_steps:
        out["D_pre"] = stack([draw_parameters(d_shapes, rng_for(s, "init_d_pretrain")) for s in config.seeds],
                             config.dtype)
    return out
