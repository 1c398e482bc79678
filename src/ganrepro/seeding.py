"""Where every random number comes from: one NumPy generator per (run seed, purpose).

docs/problem.md#seeding-by-purpose: all randomness is drawn with NumPy, so both frameworks consume the same
numbers. Each purpose has a fixed integer code; the generator for (seed, purpose) is
``default_rng(SeedSequence([seed, code]))``, so streams never overlap or shift when another
purpose draws more or fewer numbers, and a seed's draws never depend on the other seeds run
beside it.
"""
from __future__ import annotations

import numpy as np

PURPOSES = {
    "init_g": 1,  # G's initial weights
    "init_d": 2,  # D's initial weights
    "init_d_pretrain": 3,  # D_pre's initial weights (protocol 2016 pretraining)
    "real": 4,  # real batches x
    "noise_d": 5,  # z for D's update
    "noise_g": 6,  # the fresh z for G's update
    "pretrain_inputs": 7,  # pretraining inputs d
    "eval_noise": 8,  # the 10,000 U(-R, R) draws fed to the trained G
    "evaluation": 9,  # the metrics' test and validation draws from the target
    "instance_noise": 10,  # N(0, 1) draws scaled to instance noise, 3 per step: real, fake (D), fake (G)
}


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """The NumPy generator for ``purpose`` of run ``seed`` (a fresh one on every call)."""
    try:
        code = PURPOSES[purpose]
    except KeyError:
        raise ValueError(f"unknown random purpose {purpose!r}; known: {sorted(PURPOSES)}") from None
    return np.random.default_rng(np.random.SeedSequence([int(seed), code]))
