"""Train a stack of seeds of one image config in one framework: the image track's driver.

It loads the data set (``data.load_dataset``), draws everything with NumPy (weights, batch
indices, z, the latent grid, the evaluation noise), hands the arrays to the image twin of the
chosen framework (``impls/torch_image.py``, ``impls/tf_image.py``) and collects NumPy results:
the final weights, the six diagnostic curves, G's images of the latent grid at every checkpoint,
and 10,000 generated images per seed for the metrics. The twin trains and generates on the device
asked for (``--device cpu|cuda``, ``ganrepro.devices``); the draws are the same on every device.
Nothing here imports a framework.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..devices import DEFAULT_DEVICE, check_device
from ..impls import get_image_backend
from ..impls.interface import CURVES
from ..training import recorded_steps
from .config import ImageConfig
from .data import load_dataset
from .streams import checkpoint_steps, evaluation_noise, latent_grid, training_chunks
from .weights import initial_weights

EVAL_SEED_GROUP = 16
"""Seeds generated together at evaluation (bounds memory; seeds are independent)."""


@dataclass
class ImageTrainingOutput:
    """What a run of S stacked seeds of an image config returns (seed axis first, or second for
    curves and checkpoints).

    weights: final {"G", "G_stats", "D"}. curve_steps, curves (len(curve_steps), S, 6) in the
    order of ``CURVES``. checkpoint_steps: steps done at each checkpoint (0 = the initial G);
    checkpoints: G's images of the latent grid, (len(checkpoint_steps), S, 225, H, W) in [0, 1].
    samples: (S, 10000, H, W), G (inference mode) on N(0, I) draws of purpose ``eval_noise``.
    device: "cpu" or "cuda" (``ganrepro.devices``); device_info: the twin's description of it.
    """

    config: ImageConfig
    framework: str
    weights: dict
    curve_steps: np.ndarray
    curves: np.ndarray
    checkpoint_steps: np.ndarray
    checkpoints: np.ndarray
    samples: np.ndarray
    timings: dict = field(default_factory=dict)
    curve_names: tuple = CURVES
    track: str = "image"
    device: str = DEFAULT_DEVICE
    device_info: dict = field(default_factory=dict)


def generate_in_groups(backend, config: ImageConfig, weights: dict, z: np.ndarray) -> np.ndarray:
    """backend.generate for at most EVAL_SEED_GROUP seeds at a time, concatenated along the seed axis."""
    parts = []
    for lo in range(0, z.shape[0], EVAL_SEED_GROUP):
        sl = slice(lo, lo + EVAL_SEED_GROUP)
        parts.append(backend.generate(config, {k: v[sl] for k, v in weights["G"].items()},
                                      {k: v[sl] for k, v in weights["G_stats"].items()}, z[sl]))
    return np.concatenate(parts)


def train(config: ImageConfig, framework: str, *, progress: Callable[[int, int], None] | None = None,
          data=None, init: dict | None = None, evaluate: bool = True,
          device: str = DEFAULT_DEVICE) -> ImageTrainingOutput:
    """Train ``config.seeds`` as one stack in ``framework`` on ``device``; ``progress(done, total)`` after each chunk.

    ``device`` ("cpu" or "cuda", ``ganrepro.devices``): where the twin trains and generates; its
    inputs are the same NumPy draws on every device. ``DeviceUnavailable`` (a ``UsageError``)
    before any work if the framework cannot use it.

    ``data``: an ``ImageData`` (default: ``load_dataset(config.dataset)``, which reads
    ``GANREPRO_DATA_DIR`` for the 28x28 sets). ``init`` replaces the initial weights ({"G",
    "G_stats", "D"} as from ``initial_weights``; the agreement tests perturb them).
    ``evaluate=False`` skips the 10,000 evaluation images (``samples`` is then empty).
    """
    backend = get_image_backend(framework)
    device_info = backend.use_device(check_device(device))
    data = load_dataset(config.dataset) if data is None else data
    timings = {}
    t0 = time.perf_counter()
    train_images = np.ascontiguousarray(data.train_x, dtype=config.dtype)
    state = backend.init_state(config, initial_weights(config) if init is None else init, train_images)
    s = len(config.seeds)
    grid = np.ascontiguousarray(np.broadcast_to(latent_grid(config.z_dim), (s, *latent_grid(config.z_dim).shape)),
                                dtype=config.dtype)
    keep = recorded_steps(config.iterations, config.curve_interval)
    ck_steps = checkpoint_steps(config)
    checkpoints = [generate_in_groups(backend, config, backend.state_weights(config, state), grid)]
    pieces = []
    for chunk in training_chunks(config, len(train_images)):
        state, curves = backend.train_chunk(config, state, chunk)
        steps = np.arange(chunk.start, chunk.start + chunk.n_valid)
        pieces.append(np.asarray(curves)[:chunk.n_valid][np.isin(steps, keep)])
        done = chunk.start + chunk.n_valid
        if done in ck_steps:
            checkpoints.append(generate_in_groups(backend, config, backend.state_weights(config, state), grid))
        if progress:
            progress(done, config.iterations)
    weights = backend.state_weights(config, state)
    timings["train_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    samples = (generate_in_groups(backend, config, weights, evaluation_noise(config)) if evaluate
               else np.zeros((len(config.seeds), 0, config.image_size, config.image_size), dtype=config.dtype))
    timings["generate_s"] = time.perf_counter() - t0
    return ImageTrainingOutput(config=config, framework=framework, weights=weights, curve_steps=keep,
                               curves=np.concatenate(pieces), checkpoint_steps=np.asarray(ck_steps),
                               checkpoints=np.stack(checkpoints), samples=samples, timings=timings,
                               device=device, device_info=device_info)
