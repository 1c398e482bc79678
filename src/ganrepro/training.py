"""Train a stack of seeds of one config in one framework: the framework-neutral driver.

It draws everything with NumPy (weights, batches, evaluation inputs), hands the arrays to the
twin of the chosen framework, and collects NumPy results. Nothing here imports a framework.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import ExperimentConfig
from .devices import DEFAULT_DEVICE, check_device
from .impls import get_backend
from .impls.interface import CURVES
from .streams import DEFAULT_CHUNK, evaluation_inputs, pretraining, training_chunks
from .weights import initial_weights


@dataclass
class TrainingOutput:
    """What a run of S stacked seeds returns; every array has the seed axis first (or second for curves).

    weights: final {"G": {...}, "D": {...}} (S, ...) arrays.
    samples_grid: G(linspace(-8, 8, 10000)), (S, 10000). samples_uniform: G(U(-8, 8) draws).
    boundary_x: the grid D is evaluated on (10000,); boundary: D on it, (S, 10000).
    curve_steps: the recorded steps (every ``curve_interval`` steps and the last one);
    curves: (len(curve_steps), S, len(CURVES)) in the order of ``CURVES``.
    timings: seconds spent in pretraining, training and evaluation.
    device: "cpu" or "cuda" (``ganrepro.devices``); device_info: the twin's description of it.
    samples_uniform_sorted: off the CPU, each row of samples_uniform sorted on the device (the
    scoring's sort, ``metrics.evaluate_many``); None on the CPU, where NumPy sorts.
    """

    config: ExperimentConfig
    framework: str
    weights: dict
    samples_grid: np.ndarray
    samples_uniform: np.ndarray
    boundary_x: np.ndarray
    boundary: np.ndarray
    curve_steps: np.ndarray
    curves: np.ndarray
    timings: dict = field(default_factory=dict)
    curve_names: tuple = CURVES
    device: str = DEFAULT_DEVICE
    device_info: dict = field(default_factory=dict)
    samples_uniform_sorted: np.ndarray | None = None


def recorded_steps(iterations: int, interval: int) -> np.ndarray:
    """Steps 0, k, 2k, ... and the final step iterations - 1."""
    steps = np.arange(0, iterations, interval)
    if steps[-1] != iterations - 1:
        steps = np.append(steps, iterations - 1)
    return steps


EVAL_SEED_GROUP = 16


def in_seed_groups(fn, config: ExperimentConfig, weights: dict, x: np.ndarray, group: int = EVAL_SEED_GROUP):
    """fn(config, weights, x) applied to groups of at most ``group`` seeds, concatenated.

    Bounds evaluation memory: D on the 10,000-point grid with minibatch discrimination builds
    (S, N / B, B, B, K) tensors, 200 MB per 128 float32 seeds. Seeds are independent, so the
    result is the same as one call.
    """
    parts = []
    for lo in range(0, x.shape[0], group):
        sl = slice(lo, lo + group)
        parts.append(fn(config, {k: v[sl] for k, v in weights.items()}, x[sl]))
    return np.concatenate(parts)


def train(config: ExperimentConfig, framework: str, *, progress: Callable[[int, int], None] | None = None,
          max_chunk: int = DEFAULT_CHUNK, init: dict | None = None,
          on_chunk: Callable[[int, dict], None] | None = None, device: str = DEFAULT_DEVICE) -> TrainingOutput:
    """Train ``config.seeds`` as one stack in ``framework`` on ``device``; ``progress(done, total)`` after each chunk.

    ``device`` ("cpu" or "cuda", ``ganrepro.devices``): where the twin trains and evaluates; the
    inputs are the same NumPy draws on every device. ``DeviceUnavailable`` (a ``UsageError``)
    before any work if the framework cannot use it.

    ``on_chunk(done, weights)`` (optional) is called after each chunk of at most ``max_chunk``
    steps with the steps done and the current {"G", "D"} weights (NumPy, seed axis first); the
    training animation uses it to draw frames. It does not change the run.

    ``init`` replaces the seeds' initial weights ({"G", "D"[, "D_pre"]} as from ``initial_weights``);
    the agreement tests use it to measure how a trajectory amplifies a tiny perturbation.
    """
    backend = get_backend(framework)
    limit = backend.STACK_LIMIT
    if limit is not None and len(config.seeds) > limit:
        return _train_in_groups(config, framework, limit, progress=progress, max_chunk=max_chunk, init=init,
                                on_chunk=on_chunk, device=device)
    device_info = backend.use_device(check_device(device))
    init = initial_weights(config) if init is None else init
    timings = {}

    t0 = time.perf_counter()
    d_weights = backend.pretrain(config, init["D_pre"], pretraining(config)) if config.pretrain_steps else init["D"]
    timings["pretrain_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    state = backend.init_state(config, init["G"], d_weights)
    keep = recorded_steps(config.iterations, config.curve_interval)
    pieces = []
    for chunk in training_chunks(config, max_chunk):
        state, curves = backend.train_chunk(config, state, chunk)
        steps = np.arange(chunk.start, chunk.start + chunk.n_valid)
        pieces.append(curves[:chunk.n_valid][np.isin(steps, keep)])
        if on_chunk is not None:
            on_chunk(chunk.start + chunk.n_valid, backend.state_weights(config, state))
        if progress:
            progress(chunk.start + chunk.n_valid, config.iterations)
    weights = backend.state_weights(config, state)
    timings["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = evaluation_inputs(config)
    out = TrainingOutput(
        config=config, framework=framework, weights=weights,
        samples_grid=in_seed_groups(backend.generate, config, weights["G"], ev.z_grid),
        samples_uniform=in_seed_groups(backend.generate, config, weights["G"], ev.z_uniform),
        boundary_x=ev.boundary_grid[0].copy(),
        boundary=in_seed_groups(backend.discriminate, config, weights["D"], ev.boundary_grid),
        curve_steps=keep, curves=np.concatenate(pieces), timings=timings, device=device, device_info=device_info,
    )
    if device != "cpu":
        out.samples_uniform_sorted = backend.sort_rows(out.samples_uniform)
    timings["evaluate_s"] = time.perf_counter() - t0
    return out


def _train_in_groups(config: ExperimentConfig, framework: str, limit: int, *, progress, max_chunk: int,
                     init: dict | None, on_chunk, device: str) -> TrainingOutput:
    """``train`` of a stack larger than the twin's ``STACK_LIMIT``, as consecutive groups of at most
    ``limit`` seeds joined along the seed axis (a seed's numbers do not depend on its group; the
    timings are the groups' sums). ``on_chunk`` sees each group's weights in turn."""
    seeds = config.seeds
    groups = [seeds[i:i + limit] for i in range(0, len(seeds), limit)]
    total = len(groups) * config.iterations
    parts = []
    for n, group in enumerate(groups):
        sub = config.with_seeds(group)
        lo = n * limit
        part_init = None if init is None else {
            net: {k: v[lo:lo + len(group)] for k, v in params.items()} for net, params in init.items()}
        part_progress = None if progress is None else (
            lambda done, _total, base=n * config.iterations: progress(base + done, total))
        parts.append(train(sub, framework, progress=part_progress, max_chunk=max_chunk, init=part_init,
                           on_chunk=on_chunk, device=device))
    first = parts[0]
    sorted_rows = None if first.samples_uniform_sorted is None else np.concatenate(
        [p.samples_uniform_sorted for p in parts])
    return TrainingOutput(
        config=config, framework=framework,
        weights={net: {k: np.concatenate([p.weights[net][k] for p in parts]) for k in first.weights[net]}
                 for net in first.weights},
        samples_grid=np.concatenate([p.samples_grid for p in parts]),
        samples_uniform=np.concatenate([p.samples_uniform for p in parts]),
        boundary_x=first.boundary_x, boundary=np.concatenate([p.boundary for p in parts]),
        curve_steps=first.curve_steps, curves=np.concatenate([p.curves for p in parts], axis=1),
        timings={k: sum(p.timings[k] for p in parts) for k in first.timings},
        device=device, device_info=first.device_info, samples_uniform_sorted=sorted_rows,
    )
