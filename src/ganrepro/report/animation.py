"""The training animation of one run, as a GIF: drawing only (``ganrepro report --animate VARIANT``).

:func:`write_gif` draws recorded :class:`Frame` s -- the real density N(4, 0.5), the density of G
on the seed's 10,000 scored U(-8, 8) draws and D's decision boundary D(x), with the step in the
title -- into a GIF. The frames are recorded elsewhere (``ganrepro.animate`` trains the run):
nothing in ``ganrepro.report`` trains. The GIF is written by matplotlib's ``PillowWriter``
(Pillow only, no external encoder), atomically, and its bytes are the same on every call
(figures built and rendered in :func:`figures.figure_style`, no metadata, fixed size, dpi and
frame duration).

Framework-free.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure

from ..files import write_bytes_atomic
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
