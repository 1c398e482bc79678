"""What an image run consumes, in chunks for the twins' loops (docs/images.md#batches).

Per seed: the training split visited in epochs, each a fresh permutation (purpose ``real``), the
batches consecutive slices of the concatenated permutations; ``z`` (purpose ``noise_d``) and the
fresh ``z'`` (purpose ``noise_g``) are standard normal (B, Z) per step. The twins get image
*indices* (L, S, B) and gather the images themselves. Chunks end at checkpoints: every chunk but
the last has ``checkpoint_interval`` steps (the last is zero-padded to the same length, so that
TensorFlow compiles one loop per run). Drawing in chunks changes no number: NumPy's generators
give the same numbers drawn in pieces or at once.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..seeding import rng_for
from .config import ADAM_BETA1, ADAM_BETA2, ADAM_LR, ImageConfig

LATENT_GRID_POINTS = 225
LATENT_GRID_SIDE = 15
LATENT_GRID_RANGE = 3.0
EVAL_IMAGES = 10_000


@dataclass(frozen=True)
class ImageChunk:
    """Steps ``start .. start + n_valid - 1``; rows from n_valid on are zero padding."""

    start: int
    n_valid: int
    idx: np.ndarray  # (L, S, B) int64 indices into the training split
    z_d: np.ndarray  # (L, S, B, Z) noise of D's update
    z_g: np.ndarray  # (L, S, B, Z) fresh noise of G's update
    lr_d: np.ndarray  # (L,) Adam's alpha_t of D's update t
    lr_g: np.ndarray  # (L,) Adam's alpha_t of G's update t


def adam_step_sizes(n: int) -> np.ndarray:
    """alpha_t = lr sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1)), t = 0..n-1 (lr 2e-4, beta1 0.5), float64."""
    t = np.arange(1, n + 1, dtype=np.float64)
    return ADAM_LR * np.sqrt(1.0 - ADAM_BETA2**t) / (1.0 - ADAM_BETA1**t)


class EpochSampler:
    """Consecutive batches of B indices from fresh permutations of range(n), per seed (purpose ``real``)."""

    def __init__(self, seed: int, n: int):
        self.rng, self.n = rng_for(seed, "real"), n
        self.pending = np.empty(0, dtype=np.int64)

    def take(self, count: int) -> np.ndarray:
        while len(self.pending) < count:
            self.pending = np.concatenate([self.pending, self.rng.permutation(self.n).astype(np.int64)])
        out, self.pending = self.pending[:count], self.pending[count:]
        return out


def checkpoint_steps(c: ImageConfig) -> list[int]:
    """Steps done at each checkpoint: 0 (the initial G), k, 2k, ... and the total."""
    steps = list(range(0, c.iterations, c.checkpoint_interval))
    if steps[-1] != c.iterations:
        steps.append(c.iterations)
    return steps


def training_chunks(c: ImageConfig, n_train: int) -> Iterator[ImageChunk]:
    """The run's chunks in order (each ends at a checkpoint), drawing each seed's batches as it goes."""
    total, length, b, z = c.iterations, min(c.checkpoint_interval, c.iterations), c.batch_size, c.z_dim
    samplers = [EpochSampler(s, n_train) for s in c.seeds]
    noise = [(rng_for(s, "noise_d"), rng_for(s, "noise_g")) for s in c.seeds]
    lr = adam_step_sizes(total)
    for start in range(0, total, length):
        n = min(length, total - start)
        idx = np.zeros((length, len(c.seeds), b), dtype=np.int64)
        idx[:n] = np.stack([sm.take(n * b).reshape(n, b) for sm in samplers], axis=1)
        z_d = np.zeros((length, len(c.seeds), b, z), dtype=c.dtype)
        z_g = np.zeros_like(z_d)
        z_d[:n] = np.stack([r[0].standard_normal((n, b, z)) for r in noise], axis=1)
        z_g[:n] = np.stack([r[1].standard_normal((n, b, z)) for r in noise], axis=1)
        lr_chunk = np.zeros(length, dtype=c.dtype)
        lr_chunk[:n] = lr[start:start + n]
        yield ImageChunk(start, n, idx, z_d, z_g, lr_chunk, lr_chunk.copy())


def latent_grid(z_dim: int) -> np.ndarray:
    """The 225 fixed latent points (docs/images.md#checkpoints-and-the-latent-grid), float64 (225, Z).

    Z = 2: the 15 x 15 grid linspace(-3, 3, 15)^2, row-major (first coordinate down the rows);
    otherwise 225 draws of N(0, I_Z) from default_rng(SeedSequence([4, 225, Z])), the same for every seed.
    """
    if z_dim == 2:
        axis = np.linspace(-LATENT_GRID_RANGE, LATENT_GRID_RANGE, LATENT_GRID_SIDE)
        a, b = np.meshgrid(axis, axis, indexing="ij")
        return np.stack([a.ravel(), b.ravel()], axis=1)
    rng = np.random.default_rng(np.random.SeedSequence([4, LATENT_GRID_POINTS, z_dim]))
    return rng.standard_normal((LATENT_GRID_POINTS, z_dim))


def evaluation_noise(c: ImageConfig, n: int = EVAL_IMAGES) -> np.ndarray:
    """(S, n, Z) draws of N(0, I) per seed (purpose ``eval_noise``), in the run's dtype."""
    return np.stack([rng_for(s, "eval_noise").standard_normal((n, c.z_dim)) for s in c.seeds]).astype(c.dtype)
