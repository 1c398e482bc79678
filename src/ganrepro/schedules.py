"""Learning-rate schedules of docs/updates.md (#gradient-descent-staircase, #tf1-adam), precomputed in float64 NumPy.

Both twins read the step size of update t from these arrays, so neither framework's own pow or
sqrt can make the two disagree. Index t counts the updates already applied by that optimizer.
"""
from __future__ import annotations

import numpy as np

GD_LR = 0.005
GD_DECAY = 0.95
GD_DECAY_EVERY = 150

ADAM_LR = 1e-3
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8


def gd_staircase(n: int) -> np.ndarray:
    """lr_t = 0.005 * 0.95 ** floor(t / 150) for t = 0..n-1 (TF1 exponential_decay, staircase)."""
    t = np.arange(n)
    return GD_LR * GD_DECAY ** np.floor(t / GD_DECAY_EVERY)


def adam_tf1_step_size(n: int) -> np.ndarray:
    """alpha_t = lr * sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1)) for t = 0..n-1 (TF1 Adam's lr_t).

    The update itself is theta -= alpha_t * m_t / (sqrt(v_t) + eps), with
    m_t = beta1 m + (1 - beta1) g and v_t = beta2 v + (1 - beta2) g^2.
    """
    t = np.arange(1, n + 1, dtype=np.float64)
    return ADAM_LR * np.sqrt(1.0 - ADAM_BETA2**t) / (1.0 - ADAM_BETA1**t)


def step_sizes(optimizer: str, n: int) -> np.ndarray:
    """The schedule of ``optimizer`` ("gd_staircase" or "adam_tf1") for n updates."""
    if optimizer == "gd_staircase":
        return gd_staircase(n)
    if optimizer == "adam_tf1":
        return adam_tf1_step_size(n)
    raise ValueError(f"unknown optimizer {optimizer!r}; allowed: gd_staircase, adam_tf1")
