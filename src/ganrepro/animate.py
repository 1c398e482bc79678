"""Train one run and record its training animation: ``ganrepro report --animate VARIANT``'s work.

Post 003 shows how the generator learns during training with an animation; this module records
the same thing for any config: it trains one seed (``training.train``) and, after each chunk of
steps, evaluates G on the seed's 10,000 scored U(-8, 8) draws and D on the boundary grid
(:func:`record_frames`); ``ganrepro.report.animation.write_gif`` then only draws those arrays.
The report package never trains: this module sits above both ``training`` and ``report``.

The chunk size changes only how often a frame is drawn, never the run: every seed's batches
are drawn per step, independently of the chunking (``ganrepro.streams``), ``on_chunk`` only
reads the weights, PyTorch steps eagerly, and TensorFlow's compiled loop of L steps performs
the same operations per step for any L (L only changes what XLA compiles). The final weights
are those of ``ganrepro run`` for the same seed (``tests/test_report_figures.py`` checks it for
PyTorch).

Framework-free at import: the framework is imported when :func:`record_frames` starts training.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .config import ExperimentConfig
from .impls import get_backend
from .report.animation import Frame, write_gif
from .streams import chunk_length, evaluation_inputs
from .training import train


def frame_chunk(iterations: int, frames: int) -> int:
    """The ``max_chunk`` that yields about ``frames`` frames: ceil(iterations / frames), at least 1."""
    if not (isinstance(frames, int) and frames >= 1):
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    return max(1, math.ceil(iterations / frames))


def frame_steps(iterations: int, frames: int) -> list[int]:
    """The steps done at each frame: the ends of the run's chunks (``streams.chunk_length``).

    At most ``frames`` of them, and exactly ``frames`` when it divides the run evenly enough (e.g.
    60 for the 5001 iterations of protocol 2017); the last is always ``iterations``.
    """
    length = chunk_length(iterations, frame_chunk(iterations, frames))
    return [min(start + length, iterations) for start in range(0, iterations, length)]


def record_frames(config: ExperimentConfig, framework: str, frames: int,
                  progress: Callable[[int, int], None] | None = None) -> list[Frame]:
    """Train ``config`` (one seed) in ``framework`` and evaluate G and D after every chunk."""
    if len(config.seeds) != 1:
        raise ValueError(f"record_frames trains one seed, got {list(config.seeds)}")
    backend = get_backend(framework)
    inputs = evaluation_inputs(config)
    recorded: list[Frame] = []

    def on_chunk(done: int, weights: dict) -> None:
        samples = backend.generate(config, weights["G"], inputs.z_uniform)[0]
        boundary = backend.discriminate(config, weights["D"], inputs.boundary_grid)[0]
        recorded.append(Frame(int(done), np.asarray(samples, dtype=np.float64),
                              np.asarray(boundary, dtype=np.float64)))

    train(config, framework, max_chunk=frame_chunk(config.iterations, frames), on_chunk=on_chunk,
          progress=progress)
    return recorded


def animate_run(config: ExperimentConfig, framework: str, path, frames: int = 60, seed: int | None = None,
                progress: Callable[[int, int], None] | None = None, title: str | None = None,
                before_write: Callable[[], None] | None = None) -> Path:
    """Train one seed of ``config`` (its first seed when ``seed`` is None) in ``framework`` and write
    the training animation to ``path`` (a GIF): about ``frames`` frames (:func:`frame_steps`), each
    the real density, G's density and D(x) after that many steps. ``progress(done, total)`` is
    called after each chunk of training; ``before_write()`` just before the GIF is written (the
    command line marks its output folder there). Returns the path.
    """
    seed = config.seeds[0] if seed is None else int(seed)
    run_config = config.with_seeds((seed,))
    recorded = record_frames(run_config, framework, frames, progress)
    label = title or run_config.slug
    boundary_x = evaluation_inputs(run_config).boundary_grid[0]
    return write_gif(recorded, boundary_x, path, f"{label}  [{framework}, seed {seed}]", before_write=before_write)
