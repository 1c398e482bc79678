"""The training data a run consumes, cut into fixed-length chunks for the twins' training loops.

A stack of S seeds is trained together; every array here has a step axis first and a seed axis
second: x, z_d, z_g have shape (L, S, B). Each seed draws from its own generators
(``seeding.rng_for``), so a seed's batches never depend on the seeds stacked beside it, nor on
the chunk length (NumPy's generators give the same numbers drawn in pieces or at once).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .config import EVAL_SAMPLES, NOISE_RANGE, ExperimentConfig
from .sampling import pretrain_batches, real_batches, stratified_noise, uniform_noise
from .schedules import step_sizes
from .seeding import rng_for

DEFAULT_CHUNK = 1000


@dataclass(frozen=True)
class Chunk:
    """Steps ``start .. start + n_valid - 1`` of a run; rows from n_valid on are zero padding.

    Every chunk of a run has the same length L, so a compiled loop is built once per run shape.
    """

    start: int
    n_valid: int
    x: np.ndarray  # (L, S, B) real batches, sorted along B
    z_d: np.ndarray  # (L, S, B) noise for D's update
    z_g: np.ndarray  # (L, S, B) fresh noise for G's update
    lr_d: np.ndarray  # (L,) step size of D's update t (its t-th update)
    lr_g: np.ndarray  # (L,) step size of G's update t
    # instance noise, s_t N(0, 1) (zeros when off); which input each is added to: ``noise_routing``
    noise_real: np.ndarray  # (L, S, B) on x
    noise_fake_d: np.ndarray  # (L, S, B) on G(z) in D's update, or on z (noise_target "z")
    noise_fake_g: np.ndarray  # (L, S, B) on G(z') in G's update (zeros for noise_target "z")


def chunk_length(iterations: int, max_chunk: int = DEFAULT_CHUNK) -> int:
    """Equal-as-possible chunk length: ceil(iterations / ceil(iterations / max_chunk))."""
    n_chunks = -(-iterations // max_chunk)
    return -(-iterations // n_chunks)


def instance_noise_scale(config: ExperimentConfig) -> np.ndarray:
    """s_t for t = 0..iterations-1: constant s; linear s (1 - t/T); exponential s 1000^(-t/T);
    zero from T on (T = noise_anneal_steps, or the whole run when 0)."""
    t = np.arange(config.iterations, dtype=np.float64)
    s = config.instance_noise
    if config.noise_schedule == "constant":
        return np.full_like(t, s)
    horizon = config.noise_anneal_steps or config.iterations
    shape = (1.0 - t / horizon) if config.noise_schedule == "linear" else 1000.0 ** (-t / horizon)
    return np.where(t < horizon, s * shape, 0.0)


def instance_noise(rng: np.random.Generator, scale: np.ndarray, batch_size: int, target: str):
    """Per step three draws of N(0, 1)^B (real, fake in D's update, fake in G's update) times s_t."""
    draws = rng.standard_normal((len(scale), 3, batch_size)) * scale[:, None, None]
    if target == "z":  # post 000's code: noise on x and z in D's update only
        draws[:, 2] = 0.0
    return draws


@dataclass(frozen=True)
class NoiseRouting:
    """Which inputs of a training step get which of the chunk's instance-noise arrays (True: added).

    D's update: x_d (x + noise_real), z_d (z + noise_fake_d, before G), fake_d (G(z) + noise_fake_d).
    G's update: fake_g (G(z') + noise_fake_g), x_g (x + noise_real: the real batch of feature matching,
    the one D saw). The per-step scale s_t is in the arrays (``instance_noise_scale``).
    """

    x_d: bool
    z_d: bool
    fake_d: bool
    fake_g: bool
    x_g: bool


def noise_routing(config: ExperimentConfig) -> NoiseRouting:
    """Target "d_inputs": everything D sees in either update (x, G(z), G(z'); feature matching's real
    batch too). Target "z" (post 000's code): x and z in D's update only. No instance noise: nothing."""
    on = bool(config.instance_noise)
    on_z = on and config.noise_target == "z"
    on_d = on and not on_z
    return NoiseRouting(x_d=on, z_d=on_z, fake_d=on_d, fake_g=on_d, x_g=on_d)


def with_noise(a, noise, routed: bool):
    """a + noise where the routing puts noise on a, else a itself (a tensor of any framework)."""
    return a + noise if routed else a


def training_chunks(config: ExperimentConfig, max_chunk: int = DEFAULT_CHUNK) -> Iterator[Chunk]:
    """Yield the run's chunks in order, drawing each seed's batches as it goes."""
    total = config.iterations
    length = chunk_length(total, max_chunk)
    rngs = [(rng_for(s, "real"), rng_for(s, "noise_d"), rng_for(s, "noise_g")) for s in config.seeds]
    noise_rngs = [rng_for(s, "instance_noise") for s in config.seeds]
    scale = instance_noise_scale(config) if config.instance_noise else None
    lr = step_sizes(config.optimizer, total)
    b = config.batch_size
    for start in range(0, total, length):
        n = min(length, total - start)
        arrays = []
        for k, draw in enumerate((
            lambda r, n=n: real_batches(r, n, b),
            lambda r, n=n: stratified_noise(r, n, b, NOISE_RANGE),
            lambda r, n=n: stratified_noise(r, n, b, NOISE_RANGE),
        )):
            a = np.zeros((length, len(rngs), b), dtype=config.dtype)
            a[:n] = np.stack([draw(r[k]) for r in rngs], axis=1)
            arrays.append(a)
        lr_chunk = np.zeros(length, dtype=config.dtype)
        lr_chunk[:n] = lr[start:start + n]
        noise = np.zeros((length, len(rngs), 3, b), dtype=config.dtype)
        if scale is not None:
            noise[:n] = np.stack([instance_noise(r, scale[start:start + n], b, config.noise_target)
                                  for r in noise_rngs], axis=1)
        x, z_d, z_g = arrays
        yield Chunk(start, n, x, z_d, z_g, lr_d=lr_chunk, lr_g=lr_chunk.copy(),
                    noise_real=np.ascontiguousarray(noise[:, :, 0]), noise_fake_d=np.ascontiguousarray(noise[:, :, 1]),
                    noise_fake_g=np.ascontiguousarray(noise[:, :, 2]))


@dataclass(frozen=True)
class Pretraining:
    """Protocol 2016's pretraining data for the stack: inputs and labels (P, S, B), step sizes (P,)."""

    inputs: np.ndarray
    labels: np.ndarray
    lr: np.ndarray


def pretraining(config: ExperimentConfig) -> Pretraining:
    """All pretraining batches (P = config.pretrain_steps; small enough to draw at once)."""
    p, b = config.pretrain_steps, config.batch_size
    pairs = [pretrain_batches(rng_for(s, "pretrain_inputs"), p, b) for s in config.seeds]
    inputs = np.stack([d for d, _ in pairs], axis=1).astype(config.dtype)
    labels = np.stack([y for _, y in pairs], axis=1).astype(config.dtype)
    return Pretraining(inputs, labels, step_sizes("gd_staircase", p).astype(config.dtype))


@dataclass(frozen=True)
class EvaluationInputs:
    """What the trained networks are evaluated on (docs/conventions.md#evaluation-inputs).

    z_grid: G's input linspace(-R, R, 10000), as the reference plots, shape (S, N).
    z_uniform: 10,000 fresh U(-R, R) draws per seed, shape (S, N).
    boundary_grid: D's input linspace(-R, R, 10000), shape (S, N); D sees it in consecutive
    batches of B points (the reference's procedure; it matters with minibatch discrimination),
    the last batch padded by repeating the final point.
    """

    z_grid: np.ndarray
    z_uniform: np.ndarray
    boundary_grid: np.ndarray


def evaluation_inputs(config: ExperimentConfig, n: int = EVAL_SAMPLES) -> EvaluationInputs:
    s = len(config.seeds)
    grid = np.linspace(-NOISE_RANGE, NOISE_RANGE, n)
    uniform = np.stack([uniform_noise(rng_for(seed, "eval_noise"), n, NOISE_RANGE) for seed in config.seeds])
    cast = lambda a: np.ascontiguousarray(a, dtype=config.dtype)  # noqa: E731
    return EvaluationInputs(cast(np.broadcast_to(grid, (s, n))), cast(uniform), cast(np.broadcast_to(grid, (s, n))))


def pad_to_batches(x: np.ndarray, batch_size: int) -> np.ndarray:
    """(S, N) -> (S, ceil(N / B), B), padding the end by repeating the last column."""
    s, n = x.shape
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    if pad:
        x = np.concatenate([x, np.repeat(x[:, -1:], pad, axis=1)], axis=1)
    return x.reshape(s, nb, batch_size)
