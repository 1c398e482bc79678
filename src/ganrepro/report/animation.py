"""The training animation of one run (``ganrepro report --animate VARIANT``), as a GIF.

Seed 003 shows how the generator learns during training with an animation; this module draws
the same thing for any config: it trains one seed and, after each chunk of steps, draws the
real density N(4, 0.5), the density of G on the seed's 10,000 scored U(-8, 8) draws and D's
decision boundary D(x), with the step in the title. The GIF is written by matplotlib's
``PillowWriter`` (Pillow only, no external encoder), atomically, and its bytes are the same on
every call (figures built and rendered in :func:`figures.figure_style`, no metadata, fixed
size, dpi and frame duration).

The chunk size changes only how often a frame is drawn, never the run: every seed's batches
are drawn per step, independently of the chunking (``ganrepro.streams``), ``on_chunk`` only
reads the weights, PyTorch steps eagerly, and TensorFlow's compiled loop of L steps performs
the same operations per step for any L (L only changes what XLA compiles). The final weights
are those of ``ganrepro run`` for the same seed (``tests/test_report_figures.py`` checks it for
PyTorch).

Framework-free at import: the framework is imported when :func:`animate_run` starts training.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure

from ..config import ExperimentConfig
from ..files import write_bytes_atomic
from ..impls import get_backend
from ..streams import chunk_length, evaluation_inputs
from ..training import train
from . import figures as F

ANIMATION_DPI = 80
"""Pixels per inch of the frames (6.4 x 4 inches: 512 x 320 pixels)."""

FIGSIZE = (6.4, 4.0)
FPS = 10


@dataclass(frozen=True)
class Frame:
    """One frame: the steps done, G on the scored U(-8, 8) draws, and D on the boundary grid."""

    step: int
    samples: np.ndarray
    boundary: np.ndarray


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


def _frame_artists(fig: Figure, lo: float, hi: float, ytop: float, boundary_x: np.ndarray) -> dict:
    """The still parts of every frame (axes, target density) and the artists a frame updates."""
    fig.subplots_adjust(left=0.1, right=0.88, bottom=0.14, top=0.88)
    ax = fig.add_subplot()
    F.draw_target(ax, lo, hi)
    edges = np.linspace(lo, hi, F.HIST_BINS + 1)
    stairs = ax.stairs(np.zeros(F.HIST_BINS), edges, fill=True, color=F.GENERATED_COLOR, alpha=0.45, lw=0,
                       label="generated: G(z), z ~ U(-8, 8)")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, ytop)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax2 = F.boundary_axis(ax)
    (line,) = ax2.plot(boundary_x, np.full_like(boundary_x, np.nan), color=F.BOUNDARY_COLOR, lw=1.1,
                       label="D(x): decision boundary")
    handles = [ax.lines[0], stairs, line]
    ax.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=7)
    note = ax.text(0.02, 0.97, "", transform=ax.transAxes, va="top", ha="left", fontsize=7)
    return {"ax": ax, "stairs": stairs, "edges": edges, "line": line, "note": note}


def _draw_frame(artists: dict, frame: Frame, title: str, ytop: float) -> None:
    """Update the generated histogram, D(x), the notes and the title for one frame."""
    edges = artists["edges"]
    heights, _, n_finite, outside = F.density_histogram(frame.samples, edges[0], edges[-1])
    artists["stairs"].set_data(heights, edges)
    artists["line"].set_ydata(np.where(np.isfinite(frame.boundary), frame.boundary, np.nan))
    notes = F.density_notes(heights, n_finite, outside, ytop, bool(np.isfinite(frame.boundary).any()))
    artists["note"].set_text("\n".join(notes))
    artists["ax"].set_title(title)


def write_gif(frames: list[Frame], boundary_x: np.ndarray, path, title: str, fps: int = FPS,
              before_write: Callable[[], None] | None = None) -> Path:
    """Draw ``frames`` into a GIF at ``path`` (atomically); one x range and density scale for all frames.
    ``before_write()`` (optional) is called once the GIF is rendered, just before it is written."""
    if not frames:
        raise ValueError("no frames to draw")
    path = Path(path)
    total = frames[-1].step
    with F.figure_style():
        lo, hi = F.density_range([f.samples for f in frames])
        ytop = F.density_ylim([np.max(F.density_histogram(f.samples, lo, hi)[0]) for f in frames])
        fig = Figure(figsize=FIGSIZE, dpi=ANIMATION_DPI)
        artists = _frame_artists(fig, lo, hi, ytop, np.asarray(boundary_x, dtype=np.float64))
        writer = PillowWriter(fps=fps)
        # Rendered into a private temporary folder, then written to ``path`` atomically
        # (files.write_bytes_atomic): ``path`` is the old GIF or the new one, never half of one.
        with tempfile.TemporaryDirectory(prefix="ganrepro-gif-") as scratch:
            rendered = Path(scratch) / path.name
            with writer.saving(fig, str(rendered), dpi=ANIMATION_DPI):
                for frame in frames:
                    _draw_frame(artists, frame, f"{title}\nstep {frame.step} / {total}", ytop)
                    writer.grab_frame(facecolor="white")
            data = rendered.read_bytes()
    F.close_figure(fig)
    if before_write is not None:
        before_write()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return path


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
